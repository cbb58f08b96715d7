"""Benchmark: the CPU a camera snapshot costs before it is stored, and what its face search
finds (issue 15, goal 2). Prints its figures; not a test.

1. CPU per snapshot (process time, so OpenCV's threads count and a busy machine's waiting does
   not): ``proctoring.events.prepare_snapshot`` (decode, shrink, re-encode, encrypt, count the
   faces: everything a snapshot upload does outside the database) on frames of the runner's
   size and larger, and, for comparison, the same frame sealed and searched by a cheaper
   search that was measured and refused (shorter side 240 px, scale step 1.2, 4 neighbours).
2. Recall (``--recall``): frames made from the test photograph (four backgrounds, flips,
   gamma, one or two faces from 1/2 to 1/12 of the frame high; 810 frames), searched by both;
   per face size, how many faces were missed and how many phantom faces were added.

The faces are all one person's (the only photograph the tests ship), so the recall figures
compare the two searches; they are not an accuracy figure for faces in general.
"""
from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PHOTO = ROOT / "tests" / "proctoring" / "data" / "astronaut.jpg"
#: where the face is in the photograph (256 x 256)
FACE_BOX = (86, 30, 53, 53)


def background(width: int, height: int, kind: str, photo: np.ndarray) -> np.ndarray:
    if kind == "flat":
        return np.full((height, width, 3), 170, np.uint8)
    if kind == "wall":
        noise = np.random.default_rng(7).integers(0, 255, (height, width, 3), dtype=np.uint8)
        return cv2.GaussianBlur(noise, (0, 0), 4)
    if kind == "gradient":
        g = np.linspace(40, 220, width, dtype=np.float32)[None, :].repeat(height, 0)
        return cv2.merge([g, g * 0.9, g * 0.8]).astype(np.uint8)
    return cv2.resize(photo[150:, :], (width, height))  # "room": the suit and flags, no face


def paste(frame: np.ndarray, photo: np.ndarray, share: float, x: float, y: float, *,
          flip: bool = False, gamma: float = 1.0) -> np.ndarray:
    """The photograph pasted so that its face is ``share`` of the frame's height, centred at
    (x, y) (fractions of the frame)."""
    height, width = frame.shape[:2]
    fx, fy, fw, _ = FACE_BOX
    side = round(share * height * 256 / fw)
    img = cv2.resize(photo, (side, side), interpolation=cv2.INTER_AREA if side < 256
                     else cv2.INTER_CUBIC)
    cx = (fx + fw / 2) * side / 256
    if flip:
        img, cx = img[:, ::-1], side - cx
    if gamma != 1.0:
        img = (255 * (img / 255.0) ** gamma).astype(np.uint8)
    x0, y0 = round(x * width - cx), round(y * height - (fy + fw / 2) * side / 256)
    xs, ys, xe, ye = max(0, x0), max(0, y0), min(width, x0 + side), min(height, y0 + side)
    frame[ys:ye, xs:xe] = img[ys - y0:ye - y0, xs - x0:xe - x0]
    return frame


def jpeg(bgr: np.ndarray, quality: int = 70) -> bytes:
    return cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


def recall_frames(photo: np.ndarray) -> list[tuple[int, float, bytes]]:
    """(faces in it, the smallest face's share of the height, JPEG) for each frame."""
    out = []
    kinds = ["flat", "wall", "gradient", "room"]
    for (w, h), kind, share, pos, flip, gamma in itertools.product(
            [(320, 240), (640, 480), (1280, 720)], kinds,
            [1 / 12, 1 / 10, 1 / 8, 1 / 6, 1 / 5, 1 / 4, 1 / 3, 1 / 2],
            [(0.5, 0.45), (0.3, 0.4)], [False, True], [1.0, 1.6]):
        frame = paste(background(w, h, kind, photo), photo, share, *pos, flip=flip, gamma=gamma)
        out.append((1, share, jpeg(frame)))
    for (w, h), kind, second in itertools.product([(320, 240), (640, 480)], ["flat", "wall", "room"],
                                                  [1 / 10, 1 / 8, 1 / 6, 1 / 5, 1 / 4]):
        frame = paste(background(w, h, kind, photo), photo, 1 / 3, 0.3, 0.5)
        out.append((2, second, jpeg(paste(frame, photo, second, 0.82, 0.35, flip=True))))
    for (w, h), kind in itertools.product([(320, 240), (640, 480), (1280, 720)], kinds):
        out.append((0, 0.0, jpeg(background(w, h, kind, photo))))
    return out


def cpu_ms(fn: Callable[[], object], runs: int) -> float:
    """Median process-CPU milliseconds of ``fn`` over 5 rounds of ``runs`` calls."""
    fn()
    rounds = []
    for _ in range(5):
        start = time.process_time()
        for _ in range(runs):
            fn()
        rounds.append((time.process_time() - start) / runs * 1000)
    return statistics.median(rounds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10, help="calls per round (5 rounds)")
    ap.add_argument("--recall", action="store_true", help="also search the 810 made-up frames")
    args = ap.parse_args()

    from proctoring.events import prepare_snapshot
    from proctoring.faces import _detect, _grey, count_faces

    def count_snapshot_faces(bgr):
        # the cheaper search measured and refused (proctoring/faces.py says why): the shorter
        # side at 240 pixels, scale step 1.2, 4 neighbours
        height, width = bgr.shape[:2]
        grey, scale = _grey(bgr, min(1.0, 240 / min(height, width)))
        return _detect(grey, scale, width, height, scale_factor=1.2, min_neighbors=4,
                       smallest=24)
    from proctoring.images import ImageVault

    vault = ImageVault(b"\x01" * 32)
    raw = PHOTO.read_bytes()
    photo = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    frames = {"the bench's photo (256x256)": raw}
    for w, h in [(320, 240), (640, 480), (1280, 720), (1920, 1080)]:
        frames[f"{w}x{h} frame"] = jpeg(paste(background(w, h, "wall", photo), photo,
                                              1 / 3, 0.5, 0.45), 85)
    print(f"CPU per snapshot before the database (median ms, {args.runs}x5 calls):")
    print(f"  {'':30s} {'prepare_snapshot':>16s} {'cheaper search':>16s}  faces")
    for name, image in frames.items():
        now = cpu_ms(lambda image=image: prepare_snapshot(vault, session_id=1, image=image),
                     args.runs)
        sealed = vault.seal(session_id=1, kind="snapshot", image=image)
        old = cpu_ms(lambda image=image: count_snapshot_faces(
            vault.seal(session_id=1, kind="snapshot", image=image).pixels), args.runs)
        print(f"  {name:30s} {now:16.2f} {old:16.2f}  {count_snapshot_faces(sealed.pixels).faces}"
              f" / {count_faces(sealed.pixels).faces}", flush=True)
    if not args.recall:
        return
    print("recall on made-up frames: missed / phantom faces (cheaper search | the search used)")
    rows: dict[tuple[int, float], list[int]] = {}
    for want, share, image in recall_frames(photo):
        sealed = vault.seal(session_id=1, kind="snapshot", image=image)
        fast, slow = count_snapshot_faces(sealed.pixels).faces, count_faces(sealed.pixels).faces
        row = rows.setdefault((want, share), [0, 0, 0, 0, 0])
        row[0] += fast < want
        row[1] += fast > want
        row[2] += slow < want
        row[3] += slow > want
        row[4] += 1
    for (want, share), (fm, fx, sm, sx, n) in sorted(rows.items()):
        what = "no face" if not want else f"{want} faces, smallest 1/{round(1 / share)} high"
        print(f"  {what:30s} {n:4d} frames   {fm:3d} / {fx:3d}  |  {sm:3d} / {sx:3d}")


if __name__ == "__main__":
    main()
