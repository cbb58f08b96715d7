"""Benchmark: what ``PRAGMA synchronous=FULL`` costs over ``NORMAL`` for Microcred's SQLite
writes (WAL mode), so the choice in assessment/database.py is measured, not assumed.

In WAL mode, NORMAL fsyncs the WAL only at checkpoints: a commit acknowledged to a candidate can
be lost on power loss (not on a process crash). FULL fsyncs the WAL at every commit. This bench
commits ``--commits`` save-sized transactions (one row of an attempt's saves, with its unique
(attempt, seq) index, one transaction each, as the save endpoint does) on a file in ``--dir``
(default: a temporary folder on the instance's filesystem, ./instance) under each setting, and
prints the mean and p99 milliseconds per commit and commits per second.

Usage::

    .venv/bin/python bench/sqlite_durability.py [--commits 2000] [--dir instance]
"""
from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path


def run(path: Path, synchronous: str, commits: int) -> dict[str, float]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("CREATE TABLE IF NOT EXISTS saves (id INTEGER PRIMARY KEY, attempt INTEGER, "
                 "seq INTEGER, item INTEGER, value TEXT, flagged INTEGER, at REAL, "
                 "UNIQUE (attempt, seq))")
    times = []
    for i in range(commits):
        t = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO saves (attempt, seq, item, value, flagged, at) VALUES "
                     "(?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                     (i % 97, i, i % 40, '["A", "C"]', 0, time.time()))
        conn.execute("COMMIT")
        times.append(time.perf_counter() - t)
    conn.close()
    times.sort()
    return {"mean_ms": round(statistics.fmean(times) * 1000, 3),
            "p99_ms": round(times[int(0.99 * (len(times) - 1))] * 1000, 3),
            "commits_per_s": round(len(times) / sum(times), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--commits", type=int, default=2000)
    ap.add_argument("--dir", default="instance", help="a folder on the filesystem to measure")
    args = ap.parse_args()
    Path(args.dir).mkdir(parents=True, exist_ok=True)
    out = {}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for n, setting in enumerate(("NORMAL", "FULL", "NORMAL", "FULL")):  # interleaved
            fig = run(Path(tmp) / f"{setting}-{n}.db", setting, args.commits)
            out.setdefault(setting, []).append(fig)
            print(f"synchronous={setting:6s} {fig}", flush=True)
    best = {k: min(v, key=lambda f: f["mean_ms"]) for k, v in out.items()}
    print(json.dumps({"normal": best["NORMAL"], "full": best["FULL"],
                      "extra_ms_per_commit": round(best["FULL"]["mean_ms"]
                                                   - best["NORMAL"]["mean_ms"], 3)}))


if __name__ == "__main__":
    main()
