"""Counting faces in a photograph with OpenCV's bundled Haar cascade (Viola & Jones, 2001).

The cascades ship inside ``opencv-python-headless`` 4.x (``cv2.data.haarcascades``); OpenCV 5
dropped them, hence the ``<5`` pin. Detection runs on a grey, histogram-equalised copy scaled to
at most :data:`MAX_SIDE` pixels, looking for faces no smaller than 1/12 of the shorter side, so
a face on a photo ID held up to the camera is still found.

Camera snapshots (:func:`count_snapshot_faces`, one a minute from every proctored candidate)
are searched more cheaply, since the cascade's cost grows with the pixels it scans: the frame's
shorter side at :data:`SNAPSHOT_SIDE` pixels and a coarser scale step, about 1.7 times less CPU
for the runner's 320x240 frames and 2.5-3.5 times less for larger ones. What it gives up,
measured by ``bench/snapshot_faces.py --recall`` on 810 frames made from the test photograph
(320x240 to 1280x720, four backgrounds, one or two faces): faces a quarter of the frame high or
more are found as before, with about a third as many phantom extra faces (false "multiple
faces" flags); at a fifth, 2 % are missed (before: none); at a sixth, a third (before: 7 %);
at an eighth or less, almost all (before: 16-80 %). A candidate at a webcam shows a face about
a third of the frame high; the small faces lost are people a couple of metres behind.
``tests/proctoring/test_snapshot_faces.py`` pins what it must find.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np

from proctoring.images import ImageUnreadable, decode

__all__ = ["FaceCount", "ImageUnreadable", "count_faces", "count_snapshot_faces"]

CASCADE = "haarcascade_frontalface_default.xml"
MAX_SIDE = 640
#: a snapshot is searched with its shorter side scaled to this: the runner's 320x240 frames as
#: they are, larger ones shrunk to the same, so the cascade's 24-pixel window is 1/10 of it
#: whatever the camera (identity photos: 1/12 of at most 640 pixels, four times the pixels
#: scanned for a 640x480 frame)
SNAPSHOT_SIDE = 240
#: the snapshot search's scale step (identity photos: 1.1): about half the scales, and each face
#: gets fewer overlapping hits, so 4 neighbours are required rather than 5. Chosen by measuring
#: on frames made from the test photograph: smaller steps or fewer neighbours counted phantom
#: second faces, a smaller SNAPSHOT_SIDE missed faces a fifth of the frame high
SNAPSHOT_SCALE_FACTOR = 1.2
SNAPSHOT_MIN_NEIGHBORS = 4
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
    The thorough search, for identity photos; snapshots use :func:`count_snapshot_faces`."""
    bgr = decode(image) if isinstance(image, (bytes, bytearray)) else image
    height, width = bgr.shape[:2]
    grey, scale = _grey(bgr, min(1.0, MAX_SIDE / max(height, width)))
    smallest = max(20, min(grey.shape[:2]) // 12)
    return _detect(grey, scale, width, height, scale_factor=1.1, min_neighbors=5,
                   smallest=smallest)


def count_snapshot_faces(bgr: np.ndarray) -> FaceCount:
    """How many frontal faces a camera frame shows (decoded already, by
    :func:`proctoring.images.prepare`): searched at :data:`SNAPSHOT_SIDE`, a few milliseconds
    rather than the tens :func:`count_faces` takes, for faces of webcam size."""
    height, width = bgr.shape[:2]
    grey, scale = _grey(bgr, min(1.0, SNAPSHOT_SIDE / min(height, width)))
    return _detect(grey, scale, width, height, scale_factor=SNAPSHOT_SCALE_FACTOR,
                   min_neighbors=SNAPSHOT_MIN_NEIGHBORS, smallest=24)


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
