"""Images and audio for item content, stored once by the SHA-256 of their bytes.

The type of a file is decided from its bytes, never from its name or the browser's claim:
images are opened with Pillow (PNG, JPEG, GIF, WebP; SVG is refused, since it can carry
script), audio is recognized by its container's signature (MP3, Ogg, WAV, MP4/M4A, FLAC,
WebM). Sizes are capped (:data:`MAX_IMAGE_BYTES`, :data:`MAX_AUDIO_BYTES`,
:data:`MAX_IMAGE_PIXELS`). A file already stored is not stored again: the same bytes give the
same address, ``/media/<sha256>``, which is what content refers to (``itembank.content``).
"""
from __future__ import annotations

import hashlib
import io
import re
import warnings

from PIL import Image, UnidentifiedImageError
from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from itembank.models import Media
from itembank.types import ItemDefinitionError

MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_AUDIO_BYTES = 20 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000
MAX_SIDE = 10_000
IMAGE_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif",
               "WEBP": "image/webp"}
SHA256 = re.compile(r"[0-9a-f]{64}")


class MediaError(ItemDefinitionError):
    """An upload refused; the message says why (type, size, content)."""

    status, code = 422, "invalid_media"


def media_url(sha256: str) -> str:
    return f"/media/{sha256}"


def _mpeg_frame(head: bytes) -> bool:
    """An MPEG audio frame header: the sync bits, and no reserved version, layer, bit rate or
    sample rate (what a random file rarely has)."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version, layer = (head[1] >> 3) & 0b11, (head[1] >> 1) & 0b11
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 0b11
    return version != 0b01 and layer != 0b00 and bitrate not in (0, 0b1111) and rate != 0b11


def _audio_type(data: bytes) -> str | None:
    head = data[:16]
    if (head.startswith(b"ID3") and len(data) > 10) or _mpeg_frame(head):
        return "audio/mpeg"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head[4:8] == b"ftyp" and head[8:12] in (b"M4A ", b"M4B ", b"mp42", b"isom", b"dash"):
        return "audio/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "audio/webm"
    return None


def _image_facts(data: bytes) -> tuple[str, int, int] | None:
    """(content type, width, height) if ``data`` is an image of an allowed format, else None;
    raises :class:`MediaError` for an image too large or broken."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                fmt, (width, height) = img.format, img.size
                if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_IMAGE_PIXELS:
                    raise MediaError(f"the image is {width} x {height} pixels; at most "
                                     f"{MAX_SIDE} on a side and {MAX_IMAGE_PIXELS:,} in all")
                img.verify()
    except (UnidentifiedImageError, Image.DecompressionBombWarning,
            Image.DecompressionBombError):
        return None
    except (OSError, SyntaxError, ValueError) as exc:
        raise MediaError(f"the image is damaged and cannot be read ({exc})") from None
    if fmt not in IMAGE_TYPES:
        raise MediaError(f"{fmt} images are not accepted; upload PNG, JPEG, GIF or WebP")
    return IMAGE_TYPES[fmt], width, height


def store_media(session: Session, data: bytes, *, filename: str = "") -> Media:
    """Store an uploaded image or audio file (or return the one already stored with the same
    bytes). Raises :class:`MediaError` for an empty, oversized or unrecognized file."""
    if not data:
        raise MediaError("the file is empty")
    if len(data) > MAX_AUDIO_BYTES:
        raise MediaError(f"the file is {len(data):,} bytes; at most {MAX_AUDIO_BYTES:,} for "
                         f"audio and {MAX_IMAGE_BYTES:,} for images")
    sha = hashlib.sha256(data).hexdigest()
    existing = session.get(Media, sha)
    if existing is not None:
        return existing
    if data.lstrip()[:5].lower() in (b"<?xml", b"<svg ") or b"<svg" in data[:512].lower():
        raise MediaError("SVG images are not accepted (they can carry script); upload PNG, "
                         "JPEG, GIF or WebP")
    facts = _image_facts(data)
    if facts is not None:
        if len(data) > MAX_IMAGE_BYTES:
            raise MediaError(f"the image is {len(data):,} bytes; at most {MAX_IMAGE_BYTES:,}")
        content_type, width, height = facts
        kind = "image"
    else:
        audio = _audio_type(data)
        if audio is None:
            raise MediaError("the file is neither an image (PNG, JPEG, GIF, WebP) nor audio "
                             "(MP3, Ogg, WAV, M4A, FLAC, WebM)")
        content_type, width, height, kind = audio, None, None, "audio"
    media = Media(sha256=sha, kind=kind, content_type=content_type, size=len(data),
                  width=width, height=height, filename=(filename or "")[:200], data=data)
    session.add(media)
    session.flush()
    return media


def media_facts(session: Session, sha256: str) -> Media | None:
    """A stored file's description (not its bytes), or None."""
    if not SHA256.fullmatch(sha256 or ""):
        return None
    return session.scalar(select(Media).options(defer(Media.data)).where(Media.sha256 == sha256))


def media_bytes(session: Session, sha256: str) -> tuple[str, bytes] | None:
    """(content type, bytes) of a stored file, or None."""
    if not SHA256.fullmatch(sha256 or ""):
        return None
    row = session.execute(select(Media.content_type, Media.data)
                          .where(Media.sha256 == sha256)).first()
    return (row[0], row[1]) if row else None
