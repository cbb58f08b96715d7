"""Counting faces in a photograph with OpenCV's bundled Haar cascade (Viola & Jones, 2001).

The cascades ship inside ``opencv-python-headless`` 4.x (``cv2.data.haarcascades``); OpenCV 5
dropped them, hence the ``<5`` pin. Detection runs on a grey, histogram-equalised copy scaled to
at most :data:`MAX_SIDE` pixels, looking for faces no smaller than 1/12 of the shorter side, so
a face on a photo ID held up to the camera is still found.

Camera snapshots are searched the same way, on the pixels :func:`proctoring.images.prepare`
already decoded (no second decode). A cheaper search (shorter side at 240 pixels, scale step 1.2,
4 neighbours) was measured and refused: 40 % less CPU, but on frames made from the test
photograph it missed 5 of 6 second faces an eighth of the frame high (a person a couple of
metres behind the candidate), which this search finds, and at 240 pixels with step 1.1 it saw
phantom faces in the two-faces test photograph. ``bench/snapshot_faces.py`` measures both.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np

from proctoring.images import ImageUnreadable, decode

__all__ = ["FaceCount", "ImageUnreadable", "count_faces"]

CASCADE = "haarcascade_frontalface_default.xml"
MAX_SIDE = 640
_local = threading.local()


@dataclass(frozen=True)
class FaceCount:
    faces: int
    boxes: tuple[tuple[int, int, int, int], ...]
    width: int
    height: int


def _cascade() -> cv2.CascadeClassifier:
    # One classifier per thread: detectMultiScale is not documented as thread-safe.
    classifier = getattr(_local, "classifier", None)
    if classifier is None:
        classifier = cv2.CascadeClassifier(cv2.data.haarcascades + CASCADE)
        if classifier.empty():
            raise RuntimeError(f"OpenCV's {CASCADE} did not load; is opencv-python-headless<5 installed?")
        _local.classifier = classifier
    return classifier


def count_faces(image: bytes | np.ndarray) -> FaceCount:
    """How many frontal faces the image shows, with their boxes in the image's own pixels.
    Bytes are decoded by :func:`proctoring.images.decode`, which refuses oversized images.
    Identity photos and camera snapshots alike."""
    bgr = decode(image) if isinstance(image, (bytes, bytearray)) else image
    height, width = bgr.shape[:2]
    grey, scale = _grey(bgr, min(1.0, MAX_SIDE / max(height, width)))
    smallest = max(20, min(grey.shape[:2]) // 12)
    return _detect(grey, scale, width, height, scale_factor=1.1, min_neighbors=5,
                   smallest=smallest)


def _grey(bgr: np.ndarray, scale: float) -> tuple[np.ndarray, float]:
    """A grey copy shrunk by ``scale`` (at most 1), and the scale it really has."""
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    if scale < 1.0:
        height, width = grey.shape[:2]
        grey = cv2.resize(grey, (max(1, int(width * scale)), max(1, int(height * scale))),
                          interpolation=cv2.INTER_AREA)
    return grey, scale


def _detect(grey: np.ndarray, scale: float, width: int, height: int, *, scale_factor: float,
            min_neighbors: int, smallest: int) -> FaceCount:
    found = _cascade().detectMultiScale(cv2.equalizeHist(grey), scaleFactor=scale_factor,
                                        minNeighbors=min_neighbors,
                                        minSize=(smallest, smallest))
    boxes = tuple(
        tuple(round(v / scale) for v in box) for box in (found if len(found) else [])
    )
    return FaceCount(faces=len(boxes), boxes=boxes, width=width, height=height)  # type: ignore[arg-type]
