"""Benchmark: the pathway evaluator at program scale.

A program of 12 component achievements, three stacks ("A and B, plus 2 of C-F", "3 of G-L",
"all of A, G") and a cluster of the three, 2,000 holders each holding a random third of the
components (seeded), 5% of those credentials revoked and 10% expired, in a fresh migrated
SQLite database (PostgreSQL too with ``--postgres URL``). One credential is really issued
(signed); the others are copies of its row for other holders and achievements (the evaluator
reads rows and status events, never the signed document). Prints:

* the program view's evaluation: load the catalog, every holder's holdings (one query set),
  evaluate every holder on every pathway: seconds in all, and per holder-pathway;
* one holder's pathway page (``holder_pathways``): median of 50 (goal < 50 ms);
* the exam gate of an exam without prerequisites (``eligible_for_exam``, checked at every
  exam start: one indexed query): median of 200.

Usage: ``.venv/bin/python bench/pathways.py [--postgres postgresql+psycopg://...]``. The last
line printed is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select

from assessment.database import Database
from assessment.migrate import upgrade
from assessment.users import User
from credentials import issuance, pathway_rules, pathways
from credentials.config import CredentialConfig
from credentials.models import Credential, StatusEvent
from microcred.records import records

HOLDERS = 2000
CODES = list("ABCDEFGHIJKL")


def build(db: Database, cfg: CredentialConfig) -> int:
    rng = random.Random(16)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with db.session() as s:
        ach = {c: issuance.create_achievement(s, cfg, code=c, name=f"Badge {c}",
                                              description=c) for c in CODES}
        stacks = {}
        for code, req, elec in (("S1", "A, B", "2 of C, D, E, F"), ("S2", "", "3 of G, H, I, J, K, L"),
                                ("S3", "A, G", "")):
            stacks[code] = issuance.create_achievement(s, cfg, code=code, name=f"Stack {code}",
                                                       description=code)
            pathway_rules.save(s, pathway_rules.parse(req, elec), achievement=stacks[code])
        cl = issuance.create_achievement(s, cfg, code="CL", name="Cluster", description="cl")
        pathway_rules.save(s, pathway_rules.parse("S1, S2, S3", ""), achievement=cl)
        s.execute(insert(User), [{"email": f"h{i}@bench.test", "display_name": f"Holder {i}",
                                  "role": "candidate", "password_hash": "x", "active": True,
                                  "created_at": now, "session_epoch": 0}
                                 for i in range(HOLDERS)])
        ids = list(s.scalars(select(User.id).order_by(User.id)))
        first = issuance.issue(s, cfg, achievement=ach["A"],
                               holder=records().person(s, ids[0]), kind="exam", evidence=[])
        rows, index = [], first.status_index + 1
        for h in ids:
            for c in rng.sample(CODES, len(CODES) // 3):
                expired = rng.random() < 0.10
                rows.append({
                    "public_id": f"bench-{index}", "achievement_id": ach[c].id,
                    "issuer_key_id": first.issuer_key_id, "holder_id": h, "kind": "exam",
                    "status_list_id": first.status_list_id, "status_index": index,
                    "valid_from": now - dt.timedelta(days=400 if expired else 10),
                    "valid_until": now - dt.timedelta(days=35) if expired else None,
                    "document": first.document, "issued_at": now})
                index += 1
        s.execute(insert(Credential), rows)
        cred_ids = list(s.scalars(select(Credential.id).where(
            Credential.public_id.like("bench-%"))))
        s.execute(insert(StatusEvent), [
            {"credential_id": c, "status_list_id": first.status_list_id, "action": "revoke",
             "reason": "bench", "at": now} for c in rng.sample(cred_ids, len(cred_ids) // 20)])
        s.commit()
        return len(rows) + 1


def time_program(db: Database) -> dict[str, float]:
    with db.session() as s:
        t0 = time.perf_counter()
        catalog = pathways.Catalog.load(s)
        ids = pathways.holders(s)
        held = pathways.holdings_of(s, ids)
        t_load = time.perf_counter() - t0
        n = complete = 0
        for a in catalog.pathways():
            for h in ids:
                p = pathways.evaluate(s, h, a, catalog=catalog, held=held[h])
                n += 1
                complete += p.complete
        total = time.perf_counter() - t0
        one = []
        for h in ids[:50]:
            t = time.perf_counter()
            pathways.holder_pathways(s, h)
            one.append(time.perf_counter() - t)
    return {"holders": len(ids), "holder_pathways": n, "complete": complete,
            "program_load_s": t_load, "program_total_s": total,
            "per_holder_pathway_ms": total / n * 1000,
            "holder_page_ms_median": statistics.median(one) * 1000}


def time_gate(db: Database) -> float:
    """The exam gate of an exam without prerequisites (the common case)."""
    with db.session() as s:
        ids = pathways.holders(s)[:200]
        out = []
        for h in ids:
            t = time.perf_counter()
            pathways.eligible_for_exam(s, h, 1)
            out.append(time.perf_counter() - t)
    return statistics.median(out) * 1000


def run(url: str, label: str, instance: Path) -> dict[str, float]:
    upgrade(url)
    db = Database(url)
    cfg = CredentialConfig(base_url="https://bench.test", instance_dir=instance)
    try:
        t0 = time.perf_counter()
        count = build(db, cfg)
        print(f"[{label}] {HOLDERS} holders, {count} credentials built in "
              f"{time.perf_counter() - t0:.1f} s")
        figures = time_program(db)
        figures["exam_gate_ms_median"] = time_gate(db)
        print(f"[{label}] program view: {figures['holder_pathways']} holder-pathways evaluated "
              f"in {figures['program_total_s']:.2f} s ({figures['per_holder_pathway_ms']:.3f} ms "
              f"each; loading {figures['program_load_s']:.2f} s); {figures['complete']} complete")
        print(f"[{label}] one holder's pathway page: {figures['holder_page_ms_median']:.1f} ms "
              f"median (goal < 50 ms); exam gate: {figures['exam_gate_ms_median']:.2f} ms median")
        return figures
    finally:
        db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="also run on this PostgreSQL database URL (emptied)")
    args = parser.parse_args()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        out["sqlite"] = run(f"sqlite:///{tmp}/bench.db", "sqlite", Path(tmp))
        if args.postgres:
            out["postgresql"] = run(args.postgres, "postgresql", Path(tmp))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
