"""Benchmark: an exam day of whole proctored candidates against a real ``microcred serve``.

Each simulated candidate does what the browser's runner does, at the runner's own cadence:

- signs in (before the exam: a waiting room) and, inside the *start spike* (all candidates of
  a step start within ``--start-window`` seconds), starts the proctored exam and opens the
  runner page (the page carries the whole state);
- beats at the runner's heartbeat interval (read from ``static/delivery/runner.js``,
  ``HEARTBEAT_MS``) and pings proctoring at its interval (``static/proctor/runner.js``,
  ``PING_MS``; 0 or absent: the heartbeat is the ping);
- changes an answer every ``--answer-min``..``--answer-max`` seconds (default 20-40 s), the
  save sent like the runner's (one request in flight, changes meanwhile queue and go as a
  batch; a 503 is retried after its ``Retry-After``, like the runner's queue);
- sends an integrity event now and then (``--event-every``, default one per 120 s: a focus
  loss and its return) and a camera snapshot at the policy's interval (``--snapshot-s``,
  default 60 s) with a photo-sized JPEG (``tests/proctoring/data/astronaut.jpg``, 16 KB: a
  256 x 256 photograph, what the runner's 320 x 240 canvas at quality 0.7 sends);
- at the end opens the review (the state), and submits.

The exam is a proctored copy of the demo exam (same blueprint and forms) whose policy asks no
identity check (the check needs a proctor per candidate; not what this measures): a full-screen
exam with snapshots, reviewed when flagged.

Ramp: ``--steps 500,1000,2000`` adds candidates step by step (each step's newcomers start within
the start window), and measures each step for ``--step-seconds`` after a warm-up: p50/p95/p99
of saves and heartbeats (and the other endpoints), errors. The largest step with p99 < 100 ms
for saves and heartbeats, no error and nothing lost is the capacity printed. Then the server
CPU per request per endpoint: bursts of one kind of request at a time, the server's CPU (its
gunicorn workers' ``/proc/<pid>/stat``) over the burst divided by the requests; the client's
own CPU is printed apart (it shares the machine). The snapshots' face search runs in the face
checker beside the server (``proctoring.face_checks``), not in the request: each step prints its
CPU apart, the frames counted per second against those uploaded, and the checks it still owes at
the end of the window (with the oldest one's wait: how far behind the live picture it is); the
CPU figures print the upload (web) and the face check of a snapshot separately. At the end
every acknowledged save is checked against the database (lost, stored with other content).

Usage::

    .venv/bin/python bench/exam_day.py [--steps 200,500,1000] [--step-seconds 60]
        [--workers N] [--threads N] [--database-url postgresql+psycopg://user@127.0.0.1/db]
    .venv/bin/python bench/exam_day.py --quick      # a few candidates, seconds (CI)
    .venv/bin/python bench/exam_day.py --spike 1000 --within 10 [--start-rate R]

``--spike N --within S`` runs the start spike alone: N candidates sign in first (not part of
it), then each starts at a random moment within S seconds, as the browser does: the start form,
then, when the waiting room answers 202 with a place and a ``Retry-After``, the waiting page's
JSON asks until admitted, then the runner page. It prints p50/p95/p99 of every start response
(the goal: p99 < 1 s, 0 errors), the time to the first question (the wait in line included),
the server's CPU per start, and checks that every attempt a candidate was sent to exists once
in the database and no candidate has two.

It is a benchmark, not a test: it prints its figures (goals on a 2-core machine: 5,000
candidates at p99 < 100 ms, 0 lost; <= 1 ms server CPU per save or heartbeat; 1,000 candidates
starting within 10 s with p99 start < 1 s). The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.delivery_load import (
    ANSWERABLE,
    CSRF_META,
    DEMO_EXAM_CODE,
    FAST_HASHER,
    MAX_BATCH,
    PASSWORD,
    TLS,
    Server,
    _canonical,
    _microcred,
    _run,
    _value_for,
    bench_instance,
    check_lost,
    end_instance,
    machine_cpu,
    ms,
    pct,
    postgres_cpu,
    postgres_cpu_since,
    steal_cpu,
)

EXAM_CODE = "CCF-DAY"
PHOTO = ROOT / "tests" / "proctoring" / "data" / "astronaut.jpg"
HOT = ("save", "heartbeat")  # the endpoints the capacity goal is about
GOAL_P99_S = 0.100


def heartbeat_seconds() -> float:
    """The beat the server under test gives its runner pages: the product's own setting (the
    server is started with this process's environment)."""
    from microcred.environment import heartbeat_seconds as configured

    return float(configured())


def runner_interval(path: Path, name: str, default: float) -> float:
    """A cadence constant of the browser's runner script (ms), in seconds: the bench follows
    the runner as it is."""
    m = re.search(rf"const {name} = ([0-9_]+);", path.read_text())
    return int(m.group(1).replace("_", "")) / 1000 if m else default


# ---------------------------------------------------------------- set-up


def prepare(db_url: str, n: int, exam_seconds: int, snapshot_s: int) -> list[str]:
    """The proctored bench exam and ``n`` candidates (emails); the demo is loaded already."""
    from assessment.database import Database
    from assessment.exams import create_exam, exam_by_code
    from assessment.models import load_all
    from assessment.users import User, create_user

    load_all()
    database = Database(db_url)
    emails = [f"day-candidate-{i:05d}@bench.microcred.test" for i in range(n)]
    with database.session() as session:
        demo = exam_by_code(session, DEMO_EXAM_CODE)
        if demo is None:
            raise RuntimeError(f"the demo exam {DEMO_EXAM_CODE} is missing")
        create_exam(
            session, code=EXAM_CODE, title=f"{demo.title} (exam day)",
            program_name=demo.program_name, description=demo.description,
            instructions=list(demo.instructions), agreement=demo.agreement,
            blueprint=demo.blueprint, forms=[ef.form for ef in demo.forms if ef.active],
            time_limit_seconds=max(demo.time_limit_seconds, exam_seconds),
            pass_percent=demo.pass_percent,
            policy={"proctoring": {"identity": "none", "review": "flagged", "fullscreen": True,
                                   "snapshot_interval_s": snapshot_s,
                                   "missing_snapshot_intervals": 5}},
        )
        first = create_user(session, email=emails[0], password=PASSWORD, role="candidate",
                            display_name="Day Candidate 0")
        first.password_hash = FAST_HASHER.hash(PASSWORD)
        session.flush()
        session.add_all([User(email=e, display_name=f"Day Candidate {i}", role="candidate",
                              password_hash=first.password_hash)
                         for i, e in enumerate(emails[1:], start=1)])
        session.commit()
    database.dispose()
    return emails


# ---------------------------------------------------------------- figures


@dataclass
class Stats:
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter = field(default_factory=Counter)
    busy: Counter = field(default_factory=Counter)  # 503s answered (retried, not errors)
    acked: dict[tuple[int, int], tuple] = field(default_factory=dict)
    save_wait: list[float] = field(default_factory=list)  # answer changed -> acknowledged
    submitted: int = 0

    def clear_window(self) -> None:
        self.latency = defaultdict(list)
        self.errors = Counter()
        self.busy = Counter()
        self.save_wait = []


class Candidate:
    def __init__(self, n: int, email: str, base_url: str, stats: Stats, cfg: argparse.Namespace,
                 photo: bytes) -> None:
        self.n, self.email, self.stats, self.cfg, self.photo = n, email, stats, cfg, photo
        self.rng = random.Random(cfg.seed * 100_003 + n)
        self.client = httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(60.0), verify=TLS,
                                        limits=httpx.Limits(max_connections=3))
        self.token = ""
        self.attempt_id = 0
        self.items: list[dict] = []
        self.choices: list[dict] = []
        self.proctoring: dict[str, Any] = {}
        self.stopped = asyncio.Event()
        self.seq = 0
        self.event_seq = 0
        self.snap_seq = 0
        self.start_latency: float | None = None
        self.places: list[int] = []

    @property
    def stop(self) -> bool:
        return self.stopped.is_set()

    async def nap(self, seconds: float) -> None:
        """Sleep ``seconds``, or until the candidate is told to stop."""
        try:
            await asyncio.wait_for(self.stopped.wait(), max(0.0, seconds))
        except TimeoutError:
            pass

    async def _request(self, kind: str, method: str, url: str, **kw: Any) -> httpx.Response | None:
        """One request, timed under ``kind``; a 503 is retried after its Retry-After (the
        runner's queue does), counted apart; a transport error is an error."""
        for _ in range(50):
            t = time.perf_counter()
            try:
                resp = await self.client.request(method, url, **kw)
            except httpx.HTTPError as exc:
                self.stats.errors[f"{kind}_{type(exc).__name__}"] += 1
                return None
            self.stats.latency[kind].append(time.perf_counter() - t)
            if resp.status_code != 503:
                return resp
            self.stats.busy[kind] += 1
            await asyncio.sleep(float(resp.headers.get("Retry-After", "1")) *
                                self.rng.uniform(0.5, 1.5))
        self.stats.errors[f"{kind}_gave_up"] += 1
        return None

    async def sign_in(self) -> bool:
        c = self.client
        try:
            page = await c.get("/signin")
            token = CSRF_META.search(page.text)
            resp = await c.post("/signin", data={"email": self.email, "password": self.cfg.password,
                                                 "csrf_token": token.group(1) if token else ""})
            if resp.status_code != 302:
                self.stats.errors[f"signin_{resp.status_code}"] += 1
                return False
            page = await c.get(f"/exams/{self.cfg.exam_code}")
            token = CSRF_META.search(page.text)
            if page.status_code != 200 or token is None:
                self.stats.errors[f"exam_page_{page.status_code}"] += 1
                return False
            self.token = token.group(1)
        except httpx.HTTPError as exc:
            self.stats.errors[f"signin_{type(exc).__name__}"] += 1
            return False
        return True

    async def start(self) -> bool:
        """Start as the browser does on exam day: post the start form; started at once (a
        redirect to the runner), or told a place in the waiting room with a ``Retry-After``,
        then asked again by the waiting page's script (a JSON post) until admitted; then open
        the runner page. Every answer to a start post is timed under ``start``; the whole way
        to the first question is ``start_latency``, ``waited`` the time spent in line."""
        t = time.perf_counter()
        resp = await self._request("start", "POST", f"/exams/{self.cfg.exam_code}/start",
                                   data={"agree": "yes", "csrf_token": self.token})
        url = None
        while resp is not None:
            if resp.status_code == 302:
                url = resp.headers.get("location", "")
                break
            if resp.status_code == 200 and resp.headers.get("content-type", "").startswith(
                    "application/json") and resp.json().get("status") == "admitted":
                url = resp.json()["url"]
                break
            if resp.status_code != 202:
                self.stats.errors[f"start_{resp.status_code}"] += 1
                return False
            self.places.append(self._place(resp))
            await asyncio.sleep(float(resp.headers.get("Retry-After", "1")))
            resp = await self._request("start", "POST", f"/exams/{self.cfg.exam_code}/start",
                                       json={}, headers={"X-CSRFToken": self.token,
                                                         "Accept": "application/json"})
        m = re.search(r"/attempts/(\d+)$", url or "")
        if m is None:
            if url is not None:
                self.stats.errors["start_no_attempt"] += 1
            return False
        self.attempt_id = int(m.group(1))
        page = await self._request("runner_page", "GET", f"/attempts/{self.attempt_id}")
        if page is None or page.status_code != 200:
            self.stats.errors[f"runner_page_{page.status_code if page else 'none'}"] += 1
            return False
        self.start_latency = time.perf_counter() - t
        state = json.loads(re.search(r'id="attempt-state"[^>]*>(.*?)</script>', page.text,
                                     re.DOTALL).group(1))
        self.items = state["items"]
        # the answers the bench makes up: choice items (an option id, or a list of them)
        self.choices = [it for it in self.items
                        if it.get("options") and it.get("type") in ANSWERABLE]
        if not self.choices:
            self.stats.errors["no_choice_items"] += 1
            return False
        self.proctoring = (state.get("extras") or {}).get("proctoring") or {}
        return True

    @staticmethod
    def _place(resp: httpx.Response) -> int:
        """The place in line a waiting answer gives (the JSON's, or the page's)."""
        if resp.headers.get("content-type", "").startswith("application/json"):
            return int(resp.json().get("place", 0))
        m = re.search(r'data-place="(\d+)"', resp.text)
        return int(m.group(1)) if m else 0

    # ------------------------------------------------------------ the exam

    async def heartbeat_loop(self, every: float) -> None:
        await self.nap(self.rng.uniform(0, every))
        while not self.stop:
            resp = await self._request("heartbeat", "GET",
                                       f"/api/attempts/{self.attempt_id}/heartbeat")
            if resp is not None and resp.status_code != 200:
                self.stats.errors[f"heartbeat_{resp.status_code}"] += 1
            elif resp is not None:
                p = (resp.json().get("extras") or {}).get("proctoring")
                if p:
                    self.proctoring = {**self.proctoring, **p}
            await self.nap(every)

    async def ping_loop(self, every: float) -> None:
        if not every or not self.proctoring.get("events_url"):
            return
        await self.nap(self.rng.uniform(0, every))
        while not self.stop:
            await self._events([])
            await self.nap(every)

    async def _events(self, events: list[dict]) -> None:
        kind = "event" if events else "ping"
        resp = await self._request(kind, "POST", self.proctoring["events_url"],
                                   json={"events": events},
                                   headers={"X-CSRFToken": self.token})
        if resp is not None and resp.status_code != 200:
            self.stats.errors[f"{kind}_{resp.status_code}"] += 1

    async def event_loop(self, every: float) -> None:
        if not every or not self.proctoring.get("events_url"):
            return
        while not self.stop:
            await self.nap(self.rng.expovariate(1 / every))
            if self.stop:
                break
            now = time.time()
            events = []
            for kind in ("window_blur", "window_focus"):
                self.event_seq += 1
                events.append({"seq": self.event_seq, "kind": kind,
                               "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))})
            await self._events(events)

    async def snapshot_loop(self) -> None:
        every = self.proctoring.get("snapshot_interval_s") or 0
        if not every or not self.proctoring.get("snapshots_url"):
            return
        await self.nap(self.rng.uniform(0, every))
        while not self.stop:
            self.snap_seq += 1
            resp = await self._request(
                "snapshot", "POST", self.proctoring["snapshots_url"], content=self.photo,
                headers={"X-CSRFToken": self.token, "Content-Type": "image/jpeg",
                         "X-Snapshot-Seq": str(self.snap_seq)})
            if resp is not None and resp.status_code != 200:
                self.stats.errors[f"snapshot_{resp.status_code}"] += 1
            await self.nap(every)

    async def answer_loop(self, lo: float, hi: float) -> None:
        """Change an answer every ``lo``..``hi`` s; one save request in flight."""
        url = f"/api/attempts/{self.attempt_id}/saves"
        queue: list[tuple[int, int, Any, bool, float]] = []
        next_change = time.perf_counter() + self.rng.uniform(0, hi)
        while True:
            now = time.perf_counter()
            if not queue:
                if self.stop:
                    return
                await self.nap(next_change - now)
                if self.stop:
                    return
            while next_change <= time.perf_counter():
                item = self.rng.choice(self.choices)
                self.seq += 1
                queue.append((self.seq, item["id"], _value_for(item, self.rng),
                              self.rng.random() < 0.1, next_change))
                next_change += self.rng.uniform(lo, hi)
            batch = queue[:MAX_BATCH]
            body = {"saves": [{"seq": s, "item": i, "value": v, "flagged": f}
                              for s, i, v, f, _ in batch]}
            resp = await self._request("save", "POST", url, json=body,
                                       headers={"X-CSRFToken": self.token})
            if resp is None:
                await asyncio.sleep(1.0)  # the runner retries the same batch
                continue
            if resp.status_code != 200:
                self.stats.errors[f"save_{resp.status_code}"] += 1
                queue = queue[len(batch):]
                continue
            done = time.perf_counter()
            sent = {s: (i, v, f, at) for s, i, v, f, at in batch}
            for ack in resp.json()["acks"]:
                i, v, f, at = sent[ack["seq"]]
                if ack["status"] in ("saved", "duplicate"):
                    self.stats.acked[(self.attempt_id, ack["seq"])] = (i, _canonical(v), f)
                    self.stats.save_wait.append(done - at)
                else:
                    self.stats.errors[f"ack_{ack['status']}"] += 1
            queue = queue[len(batch):]

    async def run(self, cfg: argparse.Namespace, heartbeat_s: float, ping_s: float) -> None:
        await asyncio.gather(
            self.heartbeat_loop(heartbeat_s), self.ping_loop(ping_s),
            self.event_loop(cfg.event_every), self.snapshot_loop(),
            self.answer_loop(cfg.answer_min, cfg.answer_max))

    async def finish(self) -> None:
        """The review (the state), then submit."""
        await self._request("review", "GET", f"/api/attempts/{self.attempt_id}/state")
        resp = await self._request("submit", "POST", f"/api/attempts/{self.attempt_id}/submit",
                                   json={"confirm": True}, headers={"X-CSRFToken": self.token})
        if resp is not None and resp.status_code == 200:
            self.stats.submitted += 1
        elif resp is not None:
            self.stats.errors[f"submit_{resp.status_code}"] += 1

    async def close(self) -> None:
        await self.client.aclose()


# ---------------------------------------------------------------- phases


def endpoint_figures(stats: Stats) -> dict[str, dict[str, Any]]:
    return {kind: {"n": len(v), "p50_ms": ms(pct(v, 50)), "p95_ms": ms(pct(v, 95)),
                   "p99_ms": ms(pct(v, 99)), "max_ms": ms(max(v))}
            for kind, v in sorted(stats.latency.items()) if v}


async def start_spike(cands: list[Candidate], window: float, stats: Stats) -> dict[str, Any]:
    """Every candidate of ``cands`` starts at a random moment within ``window`` seconds."""
    t0 = time.perf_counter()

    async def one(c: Candidate) -> bool:
        await asyncio.sleep(random.uniform(0, window))
        return await c.start()  # through the waiting room, as the browser goes

    ok = await asyncio.gather(*(one(c) for c in cands))
    took = time.perf_counter() - t0
    lat = [c.start_latency for c in cands if c.start_latency is not None]
    return {"candidates": len(cands), "started": sum(ok), "window_s": window,
            "took_s": round(took, 1), "p50_ms": ms(pct(lat, 50)), "p99_ms": ms(pct(lat, 99)),
            "max_ms": ms(max(lat)) if lat else None,
            "errors": {k: v for k, v in stats.errors.items()
                       if k.startswith(("start", "runner_page"))}}


async def spike(base_url: str, emails: list[str], cfg: argparse.Namespace,
                server: Server) -> dict[str, Any]:
    """The start spike alone: every candidate signs in first (not part of the spike), then
    each starts at a random moment within ``cfg.within`` seconds, through the waiting room
    when the server puts one in line. Prints and returns the figures."""
    stats = Stats()
    cands = [Candidate(i, e, base_url, stats, cfg, b"") for i, e in enumerate(emails)]
    gate = asyncio.Semaphore(cfg.setup_concurrency)

    async def sign_in(c: Candidate) -> bool:
        async with gate:
            return await c.sign_in()

    t = time.perf_counter()
    ok = await asyncio.gather(*(sign_in(c) for c in cands))
    print(f"spike: {sum(ok)}/{len(cands)} signed in in {time.perf_counter() - t:.1f} s "
          "(not part of the spike)", flush=True)
    signed = [c for c, good in zip(cands, ok) if good]
    stats.clear_window()
    rng = random.Random(cfg.seed)
    offsets = {c.n: rng.uniform(0, cfg.within) for c in signed}

    async def one(c: Candidate) -> bool:
        await asyncio.sleep(offsets[c.n])
        return await c.start()

    cpu0, client0, t0 = server.cpu(), time.process_time(), time.perf_counter()
    started = await asyncio.gather(*(one(c) for c in signed))
    took = time.perf_counter() - t0
    server_cpu, client_cpu = server.cpu() - cpu0, time.process_time() - client0
    n_started = sum(started)
    starts = stats.latency.get("start", [])
    first_question = [c.start_latency for c in signed if c.start_latency is not None]
    waited = [c for c in signed if c.places]
    out = {
        "candidates": len(cands), "signed_in": len(signed), "started": n_started,
        "within_s": cfg.within, "took_s": round(took, 1),
        "start_requests": len(starts),
        "start_p50_ms": ms(pct(starts, 50)), "start_p95_ms": ms(pct(starts, 95)),
        "start_p99_ms": ms(pct(starts, 99)), "start_max_ms": ms(max(starts)) if starts else None,
        "runner_page_p99_ms": ms(pct(stats.latency.get("runner_page", []), 99)),
        "first_question_p50_ms": ms(pct(first_question, 50)),
        "first_question_p99_ms": ms(pct(first_question, 99)),
        "first_question_max_ms": ms(max(first_question)) if first_question else None,
        "waited": len(waited), "largest_place": max((max(c.places) for c in waited), default=0),
        "errors": dict(stats.errors), "busy_503": dict(stats.busy),
        "server_cpu_s": round(server_cpu, 2),
        "server_cpu_ms_per_start": round(server_cpu / n_started * 1000, 1) if n_started else None,
        "client_cpu_s": round(client_cpu, 2),
        "attempt_ids": {c.n: c.attempt_id for c in signed if c.start_latency is not None},
    }
    await asyncio.gather(*(c.close() for c in cands))
    return out


def check_attempts(db_url: str, exam_code: str, emails: list[str],
                   seen: dict[int, int]) -> dict[str, int]:
    """Every attempt a candidate was sent to exists once, is theirs, and no candidate has
    more than one attempt at the exam."""
    from sqlalchemy import func, select

    from assessment.database import Database
    from assessment.delivery.models import Attempt
    from assessment.exams import exam_by_code
    from assessment.models import load_all
    from assessment.users import User

    load_all()
    database = Database(db_url)
    with database.session(write=False) as session:
        exam = exam_by_code(session, exam_code)
        rows = session.execute(select(Attempt.id, User.email).join(
            User, User.id == Attempt.candidate_id).where(Attempt.exam_id == exam.id)).all()
        per_candidate = Counter(email for _, email in rows)
        owner = {attempt_id: email for attempt_id, email in rows}
        total = session.scalar(select(func.count()).select_from(Attempt)
                               .where(Attempt.exam_id == exam.id))
    database.dispose()
    return {"attempts": total,
            "missing": sum(1 for i, a in seen.items() if owner.get(a) != emails[i]),
            "candidates_with_more_than_one": sum(1 for n in per_candidate.values() if n > 1),
            "not_seen_by_a_candidate": len(set(owner) - set(seen.values()))}


async def cpu_per_endpoint(cands: list[Candidate], server: Server, n: int,
                           photo: bytes, db_url: str) -> dict[str, float]:
    """Server CPU ms per request, one endpoint at a time (bursts of ``n`` requests, 8 at once)."""
    out: dict[str, float] = {}
    gate = asyncio.Semaphore(8)
    pool = cands[: max(1, min(len(cands), n))]

    def make(kind: str, c: Candidate, i: int):
        if kind == "heartbeat":
            return c.client.get(f"/api/attempts/{c.attempt_id}/heartbeat")
        if kind == "save":
            c.seq += 1
            item = c.choices[i % len(c.choices)]
            return c.client.post(f"/api/attempts/{c.attempt_id}/saves",
                                 json={"saves": [{"seq": c.seq, "item": item["id"],
                                                  "value": _value_for(item, c.rng)}]},
                                 headers={"X-CSRFToken": c.token})
        if kind == "ping":
            return c.client.post(c.proctoring["events_url"], json={"events": []},
                                 headers={"X-CSRFToken": c.token})
        if kind == "event":
            c.event_seq += 1
            return c.client.post(c.proctoring["events_url"], json={"events": [
                {"seq": c.event_seq, "kind": "right_click"}]}, headers={"X-CSRFToken": c.token})
        c.snap_seq += 1
        return c.client.post(c.proctoring["snapshots_url"], content=photo,
                             headers={"X-CSRFToken": c.token, "Content-Type": "image/jpeg",
                                      "X-Snapshot-Seq": str(c.snap_seq)})

    # the checks the load left owed are not these bursts' (and would share the CPU with them)
    await asyncio.to_thread(face_checks_done, db_url, 300.0)
    for kind in ("heartbeat", "save", "ping", "event", "snapshot"):
        if kind != "heartbeat" and kind != "save" and not pool[0].proctoring:
            continue
        count = n if kind != "snapshot" else max(10, n // 5)

        async def one(i: int, kind: str = kind) -> int:
            async with gate:
                try:
                    r = await make(kind, pool[i % len(pool)], i)
                    return r.status_code
                except httpx.HTTPError:
                    return 0

        cpu0, faces0 = server.cpu(), server.faces_cpu()
        codes = await asyncio.gather(*(one(i) for i in range(count)))
        cpu, faces = server.cpu() - cpu0, server.faces_cpu() - faces0
        good = sum(1 for code in codes if code == 200)
        out[kind] = round((cpu - faces) / good * 1000, 2) if good else float("nan")
        if kind == "snapshot" and good:
            # the face search of those frames, in the face checker's process, once it is done
            await asyncio.to_thread(face_checks_done, db_url, 120.0)
            faces = server.faces_cpu() - faces0
            out["snapshot_face_check"] = round(faces / good * 1000, 2)
    return out


def face_backlog(db_url: str) -> tuple[int, float | None]:
    """Face checks owed now in the bench's database, and how long the oldest has waited (s)."""
    from assessment.database import Database
    from proctoring.face_checks import backlog

    database = Database(db_url)
    try:
        with database.session(write=False) as session:
            count, oldest = backlog(session)
    finally:
        database.dispose()
    age = (time.time() - oldest.timestamp()) if oldest is not None else None
    return count, round(age, 1) if age is not None else None


def face_checks_done(db_url: str, timeout_s: float) -> bool:
    """Wait until no face check is owed in the bench's database (``face_checks.wait_idle``)."""
    from assessment.database import Database
    from proctoring.face_checks import wait_idle

    database = Database(db_url)
    try:
        return wait_idle(database.session, timeout_s=timeout_s)
    finally:
        database.dispose()


async def exam_day(base_url: str, emails: list[str], cfg: argparse.Namespace, server: Server,
                   postgres: bool, photo: bytes, db_url: str) -> dict[str, Any]:
    # the runner beats at the server's MICROCRED_HEARTBEAT_SECONDS (the page carries it)
    heartbeat_s = cfg.heartbeat_s or heartbeat_seconds()
    ping_s = cfg.ping_s if cfg.ping_s is not None else runner_interval(
        ROOT / "static/proctor/runner.js", "PING_MS", 0.0)
    print(f"cadence: heartbeat every {heartbeat_s:g} s, proctoring ping every "
          f"{ping_s:g} s (0: none), an answer every {cfg.answer_min:g}-{cfg.answer_max:g} s, "
          f"events every ~{cfg.event_every:g} s, a snapshot every {cfg.snapshot_s} s",
          flush=True)
    stats = Stats()
    everyone = [Candidate(i, e, base_url, stats, cfg, photo) for i, e in enumerate(emails)]
    running: list[Candidate] = []
    tasks: list[asyncio.Task] = []
    steps_out = []
    spikes = []
    capacity = 0
    gate = asyncio.Semaphore(cfg.setup_concurrency)

    async def sign_in(c: Candidate) -> bool:
        async with gate:
            return await c.sign_in()

    for level in cfg.steps:
        newcomers = everyone[len(running):level]
        t = time.perf_counter()
        ok = await asyncio.gather(*(sign_in(c) for c in newcomers))
        print(f"step {level}: {sum(ok)}/{len(newcomers)} signed in (waiting room) in "
              f"{time.perf_counter() - t:.1f} s", flush=True)
        newcomers = [c for c, good in zip(newcomers, ok) if good]
        stats.clear_window()
        spike = await start_spike(newcomers, min(cfg.start_window, max(1.0, len(newcomers) / 100)),
                                  stats)
        spikes.append(spike)
        print(f"step {level}: start spike {json.dumps(spike)}", flush=True)
        started = [c for c in newcomers if c.start_latency is not None]
        running += started
        tasks += [asyncio.create_task(c.run(cfg, heartbeat_s, ping_s)) for c in started]
        await asyncio.sleep(cfg.warmup)
        owed0 = (await asyncio.to_thread(face_backlog, db_url))[0]
        stats.clear_window()
        cpu_s0, cpu_c0, cpu_all0 = server.cpu(), time.process_time(), machine_cpu()
        steal0 = steal_cpu()
        cpu_f0 = server.faces_cpu()
        cpu_db0 = postgres_cpu() if postgres else {}
        t0 = time.perf_counter()
        await asyncio.sleep(cfg.step_seconds)
        window = time.perf_counter() - t0
        faces_cpu = server.faces_cpu() - cpu_f0
        owed, oldest_s = await asyncio.to_thread(face_backlog, db_url)
        uploaded = len(stats.latency.get("snapshot", ()))
        requests = sum(len(v) for v in stats.latency.values())
        fig = endpoint_figures(stats)
        step = {
            "candidates": len(running),
            "window_s": round(window, 1),
            "requests_per_s": round(requests / window, 1),
            "saves_per_s": round(len(stats.save_wait) / window, 1),
            "endpoints": fig,
            "save_wait_p99_ms": ms(pct(stats.save_wait, 99)),
            "errors": dict(stats.errors),
            "busy_503": dict(stats.busy),
            "server_cpu_cores": round((server.cpu() - cpu_s0) / window, 2),
            # the face checker (part of the server's figure): frames counted per second, and
            # what it owes at the end of the window (how far behind the live picture it is)
            "face_checker_cpu_cores": round(faces_cpu / window, 2),
            "snapshots_per_s": round(uploaded / window, 1),
            "faces_counted_per_s": round(max(0, uploaded - (owed - owed0)) / window, 1),
            "faces_owed": owed,
            "oldest_owed_s": oldest_s,
            "client_cpu_cores": round((time.process_time() - cpu_c0) / window, 2),
            "postgres_cpu_cores": round(postgres_cpu_since(cpu_db0) / window, 2)
            if postgres else 0.0,
            "machine_cpu_cores": round((machine_cpu() - cpu_all0) / window, 2),
            # the host's share of this machine's cores (shared hosts; part of the figure above)
            "steal_cores": round((steal_cpu() - steal0) / window, 2),
        }
        step["ok"] = bool(not stats.errors and not spike["errors"]
                          and len(started) == len(newcomers)
                          and all(kind in fig and fig[kind]["p99_ms"] < GOAL_P99_S * 1000
                                  for kind in HOT))
        steps_out.append(step)
        print(f"step {level}: " + json.dumps(step), flush=True)
        if step["ok"]:
            capacity = len(running)
        elif not cfg.keep_going:
            break

    cpu = {}
    if cfg.cpu_requests:
        for c in running:
            c.stopped.set()
        await asyncio.gather(*tasks)
        tasks = []
        stats.clear_window()
        cpu = await cpu_per_endpoint(running, server, cfg.cpu_requests, photo, db_url)
        print(f"server CPU ms per request: {json.dumps(cpu)}", flush=True)
    for c in running:
        c.stopped.set()
    await asyncio.gather(*tasks)
    stats.clear_window()
    t = time.perf_counter()
    await asyncio.gather(*(c.finish() for c in running))
    finish = {"submitted": stats.submitted, "of": len(running),
              "took_s": round(time.perf_counter() - t, 1), "errors": dict(stats.errors)}
    await asyncio.gather(*(c.close() for c in everyone))
    return {"steps": steps_out, "spikes": spikes, "capacity": capacity, "cpu_ms": cpu,
            "finish": finish, "acked": stats.acked,
            "cadence": {"heartbeat_s": heartbeat_s, "ping_s": ping_s}}


# ---------------------------------------------------------------- main


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", default="200,500,1000",
                    help="cumulative candidate counts, comma-separated")
    ap.add_argument("--step-seconds", type=float, default=60.0)
    ap.add_argument("--warmup", type=float, default=10.0,
                    help="seconds after a step's start spike before it is measured")
    ap.add_argument("--start-window", type=float, default=10.0,
                    help="a step's newcomers start within this many seconds")
    ap.add_argument("--answer-min", type=float, default=20.0)
    ap.add_argument("--answer-max", type=float, default=40.0)
    ap.add_argument("--event-every", type=float, default=120.0,
                    help="mean seconds between a candidate's integrity events (0: none)")
    ap.add_argument("--snapshot-s", type=int, default=60,
                    help="the policy's snapshot interval (0: no camera)")
    ap.add_argument("--heartbeat-s", type=float, default=None,
                    help="default: the runner's HEARTBEAT_MS")
    ap.add_argument("--ping-s", type=float, default=None,
                    help="default: the proctoring runner's PING_MS")
    ap.add_argument("--cpu-requests", type=int, default=400,
                    help="requests per endpoint for the CPU-per-request bursts (0: skip)")
    ap.add_argument("--keep-going", action="store_true",
                    help="run every step even after one missed the goal")
    ap.add_argument("--database-url", default=os.environ.get("MICROCRED_BENCH_DATABASE_URL"),
                    help="PostgreSQL server to create a fresh database on (dropped afterwards); "
                         "default: a temporary SQLite file")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--server", choices=("granian", "gunicorn"), default=None,
                    help="the serve command's HTTP server")
    ap.add_argument("--setup-concurrency", type=int, default=16)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--quick", action="store_true",
                    help="CI scale: 6 candidates, fast cadence, a few seconds")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--spike", type=int, default=0, metavar="N",
                    help="the start spike alone: N candidates signed in beforehand start "
                         "within --within seconds (no exam-day steps)")
    ap.add_argument("--within", type=float, default=10.0, metavar="S",
                    help="seconds the --spike starts are spread over")
    ap.add_argument("--start-rate", type=float, default=None,
                    help="the server's MICROCRED_START_RATE (starts admitted per second; "
                         "0: no waiting room); default: the server's own")
    return ap


def quick(cfg: argparse.Namespace) -> argparse.Namespace:
    """CI scale: a few candidates, a fast cadence, seconds."""
    cfg.steps, cfg.step_seconds, cfg.warmup, cfg.start_window = "6", 3.0, 0.5, 1.0
    cfg.answer_min, cfg.answer_max, cfg.event_every, cfg.snapshot_s = 0.3, 0.6, 1.0, 5
    cfg.heartbeat_s, cfg.cpu_requests = cfg.heartbeat_s or 1.0, min(cfg.cpu_requests, 20)
    cfg.workers, cfg.threads = cfg.workers or 2, cfg.threads or 4
    return cfg


def main(argv: list[str] | None = None) -> int:
    ap = parser()
    cfg = ap.parse_args(argv)
    cfg.exam_code, cfg.password = EXAM_CODE, PASSWORD
    if cfg.quick:
        quick(cfg)
    cfg.steps = sorted({int(x) for x in str(cfg.steps).split(",") if x.strip()})
    if not cfg.steps or cfg.steps[0] < 1 or not 0 < cfg.answer_min <= cfg.answer_max:
        ap.error("--steps must be positive counts; 0 < --answer-min <= --answer-max")
    if cfg.spike < 0 or cfg.within <= 0:
        ap.error("--spike must be a count of candidates and --within a positive number of seconds")

    workdir, log, db, env = bench_instance(
        "microcred-examday-", cfg.database_url,
        {"MICROCRED_START_RATE": f"{cfg.start_rate:g}"} if cfg.start_rate is not None else None)
    server = Server(env, log, cfg.workers, cfg.threads, None, cfg.server)
    failed = True
    out: dict[str, Any] = {}
    try:
        db.create()
        print(f"database: {db.kind} {db.redacted()}", flush=True)
        t = time.perf_counter()
        _run([_microcred(), "init"], env, log)
        _run([_microcred(), "demo"], env, log)
        exam_s = int(cfg.step_seconds + cfg.warmup + cfg.start_window + 60) * len(cfg.steps) + 3600
        emails = prepare(db.url, cfg.spike or cfg.steps[-1], exam_s, cfg.snapshot_s)
        print(f"prepared exam {EXAM_CODE} and {len(emails)} candidates in "
              f"{time.perf_counter() - t:.1f} s", flush=True)
        server.start()
        print(f"server: {server.base_url}, {server.workers} workers x {server.threads} threads, "
              f"{os.cpu_count()} cores; log {log}", flush=True)
        before = machine_cpu()
        time.sleep(1.0)
        background = machine_cpu() - before
        if background > 0.25:
            print(f"warning: {background:.2f} cores busy before the load (other processes): "
                  "compare relative figures only", flush=True)
        if cfg.spike:
            out = asyncio.run(spike(server.base_url, emails, cfg, server))
            server.stop()
            check = check_attempts(db.url, EXAM_CODE, emails, out.pop("attempt_ids"))
            out.update(check=check, database=db.kind, workers=server.workers,
                       threads=server.threads, cores=os.cpu_count(),
                       background_cpu_cores_before=round(background, 2))
            failed = bool(out["errors"] or out["started"] < out["signed_in"] or check["missing"]
                          or check["candidates_with_more_than_one"]
                          or check["attempts"] != out["started"])
            print(f"\nstart spike: {out['started']}/{out['candidates']} started, spread over "
                  f"{cfg.within:g} s (all done in {out['took_s']} s)\n"
                  f"  start responses ({out['start_requests']}): p50 {out['start_p50_ms']} ms, "
                  f"p95 {out['start_p95_ms']} ms, p99 {out['start_p99_ms']} ms, "
                  f"max {out['start_max_ms']} ms\n"
                  f"  to the first question (line included): p50 "
                  f"{out['first_question_p50_ms']} ms, p99 {out['first_question_p99_ms']} ms, "
                  f"max {out['first_question_max_ms']} ms; runner page p99 "
                  f"{out['runner_page_p99_ms']} ms\n"
                  f"  waited in line: {out['waited']} (largest place {out['largest_place']})\n"
                  f"  errors: {out['errors'] or 0}; 503s: {out['busy_503'] or 0}\n"
                  f"  server CPU: {out['server_cpu_s']} s, {out['server_cpu_ms_per_start']} ms "
                  f"per start (start, line, runner page); client CPU {out['client_cpu_s']} s\n"
                  f"  database: {check['attempts']} attempts, {check['missing']} missing, "
                  f"{check['candidates_with_more_than_one']} candidates with more than one\n"
                  f"  goal (p99 start response < 1000 ms, 0 errors): "
                  f"{'met' if not failed and out['start_p99_ms'] < 1000 else 'NOT met'}",
                  flush=True)
            print(json.dumps(out))
            return 1 if failed else 0
        run = asyncio.run(exam_day(server.base_url, emails, cfg, server,
                                   db.kind == "postgresql", PHOTO.read_bytes(), db.url))
        server.stop()
        check = check_lost(db.url, run.pop("acked"))
        out = {**run, "acknowledged": check["stored"] - check["stored_unacknowledged"],
               "lost": check["lost"], "mismatched": check["mismatched"],
               "database": db.kind, "workers": server.workers, "threads": server.threads,
               "cores": os.cpu_count(), "background_cpu_cores_before": round(background, 2)}
        failed = bool(check["lost"] or check["mismatched"] or run["finish"]["errors"]
                      or any(s["errors"] for s in run["steps"]))
        print()
        for s in run["steps"]:
            hot = " ".join(f"{k} p99 {s['endpoints'].get(k, {}).get('p99_ms')} ms" for k in HOT)
            print(f"{s['candidates']:>6} candidates  {s['requests_per_s']:>7} req/s  "
                  f"{s['saves_per_s']:>6} saves/s  {hot}  errors {sum(s['errors'].values())}  "
                  f"503s {sum(s['busy_503'].values())}  server {s['server_cpu_cores']} cores "
                  f"(face checker {s['face_checker_cpu_cores']}), client "
                  f"{s['client_cpu_cores']}, stolen by the host {s['steal_cores']}  "
                  f"{'ok' if s['ok'] else 'NOT ok'}\n"
                  f"{'':>16}faces: {s['snapshots_per_s']} snapshots/s, "
                  f"{s['faces_counted_per_s']} counted/s, {s['faces_owed']} owed at the end "
                  f"(oldest waiting {s['oldest_owed_s']} s)")
        for sp in run["spikes"]:
            print(f"start spike: {sp['started']}/{sp['candidates']} within {sp['window_s']} s, "
                  f"p50 {sp['p50_ms']} ms p99 {sp['p99_ms']} ms max {sp['max_ms']} ms, "
                  f"errors {sp['errors'] or 0}")
        print(f"server CPU ms per request: {run['cpu_ms']}")
        print(f"finish: {run['finish']}")
        print(f"saves: {out['acknowledged']} acknowledged and stored; lost {check['lost']}; "
              f"stored with other content {check['mismatched']}")
        print(f"capacity: {run['capacity']} concurrent proctored candidates with p99 < 100 ms "
              f"for saves and heartbeats, 0 errors, 0 lost"
              + ("" if not check["lost"] and not check["mismatched"] else " (BUT saves lost)"))
    except BaseException as exc:
        print(f"bench failed: {type(exc).__name__}: {exc}; server log: {log}", file=sys.stderr)
        raise
    finally:
        end_instance(server, db, workdir, keep=failed or cfg.keep)
    print(json.dumps(out))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
