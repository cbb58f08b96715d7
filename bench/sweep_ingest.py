"""Benchmark: the sweeper at thousands of attempts in progress, and integrity-event ingestion
over a long exam (issue 15, goals 10 and 11). Prints its figures; not a test.

1. A throwaway SQLite file (default) or, with ``--database-url postgresql+psycopg://...``, a
   fresh database ``microcred_bench_<random>`` on that server (dropped at the end), migrated.
2. The sweeper: ``--attempts`` candidates in progress on a 10-minute exam (rows inserted in bulk
   from one real attempt: same form and order), ``--due`` of them past their deadline. Times
   ``assessment.delivery.service.sweep`` and counts its statements (``microcred.querycount``):
   first with none due (the cost every 30 s of a quiet exam), then with ``--due`` due.
3. Ingestion: one proctored session in progress; ``--batches`` batches of 3 integrity events
   through ``proctoring.events.ingest_events`` (a flag-raising batch every other one), timing
   and counting the statements of the first 20 batches and of the last 20.

Runs against whatever checkout is on PYTHONPATH (the API it calls is old), so the same script
measures before and after a change.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _db(url: str | None, workdir: Path):
    from sqlalchemy import create_engine, text

    if not url:
        return f"sqlite:///{workdir / 'bench.db'}", None
    name = f"microcred_bench_{secrets.token_hex(4)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.rsplit("/", 1)[0] + f"/{name}", (url, name)


def _drop(pg) -> None:
    from sqlalchemy import create_engine, text

    if pg:
        admin = create_engine(pg[0], isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{pg[1]}" WITH (FORCE)'))
        admin.dispose()


def _counted(database, call):
    from microcred.querycount import count_queries

    with count_queries(database.engine, database.write_engine) as sent:
        t = time.perf_counter()
        out = call()
        took = time.perf_counter() - t
    return out, took, len(sent)


def bench_sweep(database, n: int, due: int) -> dict:
    from sqlalchemy import insert, select, update

    from assessment.delivery import service
    from assessment.delivery.models import Attempt
    from assessment.users import User, create_user
    from microcred.db import utcnow
    from tests.conftest import build_exam

    with database.session() as s:
        exam = build_exam(s, code="SWB")
        first = create_user(s, email="swb0@bench.test", password="correct horse battery staple",
                            role="candidate", display_name="B")
        model = service.start_attempt(s, first, exam, grace_seconds=2)
        s.commit()
        s.execute(insert(User), [{"email": f"swb{i}@bench.test", "display_name": "B",
                                  "role": "candidate", "password_hash": first.password_hash}
                                 for i in range(1, n)])
        users = s.scalars(select(User.id).where(User.email.like("swb%"), User.id != first.id)).all()
        now = utcnow()
        s.execute(insert(Attempt), [{
            "candidate_id": u, "exam_id": exam.id, "form_id": model.form_id, "status": "in_progress",
            "seed": 1, "item_order": model.item_order, "option_orders": model.option_orders,
            "started_at": now, "time_limit_seconds": 600, "time_multiplier": 1.0,
            "agreement_accepted_at": now, "position": 0, "last_seq": 0} for u in users])
        s.commit()
    with database.session() as s:
        _, quiet_s, quiet_q = _counted(database, lambda: service.sweep(s, grace_seconds=2))
    with database.session() as s:
        ids = s.scalars(select(Attempt.id).where(Attempt.status == "in_progress")
                        .order_by(Attempt.id).limit(due)).all()
        s.execute(update(Attempt).where(Attempt.id.in_(ids))
                  .values(started_at=utcnow() - dt.timedelta(seconds=700)))
        s.commit()
    with database.session() as s:
        done, due_s, due_q = _counted(database, lambda: service.sweep(s, grace_seconds=2))
    return {"attempts_in_progress": n, "quiet_sweep_ms": round(1000 * quiet_s, 1),
            "quiet_sweep_statements": quiet_q, "due": due, "finalized": len(done),
            "due_sweep_s": round(due_s, 2), "due_sweep_statements": due_q,
            "ms_per_finalized": round(1000 * due_s / max(1, len(done)), 1)}


def _proctored_start(s, code: str, email: str, policy: dict):
    """A proctored exam ``code`` with ``policy`` and one candidate who started it (no identity
    check): (the candidate, their proctoring session), committed."""
    from sqlalchemy import select

    from assessment.delivery import service
    from assessment.users import create_user
    from proctoring.models import ProctorSession
    from proctoring.wiring import identity_gate
    from tests.conftest import build_exam

    exam = build_exam(s, code=code, policy=policy)
    user = create_user(s, email=email, password="correct horse battery staple",
                       role="candidate", display_name=code)
    identity_gate(s, user, exam, url_for=lambda *a, **k: "/x")
    attempt = service.start_attempt(s, user, exam, grace_seconds=2)
    s.commit()
    return user, s.scalar(select(ProctorSession).where(ProctorSession.attempt_id == attempt.id))


def bench_rules_sweep(database, n: int) -> dict:
    """The sweeper's time-dependent proctoring rules over ``n`` running sessions with none due
    (the cost every 30 s of a quiet proctored exam): ``events.sweep_rules`` (a look in a
    read-only session, a write transaction only where a flag is due) against what it did before
    (a write transaction per session, each judged under its lock), timed, with their statements
    and commits. The sessions are rows copied from one real started session."""
    from sqlalchemy import event, insert, select

    from assessment.users import User
    from proctoring import events
    from proctoring.models import ProctorSession, Transition
    from proctoring.sessions import get_session

    pol = {"proctoring": {"identity": "none", "snapshot_interval_s": 60, "fullscreen": False}}
    with database.session() as s:
        first, model = _proctored_start(s, "RSW", "rsw0@bench.test", pol)
        s.execute(insert(User), [{"email": f"rsw{i}@bench.test", "display_name": "R",
                                  "role": "candidate", "password_hash": first.password_hash}
                                 for i in range(1, n)])
        users = s.scalars(select(User.id).where(User.email.like("rsw%"), User.id != first.id)).all()
        s.execute(insert(ProctorSession), [{
            "candidate_id": u, "exam_id": model.exam_id, "state": model.state,
            "policy": model.policy, "rule_state": model.rule_state,
            "created_at": model.created_at, "state_changed_at": model.state_changed_at}
            for u in users])
        ids = s.scalars(select(ProctorSession.id).where(ProctorSession.id != model.id)).all()
        s.execute(insert(Transition), [{"session_id": i, "from_state": "admitted",
                                        "to_state": model.state, "at": model.state_changed_at}
                                       for i in ids])
        s.commit()
        now = model.state_changed_at + dt.timedelta(seconds=30)  # the cameras' limit: 180 s
    out = {"running_sessions": n}
    commits: list[int] = []

    def counted_commit(session):
        commits.append(1)

    with database.session() as s, database.session(write=False) as read:
        event.listen(s, "after_commit", counted_commit)
        raised, took, sent = _counted(database, lambda: events.sweep_rules(s, read=read, now=now))
        out.update(rules_sweep_ms=round(1000 * took, 1), rules_sweep_statements=sent,
                   rules_sweep_write_transactions=len(commits), rules_sweep_flags=len(raised))
    commits.clear()

    def before():  # the sweep as it was: every running session locked and judged in turn
        for sid in events.running_session_ids(s):
            events.due_rules(s, get_session(s, sid, lock=True), now=now)
            s.commit()

    with database.session() as s:
        event.listen(s, "after_commit", counted_commit)
        _, took, sent = _counted(database, before)
        out.update(per_session_sweep_ms=round(1000 * took, 1), per_session_statements=sent,
                   per_session_write_transactions=len(commits))
    return out


def bench_ingest(database, batches: int) -> dict:

    from proctoring import events
    from proctoring.models import ProctorSession

    pol = {"proctoring": {"identity": "none", "snapshot_interval_s": 30, "fullscreen": True,
                          "max_focus_losses": 1000}}
    with database.session() as s:
        sid = _proctored_start(s, "ING", "ing@bench.test", pol)[1].id
    t0 = dt.datetime.now(dt.UTC)
    times, counts = [], []
    with database.session() as s:
        for b in range(batches):
            seq = 1 + 3 * b
            kinds = (("paste", "window_blur", "window_focus") if b % 2
                     else ("tab_hidden", "tab_visible", "right_click"))
            batch = [events.EventIn(seq + i, k, t0 + dt.timedelta(seconds=seq + i), {})
                     for i, k in enumerate(kinds)]

            def one(batch=batch):
                ps = s.get(ProctorSession, sid, with_for_update=True)
                events.ingest_events(s, ps, batch)
                s.commit()
            _, took, q = _counted(database, one)
            times.append(took)
            counts.append(q)
    return {"batches": batches, "events": 3 * batches,
            "first20_ms_mean": round(1000 * statistics.mean(times[:20]), 2),
            "last20_ms_mean": round(1000 * statistics.mean(times[-20:]), 2),
            "first20_statements_mean": round(statistics.mean(counts[:20]), 1),
            "last20_statements_mean": round(statistics.mean(counts[-20:]), 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--attempts", type=int, default=5000)
    ap.add_argument("--due", type=int, default=200)
    ap.add_argument("--batches", type=int, default=400)
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="microcred-sweep-bench-"))
    os.environ["MICROCRED_INSTANCE_DIR"] = str(workdir / "instance")
    url, pg = _db(args.database_url, workdir)
    try:
        from assessment.database import Database
        from assessment.migrate import upgrade
        from assessment.models import load_all
        from microcred.packages import connect_receivers

        upgrade(url)
        load_all()
        connect_receivers()
        database = Database(url)
        sweep = bench_sweep(database, args.attempts, args.due)
        print(f"sweeper, {sweep['attempts_in_progress']} in progress: quiet sweep "
              f"{sweep['quiet_sweep_ms']} ms, {sweep['quiet_sweep_statements']} statements; "
              f"{sweep['due']} due: {sweep['due_sweep_s']} s ({sweep['ms_per_finalized']} ms "
              f"each), {sweep['due_sweep_statements']} statements", flush=True)
        rules = bench_rules_sweep(database, args.attempts)
        print(f"proctoring rules, {rules['running_sessions']} running sessions, none due: the "
              f"sweep {rules['rules_sweep_ms']} ms, {rules['rules_sweep_statements']} "
              f"statements, {rules['rules_sweep_write_transactions']} write transactions; a "
              f"transaction per session (before) {rules['per_session_sweep_ms']} ms, "
              f"{rules['per_session_statements']} statements, "
              f"{rules['per_session_write_transactions']} write transactions", flush=True)
        ingest = bench_ingest(database, args.batches)
        print(f"ingestion, {ingest['events']} events in {ingest['batches']} batches: first 20 "
              f"batches {ingest['first20_ms_mean']} ms / {ingest['first20_statements_mean']} "
              f"statements each, last 20 {ingest['last20_ms_mean']} ms / "
              f"{ingest['last20_statements_mean']} statements each", flush=True)
        database.dispose()
        print(json.dumps({"database": "postgresql" if pg else "sqlite", **sweep, **rules, **ingest,
                          "loadavg_1m": round(os.getloadavg()[0], 2)}))
    finally:
        _drop(pg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
