"""Identity photos and snapshots: read safely, encrypted at rest with AES-256-GCM, and their
retention.

Every image's header is read first (Pillow's ``Image.open`` reads only the header) and an image
of more than ``MICROCRED_MAX_IMAGE_PIXELS`` pixels (default 4096x4096, more than any webcam or
phone camera gives) is refused before anything decodes it: a 48 KB PNG can claim 20000x20000
pixels, and decoding it would take gigabytes of memory and seconds of CPU. :func:`decode` is
the one way proctoring turns bytes into pixels, so identity photos, snapshots and face counting
all pass this check.

Every image is decoded and re-encoded as JPEG before storage (which strips EXIF data such as GPS
positions and refuses anything that is not an image), then encrypted with a fresh 96-bit nonce.
The associated data binds the ciphertext to its session and kind, so a ciphertext copied onto
another session's row does not decrypt.

The key: ``MICROCRED_PROCTORING_KEY`` (32 bytes as 64 hex digits or URL-safe base64), else a
random key generated once into the instance folder (``proctoring_key``, mode 0600).
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import io
import math
import os
import re
import secrets
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from PIL import Image, UnidentifiedImageError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from microcred.db import utcnow
from microcred.errors import DomainError
from microcred.keyfile import read_or_create
from proctoring.models import StoredImage

KINDS = ("selfie", "id_document", "snapshot")
MAX_SIDE = {"selfie": 1280, "id_document": 1600, "snapshot": 640}
JPEG_QUALITY = 85
DEFAULT_RETENTION_DAYS = 30
#: 16.8 megapixels: a 4096x4096 picture, more than webcams (1080p: 2.1 Mpx) and most phones give
DEFAULT_MAX_PIXELS = 4096 * 4096
FORMATS = {"JPEG", "PNG", "WEBP"}

#: the most MICROCRED_MAX_IMAGE_PIXELS may be set to (100 Mpx)
PIXELS_CEILING = 100_000_000

# Pillow's own bomb guard, as a second line: at our limit rather than its 89 Mpx (an ImageVault
# configured for more raises it), and an error rather than a warning below twice the limit, so
# any image over it is refused wherever Pillow opens it in this process. (It also stops Pillow's
# WebP reader allocating a canvas for a huge image before read_header sees the size.) Our limit
# is checked explicitly in read_header too, with a message that says why.
Image.MAX_IMAGE_PIXELS = DEFAULT_MAX_PIXELS
warnings.simplefilter("error", Image.DecompressionBombWarning)


class ImageRefused(DomainError):
    """Bytes that proctoring will not decode; the message says why."""

    status, code = 422, "image_refused"


class ImageUnreadable(ImageRefused):
    """The bytes are not a JPEG, PNG or WebP image."""


class ImageTooLarge(ImageRefused):
    """The image's header claims more pixels than :func:`max_image_pixels` allows."""


@dataclass(frozen=True)
class ImageHeader:
    format: str
    width: int
    height: int


def max_image_pixels(environ: dict[str, str] | None = None) -> int:
    """``MICROCRED_MAX_IMAGE_PIXELS``: the most pixels an uploaded image may have."""
    env = os.environ if environ is None else environ
    raw = env.get("MICROCRED_MAX_IMAGE_PIXELS", "").strip() or str(DEFAULT_MAX_PIXELS)
    try:
        pixels = int(raw)
    except ValueError:
        raise ValueError(f"MICROCRED_MAX_IMAGE_PIXELS must be a whole number, got {raw!r}") from None
    if not 1 <= pixels <= PIXELS_CEILING:
        raise ValueError(
            f"MICROCRED_MAX_IMAGE_PIXELS must be between 1 and {PIXELS_CEILING}, got {raw!r}")
    return pixels


def read_header(image: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageHeader:
    """The image's format and size from its header alone: nothing is decompressed. Raises
    :class:`ImageUnreadable` for anything but JPEG, PNG or WebP, and :class:`ImageTooLarge` when
    width x height exceeds ``max_pixels``."""
    if not image:
        raise ImageUnreadable("the image is empty")
    try:
        with Image.open(io.BytesIO(image)) as im:  # parses the header; load() would decode
            header = ImageHeader(str(im.format), *im.size)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        claimed = re.search(r"\((\d+) pixels\)", str(exc))  # Pillow's guard gives only the count
        raise _too_large(int(claimed[1]) if claimed else None, max_pixels) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ImageUnreadable("the file is not a JPEG, PNG or WebP image") from None
    if header.format not in FORMATS:
        raise ImageUnreadable(f"the file is a {header.format} image, not a JPEG, PNG or WebP")
    if header.width * header.height > max_pixels:
        raise _too_large(header.width * header.height, max_pixels,
                         f"{header.width}x{header.height} = ")
    return header


def _too_large(pixels: int | None, max_pixels: int, dims: str = "") -> ImageTooLarge:
    size = f"{dims}{pixels:,} pixels ({pixels / 1e6:.1f} megapixels)" if pixels else "too many pixels"
    return ImageTooLarge(f"the image has {size}; at most {max_pixels:,} pixels are accepted, "
                         "and a camera photo has fewer")


#: libjpeg's DCT scaling: a JPEG decoded at 1/2, 1/4 or 1/8 of its size costs a fraction of a
#: full decode, and the picture is shrunk anyway (``MAX_SIDE``)
_REDUCED = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4),
            (2, cv2.IMREAD_REDUCED_COLOR_2))


def decode(image: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS,
           max_side: int | None = None) -> np.ndarray:
    """Decode JPEG/PNG/WebP bytes into a BGR array, after :func:`read_header` has checked the
    pixel count; raises :class:`ImageUnreadable` or :class:`ImageTooLarge`.

    ``max_side``: the caller shrinks the result to at most this many pixels on its longer side,
    so a JPEG at least twice as large is decoded at 1/2, 1/4 or 1/8 of its size (never below
    ``max_side``). The pixel cap is checked on the header first either way: a reduced decode
    never lets an oversized image through."""
    header = read_header(image, max_pixels=max_pixels)
    flag, factor = cv2.IMREAD_COLOR, 1
    if max_side is not None and header.format == "JPEG":
        longer = max(header.width, header.height)
        factor, flag = next(((f, fl) for f, fl in _REDUCED if longer >= f * max_side),
                            (1, cv2.IMREAD_COLOR))
    array = cv2.imdecode(np.frombuffer(image, dtype=np.uint8), flag)
    if array is None:
        raise ImageUnreadable("the file is not a JPEG, PNG or WebP image")
    # libjpeg rounds a reduced size up
    expected = math.ceil(header.width / factor) * math.ceil(header.height / factor)
    if array.shape[1] * array.shape[0] > expected:
        # OpenCV and Pillow read the same header; should they ever disagree, refuse
        raise ImageUnreadable("the image's header does not match its pixels")
    return array


class ProctoringKeyError(ValueError):
    """The configured key is not 32 bytes."""


class ImageGone(DomainError):
    """The image was purged at the end of its retention period."""

    status, code = 410, "image_gone"


def parse_key(raw: str) -> bytes:
    raw = raw.strip()
    try:
        key = bytes.fromhex(raw) if len(raw) == 64 else base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except (ValueError, binascii.Error):
        raise ProctoringKeyError("MICROCRED_PROCTORING_KEY must be 32 bytes as hex or base64") from None
    if len(key) != 32:
        raise ProctoringKeyError(f"MICROCRED_PROCTORING_KEY must be 32 bytes, got {len(key)}")
    return key


def load_key(instance_dir: Path, environ: dict[str, str] | None = None) -> bytes:
    """The image key: from the environment, else the instance folder's (created once, safely
    when several processes start together: written aside, then linked into place)."""
    env = os.environ if environ is None else environ
    if env.get("MICROCRED_PROCTORING_KEY"):
        return parse_key(env["MICROCRED_PROCTORING_KEY"])
    return parse_key(read_or_create(Path(instance_dir) / "proctoring_key",
                                    lambda: secrets.token_bytes(32).hex()))


def retention_days(environ: dict[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    raw = env.get("MICROCRED_IMAGE_RETENTION_DAYS", str(DEFAULT_RETENTION_DAYS))
    try:
        days = int(raw)
    except ValueError:
        raise ValueError(f"MICROCRED_IMAGE_RETENTION_DAYS must be a whole number, got {raw!r}") from None
    if days < 1:
        raise ValueError("MICROCRED_IMAGE_RETENTION_DAYS must be at least 1")
    return days


@dataclass(frozen=True)
class PreparedImage:
    jpeg: bytes
    width: int
    height: int
    #: the shrunk BGR pixels ``jpeg`` was encoded from: faces are counted on them rather than
    #: on the JPEG decoded once more
    pixels: np.ndarray = field(repr=False, compare=False)


def prepare(image: bytes, kind: str, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> PreparedImage:
    """Check the header, decode, shrink to the kind's size, and re-encode as JPEG (raises
    :class:`ImageRefused`)."""
    bgr = decode(image, max_pixels=max_pixels, max_side=MAX_SIDE[kind])
    h, w = bgr.shape[:2]
    scale = min(1.0, MAX_SIDE[kind] / max(h, w))
    if scale < 1.0:
        w, h = max(1, int(w * scale)), max(1, int(h * scale))
        bgr = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:  # pragma: no cover - OpenCV always encodes a decoded image
        raise ValueError("could not encode the image")
    return PreparedImage(buf.tobytes(), w, h, bgr)


@dataclass(frozen=True)
class SealedImage:
    """An image prepared and encrypted for one session (:meth:`ImageVault.seal`), not stored
    yet; ``jpeg`` is the plaintext, for verifiers before it is stored, and ``pixels`` what it
    was encoded from, for face counting."""

    kind: str
    jpeg: bytes
    width: int
    height: int
    key_id: str
    nonce: bytes
    ciphertext: bytes
    sha256: str
    session_id: int
    pixels: np.ndarray = field(repr=False, compare=False)


class ImageVault:
    """Encrypts and decrypts images with one AES-256-GCM key."""

    def __init__(self, key: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        if len(key) != 32:
            raise ProctoringKeyError("the image key must be 32 bytes")
        self._aead = AESGCM(key)
        self.key_id = hashlib.sha256(key).hexdigest()[:16]
        self.max_pixels = max_pixels
        # Pillow's guard must not refuse what this vault accepts
        Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, max_pixels)

    @staticmethod
    def _aad(session_id: int, kind: str) -> bytes:
        return f"microcred-proctoring-image:{session_id}:{kind}".encode()

    def seal(self, *, session_id: int, kind: str, image: bytes) -> SealedImage:
        """Prepare and encrypt an image: all the CPU work, no database (do it before taking
        any lock). Raises :class:`ImageRefused`."""
        if kind not in KINDS:
            raise ValueError(f"unknown image kind {kind!r}")
        prepared = prepare(image, kind, max_pixels=self.max_pixels)
        nonce = secrets.token_bytes(12)
        return SealedImage(
            kind=kind, jpeg=prepared.jpeg, width=prepared.width, height=prepared.height,
            key_id=self.key_id, nonce=nonce,
            ciphertext=self._aead.encrypt(nonce, prepared.jpeg, self._aad(session_id, kind)),
            sha256=hashlib.sha256(prepared.jpeg).hexdigest(), session_id=session_id,
            pixels=prepared.pixels)

    def row_values(self, sealed: SealedImage, *, session_id: int,
                   now: dt.datetime | None = None) -> dict[str, Any]:
        """The columns of a sealed image's row; refuses an image sealed for another session or
        with another key."""
        if sealed.session_id != session_id or sealed.key_id != self.key_id:
            raise ValueError("this image was sealed for another session or with another key")
        return {"session_id": session_id, "kind": sealed.kind, "content_type": "image/jpeg",
                "key_id": sealed.key_id, "nonce": sealed.nonce, "ciphertext": sealed.ciphertext,
                "plaintext_sha256": sealed.sha256, "size": len(sealed.jpeg),
                "width": sealed.width, "height": sealed.height, "created_at": now or utcnow()}

    def add(self, session: Session, sealed: SealedImage, *, session_id: int) -> StoredImage:
        """Add a sealed image's row (flushed, so it has an id): one INSERT."""
        row = StoredImage(**self.row_values(sealed, session_id=session_id))
        session.add(row)
        session.flush()
        return row

    def store(self, session: Session, *, session_id: int, kind: str, image: bytes) -> StoredImage:
        """Prepare, encrypt and add an image row (flushed, so it has an id)."""
        return self.add(session, self.seal(session_id=session_id, kind=kind, image=image),
                        session_id=session_id)

    def open(self, row: StoredImage) -> bytes:
        """The image's JPEG bytes; :class:`ImageGone` once purged."""
        if row.ciphertext is None or row.nonce is None:
            raise ImageGone(f"image {row.id} was deleted at the end of its retention period")
        if row.key_id != self.key_id:
            raise ValueError(f"image {row.id} was encrypted with another key ({row.key_id})")
        try:
            return self._aead.decrypt(row.nonce, row.ciphertext, self._aad(row.session_id, row.kind))
        except InvalidTag:
            raise ValueError(f"image {row.id} failed authentication: it was altered") from None


def purge(session: Session, *, older_than_days: int, now: dt.datetime | None = None) -> int:
    """Delete the ciphertext of every image older than the retention period. Returns the count.
    The caller records the purge in the audit log."""
    now = now or utcnow()
    cutoff = now - dt.timedelta(days=older_than_days)
    ids = list(session.scalars(
        select(StoredImage.id).where(StoredImage.created_at < cutoff, StoredImage.purged_at.is_(None))
    ))
    if not ids:
        return 0
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        session.execute(
            update(StoredImage).where(StoredImage.id.in_(chunk))
            .values(ciphertext=None, nonce=None, purged_at=now)
            .execution_options(synchronize_session=False)
        )
    return len(ids)
