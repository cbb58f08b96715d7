"""Benchmark: the proctor console with N live sessions on screen.

What it does, end to end:

1. Makes a throwaway database: a temporary SQLite file (default), or, with ``--database-url
   postgresql+psycopg://...``, a fresh database ``microcred_bench_<random>`` on that URL's
   server, dropped at the end. Migrates it with ``assessment.migrate.upgrade``.
2. Builds, through the real services, one proctored exam (20 items, identity checked by a
   proctor, full screen, a snapshot every 60 s), a proctor assigned to it and ``--sessions``
   candidates, each with a live session in progress: identity photos submitted
   (``proctoring.identity.submit``, face-counted) and admitted by the proctor, the attempt
   started (``assessment.delivery.service.start_attempt``), some answers saved, 50-200
   integrity events in batches (``proctoring.events.ingest_events``: focus losses, right
   clicks, the odd copy, paste, offline spell or full-screen exit; the rules raise their
   flags as they would live) and 3-8 camera snapshots (``record_snapshot``: small JPEGs,
   encrypted and face-counted; a few with no face or two faces), then a ping. On PostgreSQL
   it then runs ANALYZE, as autovacuum soon would on a live server.
3. The console API, ``GET /api/proctoring/console``, through the Flask test client signed in
   as the proctor: ``--polls`` polls, latency p50/p95/max, response size, and the SQL
   statements each poll runs (``microcred.querycount``, as the query-budget tests count them).
   The count must not depend on N: run with ``--sessions 50`` and ``--sessions 200`` and
   compare. The time spent in ``proctoring.wiring.live_sessions`` alone is reported too.
4. In Chromium (Playwright, ``/usr/bin/chromium``) against the same app on a threaded
   werkzeug server in this process: sign in as the proctor, open ``/proctor`` and time the
   first full render (every row's cells filled, from navigation start), the snapshot
   thumbnails in the viewport, then ``--updates`` times change one session on the server
   (pause / resume through ``proctoring.actions``) and time until its row shows the new state
   (expected: up to one poll interval, 3 s, plus a request), and how long the page took to
   apply that poll (from the response's last byte to the row's change: JSON parse and the
   update of all N rows). Long tasks (> 50 ms, PerformanceObserver), the JS heap, the DOM
   node count and the main thread's busy time per poll (CDP ``Performance.getMetrics``).
5. The worst poll: every camera silent at once. Every session's copy of the policy is set to
   a 5 s snapshot interval and a one-interval limit; one poll shows every session's due
   ``snapshot_missing`` flag and writes nothing (its time and statements), the sweep stores
   them (its time), and the poll after shows them stored.

Usage::

    .venv/bin/python bench/console_load.py [--sessions 200] [--polls 50] [--updates 5]
        [--no-browser] [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]

It is a benchmark, not a test: it prints its figures, whatever they are (goals: a poll under
200 ms at 200 sessions, a number of queries per poll that does not grow with N, no long task
while polling, a server change visible within 5 s).
The last line printed is one JSON object with every figure (with the machine's 1-minute load
average before and after the measurements: other work on the machine shows in the maxima).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PASSWORD = "bench proctor password 2026"
EXAM_CODE = "PROC-BENCH"
ITEMS = 20
#: the camera-silence limit is 20 min here, so the steady polls never find a silent camera
#: (building 200 sessions takes a minute or two); :func:`measure_silence_poll` lowers it later
POLICY = {"identity": "proctor", "review": "flagged", "fullscreen": True,
          "snapshot_interval_s": 60, "missing_snapshot_intervals": 20}
CHROMIUM = os.environ.get("MICROCRED_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic", "--enable-precise-memory-info"]
FACE_JPEG = ROOT / "tests" / "proctoring" / "data" / "astronaut.jpg"


# ---------------------------------------------------------------- the database


class BenchDatabase:
    """A temporary SQLite file, or a fresh PostgreSQL database on the server of ``admin_url``
    (created here, dropped by :meth:`drop`)."""

    def __init__(self, admin_url: str | None, workdir: Path) -> None:
        self.admin_url, self.created = admin_url, None
        if admin_url is None:
            self.kind, self.url = "sqlite", f"sqlite:///{workdir / 'microcred.db'}"
        elif admin_url.startswith("postgresql"):
            self.kind = "postgresql"
            self.created = f"microcred_bench_{uuid.uuid4().hex[:10]}"
            head, _, tail = admin_url.partition("?")
            self.url = re.sub(r"/[^/]*$", f"/{self.created}", head) + ("?" + tail if tail else "")
        else:
            raise SystemExit(f"unsupported --database-url {admin_url!r} (postgresql+psycopg://...)")

    def _admin(self, sql: str) -> None:
        from sqlalchemy import create_engine, text

        admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(sql))
        admin.dispose()

    def create(self) -> None:
        if self.created:
            self._admin(f'CREATE DATABASE "{self.created}"')

    def drop(self) -> None:
        if self.created:
            self._admin(f'DROP DATABASE IF EXISTS "{self.created}" WITH (FORCE)')


# ---------------------------------------------------------------- images


def jpegs() -> dict[str, bytes]:
    """320x240 camera-sized frames: one face, no face, two faces."""
    import cv2
    import numpy as np

    face = cv2.imdecode(np.frombuffer(FACE_JPEG.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    face = cv2.resize(face, (240, 240))
    frame = np.full((240, 320, 3), 180, np.uint8)
    frame[:, 40:280] = face
    two = np.hstack([cv2.resize(face, (160, 160))] * 2)
    two_frame = np.full((240, 320, 3), 180, np.uint8)
    two_frame[40:200, :] = two
    blank = np.full((240, 320, 3), 200, np.uint8)
    enc = {k: cv2.imencode(".jpg", v, [cv2.IMWRITE_JPEG_QUALITY, 70])[1].tobytes()
           for k, v in (("face", frame), ("none", blank), ("two", two_frame))}
    enc["id"] = cv2.imencode(".jpg", face)[1].tobytes()
    return enc


# ---------------------------------------------------------------- building the sessions


def build_exam(session: Any) -> Any:
    from assessment.exams import create_exam
    from itembank.authoring import create_blueprint, create_form, create_item, publish_version

    bp = create_blueprint(session, code=f"{EXAM_CODE}-BP", name="Console bench blueprint", domains=[
        {"code": "A", "name": "Domain A", "weight": 0.5, "items_on_form": ITEMS // 2},
        {"code": "B", "name": "Domain B", "weight": 0.5, "items_on_form": ITEMS - ITEMS // 2},
    ])
    versions = []
    for dom, count in (("A", ITEMS // 2), ("B", ITEMS - ITEMS // 2)):
        for i in range(count):
            v = create_item(
                session, code=f"{EXAM_CODE}-{dom}{i + 1}", item_type_name="single_choice",
                domain_code=dom, stem=f"Question {dom}{i + 1}: which option is right?",
                interaction={"options": [{"id": x, "text": f"Option {x}"} for x in "ABCD"]},
                key={"correct": ["B"]}, rationale="Because.")
            versions.append(publish_version(session, v))
    form = create_form(session, code=f"{EXAM_CODE}-F1", blueprint=bp, versions=versions)
    exam = create_exam(session, code=EXAM_CODE, title="Console bench exam", blueprint=bp,
                       forms=[form], time_limit_seconds=3 * 3600, pass_percent=60,
                       instructions=["Answer every question."], agreement="I will work alone.",
                       policy={"proctoring": POLICY}, shuffle_items=True, shuffle_options=True)
    session.commit()
    return exam


def event_script(rng: random.Random) -> list[str]:
    """50-200 integrity events, roughly as a candidate's page sends them."""
    target = rng.randint(50, 200)
    kinds: list[str] = ["camera_available"]
    while len(kinds) < target:
        r = rng.random()
        if r < 0.55:
            kinds += ["window_blur", "tab_hidden", "tab_visible", "window_focus"]
        elif r < 0.75:
            kinds += ["window_blur", "window_focus"]
        elif r < 0.88:
            kinds.append("right_click")
        elif r < 0.93:
            kinds += ["fullscreen_exit", "fullscreen_enter"]
        elif r < 0.97:
            kinds.append("copy")
        elif r < 0.99:
            kinds += ["offline", "online"]
        else:
            kinds.append("paste")
    return kinds[:target]


def populate(db: Any, n: int, seed: int) -> dict[str, Any]:
    """The exam, an admin, the proctor and ``n`` candidates in progress. Returns ids."""
    from sqlalchemy import func, select

    from assessment.delivery import service as delivery
    from assessment.delivery.service import SaveRequest
    from assessment.exams import Exam
    from assessment.users import User, create_user
    from proctoring import events, identity
    from proctoring.assignments import assign
    from proctoring.models import Flag, IntegrityEvent, Snapshot
    from proctoring.sessions import get_session, open_session
    from proctoring.wiring import identity_gate

    rng = random.Random(seed)
    images = jpegs()
    vault = db.vault
    t0 = time.perf_counter()
    with db.database.session() as s:
        admin = create_user(s, email="bench-admin@bench.microcred.test", password=PASSWORD,
                            role="admin", display_name="Bench Admin")
        proctor = create_user(s, email="bench-proctor@bench.microcred.test", password=PASSWORD,
                              role="proctor", display_name="Bench Proctor")
        exam = build_exam(s)
        assign(s, proctor, exam, admin)
        for i in range(n):  # candidates never sign in: they share the proctor's hash
            s.add(User(email=f"bench-candidate-{i:05d}@bench.microcred.test",
                       display_name=f"Candidate {i:05d} {rng.choice('ABCDEFGHJKLMNPRSTW')}.",
                       role="candidate", password_hash=proctor.password_hash))
        s.commit()
        ids = {"admin": admin.id, "proctor": proctor.id, "exam": exam.id}
        candidate_ids = list(s.scalars(select(User.id).where(User.role == "candidate")
                                       .order_by(User.id)))
    sessions = []
    for i, cid in enumerate(candidate_ids):
        with db.database.session() as s:
            cand, exam, proctor = s.get(User, cid), s.get(Exam, ids["exam"]), s.get(User, ids["proctor"])
            identity_gate(s, cand, exam, url_for=lambda *a, **k: "/identity")
            ps = open_session(s, cand.id, exam.id)
            identity.submit(s, ps, vault, selfie=images["face"], id_document=images["id"], by=cand)
            identity.decide(s, ps, admit=True, reason="", by=proctor)
            s.commit()
            attempt = delivery.start_attempt(s, cand, exam, grace_seconds=5)
            s.commit()
            answered = rng.randint(0, ITEMS)
            saves = [SaveRequest(k + 1, item, rng.choice("ABCD"), rng.random() < 0.1)
                     for k, item in enumerate(attempt.item_order[:answered])]
            for k in range(0, len(saves), 5):
                delivery.save_responses(s, attempt, saves[k:k + 5], position=min(k + 5, ITEMS - 1), grace_seconds=5)
                s.commit()
            sessions.append(ps.id)
            kinds = event_script(rng)
            seq = 0
            while seq < len(kinds):
                size = rng.randint(1, 20)
                batch = [events.EventIn(seq + j + 1, kind, None, {})
                         for j, kind in enumerate(kinds[seq:seq + size])]
                ps = get_session(s, ps.id, lock=True)
                events.ingest_events(s, ps, batch)
                s.commit()
                seq += len(batch)
            for k in range(rng.randint(3, 8)):
                r = rng.random()
                frame = images["none" if r < 0.04 else "two" if r < 0.06 else "face"]
                ps = get_session(s, ps.id, lock=True)
                events.record_snapshot(s, ps, vault, seq=k + 1, image=frame)
                s.commit()
            ps = get_session(s, ps.id, lock=True)
            events.ingest_events(s, ps, [])  # a ping
            s.commit()
        if (i + 1) % 50 == 0:
            print(f"  {i + 1}/{n} sessions built ({time.perf_counter() - t0:.0f} s)", flush=True)
    with db.database.session(write=False) as s:
        counts = {
            "events": s.scalar(select(func.count()).select_from(IntegrityEvent)),
            "snapshots": s.scalar(select(func.count()).select_from(Snapshot)),
            "flags": s.scalar(select(func.count()).select_from(Flag)),
        }
    if db.database.url.startswith("postgresql"):
        # autovacuum would analyze the new rows within a minute or so; do it now so the polls
        # run with the plans a live server would have, not those of an unanalyzed table
        with db.database.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
    ids.update(sessions=sessions, build_s=round(time.perf_counter() - t0, 1), **counts)
    return ids


# ---------------------------------------------------------------- measuring the API


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))]


def signin(client: Any, email: str) -> None:
    page = client.get("/signin").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    resp = client.post("/signin", data={"email": email, "password": PASSWORD, "csrf_token": token})
    if resp.status_code != 302:
        raise RuntimeError(f"sign-in failed: {resp.status_code}")


def measure_api(app: Any, n: int, polls: int) -> dict[str, Any]:
    from microcred.querycount import count_queries
    from proctoring.wiring import live_sessions

    database = app.extensions["microcred.database"]
    client = app.test_client()
    signin(client, "bench-proctor@bench.microcred.test")
    client.get("/api/proctoring/console")  # warm caches (templates, compiled statements)
    times, sizes, queries = [], [], []
    for _ in range(polls):
        with count_queries(database.engine, database.write_engine) as sent:
            t = time.perf_counter()
            resp = client.get("/api/proctoring/console")
            body = resp.get_data()
            times.append(time.perf_counter() - t)
        queries.append(len(sent))
        sizes.append(len(body))
        if resp.status_code != 200:
            raise RuntimeError(f"console API: {resp.status_code} {body[:200]!r}")
    rows = json.loads(body)["sessions"]
    if len(rows) != n:
        raise RuntimeError(f"the console shows {len(rows)} sessions, expected {n}")
    from sqlalchemy import select

    from assessment.users import User

    service = []
    with app.app_context(), database.session(write=False) as s:
        viewer = s.scalar(select(User).where(User.email == "bench-proctor@bench.microcred.test"))
        for _ in range(min(polls, 20)):
            t = time.perf_counter()
            live_sessions(s, viewer)
            service.append(time.perf_counter() - t)
            s.rollback()
    page_t = time.perf_counter()
    page = client.get("/proctor")
    page_s = time.perf_counter() - page_t
    return {
        "poll_ms_p50": round(1000 * statistics.median(times), 1),
        "poll_ms_p95": round(1000 * pct(times, 95), 1),
        "poll_ms_max": round(1000 * max(times), 1),
        "live_sessions_ms_p50": round(1000 * statistics.median(service), 1),
        "response_bytes": sizes[-1],
        "queries_per_poll": sorted(set(queries)),
        "console_page_ms": round(1000 * page_s, 1),
        "console_page_bytes": len(page.get_data()),
        "rows": len(rows),
        "rows_with_flags": sum(1 for r in rows if r["flags"]["count"]),
    }


def measure_silence_poll(app: Any, n: int) -> dict[str, Any]:
    """The worst poll: every camera went silent at once (say, the candidates' network broke).
    Sets every session's copy of the policy to a 5 s interval and a 1-interval limit (a bench
    shortcut: a live policy never changes), then polls once (it shows every flag due and writes
    nothing), sweeps (storing them), and polls again."""
    from sqlalchemy import func, select, update

    from microcred.querycount import count_queries
    from proctoring.events import sweep_rules
    from proctoring.flags import MISSING_SNAPSHOT_RULE
    from proctoring.models import Flag, ProctorSession

    database = app.extensions["microcred.database"]
    with database.session() as s:
        s.execute(update(ProctorSession).values(policy={
            **POLICY, "snapshot_interval_s": 5, "missing_snapshot_intervals": 1}))
        s.commit()
    time.sleep(6)  # longer than the new limit since the newest snapshot
    client = app.test_client()
    signin(client, "bench-proctor@bench.microcred.test")

    def flagged() -> int:
        with database.session(write=False) as s:
            return s.scalar(select(func.count()).select_from(Flag)
                            .where(Flag.rule == MISSING_SNAPSHOT_RULE))

    def poll() -> tuple[float, int, int]:
        with count_queries(database.engine, database.write_engine) as sent:
            t = time.perf_counter()
            resp = client.get("/api/proctoring/console")
            took = time.perf_counter() - t
        if resp.status_code != 200:
            raise RuntimeError(f"console API: {resp.status_code}")
        shown = sum(1 for r in resp.get_json()["sessions"] if (r.get("camera") or {}).get("flagged"))
        return took, len(sent), shown

    stored_before = flagged()
    silent = poll()
    if silent[2] != n or flagged() != stored_before:
        raise RuntimeError(f"the poll showed {silent[2]} of {n} due flags and stored "
                           f"{flagged() - stored_before}; expected {n} and none")
    t = time.perf_counter()
    with database.session() as s:
        sweep_rules(s)
    sweep_s = time.perf_counter() - t
    if flagged() != n:
        raise RuntimeError(f"{flagged()} silent-camera flags after the sweep, expected {n}")
    after = poll()
    return {"silence_poll_ms": round(1000 * silent[0], 1), "silence_poll_queries": silent[1],
            "silence_sweep_s": round(sweep_s, 2),
            "after_silence_poll_ms": round(1000 * after[0], 1),
            "after_silence_poll_queries": after[1]}


# ---------------------------------------------------------------- many proctors at once


def measure_fleet(app: Any, db: Any, n: int, proctors: int, seconds: float, deltas: bool,
                  changes_per_s: float, workers: int, seed: int) -> dict[str, Any]:
    """``proctors`` consoles each polling every 3 s (the page's interval) for ``seconds``, on
    ``workers`` threads (each a signed-in client; the bench proctor's, so every console shows
    the same ``n`` sessions: the server's work per poll is what 50 proctors of 200 sessions
    each would cost, without building 10,000 sessions). Polls are scheduled open-loop at their
    times; a poll's latency counts from its scheduled time, so queueing shows. Meanwhile a
    writer raises a flag on a random session ``changes_per_s`` times a second, so deltas carry
    changes. ``deltas``: each console keeps its cursor and ETag (the page's JS); otherwise
    every poll is a full one (before this change)."""
    import queue

    from sqlalchemy import select

    from microcred.querycount import count_queries
    from proctoring import events, hooks
    from proctoring.models import ProctorSession
    from proctoring.sessions import get_session

    interval = 3.0
    jobs: queue.Queue = queue.Queue()
    t0 = time.perf_counter() + 3.0
    plan = sorted((t0 + p * interval / proctors + k * interval, p)
                  for p in range(proctors) for k in range(int(seconds / interval)))
    for job in plan:
        jobs.put(job)
    state: dict[int, tuple[str | None, str | None]] = {p: (None, None) for p in range(proctors)}
    lock = threading.Lock()
    lat: list[float] = []
    steady_lat: list[float] = []  # polls with a cursor (deltas) or after a first one (full)
    sizes: list[int] = []
    codes: dict[int, int] = {}
    changed_rows: list[int] = []
    built_rows: list[int] = []
    first_full: list[int] = []

    signed = app.test_client()  # one sign-in (the sign-in throttle), its cookies copied
    signin(signed, "bench-proctor@bench.microcred.test")
    cookies = [(c.key, c.value, c.domain) for c in signed._cookies.values()]

    def worker() -> None:
        client = app.test_client()
        for key, value, domain in cookies:
            client.set_cookie(key, value, domain=domain)
        while True:
            try:
                at, p = jobs.get_nowait()
            except queue.Empty:
                return
            wait = at - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            with lock:
                cursor, etag = state[p]
            headers = {"If-None-Match": etag} if (deltas and etag) else {}
            qs = {"cursor": cursor} if (deltas and cursor) else {}
            resp = client.get("/api/proctoring/console", query_string=qs, headers=headers)
            body = resp.get_data()
            done = time.perf_counter()
            with lock:
                lat.append(done - at)
                if cursor is not None or not deltas:
                    steady_lat.append(done - at)
                sizes.append(len(body))
                codes[resp.status_code] = codes.get(resp.status_code, 0) + 1
                if resp.status_code == 200:
                    data = json.loads(body)
                    state[p] = (data["cursor"], data["etag"])
                    if deltas and cursor is None:
                        first_full.append(len(body))  # the page's first load: not a steady poll
                    else:
                        changed_rows.append(len(data["sessions"] if data["full"] else data["changed"]))
                        built_rows.append(data.get("rebuilt", len(data.get("sessions") or [])))
                elif resp.status_code == 304:
                    changed_rows.append(0)
                    built_rows.append(0)

    stop = threading.Event()
    writes = [0]

    def writer() -> None:
        rng = random.Random(seed)
        with db.database.session() as s:
            sids = list(s.scalars(select(ProctorSession.id)))
        while not stop.wait(1 / changes_per_s if changes_per_s > 0 else 3600):
            with db.database.session() as s:
                ps = get_session(s, rng.choice(sids))
                writes[0] += 1
                events.raise_flags(s, ps, [hooks.FlagSpec("paste", f"bench-{writes[0]}", "low",
                                                          "pasted text (bench)")])
                s.commit()

    database = app.extensions["microcred.database"]
    threads = [threading.Thread(target=worker) for _ in range(workers)]
    w = threading.Thread(target=writer, daemon=True)
    w.start()
    cpu0 = time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu_s = time.process_time() - cpu0  # this process: server, test clients and the writer
    stop.set()
    w.join(5)
    # one console's poll alone, its statements counted: a delta with nothing changed (or a
    # full poll without deltas)
    client = signed
    first = client.get("/api/proctoring/console").json
    qs = {"cursor": first["cursor"]} if deltas else {}
    with count_queries(database.engine, database.write_engine) as sent:
        client.get("/api/proctoring/console", query_string=qs)
    return {"mode": "deltas" if deltas else "full", "proctors": proctors, "sessions": n,
            "polls": len(lat), "polls_per_s": round(len(lat) / seconds, 1),
            "p50_ms": round(1000 * statistics.median(lat), 1),
            "p99_ms": round(1000 * pct(lat, 99), 1), "max_ms": round(1000 * max(lat), 1),
            # without each console's first load (deltas: the full view every page starts with)
            "steady_p50_ms": round(1000 * statistics.median(steady_lat), 1) if steady_lat else None,
            "steady_p99_ms": round(1000 * pct(steady_lat, 99), 1) if steady_lat else None,
            # steady polls: a console's first load (deltas) is reported apart
            "bytes_per_poll_mean": round((sum(sizes) - sum(first_full))
                                         / max(1, len(sizes) - len(first_full))),
            "rows_per_poll_mean": round(statistics.mean(changed_rows), 1) if changed_rows else 0,
            # rows the server built per steady poll (deltas: only sessions whose marks moved)
            "rows_built_per_poll_mean": (round(statistics.mean(built_rows), 1)
                                         if built_rows else 0),
            "first_load_bytes": first_full[0] if first_full else None,
            "statuses": codes, "flags_written": writes[0],
            # CPU of the whole bench process per poll (server, in-process clients, writer): less
            # bent by other load on the machine than the latencies
            "cpu_ms_per_poll": round(1000 * cpu_s / max(1, len(lat)), 1),
            "statements_per_poll": len(sent)}


# ---------------------------------------------------------------- measuring the page


class LiveServer:
    def __init__(self, app: Any) -> None:
        import socket

        from werkzeug.serving import make_server

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
        self.server = make_server("127.0.0.1", self.port, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(5)


OBSERVERS = """
window.__bench = {longtasks: [], changes: []};
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__bench.longtasks.push({start: e.startTime, ms: e.duration});
}).observe({type: "longtask", buffered: true});
"""

ROWS_FILLED = """(n) => {
  const cells = document.querySelectorAll('#console-rows tr td[data-col="state"]');
  return cells.length >= n && [...cells].every((td) => td.textContent.length > 0);
}"""

WATCH_ROW = """(id) => {
  const td = document.querySelector(`#console-rows tr[data-id="${id}"] td[data-col="state"]`);
  window.__bench.watched = null;
  new MutationObserver(() => { window.__bench.watched = {at: performance.now(), text: td.textContent}; })
    .observe(td, {childList: true, characterData: true, subtree: true});
}"""

LAST_POLL_END = """(changedAt) => {
  const polls = performance.getEntriesByType("resource")
    .filter((e) => e.name.includes("/api/proctoring/console") && e.responseEnd <= changedAt);
  return polls.length ? polls[polls.length - 1].responseEnd : null;
}"""


def measure_browser(app: Any, db: Any, ids: dict[str, Any], n: int, updates: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    from assessment.users import User
    from proctoring import actions
    from proctoring.sessions import get_session
    from proctoring.states import LABELS, State
    from proctoring.wiring import DeliveryControl

    if not Path(CHROMIUM).exists():
        return {"skipped": f"no Chromium at {CHROMIUM}"}
    server = LiveServer(app)
    out: dict[str, Any] = {}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            context = browser.new_context(viewport={"width": 1600, "height": 1000})
            page = context.new_page()
            page.goto(f"{server.url}/signin")
            page.fill("input[name=email]", "bench-proctor@bench.microcred.test")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_load_state()
            page.add_init_script(OBSERVERS)
            cdp = context.new_cdp_session(page)
            cdp.send("Performance.enable")
            page.goto(f"{server.url}/proctor", wait_until="commit")
            page.wait_for_function(ROWS_FILLED, arg=n, timeout=60_000, polling="raf")
            rendered = page.evaluate("performance.now()")
            nav = page.evaluate("""() => { const e = performance.getEntriesByType('navigation')[0];
                return {responseEnd: e.responseEnd, dcl: e.domContentLoadedEventEnd, size: e.transferSize}; }""")
            page.wait_for_load_state("load")
            page.wait_for_function("""() => [...document.querySelectorAll('#console-rows img')]
                .filter((i) => i.getBoundingClientRect().top < innerHeight).every((i) => i.complete)""",
                                   timeout=30_000)
            images_done = page.evaluate("performance.now()")
            initial_lt = page.evaluate("window.__bench.longtasks.map((t) => Math.round(t.ms))")
            out.update(first_render_ms=round(rendered), long_tasks_loading_ms=initial_lt, html_response_end_ms=round(nav["responseEnd"]),
                       dom_content_loaded_ms=round(nav["dcl"]),
                       viewport_snapshots_loaded_ms=round(images_done))
            # one poll interval of quiet, then measure main-thread work per poll
            page.wait_for_timeout(3500)
            m0 = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
            lt0 = page.evaluate("window.__bench.longtasks.length")
            page.wait_for_timeout(15_500)  # ~5 polls
            m1 = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
            polls_seen = 5
            busy = sum(m1[k] - m0[k] for k in ("ScriptDuration", "LayoutDuration", "RecalcStyleDuration"))
            out.update(
                main_thread_ms_per_poll=round(1000 * busy / polls_seen, 1),
                task_ms_per_poll=round(1000 * (m1["TaskDuration"] - m0["TaskDuration"]) / polls_seen, 1),
                js_heap_mb=round(m1["JSHeapUsedSize"] / 2**20, 1),
                dom_nodes=int(m1["Nodes"]),
                long_tasks_while_polling=page.evaluate("window.__bench.longtasks.length") - lt0,
            )
            # changes on the server, seen in the row
            seen, applied = [], []
            target = ids["sessions"][len(ids["sessions"]) // 2]
            control = DeliveryControl()
            for k in range(updates):
                page.evaluate(WATCH_ROW, target)
                with db.database.session() as s:
                    ps = get_session(s, target, lock=True)
                    by = s.get(User, ids["proctor"])
                    if ps.state == State.PAUSED:
                        actions.resume(s, ps, control, by=by, reason="bench")
                    else:
                        actions.pause(s, ps, control, by=by, reason="bench")
                    want = LABELS[State(ps.state)]
                    s.commit()
                t = time.perf_counter()
                page.wait_for_function(
                    """([id, want]) => { const td = document.querySelector(
                         `#console-rows tr[data-id="${id}"] td[data-col="state"]`);
                       return td && td.textContent === want; }""",
                    arg=[target, want], timeout=15_000, polling=50)
                seen.append(time.perf_counter() - t)
                changed = page.evaluate("window.__bench.watched")
                end = page.evaluate(LAST_POLL_END, changed["at"]) if changed else None
                if end is not None:
                    applied.append(changed["at"] - end)
                page.wait_for_timeout(random.uniform(200, 1500))
            out.update(
                update_visible_ms_mean=round(1000 * statistics.mean(seen)),
                update_visible_ms_max=round(1000 * max(seen)),
                poll_apply_ms_mean=round(statistics.mean(applied), 1) if applied else None,
                poll_apply_ms_max=round(max(applied), 1) if applied else None,
                long_tasks_total=page.evaluate("window.__bench.longtasks.length"),
                long_task_ms_max=round(page.evaluate(
                    "Math.max(0, ...window.__bench.longtasks.map((t) => t.ms))")),
            )
            browser.close()
    finally:
        server.stop()
    return out


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--polls", type=int, default=50)
    ap.add_argument("--updates", type=int, default=5)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--proctors", type=int, default=0,
                    help="also run this many consoles polling every 3 s at once, full polls "
                         "then deltas (goal: 50 proctors of 200 sessions, p99 under 100 ms)")
    ap.add_argument("--fleet-seconds", type=float, default=30.0)
    ap.add_argument("--fleet-workers", type=int, default=8)
    ap.add_argument("--changes-per-s", type=float, default=2.0,
                    help="flags raised per second on random sessions while the consoles poll")
    ap.add_argument("--only-fleet", action="store_true",
                    help="skip the single-console, browser and silence measurements")
    ap.add_argument("--database-url", default=None,
                    help="a PostgreSQL server URL; a fresh database is created on it and dropped")
    args = ap.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="microcred-console-bench-"))
    os.environ["MICROCRED_INSTANCE_DIR"] = str(workdir / "instance")
    bench_db = BenchDatabase(args.database_url, workdir)
    bench_db.create()
    try:
        from assessment.app import create_app
        from assessment.config import Settings
        from assessment.migrate import upgrade

        upgrade(bench_db.url)
        (workdir / "instance").mkdir(exist_ok=True)
        settings = Settings(instance_dir=workdir / "instance", database_url=bench_db.url,
                            secret_key=secrets.token_urlsafe(32), cookie_secure=False)
        app = create_app(settings)
        from proctoring.web import config

        class Db:
            database = app.extensions["microcred.database"]
            vault = config(app).vault  # the app's own, so its image view can decrypt

        print(f"building {args.sessions} sessions on {bench_db.kind} ...", flush=True)
        ids = populate(Db, args.sessions, args.seed)
        print(f"  built in {ids['build_s']} s: {ids['events']} events, {ids['snapshots']} "
              f"snapshots, {ids['flags']} flags", flush=True)
        load_before = os.getloadavg()[0]
        fleet: dict[str, Any] = {}
        if args.proctors:
            for deltas in (False, True):
                f = measure_fleet(app, Db, args.sessions, args.proctors, args.fleet_seconds,
                                  deltas, args.changes_per_s, args.fleet_workers, args.seed)
                fleet[f["mode"]] = f
                print(f"{args.proctors} consoles x {args.sessions} sessions, {f['mode']} polls "
                      f"({f['polls']} in {args.fleet_seconds:.0f} s, {f['flags_written']} flags "
                      f"written meanwhile): p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms, max "
                      f"{f['max_ms']} ms (steady polls p50 {f['steady_p50_ms']} ms, p99 "
                      f"{f['steady_p99_ms']} ms); {f['bytes_per_poll_mean']} bytes and "
                      f"{f['rows_per_poll_mean']} rows sent and {f['rows_built_per_poll_mean']} built "
                      f"per steady poll (first load {f['first_load_bytes']} bytes); statuses {f['statuses']}; "
                      f"statements per poll {f['statements_per_poll']}, process CPU "
                      f"{f['cpu_ms_per_poll']} ms per poll "
                      f"(load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores)",
                      flush=True)
        if args.only_fleet:
            Db.database.dispose()
            print(json.dumps({"database": bench_db.kind, "sessions": args.sessions,
                              "loadavg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                              "fleet": fleet}))
            return 0
        api = measure_api(app, args.sessions, args.polls)
        print(f"console API, {args.polls} polls of {args.sessions} sessions: "
              f"p50 {api['poll_ms_p50']} ms, p95 {api['poll_ms_p95']} ms, max {api['poll_ms_max']} ms; "
              f"{api['response_bytes']} bytes; queries per poll {api['queries_per_poll']}; "
              f"live_sessions alone p50 {api['live_sessions_ms_p50']} ms", flush=True)
        browser: dict[str, Any] = {}
        if not args.no_browser:
            browser = measure_browser(app, Db, ids, args.sessions, args.updates)
            print("browser: " + ", ".join(f"{k} {v}" for k, v in browser.items()), flush=True)
        silence = measure_silence_poll(app, args.sessions)
        print(f"every camera silent at once: one poll showed all {args.sessions} flags due in "
              f"{silence['silence_poll_ms']} ms ({silence['silence_poll_queries']} queries, "
              f"nothing written); the sweep stored them in {silence['silence_sweep_s']} s; "
              f"the next poll {silence['after_silence_poll_ms']} ms", flush=True)
        Db.database.dispose()
        result = {"database": bench_db.kind, "sessions": args.sessions, "polls": args.polls,
                  "cpus": os.cpu_count(), "loadavg_1m": [round(load_before, 2),
                                                         round(os.getloadavg()[0], 2)],
                  "events": ids["events"], "snapshots": ids["snapshots"], "flags": ids["flags"],
                  "build_s": ids["build_s"], **api, **silence, "fleet": fleet,
                  **{f"browser_{k}": v for k, v in browser.items()}}
        print(json.dumps(result))
    finally:
        bench_db.drop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
