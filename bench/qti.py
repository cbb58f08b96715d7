"""Benchmark: QTI export and import of a large bank, without a database (the package layer).

A bank of 2,000 items, the 18 kinds of ``tests/itembank/qti/samples.py`` (every type and
scoring method) repeated, is written as a QTI 3.0 and a QTI 2.1 content package and read back
(every item checked: its scoring proposed and compared with the package's own response
processing on a table of responses). Prints the seconds for each step, items per second and
the package sizes; the last line is one JSON object with every figure.

Usage: ``.venv/bin/python bench/qti.py [--items N]``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from itembank.qti.package import package_records, read_package
from itembank.qti.record import ItemRecord
from tests.itembank.qti.samples import samples


def bank(n: int) -> list[ItemRecord]:
    kinds = samples()
    out = []
    for i in range(n):
        s = dict(kinds[i % len(kinds)])
        s["code"] = f"{s['code']}-{i:05d}"
        out.append(ItemRecord(**s))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=2000)
    n = parser.parse_args().items
    figures: dict[str, float] = {"items": n}
    for dialect in ("qti3", "qti21"):
        records = bank(n)
        t0 = time.perf_counter()
        data = package_records(records, dialect)
        t1 = time.perf_counter()
        plan = read_package(data, "bench.zip")
        t2 = time.perf_counter()
        assert len([p for p in plan.items if p.record]) == n
        figures[f"{dialect}_export_s"] = round(t1 - t0, 2)
        figures[f"{dialect}_read_s"] = round(t2 - t1, 2)
        figures[f"{dialect}_package_kb"] = round(len(data) / 1024)
        print(f"{dialect}: export {n} items {t1 - t0:.2f} s ({n / (t1 - t0):.0f}/s), "
              f"read and check {t2 - t1:.2f} s ({n / (t2 - t1):.0f}/s), "
              f"package {len(data) / 1024:.0f} KB")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
