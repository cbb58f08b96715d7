"""Benchmark: the CPU a camera snapshot costs before it is stored, and what its face search
finds (issue 15, goal 2). Prints its figures; not a test.

1. CPU per snapshot (process time, so OpenCV's threads count and a busy machine's waiting does
   not): ``proctoring.events.prepare_snapshot`` (decode, shrink, re-encode, encrypt, count the
   faces with BlazeFace: everything a snapshot upload does outside the database when it counts
   inline), and the two searches alone on the prepared pixels: BlazeFace
   (``faces.count_frame_faces``, the camera frames') and the Haar cascade (``faces.count_faces``,
   the identity photos', the camera frames' too until BlazeFace replaced it).
2. Recall (``--recall``): frames made from the test photograph (four backgrounds, flips,
   gamma, one or two faces from 1/2 to 1/12 of the frame high; 810 frames), searched by the
   Haar cascade, by BlazeFace on the whole frame only, and by BlazeFace with its tiles (what
   runs); per face size, how many faces were missed and how many phantom faces were added.
3. Photographs (``--photos DIR``): every JPEG and PNG under DIR, shrunk as a snapshot is, and
   the faces each search counts in it, for a person to compare with what the photograph shows.

The made-up frames' faces are all one person's (the only photograph the tests ship), so the
recall figures compare the searches; they are not an accuracy figure for faces in general.
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
    ap.add_argument("--photos", type=Path, help="also count the faces in these photographs")
    args = ap.parse_args()
    # one OpenCV thread, as the face checker's search processes run (face_checks): the process
    # CPU then is one search's, not a thread pool's spinning too
    cv2.setNumThreads(1)

    from proctoring import faces
    from proctoring.events import prepare_snapshot
    from proctoring.images import ImageRefused, ImageVault


    vault = ImageVault(b"\x01" * 32)
    raw = PHOTO.read_bytes()
    photo = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    frames = {"the bench's photo (256x256)": raw}
    for w, h in [(320, 240), (640, 480), (1280, 720), (1920, 1080)]:
        frames[f"{w}x{h} frame"] = jpeg(paste(background(w, h, "wall", photo), photo,
                                              1 / 3, 0.5, 0.45), 85)
    print(f"CPU per snapshot before the database (median ms, {args.runs}x5 calls):")
    print(f"  {'':30s} {'prepare_snapshot':>16s} {'BlazeFace':>10s} {'Haar':>8s}  faces")
    for name, image in frames.items():
        now = cpu_ms(lambda image=image: prepare_snapshot(vault, session_id=1, image=image),
                     args.runs)
        pixels = vault.seal(session_id=1, kind="snapshot", image=image).pixels
        blaze = cpu_ms(lambda pixels=pixels: faces.count_frame_faces(pixels), args.runs)
        haar = cpu_ms(lambda pixels=pixels: faces.count_faces(pixels), args.runs)
        print(f"  {name:30s} {now:16.2f} {blaze:10.2f} {haar:8.2f}  "
              f"{faces.count_frame_faces(pixels).faces} / {faces.count_faces(pixels).faces}",
              flush=True)
    if args.recall:
        recall(vault, photo)
    if args.photos:
        print(f"faces counted in the photographs under {args.photos} (BlazeFace | Haar):")
        for path in sorted(p for p in args.photos.rglob("*")
                           if p.suffix.lower() in (".jpg", ".jpeg", ".png")):
            try:
                pixels = vault.seal(session_id=1, kind="snapshot", image=path.read_bytes()).pixels
            except ImageRefused as exc:
                print(f"  {path.relative_to(args.photos)}: refused ({exc})")
                continue
            print(f"  {path.relative_to(args.photos)!s:60s} {pixels.shape[1]}x{pixels.shape[0]}"
                  f"  {faces.count_frame_faces(pixels).faces} | {faces.count_faces(pixels).faces}")


def recall(vault, photo: np.ndarray) -> None:
    from proctoring import faces

    searches = {"Haar": lambda px: faces.count_faces(px).faces,
                "BlazeFace, whole frame": lambda px: len(faces._one_per_face(
                    *faces._search(px, faces.FRAME_SCORE))),
                "BlazeFace (used)": lambda px: faces.count_frame_faces(px).faces}
    print("recall on made-up frames: missed / phantom faces, by search:", " | ".join(searches))
    rows: dict[tuple[int, float], list[int]] = {}
    cpu = dict.fromkeys(searches, 0.0)
    frames = recall_frames(photo)
    for want, share, image in frames:
        pixels = vault.seal(session_id=1, kind="snapshot", image=image).pixels
        row = rows.setdefault((want, share), [0] * (2 * len(searches) + 1))
        for i, (name, search) in enumerate(searches.items()):
            start = time.process_time()
            found = search(pixels)
            cpu[name] += time.process_time() - start
            row[2 * i] += found < want
            row[2 * i + 1] += found > want
        row[-1] += 1
    totals = [0] * (2 * len(searches))
    for (want, share), row in sorted(rows.items()):
        what = "no face" if not want else f"{want} faces, smallest 1/{round(1 / share)} high"
        cells = "  |  ".join(f"{row[2 * i]:3d} / {row[2 * i + 1]:3d}" for i in range(len(searches)))
        print(f"  {what:30s} {row[-1]:4d} frames   {cells}")
        totals = [t + v for t, v in zip(totals, row[:-1])]
    cells = "  |  ".join(f"{totals[2 * i]:3d} / {totals[2 * i + 1]:3d}" for i in range(len(searches)))
    print(f"  {'all':30s} {len(frames):4d} frames   {cells}")
    print("  CPU per frame: " + ", ".join(f"{name} {1000 * spent / len(frames):.1f} ms"
                                          for name, spent in cpu.items()))


if __name__ == "__main__":
    main()
