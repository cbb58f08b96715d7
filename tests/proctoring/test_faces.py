"""Face counting on real photographs: the identity photos' Haar cascade and the camera frames'
BlazeFace (proctoring.faces)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from proctoring import faces
from proctoring.faces import ImageUnreadable, count_faces, count_frame_faces
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


# ---------------------------------------------------------------- camera frames: BlazeFace


def test_the_frame_search_counts_the_test_photos(face_jpeg, two_faces_jpeg, blank_jpeg):
    assert count_frame_faces(face_jpeg).faces == 1
    assert count_frame_faces(two_faces_jpeg).faces == 2
    assert count_frame_faces(blank_jpeg).faces == 0
    with pytest.raises(ImageUnreadable):
        count_frame_faces(b"this is not a picture")


def test_the_anchors_are_mediapipes():
    """MediaPipe's SSD anchors for the short-range model: 16 x 16 cells of 2 anchors, then
    8 x 8 cells of 6, centred in their cells, row by row."""
    anchors = faces._ANCHORS
    assert anchors.shape == (896, 2)
    assert tuple(anchors[0]) == tuple(anchors[1]) == (1 / 32, 1 / 32)
    assert tuple(anchors[2]) == (3 / 32, 1 / 32)
    assert tuple(anchors[511]) == (31 / 32, 31 / 32)
    assert tuple(anchors[512]) == tuple(anchors[517]) == (1 / 16, 1 / 16)
    assert tuple(anchors[518]) == (3 / 16, 1 / 16)
    assert tuple(anchors[-1]) == (15 / 16, 15 / 16)


def _pasted(face_jpeg: bytes, width: int, height: int, faces_at) -> np.ndarray:
    """A grey frame with the test photograph pasted so that its face (86, 30, 53, 53 in the
    256-pixel photograph) is ``share`` of the frame high, centred at (x, y), mirrored when
    ``flip``."""
    photo = cv2.imdecode(np.frombuffer(face_jpeg, np.uint8), cv2.IMREAD_COLOR)
    frame = np.full((height, width, 3), 170, np.uint8)
    for share, x, y, flip in faces_at:
        side = round(share * height * 256 / 53)
        img = cv2.resize(photo, (side, side), interpolation=cv2.INTER_AREA)
        centre_x = 112.5 * side / 256
        if flip:
            img, centre_x = img[:, ::-1], side - centre_x
        x0, y0 = round(x * width - centre_x), round(y * height - 56.5 * side / 256)
        xs, ys = max(0, x0), max(0, y0)
        xe, ye = min(width, x0 + side), min(height, y0 + side)
        frame[ys:ye, xs:xe] = img[ys - y0:ye - y0, xs - x0:xe - x0]
    return frame


def test_a_small_face_is_found_in_a_tile_and_a_face_on_the_seams_counted_once(face_jpeg):
    # a person a couple of metres behind the candidate: an eighth of the frame high, too small
    # for the whole frame's search at 128 pixels, found in the tiles
    pair = _pasted(face_jpeg, 640, 480, [(1 / 3, 0.3, 0.5, False), (1 / 8, 0.82, 0.35, True)])
    assert len(faces._one_per_face(*faces._search(pair, faces.FRAME_SCORE))) == 1
    found = count_frame_faces(pair)
    assert found.faces == 2
    x, y, w, h = sorted(found.boxes)[1]
    assert abs(x + w / 2 - 0.82 * 640) < w / 3 and abs(y + h / 2 - 0.35 * 480) < h / 3
    # a face in the middle lies in all four tiles and in the whole frame: one face
    assert count_frame_faces(_pasted(face_jpeg, 640, 480, [(1 / 6, 0.5, 0.5, False)])).faces == 1


def test_a_changed_model_file_is_refused(face_jpeg, tmp_path, monkeypatch):
    changed = tmp_path / "face_detection_short_range.tflite"
    data = bytearray(faces.MODEL.read_bytes())
    data[-1] ^= 1
    changed.write_bytes(bytes(data))
    monkeypatch.setattr(faces, "MODEL", changed)
    monkeypatch.setattr(faces._local, "blazeface", None, raising=False)
    with pytest.raises(RuntimeError, match="SHA-256 differs"):
        count_frame_faces(face_jpeg)


@pytest.mark.parametrize("size", [(1, 1), (1, 300), (300, 1), (2, 2), (128, 96)])
def test_tiny_and_thin_frames_are_searched_without_error(size):
    """A frame no larger than the model's input has no tiles, and a frame one pixel high or
    wide no empty ones: a candidate's page sending a 1 x 1 picture once raised
    ZeroDivisionError in the face checker's search."""
    from proctoring import face_checks

    width, height = size
    frame = np.full((height, width, 3), 170, np.uint8)
    assert count_frame_faces(frame).faces == 0
    assert face_checks.count_one(cv2.imencode(".jpg", frame)[1].tobytes()) == 0


def test_a_search_that_fails_on_one_frame_fails_that_frame_only(face_jpeg, monkeypatch):
    """A fault inside the search (any exception) is the frame's reason it was not analysed,
    not an error that fails the frames searched with it."""
    from proctoring import face_checks

    def broken(image):
        if image == b"poison":
            raise ZeroDivisionError("division by zero")
        return count_frame_faces(image)

    monkeypatch.setattr(face_checks, "count_frame_faces", broken)
    assert face_checks.search_here([face_jpeg, b"poison", face_jpeg]) == [
        1, "ZeroDivisionError: division by zero", 1]
