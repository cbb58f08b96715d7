"""Counting faces in a photograph: identity photos with OpenCV's bundled Haar cascade (Viola &
Jones, 2001), camera snapshots with BlazeFace (Bazarevsky et al., 2019, arXiv:1907.05047) run
by OpenCV's DNN module.

Identity photos (:func:`count_faces`): the cascades ship inside ``opencv-python-headless`` 4.x
(``cv2.data.haarcascades``); OpenCV 5 dropped them, hence the ``<5`` pin. Detection runs on a
grey, histogram-equalised copy scaled to at most :data:`MAX_SIDE` pixels, looking for faces no
smaller than 1/12 of the shorter side, so a face on a photo ID held up to the camera is still
found. Two photos per session: its cost does not matter.

Camera snapshots (:func:`count_frame_faces`), one a minute per candidate, for the whole exam:
MediaPipe's short-range BlazeFace model (``data/face_detection_short_range.tflite``, Apache
2.0, see ``data/README.md``), made for faces within a couple of metres of a webcam. The frame is
searched whole (letterboxed into the model's 128 x 128 input), then in four overlapping tiles of
60 % of its sides, where a face an eighth of the frame high (a person a couple of metres behind
the candidate) is large enough for the model; a tile's face counts only when it is small, lies
wholly inside the tile and scores at least :data:`TILE_SCORE`.

Measured by ``bench/snapshot_faces.py --recall`` on 810 frames made from the test photograph,
against the Haar search the snapshots had before: Haar missed 148 faces and added 88 phantom
ones (each a false "multiple faces" flag for a reviewer to clear) at 57 ms of CPU a frame; this
search missed 189 (all but 21 of them a tenth of the frame high or less, which Haar mostly
missed too) and added 2, at about 8 ms (one OpenCV thread, as the face checker runs it). On 32 photographs of people (``--photos``; the
face_recognition project's examples) it miscounted one (a logo taken for a second face), the
Haar search seven.
"""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from proctoring.images import ImageUnreadable, decode

__all__ = ["FaceCount", "ImageUnreadable", "count_faces", "count_frame_faces"]

CASCADE = "haarcascade_frontalface_default.xml"
MAX_SIDE = 640
_local = threading.local()

#: MediaPipe's short-range BlazeFace, as its 0.10.14 wheel ships it (data/README.md)
MODEL = Path(__file__).parent / "data" / "face_detection_short_range.tflite"
MODEL_SHA256 = "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"
INPUT = 128
#: the least score a face found in the whole frame needs (MediaPipe's own default)
FRAME_SCORE = 0.5
#: the least score of a face found in a tile only. At 0.5 the tiles, seen larger, gave a
#: phantom face in one frame of seven of the recall bench (a rocket, a badge on a suit); at 0.75
#: two in 810 frames. At 0.8 none, but a face an eighth of the frame high scored 0.77-0.79 in
#: some positions, and was missed
TILE_SCORE = 0.75
#: a tile's sides as a share of the frame's; four tiles, one in each corner, overlapping
TILE_SHARE = 0.6
#: a face found in a tile counts only when it is smaller than this share of the frame's height
#: (larger ones are the whole frame's to find; in a tile they are often a face cut in half)
TILE_FACE_MAX = 0.2
#: two boxes whose overlap covers this share of the smaller one are one face
SAME_FACE = 0.4


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


# ---------------------------------------------------------------- camera snapshots: BlazeFace


def _anchors() -> np.ndarray:
    """The model's 896 anchor centres, as MediaPipe's SSD anchor options for it make them
    (strides 8 and 16 on the 128-pixel input; 2 anchors per cell on the 16 x 16 grid, 6 on the
    8 x 8 one; a fixed anchor size, so only the centres matter)."""
    centres = []
    for stride, per_cell in ((8, 2), (16, 6)):
        cells = INPUT // stride
        for y in range(cells):
            for x in range(cells):
                centres += [((x + 0.5) / cells, (y + 0.5) / cells)] * per_cell
    return np.array(centres, np.float32)


_ANCHORS = _anchors()


def _network() -> cv2.dnn.Net:
    # one network per thread, like the cascade; the file is checked once against its hash
    net = getattr(_local, "blazeface", None)
    if net is None:
        data = MODEL.read_bytes()
        if hashlib.sha256(data).hexdigest() != MODEL_SHA256:
            raise RuntimeError(f"{MODEL} is not the BlazeFace model Microcred ships "
                               "(its SHA-256 differs)")
        net = cv2.dnn.readNetFromTFLite(str(MODEL))
        _local.blazeface = net
    return net


def _search(bgr: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray]:
    """Faces in ``bgr`` letterboxed into the model's square input: boxes (x, y, w, h) in the
    image's pixels and their scores, those scoring at least ``min_score``."""
    height, width = bgr.shape[:2]
    scale = INPUT / max(height, width)
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    square = np.zeros((INPUT, INPUT, 3), np.uint8)
    left, top = (INPUT - w) // 2, (INPUT - h) // 2
    square[top:top + h, left:left + w] = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA)
    net = _network()
    # RGB in [-1, 1], as MediaPipe feeds it
    net.setInput(cv2.dnn.blobFromImage(square, 1 / 127.5, (INPUT, INPUT), (127.5,) * 3,
                                       swapRB=True))
    logits, boxes = net.forward(["classificators", "regressors"])
    scores = 1 / (1 + np.exp(-np.clip(logits[0, :, 0], -80, 80)))
    keep = scores >= min_score
    raw, anchors = boxes[0][keep], _ANCHORS[keep]
    # centre offsets and sizes in input pixels (x, y, w, h first; six key points follow)
    cx = raw[:, 0] + anchors[:, 0] * INPUT - left
    cy = raw[:, 1] + anchors[:, 1] * INPUT - top
    found = np.stack([cx - raw[:, 2] / 2, cy - raw[:, 3] / 2, raw[:, 2], raw[:, 3]], 1) / scale
    return found, scores[keep]


def _one_per_face(boxes: np.ndarray, scores: np.ndarray) -> list[int]:
    """Indices of the boxes kept, best first: a box overlapping a better one by
    :data:`SAME_FACE` of the smaller's area is that face again."""
    kept: list[int] = []
    for i in np.argsort(-scores, kind="stable"):
        x, y, w, h = boxes[i]
        if all((max(0.0, min(x + w, X + W) - max(x, X)) * max(0.0, min(y + h, Y + H) - max(y, Y))
                <= SAME_FACE * min(w * h, W * H)) for X, Y, W, H in (boxes[j] for j in kept)):
            kept.append(int(i))
    return kept


def count_frame_faces(image: bytes | np.ndarray) -> FaceCount:
    """How many faces a camera frame shows, with their boxes in the frame's own pixels: the
    whole frame, then four corner tiles for the small faces (the module's docstring says why
    and what it measured). Bytes are decoded by :func:`proctoring.images.decode`."""
    bgr = decode(image) if isinstance(image, (bytes, bytearray)) else image
    height, width = bgr.shape[:2]
    found = [_search(bgr, FRAME_SCORE)]
    tw, th = int(width * TILE_SHARE), int(height * TILE_SHARE)
    edge = 2  # pixels: a box this close to a tile's inner side is a face the tile cut
    # a frame no larger than the model's input is seen whole at full size: no tiles (and none
    # of a frame a pixel wide, which would be empty)
    corners = (0, width - tw) if max(width, height) > INPUT and min(tw, th) > 0 else ()
    for x0 in corners:
        for y0 in (0, height - th):
            boxes, scores = _search(bgr[y0:y0 + th, x0:x0 + tw], TILE_SCORE)
            x, y, w, h = boxes.T
            inside = (((x > edge) | (x0 == 0)) & ((x + w < tw - edge) | (x0 + tw >= width))
                      & ((y > edge) | (y0 == 0)) & ((y + h < th - edge) | (y0 + th >= height))
                      & (h < TILE_FACE_MAX * height))
            found.append((boxes[inside] + np.array([x0, y0, 0, 0], np.float32), scores[inside]))
    boxes = np.concatenate([b for b, _ in found])
    scores = np.concatenate([s for _, s in found])
    kept = _one_per_face(boxes, scores)
    return FaceCount(faces=len(kept),
                     boxes=tuple(tuple(round(float(v)) for v in boxes[i]) for i in kept),  # type: ignore[misc]
                     width=width, height=height)
