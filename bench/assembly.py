"""Benchmark: automated form assembly and the linear-on-the-fly pool.

A bank of 2,000 single-choice items (1,900 approved, 100 pretest) in five domains (2PL and 3PL parameters drawn
a ~ lognormal(0, 0.3), b ~ N(0, 1); 10% of items in 100 enemy pairs; 100 pretest items), a
blueprint of 40 scored items (8 per domain) and 5 pretest slots, in a fresh migrated database
(SQLite file; PostgreSQL too with ``--postgres URL``). Prints:

* assembly of one 40-item form maximising information at the cut (theta 0): load the bank
  (versions, parameters, exposure, enemies) + solve, median of 10 (goal < 1 s);
* a linear-on-the-fly form at start (unique among the exam's forms), stored: median of 10;
* filling a pool of 200 forms: seconds per form;
* claiming the pool by 8 threads at once, each claim its own transaction: claims per second,
  and that no form was claimed twice.

Usage: ``.venv/bin/python bench/assembly.py [--postgres postgresql+psycopg://...]``. The last
line printed is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text

from assessment.database import Database
from assessment.migrate import upgrade
from itembank.assembly import (
    AssemblyTarget,
    assemble,
    assemble_loft_form,
)
from itembank.blueprints import save_blueprint
from itembank.models import Item, ItemEnemy, ItemVersion
from itembank.parameters import ParameterValues, supersede_parameters
from itembank.pool import claim_form, fill_pool

DOMAINS = ("D1", "D2", "D3", "D4", "D5")
BANK_SIZE = 2000
PRETEST = 100


def build_bank(db: Database, *, seed: int = 2026) -> None:
    rng = np.random.default_rng(seed)
    with db.session() as s:
        items = [Item(code=f"BENCH-{i:05d}") for i in range(BANK_SIZE)]
        s.add_all(items)
        s.flush()
        versions = []
        for i, item in enumerate(items):
            versions.append(ItemVersion(
                item_id=item.id, version=1,
                status="approved" if i >= PRETEST else "pretest",
                item_type="single_choice", domain_code=DOMAINS[i % len(DOMAINS)],
                stem=f"Bench question {i}?",
                interaction={"options": [{"id": x, "text": x} for x in "ABCD"]},
                key={"correct": ["A"]}))
        s.add_all(versions)
        s.flush()
        a = rng.lognormal(0.0, 0.3, BANK_SIZE)
        b = rng.normal(0.0, 1.0, BANK_SIZE)
        values = [ParameterValues(item_version_id=v.id, model="3pl" if i % 2 else "2pl",
                                  a=float(a[i]), b=float(b[i]), c=0.2 if i % 2 else 0.0)
                  for i, v in enumerate(versions) if i >= PRETEST]
        supersede_parameters(s, values, source="bench")
        pairs = rng.choice(np.arange(PRETEST, BANK_SIZE), size=(100, 2), replace=False)
        s.add_all(ItemEnemy(item_id=min(items[p].id, items[q].id),
                            enemy_id=max(items[p].id, items[q].id)) for p, q in pairs)
        save_blueprint(s, code="BENCH-BP", name="Bench blueprint", domains=[
            {"code": d, "name": f"Domain {d}", "items_on_form": 8, "pretest_items": 1}
            for d in DOMAINS])
        s.commit()


def _blueprint(s):
    from sqlalchemy import select

    from itembank.models import Blueprint

    return s.scalar(select(Blueprint).where(Blueprint.code == "BENCH-BP"))


def time_assembly(db: Database) -> dict[str, float]:
    target = AssemblyTarget(cut_theta=0.0)
    times, solve_times, info = [], [], 0.0
    with db.session(write=False) as s:
        bp = _blueprint(s)
        for _ in range(10):
            t0 = time.perf_counter()
            bank, found = assemble(s, bp, target)
            times.append(time.perf_counter() - t0)
            solve_times.append(found.seconds)
            info = found.information[0]
        bank_size = bank.size
    loft = AssemblyTarget(cut_theta=0.0, randomness=0.2)
    loft_times = []
    with db.session() as s:
        bp = _blueprint(s)
        for k in range(10):
            t0 = time.perf_counter()
            assemble_loft_form(s, loft_key="BENCH-LOFT", blueprint=bp, target=loft, seed=k)
            loft_times.append(time.perf_counter() - t0)
        s.commit()
    return {"bank_items": bank_size, "form_items": 40,
            "assemble_s_median": statistics.median(times),
            "solve_only_s_median": statistics.median(solve_times),
            "information_at_cut": round(info, 3),
            "loft_form_at_start_s_median": statistics.median(loft_times)}


def time_pool(db: Database, size: int = 200, threads: int = 8) -> dict[str, float]:
    loft = AssemblyTarget(cut_theta=0.0, randomness=0.2)
    with db.session() as s:
        t0 = time.perf_counter()
        fill_pool(s, pool="BENCH-POOL", blueprint=_blueprint(s), target=loft, size=size, seed=7)
        s.commit()
        fill = time.perf_counter() - t0
    claimed: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with db.session() as s:
                form_id = claim_form(s, "BENCH-POOL")
                s.commit()
            if form_id is None:
                return
            with lock:
                claimed.append(form_id)

    t0 = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - t0
    return {"pool_size": size, "pool_fill_s_per_form": fill / size,
            "claim_threads": threads, "claims_per_s": len(claimed) / elapsed,
            "claimed": len(claimed), "claimed_twice": len(claimed) - len(set(claimed))}


def run(url: str, label: str) -> dict[str, float]:
    upgrade(url)
    db = Database(url)
    try:
        t0 = time.perf_counter()
        build_bank(db)
        print(f"[{label}] bank of {BANK_SIZE} items built in {time.perf_counter() - t0:.1f} s")
        figures = time_assembly(db)
        print(f"[{label}] assemble a 40-item form from {figures['bank_items']} items: "
              f"{figures['assemble_s_median'] * 1000:.0f} ms median (solver "
              f"{figures['solve_only_s_median'] * 1000:.0f} ms; goal < 1000 ms), information "
              f"at the cut {figures['information_at_cut']}")
        print(f"[{label}] LOFT form at start (unique, stored): "
              f"{figures['loft_form_at_start_s_median'] * 1000:.0f} ms median")
        pool = time_pool(db)
        print(f"[{label}] pool of {pool['pool_size']}: {pool['pool_fill_s_per_form'] * 1000:.0f} "
              f"ms per form to fill; {pool['claim_threads']} threads claim "
              f"{pool['claims_per_s']:.0f} forms/s, {pool['claimed_twice']} claimed twice")
        return {**figures, **pool}
    finally:
        db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres", help="a PostgreSQL server URL to run on too")
    args = parser.parse_args()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        out["sqlite"] = run(f"sqlite:///{tmp}/bench.db", "sqlite")
    if args.postgres:
        name = f"microcred_bench_{int(time.time())}"
        admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = args.postgres.rsplit("/", 1)[0] + f"/{name}"
        try:
            out["postgresql"] = run(url, "postgresql")
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
