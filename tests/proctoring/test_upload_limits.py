"""Uploads (issue 9, findings 1 and 2), on SQLite and PostgreSQL, through the real app:

- camera-sized identity photos (two 1280x720 JPEGs of some 400 KB) pass the CSRF check and are
  accepted: per-view body limits hold before anything reads the body, and every other view
  keeps the small default;
- an image whose header claims too many pixels (a decompression bomb) is refused from its
  header, before anything decodes it, as an identity photo and as a snapshot;
- identity submissions are rate-limited per session, counted in the database (two apps, as two
  workers, share the count), with 429 and Retry-After.
"""
from __future__ import annotations

import datetime as dt
import io
import re
import struct
import zlib

import pytest
from flask import request
from sqlalchemy import func, select

from assessment.psych.program_views import IMPORT_MAX_BYTES
from assessment.psych.studies_views import CSV_LIMIT
from credentials.bulk import MAX_BODY_BYTES as BULK_BODY_BYTES
from credentials.trainings import MAX_CSV_BYTES
from credentials.web import VERIFY_BODY_BYTES
from itembank.media import MAX_AUDIO_BYTES
from itembank.qti.safety import MAX_PACKAGE_BYTES
from itembank.web import UPLOAD_OVERHEAD
from microcred.errors import TooManyRequests
from proctoring import identity
from proctoring.images import DEFAULT_MAX_PIXELS, ImageTooLarge, ImageVault, read_header
from proctoring.models import IdentityAttempt, ProctorSession, StoredImage
from proctoring.sessions import session_for_attempt

PHOTO_VIEWS = {"proctoring.identity_submit": 16 * 1024 * 1024,
               "proctoring.api_snapshots": 1024 * 1024}
#: the bank's two file uploads: item media (up to an audio file) and QTI content packages
FILE_VIEWS = {"itembank.upload_media": MAX_AUDIO_BYTES + UPLOAD_OVERHEAD,
              "qti.upload": MAX_PACKAGE_BYTES + 1024 * 1024,
              # the workspace's CSV imports: panel classifications, candidate attributes
              "studies.classify": CSV_LIMIT,
              "programs.import_attributes": IMPORT_MAX_BYTES + 64 * 1024,
              # credentials: a baked image (or several) to verify, training completions
              "credentials.verify_page": VERIFY_BODY_BYTES,
              "credentials.api_verify": VERIFY_BODY_BYTES,
              "credentials.verify_bulk": BULK_BODY_BYTES,
              "credentials.admin_import_completions": MAX_CSV_BYTES + 64 * 1024,
              "credentials.api_training_completions": MAX_CSV_BYTES}


def png(width: int, height: int, idat: bytes, *, bit_depth: int = 8, colour: int = 2) -> bytes:
    """A PNG with the given header and IDAT bytes (valid or not)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))


def real_bomb(side: int) -> bytes:
    """A valid 1-bit greyscale PNG of side x side white pixels: a few KB that decode to
    side * side * 3 bytes in OpenCV."""
    row = b"\x00" + b"\xff" * ((side + 7) // 8)
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row * 500) for _ in range(side // 500)) + packer.flush()
    return png(side, side, data, bit_depth=1, colour=0)


# A PNG whose IDAT is garbage: decoding it fails, so only the header can refuse it for its size
GARBAGE_BOMB = png(20000, 20000, b"not deflate data" * 64)


@pytest.fixture
def candidate(app, client, db, proctored, signin, csrf_token):
    """A signed-in candidate sent to the identity check: (client, token, session id, ns)."""
    ns = proctored({"identity": "proctor"})
    signin(client, ns.candidate)
    token = csrf_token(client)
    resp = client.post(f"/exams/{ns.exam.code}/start", data={"agree": "yes", "csrf_token": token})
    sid = int(re.search(r"/identity/(\d+)", resp.headers["Location"]).group(1))
    return client, token, sid, ns


def _submit(client, token, sid, selfie: bytes, id_document: bytes):
    return client.post(f"/proctoring/identity/{sid}", data={
        "csrf_token": token, "selfie": (io.BytesIO(selfie), "selfie.jpg"),
        "id_document": (io.BytesIO(id_document), "id.jpg")}, content_type="multipart/form-data")


def _state(db, sid: int) -> str:
    db.commit()  # see what the app committed
    return db.scalar(select(ProctorSession.state).where(ProctorSession.id == sid))


# ---------------------------------------------------------------- finding 2: body limits


def test_camera_sized_identity_photos_are_accepted(candidate, db, camera_photos):
    client, token, sid, _ = candidate
    selfie, id_photo = camera_photos
    assert all(300_000 <= len(p) <= 600_000 for p in camera_photos), [len(p) for p in camera_photos]
    resp = _submit(client, token, sid, selfie, id_photo)
    assert resp.status_code == 303, resp.get_data(as_text=True)[:300]
    assert _state(db, sid) == "identity_pending"
    widths = set(db.scalars(select(StoredImage.width).where(StoredImage.session_id == sid)))
    assert widths == {1280}


def test_only_the_photo_views_take_large_bodies(app):
    """Close the class: every view's body limit, as the request sees it before any code reads
    the body, is the app's small default, except the views that take photos and the bank's
    two file uploads."""
    default = app.config["MAX_CONTENT_LENGTH"]
    assert default == 64 * 1024
    seen = {}
    for rule in app.url_map.iter_rules():
        args = dict.fromkeys(rule.arguments, 1)  # 1 suits every converter the app uses
        with app.test_request_context(rule.build(args, append_unknown=False)[1],
                                      method="POST" if "POST" in rule.methods else "GET"):
            assert request.endpoint == rule.endpoint, rule
            seen[rule.endpoint] = request.max_content_length
    assert {e: n for e, n in seen.items() if n != default} == PHOTO_VIEWS | FILE_VIEWS
    assert set(PHOTO_VIEWS | FILE_VIEWS) <= set(seen)


def test_other_forms_refuse_a_large_body_naming_the_limit(client):
    resp = client.post("/signin", data={"email": "a@example.org", "password": "x" * 100_000})
    assert resp.status_code == 413
    assert "larger than 65536 bytes" in resp.get_data(as_text=True)
    api = client.post("/api/bank/preview", data=b"{" * 100_000,
                      content_type="application/json")
    assert api.status_code == 413 and "larger than 65536 bytes" in api.json["message"]
    verify = client.post("/api/credentials/verify", data=b"{" * (VERIFY_BODY_BYTES + 1),
                         content_type="application/json")
    assert verify.status_code == 413
    assert f"larger than {VERIFY_BODY_BYTES} bytes" in verify.json["message"]


def test_an_identity_body_over_its_limit_is_refused_with_its_own_limit(candidate):
    client, token, sid, _ = candidate
    resp = _submit(client, token, sid, b"\xff" * (16 * 1024 * 1024), b"x")
    assert resp.status_code == 413
    assert f"larger than {16 * 1024 * 1024} bytes" in resp.get_data(as_text=True)


# ---------------------------------------------------------------- finding 1: pixel bombs


def test_the_header_alone_refuses_a_bomb(monkeypatch):
    """Nothing decodes: OpenCV's decoder is replaced by one that fails the test."""
    import cv2

    def no_decoding(*args, **kwargs):
        raise AssertionError("the bomb was decoded")

    monkeypatch.setattr(cv2, "imdecode", no_decoding)
    for bomb, said in ((GARBAGE_BOMB, "400,000,000 pixels (400.0 megapixels)"),
                       (real_bomb(5000), "25,000,000 pixels (25.0 megapixels)"),
                       (png(4097, 4096, b""), "16,781,312 pixels")):
        with pytest.raises(ImageTooLarge, match=re.escape(said)):
            ImageVault(b"k" * 32).store(None, session_id=1, kind="selfie", image=bomb)
    assert read_header(png(4096, 4096, b"")).width == 4096  # the limit itself is allowed
    assert DEFAULT_MAX_PIXELS == 4096 * 4096


def test_an_identity_bomb_is_refused_with_the_pixel_count(candidate, db, face_jpeg):
    client, token, sid, _ = candidate
    for selfie, id_photo, field in ((GARBAGE_BOMB, face_jpeg, "selfie"),
                                    (face_jpeg, real_bomb(5000), "id_document")):
        resp = client.post(f"/proctoring/identity/{sid}", headers={"Accept": "application/json"},
                           data={"csrf_token": token, "selfie": (io.BytesIO(selfie), "a.png"),
                                 "id_document": (io.BytesIO(id_photo), "b.png")},
                           content_type="multipart/form-data")
        text = resp.get_data(as_text=True)
        assert resp.status_code == 422, text[:300]
        assert "megapixels" in text and "at most 16,777,216 pixels" in text, text[:500]
        assert ("photo of you is too large" if field == "selfie"
                else "photo of your ID is too large") in text
    assert _state(db, sid) == "created"
    assert db.scalar(select(func.count()).select_from(StoredImage)) == 0


def test_a_snapshot_bomb_is_refused_with_the_pixel_count(app, client, db, proctored, signin,
                                                         csrf_token, camera_photos):
    ns = proctored({"identity": "none", "fullscreen": False})
    signin(client, ns.candidate)
    token = csrf_token(client)
    started = client.post(f"/exams/{ns.exam.code}/start", data={"agree": "yes", "csrf_token": token})
    attempt_id = int(re.search(r"/attempts/(\d+)", started.headers["Location"]).group(1))
    ps = session_for_attempt(db, attempt_id)
    url = f"/api/proctoring/sessions/{ps.id}/snapshots"

    def send(image: bytes, seq: int, kind: str = "image/png"):
        return client.post(url, data=image, content_type=kind,
                           headers={"X-CSRFToken": token, "X-Snapshot-Seq": str(seq)})

    for seq, bomb in enumerate((GARBAGE_BOMB, real_bomb(5000)), start=1):
        resp = send(bomb, seq)
        assert resp.status_code == 422 and resp.json["field"] == "image", resp.json
        assert "the snapshot is too large" in resp.json["message"]
        assert "at most 16,777,216 pixels" in resp.json["message"]
    # a snapshot the size a real camera sends is stored
    ok = send(camera_photos[0], 3, "image/jpeg")
    assert ok.status_code == 200 and ok.json["status"] == "stored", ok.json


# ---------------------------------------------------------------- finding 1: rate limit


def test_identity_submissions_are_rate_limited_across_workers(app, settings, candidate, db,
                                                               signin, csrf_token):
    """Two apps on one database are two workers: the count is the database's."""
    from assessment.app import create_app

    client, token, sid, ns = candidate
    limit = app.extensions["microcred.proctoring"].identity_attempts
    assert (limit.attempts, limit.window_s) == (5, 600)
    other_worker = create_app(settings, TESTING=True)
    try:
        other = other_worker.test_client()
        signin(other, ns.candidate)
        other_token = csrf_token(other)
        for i in range(limit.attempts):
            c, t = (client, token) if i % 2 else (other, other_token)
            refused = _submit(c, t, sid, GARBAGE_BOMB, GARBAGE_BOMB)  # refusals count too
            assert refused.status_code == 422, refused.get_data(as_text=True)[:300]
        for c, t in ((client, token), (other, other_token)):
            resp = c.post(f"/proctoring/identity/{sid}", headers={"Accept": "application/json"},
                          data={"csrf_token": t, "selfie": (io.BytesIO(b"x"), "a.jpg"),
                                "id_document": (io.BytesIO(b"x"), "b.jpg")},
                          content_type="multipart/form-data")
            assert resp.status_code == 429, resp.get_data(as_text=True)[:300]
            assert 1 <= int(resp.headers["Retry-After"]) <= 600
            assert "5 identity submissions in the last 10 minutes" in resp.get_data(as_text=True)
    finally:
        other_worker.extensions["microcred.database"].dispose()
    db.commit()
    assert db.scalar(select(func.count()).select_from(IdentityAttempt)
                     .where(IdentityAttempt.session_id == sid)) == limit.attempts


def test_the_window_slides(db, proctored, face_jpeg):
    from proctoring.sessions import open_session
    from proctoring.wiring import identity_gate

    ns = proctored({"identity": "proctor"})
    identity_gate(db, ns.candidate, ns.exam, url_for=lambda *a, **k: "/identity")
    ps = open_session(db, ns.candidate.id, ns.exam.id)
    limit = identity.AttemptLimit(attempts=2, window_s=600)
    t0 = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)
    identity.count_attempt(db, ps, limit, now=t0)
    identity.count_attempt(db, ps, limit, now=t0 + dt.timedelta(seconds=100))
    db.commit()
    with pytest.raises(TooManyRequests) as err:
        identity.count_attempt(db, ps, limit, now=t0 + dt.timedelta(seconds=200))
    assert err.value.extra["retry_after"] == 400
    identity.count_attempt(db, ps, limit, now=t0 + dt.timedelta(seconds=601))


def test_pixel_limit_from_the_environment():
    from proctoring.images import max_image_pixels

    assert max_image_pixels({}) == 4096 * 4096
    assert max_image_pixels({"MICROCRED_MAX_IMAGE_PIXELS": "1000000"}) == 1_000_000
    with pytest.raises(ValueError, match="MICROCRED_MAX_IMAGE_PIXELS must be between"):
        max_image_pixels({"MICROCRED_MAX_IMAGE_PIXELS": str(10**12)})


def test_attempt_limit_from_the_environment():
    assert identity.AttemptLimit.from_env({"MICROCRED_IDENTITY_ATTEMPTS": "3"}).attempts == 3
    with pytest.raises(ValueError, match="MICROCRED_IDENTITY_WINDOW_SECONDS"):
        identity.AttemptLimit.from_env({"MICROCRED_IDENTITY_WINDOW_SECONDS": "0"})
