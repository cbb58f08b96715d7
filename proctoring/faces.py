"""Counting faces in a photograph with OpenCV's bundled Haar cascade (Viola & Jones, 2001).

The cascades ship inside ``opencv-python-headless`` 4.x (``cv2.data.haarcascades``); OpenCV 5
dropped them, hence the ``<5`` pin. Detection runs on a grey, histogram-equalised copy scaled to
at most :data:`MAX_SIDE` pixels, looking for faces no smaller than 1/12 of the shorter side, so
a face on a photo ID held up to the camera is still found.
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
    Bytes are decoded by :func:`proctoring.images.decode`, which refuses oversized images."""
    bgr = decode(image) if isinstance(image, (bytes, bytearray)) else image
    height, width = bgr.shape[:2]
    scale = min(1.0, MAX_SIDE / max(height, width))
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    if scale < 1.0:
        grey = cv2.resize(grey, (int(width * scale), int(height * scale)), interpolation=cv2.INTER_AREA)
    grey = cv2.equalizeHist(grey)
    smallest = max(20, min(grey.shape[:2]) // 12)
    found = _cascade().detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5,
                                        minSize=(smallest, smallest))
    boxes = tuple(
        tuple(round(v / scale) for v in box) for box in (found if len(found) else [])
    )
    return FaceCount(faces=len(boxes), boxes=boxes, width=width, height=height)  # type: ignore[arg-type]
