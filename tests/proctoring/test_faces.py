"""The face-count verifier on real photographs (OpenCV's bundled Haar cascade)."""
from __future__ import annotations

import cv2
import pytest

from proctoring.faces import ImageUnreadable, count_faces
from proctoring.hooks import IdentityRequest, SessionInfo
from proctoring.verifiers import face_count_verifier, proctor_verifier


def test_cascades_ship_with_opencv_4():
    assert cv2.__version__.startswith("4.")
    assert (cv2.data.haarcascades + "haarcascade_frontalface_default.xml")


def test_counts(face_jpeg, two_faces_jpeg, blank_jpeg):
    assert count_faces(face_jpeg).faces == 1
    assert count_faces(two_faces_jpeg).faces == 2
    assert count_faces(blank_jpeg).faces == 0


def test_garbage_is_unreadable():
    with pytest.raises(ImageUnreadable):
        count_faces(b"this is not a picture")
    with pytest.raises(ImageUnreadable):
        count_faces(b"")


def _request(selfie: bytes, id_doc: bytes, required=("face_count",)) -> IdentityRequest:
    return IdentityRequest(SessionInfo(1, 2, 3, None, "identity_pending"), 1, selfie, id_doc, required)


def test_face_count_verifier(face_jpeg, two_faces_jpeg, blank_jpeg):
    ok = face_count_verifier.microcred_verify_identity(_request(face_jpeg, face_jpeg))
    assert ok.outcome == "passed" and ok.details == {"faces": {"selfie": 1, "id_document": 1}}
    bad = face_count_verifier.microcred_verify_identity(_request(two_faces_jpeg, blank_jpeg))
    assert bad.outcome == "failed"
    assert bad.reason == "2 faces found in the selfie; no face found in the photo ID"


def test_proctor_verifier_waits_for_a_person(face_jpeg):
    assert proctor_verifier.microcred_verify_identity(_request(face_jpeg, face_jpeg)) is None
    out = proctor_verifier.microcred_verify_identity(_request(face_jpeg, face_jpeg, ("proctor",)))
    assert out.outcome == "pending"
