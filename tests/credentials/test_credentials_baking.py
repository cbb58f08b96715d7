"""Baking a credential into PNG and SVG badge images and extracting it again (OB 3.0 §5.3)."""
from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from credentials import artwork, baking, keys
from credentials import jwt as vcjwt
from credentials.errors import MalformedInput
from credentials.verify import verify


def test_png_round_trip_is_a_real_png(issued):
    text = json.dumps(issued.credential)
    png = artwork.render_png("Python Fundamentals", "PY-101", "Test Board")
    baked = baking.bake_png(png, text)
    assert baking.unbake_png(baked) == text
    with Image.open(io.BytesIO(baked)) as img:  # still a valid picture
        img.load()
        assert img.size == (artwork.SIZE, artwork.SIZE)
        assert img.text.get("openbadgecredential") == text  # Pillow reads the iTXt chunk too
    rebaked = baking.bake_png(baked, '{"replaced": true}')
    assert baking.unbake_png(rebaked) == '{"replaced": true}'


def test_svg_round_trip_json_and_jwt(issued, now):
    svg = artwork.render_svg("Python <Fundamentals> & more", "PY-101")
    text = json.dumps(issued.credential)
    baked = baking.bake_svg(svg, text)
    assert b"openbadges:credential" in baked and b"https://purl.imsglobal.org/ob/v3p0" in baked
    assert b"<![CDATA[" in baked
    assert json.loads(baking.unbake_svg(baked)) == issued.credential
    token = vcjwt.encode(issued.unsigned, issued.private_key, kid=issued.vm, issued_at=now)
    baked_jwt = baking.bake_svg(svg, token)
    assert baking.unbake(baked_jwt) == token
    assert b'verify="' in baked_jwt


def test_baked_image_verifies(issued):
    baked = baking.bake_png(artwork.render_png("X", "X"), json.dumps(issued.credential))
    report = verify(baked, issued.resolver(), now=issued_now())
    assert report.verified, report.to_dict()


def issued_now():
    import datetime as dt
    return dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("data,message", [
    (b"GIF89a....", "not a PNG or SVG"),
    (baking.PNG_SIGNATURE + b"\0\0\0\x0dIHDR", "cut off|runs past"),
    (artwork.render_png("X", "X"), "no Open Badges credential"),
    (artwork.render_svg("X", "X"), "no Open Badges credential"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'><unclosed></svg>", "does not parse"),
    (b"<?xml version='1.0'?><html/>", "root element"),
])
def test_broken_images_are_named(data, message):
    with pytest.raises(MalformedInput, match=message):
        baking.unbake(data)


def test_png_with_bad_crc_is_refused():
    png = bytearray(artwork.render_png("X", "X"))
    png[30] ^= 0xFF  # inside IHDR data
    with pytest.raises(MalformedInput, match="CRC|IHDR"):
        baking.unbake_png(bytes(png))


def test_svg_entities_are_not_expanded():
    evil = (b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b'<svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>')
    baked = baking.bake_svg(evil, '{"a": 1}')
    assert b"root:" not in baked
    assert keys  # keep import used
