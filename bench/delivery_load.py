"""Benchmark: candidates autosaving answers against a real ``microcred serve``.

What it does, end to end:

1. Makes a throwaway instance: a temporary instance dir and SQLite file (default), or, with
   ``--database-url postgresql+psycopg://...``, a fresh database ``microcred_bench_<random>``
   on that URL's server, dropped at the end.
2. ``microcred init`` and ``microcred demo`` (the "Clinical Coding Fundamentals" program), then,
   in this process, an *unproctored* copy of the demo exam (same blueprint and forms, code
   ``CCF-BENCH``) and ``--candidates`` candidate accounts. The demo exam itself is proctored:
   its identity check needs a proctor to admit each candidate, which is not what this measures.
   All candidates share one password, hashed once with cheap argon2 parameters and copied to
   every account (the hash carries its salt and parameters, so sign-in verifies as usual):
   at the default cost each sign-in spends ~0.1 s of CPU verifying the password, so 200
   sign-ins would add tens of seconds of setup. Sign-in is not what is measured.
3. Starts ``microcred serve`` on 127.0.0.1 (a free port; gunicorn workers and threads from
   ``--workers`` / ``--threads``, else the serve command's defaults (``serve_shape`` in
   assessment/cli.py: gthread workers with more threads than the backpressure limit); its
   sweeper stays on, as in production) with its output in a log file, and waits
   for ``/healthz``.
4. Each simulated candidate (asyncio + httpx, one client and cookie jar each) signs in, starts
   the exam and reads the runner state, all before the clock starts (at most
   ``--setup-concurrency`` at once). Sign-in is only throttled after *failed* tries
   (assessment/auth.py), so N candidates signing in once from 127.0.0.1 need no setting.
   Then, for ``--seconds``, it changes an answer at
   random intervals, uniform in [0.5, 1.5] x ``--interval`` (default 0.2 s), each change a
   valid value for the item's type (single_choice: one option id; multiple_response: a list of
   option ids; sometimes a flag or a cleared answer), with increasing ``seq``. Like the
   browser's runner (static/delivery/runner.js) it keeps one save request in flight: changes
   made meanwhile queue and go in the next request as a batch.
   A real candidate changes an answer every ~0.5-2 s; 200 candidates every ~0.2 s offer the
   load of ~1,000-1,250 such candidates (about 1,000 saves/s) with fewer client sockets.
5. Every candidate submits; the server is stopped; the database is checked: every save that
   was acknowledged (ack ``saved``, or ``duplicate`` for a retry of a stored seq) must be in
   ``response_saves`` as (attempt_id, seq). ``lost`` counts those that are not, ``mismatched``
   those stored with another item, value or flag than was sent.

Figures: acknowledged saves per second over the load window; latency per acknowledged save,
from the moment the candidate changed the answer to the moment the ack arrived (what the
candidate sees as "Saving..."; includes waiting behind the candidate's previous request, so a
slow server is not hidden by the closed loop); the plain request latency as well; errors
(transport errors, non-2xx answers, acks other than saved/duplicate, failed set-up or submit);
CPU used by the server's processes, by this client (both run on the same machine), by
PostgreSQL's processes and by everything else (other processes: a warning is printed when
the machine was already busy before the load, and the figures are then not comparable).

When the server cannot keep up, a candidate's queued changes go in one request, so saves/s
stays near the offered load while latency grows: read saves/s together with the latency,
``requests_per_s`` and ``mean_batch``. To find the load the server carries within a latency
goal, lower ``--candidates`` (or raise ``--interval``).

Usage::

    .venv/bin/python bench/delivery_load.py [--candidates 200] [--seconds 30] [--interval 0.2]
        [--workers N] [--threads N] [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]

It is a benchmark, not a test: it prints its figures, whatever they are (goal on a 2-core
machine: >= 1,000 acknowledged saves/s, p99 < 100 ms, 0 lost). The last line printed is one
JSON object with every figure.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from argon2 import PasswordHasher
from sqlalchemy.exc import SQLAlchemyError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PASSWORD = "bench candidate password 2026"
EXAM_CODE = "CCF-BENCH"
DEMO_EXAM_CODE = "CCF-2026"
MAX_BATCH = 100  # the browser's runner sends at most 100 saves per request
#: Bench accounts get a cheap argon2 hash (the hash names its parameters, so the server verifies
#: it as usual): 200 sign-ins at the default cost take ~40 s on SQLite, and are not measured.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
CSRF_META = re.compile(r'name="csrf-token" content="([^"]+)"')


# ---------------------------------------------------------------- the database


def _swap_database(url: str, name: str) -> str:
    head, _, tail = url.partition("?")
    head = re.sub(r"/[^/]*$", f"/{name}", head)
    return head + ("?" + tail if tail else "")


class BenchDatabase:
    """The database the bench runs on: a temporary SQLite file, or a fresh PostgreSQL database
    created on the server of ``--database-url`` and dropped afterwards."""

    def __init__(self, admin_url: str | None, workdir: Path) -> None:
        self.admin_url = admin_url
        self.created: str | None = None
        if admin_url is None:
            self.url = f"sqlite:///{workdir / 'microcred.db'}"
            self.kind = "sqlite"
        elif admin_url.startswith("postgresql"):
            self.kind = "postgresql"
            self.created = f"microcred_bench_{uuid.uuid4().hex[:10]}"
            self.url = _swap_database(admin_url, self.created)
        elif admin_url.startswith("sqlite"):
            self.kind = "sqlite"
            path = admin_url.split(":///", 1)[-1]
            if path and path != ":memory:" and Path(path).exists():
                raise SystemExit(f"{admin_url}: the bench needs a new SQLite file, this one exists")
            self.url = admin_url
        else:
            raise SystemExit(f"unsupported --database-url {admin_url!r}")

    def create(self) -> None:
        if self.created is None:
            return
        from sqlalchemy import create_engine, text

        admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.created}"'))
        admin.dispose()

    def drop(self) -> None:
        if self.created is None:
            return
        from sqlalchemy import create_engine, text

        admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.created}" WITH (FORCE)'))
        admin.dispose()

    def redacted(self) -> str:
        return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", self.url)


def bench_instance(prefix: str, database_url: str | None,
                   extra_env: dict[str, str] | None = None
                   ) -> tuple[Path, Path, BenchDatabase, dict[str, str]]:
    """A throwaway instance: its directory, the server's log file, its database (a SQLite file
    in the directory, or a fresh database on ``database_url``'s PostgreSQL server, created by
    ``.create()``) and the environment ``microcred`` runs in (plain http on 127.0.0.1, with
    ``extra_env``); this process takes the instance and database settings too (the benches
    prepare candidates in process)."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    db = BenchDatabase(database_url, workdir)
    env = dict(os.environ)
    env.update({"MICROCRED_INSTANCE_DIR": str(workdir / "instance"),
                "MICROCRED_DATABASE_URL": db.url,
                "MICROCRED_COOKIE_SECURE": "0",  # plain http on 127.0.0.1
                "MICROCRED_PUBLIC_URL": "http://127.0.0.1", **(extra_env or {})})
    os.environ.update({k: env[k] for k in ("MICROCRED_INSTANCE_DIR", "MICROCRED_DATABASE_URL",
                                            "MICROCRED_COOKIE_SECURE")})
    return workdir, workdir / "server.log", db, env


def end_instance(server: Server, db: BenchDatabase, workdir: Path, *, keep: bool) -> None:
    """Stop a bench's server, drop its database (a failure reported, the figures kept) and
    remove its directory, unless ``keep`` (a failed run, or ``--keep``): then say where it is."""
    server.stop()
    try:
        db.drop()
    except SQLAlchemyError as exc:
        print(f"could not drop {db.created}: {exc}", file=sys.stderr)
    if keep:
        print(f"kept {workdir}", file=sys.stderr)
    else:
        shutil.rmtree(workdir, ignore_errors=True)


def _microcred() -> str:
    exe = Path(sys.executable).parent / "microcred"
    return str(exe) if exe.exists() else (shutil.which("microcred") or "microcred")


def _run(cmd: list[str], env: dict[str, str], log: Path) -> None:
    with log.open("a") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        fh.flush()
        done = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}); see {log}")


def prepare(db_url: str, n_candidates: int, exam_seconds: int) -> list[str]:
    """The unproctored bench exam and the candidates (emails); the demo is loaded already."""
    from sqlalchemy import select

    from assessment.database import Database
    from assessment.exams import create_exam, exam_by_code
    from assessment.models import load_all
    from assessment.users import User, create_user

    load_all()
    database = Database(db_url)
    emails = [f"bench-candidate-{i:05d}@bench.microcred.test" for i in range(n_candidates)]
    with database.session() as session:
        demo = exam_by_code(session, DEMO_EXAM_CODE)
        if demo is None:
            raise RuntimeError(f"the demo exam {DEMO_EXAM_CODE} is missing")
        create_exam(
            session,
            code=EXAM_CODE,
            title=f"{demo.title} (load test)",
            program_name=demo.program_name,
            description=demo.description,
            instructions=list(demo.instructions),
            agreement=demo.agreement,
            blueprint=demo.blueprint,
            forms=[ef.form for ef in demo.forms if ef.active],
            time_limit_seconds=max(demo.time_limit_seconds, exam_seconds),
            pass_percent=demo.pass_percent,
            policy={},  # not proctored: see the module's docstring
        )
        first = create_user(session, email=emails[0], password=PASSWORD, role="candidate",
                            display_name="Bench Candidate 0")
        first.password_hash = FAST_HASHER.hash(PASSWORD)
        for i, email in enumerate(emails[1:], start=1):
            session.add(User(email=email, display_name=f"Bench Candidate {i}", role="candidate",
                             password_hash=first.password_hash))
        session.commit()
        assert session.scalar(select(User.id).where(User.email == emails[-1])) is not None
    database.dispose()
    return emails


def check_lost(db_url: str, acked: dict[tuple[int, int], tuple]) -> dict[str, int]:
    """Compare the acknowledged saves with ``response_saves``: ``lost`` (acknowledged, not
    stored), ``mismatched`` (stored with another item, value or flag than was sent),
    ``stored`` (rows for the bench's attempts) and ``stored_unacknowledged``."""
    from sqlalchemy import select

    from assessment.database import Database
    from assessment.delivery.models import ResponseSave
    from assessment.models import load_all

    load_all()
    database = Database(db_url)
    attempts = sorted({a for a, _ in acked})
    stored: dict[tuple[int, int], tuple] = {}
    with database.session(write=False) as session:
        for start in range(0, len(attempts), 500):
            rows = session.execute(
                select(ResponseSave.attempt_id, ResponseSave.seq, ResponseSave.item_version_id,
                       ResponseSave.value, ResponseSave.flagged)
                .where(ResponseSave.attempt_id.in_(attempts[start : start + 500]))
            )
            for a, seq, item, value, flagged in rows:
                stored[(int(a), int(seq))] = (int(item), _canonical(value), bool(flagged))
    database.dispose()
    lost = [k for k in acked if k not in stored]
    mismatched = [k for k, sent in acked.items() if k in stored and stored[k] != sent]
    return {"lost": len(lost), "mismatched": len(mismatched), "stored": len(stored),
            "stored_unacknowledged": len(stored.keys() - acked.keys())}


def _canonical(value: Any) -> Any:
    """A response as the server stores it (itembank.types normalize): option lists sorted,
    an empty list as no answer."""
    if isinstance(value, list):
        return tuple(sorted(value)) or None
    return value


# ---------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _proc_stats() -> list[tuple[int, int, str, float]]:
    """(pid, ppid, command name, CPU seconds used so far) of every process."""
    tick = os.sysconf("SC_CLK_TCK")
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.find("(") + 1 : stat.rfind(")")]
        fields = stat.rsplit(")", 1)[1].split()
        out.append((int(entry), int(fields[1]), name, (int(fields[11]) + int(fields[12])) / tick))
    return out


def _descendants(root: int, stats: list[tuple[int, int, str, float]]) -> set[int]:
    """``root`` and every live process under it (children, theirs, ...)."""
    children: dict[int, list[int]] = {}
    for pid, ppid, _, _ in stats:
        children.setdefault(ppid, []).append(pid)
    tree, todo = {root}, [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in tree:
                tree.add(child)
                todo.append(child)
    return tree


def process_tree_cpu(root: int) -> float:
    """CPU seconds (user + system) used so far by ``root`` and every live process under it
    (the face checker's search processes are the server's grandchildren)."""
    stats = _proc_stats()
    tree = _descendants(root, stats)
    return sum(cpu for pid, _, _, cpu in stats if pid in tree)


def child_cpu(root: int, marker: bytes) -> float:
    """CPU seconds used so far by the live children of ``root`` whose command line holds
    ``marker`` (e.g. the face checker ``microcred serve`` starts: ``b"faces"``), with every
    process under them (its search processes)."""
    stats = _proc_stats()
    total = 0.0
    for pid, ppid, _, _ in stats:
        if ppid != root:
            continue
        try:
            if marker in Path(f"/proc/{pid}/cmdline").read_bytes():
                tree = _descendants(pid, stats)
                total += sum(cpu for p, _, _, cpu in stats if p in tree)
        except OSError:
            continue
    return total


def postgres_cpu() -> dict[int, float]:
    """CPU seconds used so far by each of the machine's live PostgreSQL processes, by pid."""
    return {pid: cpu for pid, _, name, cpu in _proc_stats() if name.startswith("postgres")}


def postgres_cpu_since(before: dict[int, float]) -> float:
    """CPU seconds the PostgreSQL processes used since ``before`` (:func:`postgres_cpu`): each
    live process's growth, a backend started since counted whole. A backend that exited
    meanwhile takes its share with it (an undercount). Summing the totals instead, as this did,
    made a load that followed a set-up's many connections read 0: the set-up's backends that
    closed took more CPU out of the sum than the load put in."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in postgres_cpu().items())


def machine_cpu() -> float:
    """CPU seconds all cores have been busy (not idle or waiting on I/O) since boot; steal
    (:func:`steal_cpu`) included."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def steal_cpu() -> float:
    """CPU seconds since boot that the hypervisor gave to other machines while this one had
    work to run (``steal`` in /proc/stat): on a shared host, a share of the cores this machine
    did not get, which no process here shows."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


class Server:
    def __init__(self, env: dict[str, str], log: Path, workers: int | None,
                 threads: int | None, sweep_every: int | None, kind: str | None = None) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = log
        cmd = [_microcred(), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        if sweep_every is not None:
            cmd += ["--sweep-every", str(sweep_every)]
        if workers:
            cmd += ["--workers", str(workers)]
        if threads:
            cmd += ["--threads", str(threads)]
        if kind:
            cmd += ["--server", kind]  # else the serve command's default
        self.kind = kind
        self.cmd = cmd
        self.env = env
        self.proc: subprocess.Popen | None = None
        # what the server runs, defaults filled in: from its "serving on" line once started
        self.workers, self.threads = workers, threads

    def _read_shape(self) -> None:
        """Workers and threads as ``microcred serve`` reported them (its defaults depend on
        the backpressure limit and the cores: ``serve_shape`` in assessment/cli.py)."""
        shape = re.search(r"with (\w+), (\d+) workers x (\d+) threads", self.log.read_text())
        if shape is None:
            raise RuntimeError(f"microcred serve did not say what it runs; see {self.log}")
        self.kind, self.workers, self.threads = shape[1], int(shape[2]), int(shape[3])

    def start(self, timeout: float = 60.0) -> None:
        fh = self.log.open("a")
        fh.write(f"$ {' '.join(self.cmd)}\n")
        fh.flush()
        self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=fh, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        fh.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"microcred serve exited with {self.proc.returncode}; "
                                   f"see {self.log}")
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1.0).status_code == 200:
                    self._read_shape()
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"microcred serve did not answer /healthz in {timeout:.0f} s; "
                           f"see {self.log}")

    def cpu(self) -> float:
        return process_tree_cpu(self.proc.pid) if self.proc else 0.0

    def faces_cpu(self) -> float:
        """The face checker's CPU seconds (part of :meth:`cpu`)."""
        return child_cpu(self.proc.pid, b"faces") if self.proc else 0.0

    def writer_cpu(self) -> float:
        """The node's writer's CPU seconds (part of :meth:`cpu`; ``microcred.writer``)."""
        # the argument itself, NUL-delimited: a worker's command line may hold "--no-writer"
        return child_cpu(self.proc.pid, b"\x00writer\x00") if self.proc else 0.0

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # gunicorn: graceful shutdown of the workers
        try:
            self.proc.wait(timeout=45)  # gunicorn's graceful timeout is 30 s
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


# ---------------------------------------------------------------- the candidates


@dataclass
class Stats:
    save_latency: list[float] = field(default_factory=list)  # change -> ack, per save
    request_latency: list[float] = field(default_factory=list)  # per save request
    acked: dict[tuple[int, int], tuple] = field(default_factory=dict)  # -> what was sent
    acks: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    saves_sent: int = 0
    requests: int = 0
    batch_sizes: Counter = field(default_factory=Counter)
    submitted: int = 0
    ready: int = 0
    loop_lag: list[float] = field(default_factory=list)

    def error(self, kind: str) -> None:
        self.errors[kind] += 1


@dataclass
class PendingSave:
    seq: int
    item: int
    value: Any
    flagged: bool
    changed_at: float


def _value_for(item: dict, rng: random.Random) -> Any:
    options = [o["id"] for o in item["options"]]
    if rng.random() < 0.05:
        return None  # the candidate cleared the answer
    if item["type"] == "multiple_response":
        k = item.get("select") or rng.randint(1, len(options))
        return rng.sample(options, min(int(k), len(options)))
    if item["type"] == "ordering":  # every option, in an order of the candidate's
        return rng.sample(options, len(options))
    return rng.choice(options)


#: the item types :func:`_value_for` answers (their answer is made of option ids)
ANSWERABLE = ("single_choice", "multiple_response", "ordering", "true_false")


#: one TLS context for every simulated browser: httpx builds a new one per client otherwise
#: (the system's CA bundle loaded again: 46 ms of CPU and ~0.8 MB each, 4 minutes and 4 GB for
#: 5,000 candidates), though the bench speaks plain HTTP
TLS = ssl.create_default_context()


class Candidate:
    def __init__(self, n: int, email: str, base_url: str, stats: Stats, seed: int) -> None:
        self.n, self.email, self.stats = n, email, stats
        self.rng = random.Random(seed * 100_003 + n)
        self.client = httpx.AsyncClient(
            base_url=base_url, timeout=httpx.Timeout(30.0), verify=TLS,
            limits=httpx.Limits(max_connections=2, max_keepalive_connections=2),
        )
        self.attempt_id: int | None = None
        self.items: list[dict] = []
        self.token = ""

    async def setup(self) -> bool:
        c, stats = self.client, self.stats
        try:
            page = await c.get("/signin")
            token = CSRF_META.search(page.text)
            if page.status_code != 200 or token is None:
                stats.error(f"signin_page_{page.status_code}")
                return False
            resp = await c.post("/signin", data={"email": self.email, "password": PASSWORD,
                                                 "csrf_token": token.group(1)})
            if resp.status_code != 302:
                stats.error(f"signin_{resp.status_code}")
                return False
            page = await c.get(f"/exams/{EXAM_CODE}")
            token = CSRF_META.search(page.text)
            if page.status_code != 200 or token is None:
                stats.error(f"exam_page_{page.status_code}")
                return False
            self.token = token.group(1)
            resp = await c.post(f"/exams/{EXAM_CODE}/start",
                                data={"agree": "yes", "csrf_token": self.token})
            location = ""
            # the waiting room (MICROCRED_START_RATE) answers 202 with a Retry-After beyond its
            # rate; ask again as the waiting page's script does, until admitted
            while resp.status_code == 202:
                await asyncio.sleep(float(resp.headers.get("Retry-After", "1")))
                resp = await c.post(f"/exams/{EXAM_CODE}/start", json={},
                                    headers={"X-CSRFToken": self.token,
                                             "Accept": "application/json"})
            if resp.status_code == 302:
                location = resp.headers.get("location", "")
            elif resp.status_code == 200 and resp.headers.get("content-type", "").startswith(
                    "application/json") and resp.json().get("status") == "admitted":
                location = resp.json().get("url", "")
            match = re.search(r"/attempts/(\d+)$", location)
            if match is None:
                stats.error(f"start_{resp.status_code}")
                return False
            self.attempt_id = int(match.group(1))
            resp = await c.get(f"/api/attempts/{self.attempt_id}/state")
            if resp.status_code != 200:
                stats.error(f"state_{resp.status_code}")
                return False
            # the items answered with option ids (the simulated answers pick options); other
            # types are left blank
            self.items = [i for i in resp.json()["items"] if i.get("type") in ANSWERABLE]
        except httpx.HTTPError as exc:
            stats.error(f"setup_{type(exc).__name__}")
            return False
        stats.ready += 1
        return True

    async def autosave(self, t0: float, end: float, interval: float) -> None:
        """Change answers until ``end``; one save request in flight, the rest queued."""
        rng, stats = self.rng, self.stats
        url = f"/api/attempts/{self.attempt_id}/saves"
        headers = {"X-CSRFToken": self.token}
        queue: list[PendingSave] = []
        seq = 0
        position = 0
        next_change = t0 + rng.uniform(0.0, 1.5 * interval)  # candidates do not start in step
        retry_at = 0.0
        while True:
            now = time.perf_counter()
            if not queue:
                if next_change >= end:
                    break  # no more changes in the window, and everything is acknowledged
                if next_change > now:
                    await asyncio.sleep(next_change - now)
                    now = time.perf_counter()
            elif retry_at > now:
                await asyncio.sleep(retry_at - now)
                now = time.perf_counter()
            while next_change <= now and next_change < end:
                position = rng.randrange(len(self.items))
                item = self.items[position]
                seq += 1
                queue.append(PendingSave(seq, item["id"], _value_for(item, rng),
                                         rng.random() < 0.1, next_change))
                next_change += rng.uniform(0.5 * interval, 1.5 * interval)
            if not queue:
                continue
            if now > end + 30:
                stats.error("gave_up_retrying")
                break
            batch = queue[:MAX_BATCH]
            body = {"saves": [{"seq": s.seq, "item": s.item, "value": s.value,
                               "flagged": s.flagged} for s in batch], "position": position}
            stats.requests += 1
            stats.saves_sent += len(batch)
            stats.batch_sizes[len(batch)] += 1
            sent = time.perf_counter()
            try:
                resp = await self.client.post(url, json=body, headers=headers)
            except httpx.HTTPError as exc:
                stats.error(f"save_{type(exc).__name__}")
                retry_at = time.perf_counter() + 0.5  # the browser retries the same batch
                continue
            done = time.perf_counter()
            stats.request_latency.append(done - sent)
            if resp.status_code == 200:
                by_seq = {s.seq: s for s in batch}
                for ack in resp.json()["acks"]:
                    status = ack["status"]
                    stats.acks[status] += 1
                    s = by_seq.get(ack["seq"])
                    if s is None:
                        stats.error("ack_for_unsent_seq")
                        continue
                    if status in ("saved", "duplicate"):
                        stats.acked[(self.attempt_id, s.seq)] = (
                            s.item, _canonical(s.value), s.flagged)
                        stats.save_latency.append(done - s.changed_at)
                    else:
                        stats.error(f"ack_{status}")
                queue = queue[len(batch):]
            elif resp.status_code in (503, 429):
                # a full server (microcred/backpressure.py): wait what it asked, spread as the
                # browser's runner spreads it, so the bench comes back no sooner than candidates
                stats.error(f"save_{resp.status_code}")
                retry_at = done + _retry_after_s(resp) * rng.uniform(0.75, 1.25)
            elif resp.status_code >= 500 or resp.status_code == 408:
                stats.error(f"save_{resp.status_code}")
                retry_at = done + 0.5
            else:
                stats.error(f"save_{resp.status_code}_{_error_code(resp)}")
                queue = queue[len(batch):]  # refused content: the browser drops it too
                if resp.status_code == 409:
                    break

    async def submit(self) -> None:
        """Submit; after a transport error, once more (409 "attempt_finalized" then means the
        first one went through); turned away busy (503), again after the wait it asked for, as
        the candidate told "try again in 2 s" does, at most five times."""
        tries, busy = 0, 0
        while tries < 2:
            try:
                resp = await self.client.post(f"/api/attempts/{self.attempt_id}/submit",
                                              json={"confirm": True},
                                              headers={"X-CSRFToken": self.token})
            except httpx.HTTPError as exc:
                self.stats.error(f"submit_{type(exc).__name__}")
                tries += 1
                continue
            if resp.status_code == 503 and busy < 5:
                self.stats.error("submit_503")
                busy += 1
                await asyncio.sleep(_retry_after_s(resp) * self.rng.uniform(0.75, 1.25))
                continue
            code = _error_code(resp)
            if resp.status_code == 200 or (tries and code == "attempt_finalized"):
                self.stats.submitted += 1
            else:
                self.stats.error(f"submit_{resp.status_code}_{code}")
            return

    async def close(self) -> None:
        await self.client.aclose()


def _retry_after_s(resp: httpx.Response) -> float:
    """The wait a busy answer asks for, as the runner reads it (``retryAfterMs``): its
    ``Retry-After`` in seconds, at most 60, else 2."""
    try:
        seconds = float(resp.headers.get("Retry-After", ""))
    except ValueError:
        return 2.0
    return min(seconds, 60.0) if seconds > 0 else 2.0


def _error_code(resp: httpx.Response) -> str:
    try:
        return str(resp.json().get("error", ""))
    except (ValueError, AttributeError):
        return ""


async def lag_monitor(stats: Stats, stop: asyncio.Event, every: float = 0.01) -> None:
    """How late the client's event loop wakes up, into ``stats.loop_lag`` every ``every``
    seconds until ``stop``: a busy client inflates its own latencies (this bench and
    bench/soak.py share it)."""
    while not stop.is_set():
        before = time.perf_counter()
        await asyncio.sleep(every)
        stats.loop_lag.append(time.perf_counter() - before - every)


async def run_load(base_url: str, emails: list[str], seconds: float, interval: float,
                   setup_concurrency: int, seed: int, server: Server,
                   postgres: bool) -> dict[str, Any]:
    stats = Stats()
    candidates = [Candidate(n, e, base_url, stats, seed) for n, e in enumerate(emails)]
    gate = asyncio.Semaphore(setup_concurrency)

    async def setup(c: Candidate) -> bool:
        async with gate:
            return await c.setup()

    t_setup = time.perf_counter()
    ok = await asyncio.gather(*(setup(c) for c in candidates))
    setup_s = time.perf_counter() - t_setup
    active = [c for c, good in zip(candidates, ok) if good]
    print(f"set-up: {len(active)}/{len(candidates)} candidates signed in and started "
          f"in {setup_s:.1f} s", flush=True)

    stop = asyncio.Event()
    monitor = asyncio.create_task(lag_monitor(stats, stop))
    cpu_server0, cpu_client0, cpu_all0 = server.cpu(), time.process_time(), machine_cpu()
    steal0 = steal_cpu()
    cpu_db0 = postgres_cpu() if postgres else {}
    t0 = time.perf_counter()
    end = t0 + seconds
    await asyncio.gather(*(c.autosave(t0, end, interval) for c in active))
    t_end = time.perf_counter()
    cpu_server, cpu_client = server.cpu() - cpu_server0, time.process_time() - cpu_client0
    cpu_all, cpu_steal = machine_cpu() - cpu_all0, steal_cpu() - steal0
    cpu_db = postgres_cpu_since(cpu_db0) if postgres else 0.0
    stop.set()
    await monitor
    window = max(seconds, t_end - t0)

    t_submit = time.perf_counter()
    await asyncio.gather(*(c.submit() for c in active))
    submit_s = time.perf_counter() - t_submit
    await asyncio.gather(*(c.close() for c in candidates))
    return {
        "stats": stats, "window": window, "setup_s": setup_s, "submit_s": submit_s,
        "active": len(active), "cpu_server": cpu_server, "cpu_client": cpu_client,
        "cpu_all": cpu_all, "cpu_db": cpu_db, "cpu_steal": cpu_steal,
    }


# ---------------------------------------------------------------- figures


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def ms(x: float) -> float:
    return round(x * 1000, 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--candidates", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=30.0, help="length of the autosave phase")
    ap.add_argument("--interval", type=float, default=0.2,
                    help="mean seconds between a candidate's answer changes (uniform 0.5x-1.5x)")
    ap.add_argument("--database-url", default=None,
                    help="PostgreSQL server to create a fresh database on (dropped afterwards); "
                         "default: a temporary SQLite file")
    ap.add_argument("--workers", type=int, default=None,
                    help="server workers (default: the serve command's)")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads per server worker (default: the serve command's)")
    ap.add_argument("--server", choices=("granian", "gunicorn"), default=None,
                    help="the serve command's HTTP server")
    ap.add_argument("--sweep-every", type=int, default=None,
                    help="the serve command's sweeper period in seconds (default: its own, 30)")
    ap.add_argument("--setup-concurrency", type=int, default=8,
                    help="candidates signing in at once before the load starts")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args(argv)
    if args.candidates < 1 or args.seconds <= 0 or args.interval <= 0:
        ap.error("--candidates, --seconds and --interval must be positive")

    workdir, log, db, env = bench_instance("microcred-bench-", args.database_url)
    server = Server(env, log, args.workers, args.threads, args.sweep_every, args.server)
    failed = True
    out: dict[str, Any] = {}
    try:
        db.create()
        print(f"database: {db.kind} {db.redacted()}", flush=True)
        t = time.perf_counter()
        _run([_microcred(), "init"], env, log)
        _run([_microcred(), "demo"], env, log)
        emails = prepare(db.url, args.candidates, int(args.seconds) + 1800)
        print(f"prepared the demo, exam {EXAM_CODE} and {len(emails)} candidates "
              f"in {time.perf_counter() - t:.1f} s", flush=True)
        server.start()
        print(f"server: {server.base_url}, {server.workers} workers x {server.threads} threads, "
              f"{os.cpu_count()} cores; log {log}", flush=True)
        before = machine_cpu()
        time.sleep(2.0)
        background = (machine_cpu() - before) / 2.0
        if background > 0.25:
            print(f"warning: {background:.2f} cores were busy before the load started "
                  "(other processes on this machine): the figures will be lower", flush=True)
        run = asyncio.run(run_load(server.base_url, emails, args.seconds, args.interval,
                                   args.setup_concurrency, args.seed, server,
                                   db.kind == "postgresql"))
        server.stop()
        stats: Stats = run["stats"]
        check = check_lost(db.url, stats.acked)
        lost = check["lost"]
        window = run["window"]
        saved = len(stats.acked)
        errors = sum(stats.errors.values())
        out = {
            "saves_per_s": round(saved / window, 1),
            "p50_ms": ms(pct(stats.save_latency, 50)),
            "p95_ms": ms(pct(stats.save_latency, 95)),
            "p99_ms": ms(pct(stats.save_latency, 99)),
            "errors": errors,
            "lost": lost,
            "candidates": run["active"],
            "seconds": round(window, 2),
            "acknowledged": saved,
            "requests": stats.requests,
            "requests_per_s": round(stats.requests / window, 1),
            "mean_batch": round(stats.saves_sent / stats.requests, 2) if stats.requests else 0,
            "request_p50_ms": ms(pct(stats.request_latency, 50)),
            "request_p95_ms": ms(pct(stats.request_latency, 95)),
            "request_p99_ms": ms(pct(stats.request_latency, 99)),
            "max_ms": ms(max(stats.save_latency)) if stats.save_latency else None,
            "offered_saves_per_s": round(run["active"] / args.interval, 1),
            "interval_s": args.interval,
            "mismatched": check["mismatched"],
            "stored_unacknowledged": check["stored_unacknowledged"],
            "submitted": stats.submitted,
            "error_kinds": dict(stats.errors),
            "server_cpu_cores": round(run["cpu_server"] / window, 2),
            "client_cpu_cores": round(run["cpu_client"] / window, 2),
            "machine_cpu_cores": round(run["cpu_all"] / window, 2),
            "steal_cores": round(run["cpu_steal"] / window, 2),
            "postgres_cpu_cores": round(run["cpu_db"] / window, 2),
            "other_cpu_cores": round((run["cpu_all"] - run["cpu_server"] - run["cpu_client"]
                                      - run["cpu_db"]) / window, 2),
            "background_cpu_cores_before": round(background, 2),
            "client_loop_lag_p99_ms": ms(pct(stats.loop_lag, 99)),
            "server": server.kind,
            "workers": server.workers,
            "threads": server.threads,
            "cores": os.cpu_count(),
            "database": db.kind,
            "goal_met": False,
        }
        out["goal_met"] = bool(out["saves_per_s"] >= 1000 and out["p99_ms"] < 100
                               and lost == 0 and check["mismatched"] == 0)
        failed = bool(errors or lost or check["mismatched"])
        print()
        print(f"candidates            {out['candidates']} (offered ~{out['offered_saves_per_s']} "
              f"saves/s: one change every ~{args.interval} s each)")
        print(f"load window           {out['seconds']} s; set-up {run['setup_s']:.1f} s, "
              f"submit {run['submit_s']:.1f} s")
        print(f"acknowledged saves    {saved}  ->  {out['saves_per_s']} saves/s "
              f"in {stats.requests} requests ({out['requests_per_s']}/s, "
              f"mean batch {out['mean_batch']})")
        print(f"save latency          p50 {out['p50_ms']} ms  p95 {out['p95_ms']} ms  "
              f"p99 {out['p99_ms']} ms  max {out['max_ms']} ms (answer changed -> ack)")
        print(f"request latency       p50 {out['request_p50_ms']} ms  p95 "
              f"{out['request_p95_ms']} ms  p99 {out['request_p99_ms']} ms")
        print(f"errors                {errors} {dict(stats.errors) if errors else ''}")
        print(f"acks                  {dict(stats.acks)}")
        print(f"in the database       {check['stored']} saves for these attempts; lost {lost}; "
              f"stored with other content {check['mismatched']}; stored but not acknowledged "
              f"{check['stored_unacknowledged']}")
        print(f"submitted             {stats.submitted}/{run['active']}")
        print(f"CPU (cores busy)      server {out['server_cpu_cores']}  client "
              f"{out['client_cpu_cores']}  postgres {out['postgres_cpu_cores']}  other "
              f"{out['other_cpu_cores']}  whole machine {out['machine_cpu_cores']} of "
              f"{os.cpu_count()} (stolen by the host {out['steal_cores']}); client loop lag p99 {out['client_loop_lag_p99_ms']} ms")
        print(f"goal (>= 1000 saves/s, p99 < 100 ms, 0 lost): "
              f"{'met' if out['goal_met'] else 'not met'}")
        if failed:
            print(f"server log: {log}")
    except BaseException as exc:
        print(f"bench failed: {type(exc).__name__}: {exc}; server log: {log}", file=sys.stderr)
        raise
    finally:
        end_instance(server, db, workdir, keep=failed or args.keep)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
