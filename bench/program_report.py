"""Program report benchmark: N finalized attempts over two exams and 12 months, with a candidate
attribute, stored in a fresh SQLite database (or ``--database-url``), then the report built
with and without a group breakdown; prints the seconds of each.

Rows are written with bulk inserts (the report is measured, not the delivery services), and the
number of SQL statements the report sends is counted: it does not grow with the attempts.

    python bench/program_report.py                     # 10,000 attempts
    python bench/program_report.py --attempts 2000 --database-url postgresql+psycopg://...
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sqlalchemy import insert, select, text

from assessment.candidate_attributes import CandidateAttribute
from assessment.database import Database
from assessment.delivery.models import Attempt, Result, ResultRelease
from assessment.exams import Exam
from assessment.migrate import upgrade
from assessment.psych.program_report import ProgramScope, build_program_report
from assessment.users import User
from microcred.querycount import count_queries


def _exam(session, code: str) -> Exam:
    from tests.conftest import build_exam

    return build_exam(session, code=code)


def populate(session, n: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    exams = [_exam(session, "BENCH-A"), _exam(session, "BENCH-B")]
    session.execute(insert(User), [
        {"email": f"bench{i}@example.org", "display_name": f"Bench {i}", "role": "candidate",
         "password_hash": "!", "active": False} for i in range(n)])
    ids = list(session.scalars(select(User.id).where(User.email.like("bench%")).order_by(User.id)))
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    attempts = []
    for i, uid in enumerate(ids):
        exam = exams[i % 2]
        begun = start + dt.timedelta(days=rng.uniform(0, 360))
        attempts.append({
            "candidate_id": uid, "exam_id": exam.id, "form_id": exam.forms[0].form.id,
            "status": "finalized", "seed": i, "item_order": [], "option_orders": {},
            "started_at": begun, "time_limit_seconds": 3600, "agreement_accepted_at": begun,
            "finalized_at": begun + dt.timedelta(minutes=rng.uniform(10, 55)),
            "finalize_reason": "terminated" if rng.random() < 0.01 else "submitted"})
    session.execute(insert(Attempt), attempts)
    attempt_ids = list(session.scalars(select(Attempt.id).order_by(Attempt.id)))
    results = []
    for aid in attempt_ids:
        pct = max(0.0, min(100.0, rng.gauss(65, 15)))
        results.append({"attempt_id": aid, "raw_score": pct / 10, "max_score": 10.0,
                        "percent": pct, "pass_percent": 60.0, "passed": pct >= 60,
                        "answered": 10, "n_items": 10, "domain_scores": []})
    session.execute(insert(Result), results)
    result_ids = list(session.scalars(select(Result.id).order_by(Result.id)))
    session.execute(insert(ResultRelease), [
        {"result_id": r, "status": "invalidated" if rng.random() < 0.02 else "released",
         "reason": ""} for r in result_ids])
    session.execute(insert(CandidateAttribute), [
        {"candidate_id": uid, "name": "region", "source": "import",
         "value": rng.choice(["north", "south", "east", "west", "islands"])} for uid in ids])
    session.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--attempts", type=int, default=10_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        upgrade(url)
        db = Database(url)
        session = db.session()
        t0 = time.perf_counter()
        populate(session, args.attempts)
        if session.get_bind().dialect.name == "postgresql":
            # a live database has planner statistics (autovacuum); rows bulk-inserted a moment
            # ago have none, and PostgreSQL then plans the standing-result lookup as a scan
            session.execute(text("ANALYZE"))
            session.commit()
        print(f"stored {args.attempts} attempts in {time.perf_counter() - t0:.1f} s ({url.split(':')[0]})")
        for label, scope, charts in (
            ("all exams, no charts", ProgramScope(), False),
            ("all exams, with charts", ProgramScope(), True),
            ("by region, with charts", ProgramScope(group_attribute="region"), True),
        ):
            session.rollback()
            with count_queries(db.engine, db.write_engine) as sent:
                t0 = time.perf_counter()
                report = build_program_report(session, scope, with_charts=charts)
                took = time.perf_counter() - t0
            rows = sum(len(t.rows) for t in report.tables.values())
            print(f"{label}: {took:.2f} s, {len(sent)} SQL statements, {rows} table rows")
        session.close()
        db.dispose()


if __name__ == "__main__":
    main()
