"""Media: stored once by content hash, typed from the bytes (never the name), size-capped, served
with safe headers to signed-in users; the upload and preview routes refuse what they should."""
from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from itembank.media import MAX_IMAGE_BYTES, MediaError, store_media
from itembank.models import Media


def _photo(width: int = 1600, height: int = 1200, fmt: str = "JPEG", noise: int = 40) -> bytes:
    """A camera-like picture: a gradient with sensor noise (compresses like a photo, not a flat
    test card)."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // width, y * 255 // height, (x + y) * 255 // (width + height)], -1)
    pixels = np.clip(base + rng.normal(0, noise, base.shape), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return out.getvalue()


def test_an_image_is_stored_once_by_its_hash(db):
    photo = _photo()
    assert 200_000 < len(photo) < MAX_IMAGE_BYTES  # the size a phone photo of a chart has
    first = store_media(db, photo, filename="chart.jpg")
    again = store_media(db, photo, filename="renamed.png")
    assert first is again and first.sha256 == hashlib.sha256(photo).hexdigest()
    assert (first.kind, first.content_type, first.width, first.height) == ("image", "image/jpeg",
                                                                           1600, 1200)
    assert db.scalar(select(func.count()).select_from(Media)) == 1


@pytest.mark.parametrize("data,message", [
    (b"", "empty"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "SVG"),
    (b'<?xml version="1.0"?><svg/>', "SVG"),
    (b"%PDF-1.7 not an image", "neither an image"),
    (b"MZ\x90\x00 an executable named photo.jpg", "neither an image"),
    (b"\x89PNG\r\n\x1a\n broken after the signature", "neither an image"),
    (_photo(64, 48, fmt="PNG")[:400], "damaged"),  # a real PNG, cut short
])
def test_files_that_are_not_images_or_audio_are_refused(db, data, message):
    with pytest.raises(MediaError, match=message):
        store_media(db, data, filename="photo.jpg")
    assert db.scalar(select(func.count()).select_from(Media)) == 0


def test_oversize_and_enormous_images_are_refused(db):
    noisy = _photo(1800, 1400, fmt="PNG", noise=120)  # random noise does not compress
    assert len(noisy) > MAX_IMAGE_BYTES
    with pytest.raises(MediaError, match="at most 5,242,880"):
        store_media(db, noisy)
    wide = io.BytesIO()
    Image.new("1", (12_000, 10)).save(wide, format="PNG")
    with pytest.raises(MediaError, match="12000 x 10 pixels"):
        store_media(db, wide.getvalue())
    tiff = io.BytesIO()
    Image.new("RGB", (10, 10)).save(tiff, format="TIFF")
    with pytest.raises(MediaError, match="TIFF images are not accepted"):
        store_media(db, tiff.getvalue())


def test_audio_is_recognized_by_its_container(db):
    wav = b"RIFF" + (36).to_bytes(4, "little") + b"WAVEfmt " + bytes(200)
    ogg = b"OggS\x00\x02" + bytes(200)
    mp3 = bytes([0xFF, 0xFB, 0x90, 0x64]) + bytes(400)  # MPEG-1 layer III, 128 kbit/s, 44.1 kHz
    assert store_media(db, wav).content_type == "audio/wav"
    assert store_media(db, ogg).content_type == "audio/ogg"
    assert store_media(db, mp3).content_type == "audio/mpeg"
    with pytest.raises(MediaError, match="neither"):
        store_media(db, bytes([0xFF, 0xFF, 0xFF, 0xFF]) + bytes(400))  # reserved bits: not MPEG


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_upload_serve_and_preview_routes(client, make_user, signin, csrf_token, db):
    photo = _photo(800, 600)
    author, candidate = make_user("psychometrician"), make_user("candidate")
    anonymous = client.get("/media/" + "0" * 64)
    assert anonymous.status_code == 404
    signin(client, candidate)
    token = csrf_token(client)
    refused = client.post("/api/bank/media", data={"file": (io.BytesIO(photo), "a.jpg")},
                          headers={"X-CSRFToken": token, "Accept": "application/json"})
    assert refused.status_code == 403  # candidates never write to the bank
    client.post("/signout", data={"csrf_token": token})

    signin(client, author)
    token = csrf_token(client)
    up = client.post("/api/bank/media", data={"file": (io.BytesIO(photo), "chart.jpg")},
                     headers={"X-CSRFToken": token})
    assert up.status_code == 201, up.json
    sha = hashlib.sha256(photo).hexdigest()
    assert up.json == {"sha256": sha, "url": f"/media/{sha}", "kind": "image",
                       "content_type": "image/jpeg", "size": len(photo), "width": 800,
                       "height": 600}
    bad = client.post("/api/bank/media", data={"file": (io.BytesIO(b"<svg/>"), "x.png")},
                      headers={"X-CSRFToken": token})
    assert bad.status_code == 422 and "SVG" in bad.json["message"]
    missing = client.post("/api/bank/media", data={}, headers={"X-CSRFToken": token})
    assert missing.status_code == 422 and missing.json["field"] == "file"

    served = client.get(f"/media/{sha}")
    assert served.status_code == 200 and served.data == photo
    assert served.headers["Content-Type"] == "image/jpeg"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert served.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert "immutable" in served.headers["Cache-Control"]
    assert client.get(f"/media/{sha}", headers={"If-None-Match": f'"{sha}"'}).status_code == 304
    assert client.get("/media/" + "f" * 64).status_code == 404
    assert client.get("/media/not-a-hash").status_code == 404

    item = {"item_type": "hotspot", "stem": "<p>Mark the square.</p>",
            "interaction": {"image": {"src": f"/media/{sha}", "alt": "A chart", "width": 800,
                                      "height": 600}},
            "key": {"regions": [{"id": "r", "shape": "circle", "coords": [400, 300, 50]}]}}
    preview = client.post("/api/bank/preview", json=item, headers={"X-CSRFToken": token})
    assert preview.status_code == 200, preview.json
    assert f'src="/media/{sha}"' in preview.json["html"] and "regions" not in preview.json["html"]
    assert "400, 300" not in preview.json["html"] and "circle" not in preview.json["html"]
    item["interaction"]["image"]["alt"] = ""
    wrong = client.post("/api/bank/preview", json=item, headers={"X-CSRFToken": token})
    assert wrong.status_code == 422 and wrong.json["field"] == "interaction.image.alt"
    for junk in ({"item_type": 3}, {"item_type": "ordering", "interaction": []},
                 {"item_type": "single_choice", "stem": "x", "interaction": {"options": ["A", "B"]},
                  "key": {"correct": ["A"]}}):
        assert client.post("/api/bank/preview", json=junk,
                           headers={"X-CSRFToken": token}).status_code == 422


def test_a_candidate_gets_only_the_media_of_items_on_their_own_attempts(app, make_user, signin,
                                                                        db, build_exam):
    from assessment.delivery import service
    from itembank.media import media_url
    from tests.delivery.test_browser_item_types import build_types_exam

    types_exam = build_types_exam(db)  # its hotspot item shows a stored chart
    other_exam = build_exam(db, code="OTHER")
    chart = db.scalar(select(Media))
    url = media_url(chart.sha256)
    mine, other, idle = make_user("candidate"), make_user("candidate"), make_user("candidate")
    service.start_attempt(db, mine, types_exam, grace_seconds=5)
    service.start_attempt(db, other, other_exam, grace_seconds=5)
    db.commit()
    for user, status in ((mine, 200), (other, 404), (idle, 404),
                         (make_user("proctor"), 200), (make_user("item_author"), 200)):
        client = signin(app.test_client(), user)
        response = client.get(url)
        assert response.status_code == status, (user.role, user.email)
        if status == 200:
            assert response.headers["Content-Type"] == "image/png"
