"""Benchmark: how many proctored candidates one node holds (issue 15, goal 2), with the load
sent by wrk, so the simulated candidates cost the machine almost nothing.

``bench/exam_day.py`` simulates whole candidates in Python; at 1,000 of them its client takes
half of this 2-core machine, so it cannot say what the server alone holds. Here the candidates
sign in and start the proctored exam in Python first (the exam-day bench's candidates, through
the real pages), and then four wrk processes, each with one connection per candidate, send what
their runners send at the runners' cadence, all at once:

- ``heartbeat``: ``GET .../heartbeat`` every ``--heartbeat-s`` (default: the server's
  ``MICROCRED_HEARTBEAT_SECONDS``, what the runner page is told; the heartbeat is also the
  proctoring ping);
- ``saves``: an answer change every ``--answer-min``..``--answer-max`` seconds (default 20-40),
  one save per request, its seq naming the attempt (``save_saturation.expected_saves``);
- ``snapshot``: a camera frame every ``--snapshot-s`` (the policy's interval, default 60) with
  the proctoring runner's body (a 16 KB JPEG, ``image/jpeg``, ``X-Snapshot-Seq``);
- ``events``: a focus loss and its return, on average every ``--event-every`` seconds.

Each connection's first request comes at a random moment within its first interval, so the
load is steady from the start. Each step (``--steps``) is an instance of its own (the
candidates of a later step would otherwise sit silent through the earlier ones, and their
cameras be flagged); N candidates are set up, then the load runs ``--seconds``; per kind of request
it prints the rate, wrk's p50/p90/p99/max latency and the answers by status; for the step, the
server's CPU (web, with the node's writer's share, and the face checker ``microcred serve``
starts beside it, apart), the machine's, the CPU the host stole, wrk's own, the face checks
(frames uploaded and counted per second, and those still owed at the end with the oldest one's
wait), and the host's speed before and after the load (a fixed Python loop, timed with the
server idle: runs taken at different speeds are not compared). The step is ``ok`` when saves
and heartbeats have p99 < 100 ms and nothing answered other than 200 and no socket failed.
At the end every acknowledged save of every step is looked up in the database (lost,
mismatched: both must be 0).

Usage::

    .venv/bin/python bench/node_capacity.py [--steps 1000,2000,5000] [--seconds 120]
        [--face-workers N] [--server granian|gunicorn] [--workers N] [--threads N]
        [--database-url postgresql+psycopg://user@127.0.0.1/db]
    .venv/bin/python bench/node_capacity.py --quick   # a few candidates, seconds (CI)

Needs wrk (Debian: ``apt-get install wrk``). Each candidate has a connection for each kind of
request, as long as the file-descriptor limit allows (one server worker may hold them all):
past a quarter of the limit, fewer connections each carry more than one candidate's requests,
paced the faster (the step prints the connections it used).
A benchmark, not a test: it prints its figures whatever they are. The last line is one JSON
object.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from delivery_load import (
    PASSWORD,
    Server,
    _microcred,
    _run,
    bench_instance,
    check_lost,
    end_instance,
    machine_cpu,
    postgres_cpu,
    postgres_cpu_since,
    steal_cpu,
)
from save_saturation import SIMPLE, expected_saves, finish_wrk, start_wrk

from assessment.cli import KEEPALIVE_SECONDS
from bench.exam_day import (
    EXAM_CODE,
    PHOTO,
    Candidate,
    Stats,
    face_backlog,
    heartbeat_seconds,
    prepare,
)

GOAL_P99_MS = 100.0
KINDS = ("heartbeat", "saves", "snapshot", "events")


async def set_up(base_url: str, emails: list[str], cfg: argparse.Namespace) -> list[Candidate]:
    """Sign every candidate in and start its proctored attempt through the pages, as the
    exam-day bench's candidates do; those that could not are left out (and counted)."""
    stats = Stats()
    cands = [Candidate(i, e, base_url, stats, cfg, b"") for i, e in enumerate(emails)]
    gate = asyncio.Semaphore(cfg.setup_concurrency)

    async def one(c: Candidate) -> bool:
        async with gate:
            return await c.sign_in() and await c.start()

    ok = await asyncio.gather(*(one(c) for c in cands))
    ready = []
    for c, good in zip(cands, ok):
        c.simple = [(pos, it) for pos, it in enumerate(c.items) if it.get("type") in SIMPLE]
        if good and c.simple and c.proctoring.get("snapshots_url"):
            ready.append(c)
    await asyncio.gather(*(c.close() for c in cands))  # wrk takes their cookies from here on
    if stats.errors:
        print(f"set-up errors: {dict(stats.errors)}", flush=True)
    return ready


def run_step(base_url: str, cands: list[Candidate], step: int, cfg: argparse.Namespace,
             server: Server, db_url: str, workdir: Path, postgres: bool) -> dict[str, Any]:
    """One step: the four wrk runs at once for ``cfg.seconds``, and the figures."""
    n = len(cands)
    paces = {"heartbeat": (cfg.heartbeat_s, cfg.heartbeat_s),
             "saves": (cfg.answer_min, cfg.answer_max),
             "snapshot": (cfg.snapshot_s, cfg.snapshot_s),
             "events": (0.0, 2 * cfg.event_every)}  # mean: --event-every
    kinds = [k for k in KINDS if paces[k][1] > 0]
    owed0 = face_backlog(db_url)[0]
    cpu0, faces0, machine0, steal0 = server.cpu(), server.faces_cpu(), machine_cpu(), steal_cpu()
    writer0 = server.writer_cpu()
    db0 = postgres_cpu() if postgres else {}
    child0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    # a connection per candidate; past the descriptors' limit, fewer, each the faster paced
    conns = min(n, getattr(cfg, "max_connections", n))
    share = conns / n
    runs = {}
    for k in kinds:  # one after the other: thousands of connections opened at once overflow
        # the server's queue of pending connections, and wrk gives up on a refused connect
        runs[k] = start_wrk(base_url, cands, k, cfg.seconds, conns, 1, workdir,
                            offset=1000 * step, name=f"step{step}-{k}", photo=PHOTO,
                            pace_range_ms=(round(paces[k][0] * 1000 * share),
                                           round(paces[k][1] * 1000 * share)))
        time.sleep(min(2.0, conns / 2000))
    results = {k: finish_wrk(*run) for k, run in runs.items()}
    window = time.perf_counter() - t0
    child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu, faces = server.cpu() - cpu0, server.faces_cpu() - faces0
    writer = server.writer_cpu() - writer0
    owed, oldest = face_backlog(db_url)
    out: dict[str, Any] = {"candidates": n, "connections_per_kind": conns,
                           "seconds": round(window, 1), "kinds": {}}
    for k, w in results.items():
        seconds = w["duration_us"] / 1e6
        answered = sum(w["statuses"].values())
        out["kinds"][k] = {
            "requests": answered, "per_s": round(answered / seconds, 1),
            "p50_ms": round(w["p50_us"] / 1000, 1), "p90_ms": round(w["p90_us"] / 1000, 1),
            "p99_ms": round(w["p99_us"] / 1000, 1), "max_ms": round(w["max_us"] / 1000, 1),
            "statuses": w["statuses"],
            "socket_errors": sum(w["errors"].values()) - w["errors"]["status"] - w["errors"]["timeout"],
            # by kind: a read error is also a kept-alive connection the server closed while idle
            "socket_error_kinds": {e: v for e, v in w["errors"].items()
                                   if v and e not in ("status", "timeout")},
        }
    requests = sum(f["requests"] for f in out["kinds"].values())
    uploaded = out["kinds"].get("snapshot", {}).get("statuses", {}).get("200", 0)
    out.update({
        "requests_per_s": round(requests / window, 1),
        "server_cpu_cores": round((cpu - faces) / window, 2),
        "server_cpu_ms_per_request": round(1000 * (cpu - faces) / requests, 2) if requests else None,
        "face_checker_cpu_cores": round(faces / window, 2),
        "writer_cpu_cores": round(writer / window, 2),
        "snapshots_per_s": round(uploaded / window, 1),
        "faces_counted_per_s": round(max(0, uploaded - (owed - owed0)) / window, 1),
        "faces_owed": owed, "oldest_owed_s": oldest,
        "machine_cpu_cores": round((machine_cpu() - machine0) / window, 2),
        "steal_cores": round((steal_cpu() - steal0) / window, 2),
        "wrk_cpu_cores": round(((child1.ru_utime + child1.ru_stime)
                                - (child0.ru_utime + child0.ru_stime)) / window, 2),
        "postgres_cpu_cores": round(postgres_cpu_since(db0) / window, 2) if postgres else 0.0,
    })
    # a connection paced past the server's keep-alive (75 s; the events, ~120 s apart) is closed
    # while idle, which wrk counts as a read error; a browser's page shares its connections
    # between kinds, so its events ride on connections kept busy by its heartbeats
    idle_closed = {k for k in kinds if paces[k][1] * share > KEEPALIVE_SECONDS}
    out["ok"] = bool(
        all(out["kinds"][k]["p99_ms"] < GOAL_P99_MS for k in ("heartbeat", "saves") if k in out["kinds"])
        and all(set(f["statuses"]) <= {"200"} and not (
                    set(f["socket_error_kinds"]) - ({"read"} if k in idle_closed else set()))
                for k, f in out["kinds"].items()))
    out["acked"] = results["saves"]["acked"] if "saves" in results else []
    return out


def report(s: dict[str, Any]) -> None:
    print(f"\n{s['candidates']} proctored candidates ({s['connections_per_kind']} connections "
          f"for each kind of request), {s['seconds']} s: {s['requests_per_s']} requests/s  "
          f"{'ok' if s['ok'] else 'NOT ok'}")
    for k, f in s["kinds"].items():
        print(f"  {k:9s} {f['per_s']:7.1f}/s  p50 {f['p50_ms']:6.1f}  p90 {f['p90_ms']:6.1f}  "
              f"p99 {f['p99_ms']:7.1f}  max {f['max_ms']:7.1f} ms  statuses {f['statuses']}"
              f"  socket errors {f['socket_errors']} {f['socket_error_kinds'] or ''}")
    print(f"  server (web) {s['server_cpu_cores']} cores, {s['server_cpu_ms_per_request']} ms "
          f"per request (the node's writer {s['writer_cpu_cores']} cores of it); face checker "
          f"{s['face_checker_cpu_cores']} cores; machine "
          f"{s['machine_cpu_cores']} cores, of which the host stole {s['steal_cores']}; wrk "
          f"{s['wrk_cpu_cores']} cores" + (f"; PostgreSQL {s['postgres_cpu_cores']} cores"
                                          if s["postgres_cpu_cores"] else ""))
    if "host_speed_s" in s:
        before, after = s["host_speed_s"]
        print(f"  host speed: a Python loop of 10^7 additions took {before} s before the load, "
              f"{after} s after (the server idle)")
    print(f"  faces: {s['snapshots_per_s']} frames/s uploaded, {s['faces_counted_per_s']}/s "
          f"counted, {s['faces_owed']} owed at the end (oldest waiting {s['oldest_owed_s']} s)",
          flush=True)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", default="1000,2000,5000",
                    help="candidates per step (one set-up for the largest; each step uses the first N)")
    ap.add_argument("--seconds", type=int, default=120, help="each step's length")
    ap.add_argument("--answer-min", type=float, default=20.0)
    ap.add_argument("--answer-max", type=float, default=40.0)
    ap.add_argument("--heartbeat-s", type=float, default=None,
                    help="default: the server's MICROCRED_HEARTBEAT_SECONDS")
    ap.add_argument("--snapshot-s", type=int, default=60, help="the policy's snapshot interval")
    ap.add_argument("--event-every", type=float, default=120.0,
                    help="mean seconds between a candidate's integrity-event batches (0: none)")
    ap.add_argument("--face-workers", type=int, default=None,
                    help="face checkers microcred serve starts (0: none); default: serve's")
    ap.add_argument("--no-writer", action="store_true",
                    help="serve without the node's writer (microcred serve --no-writer)")
    ap.add_argument("--database-url", default=os.environ.get("MICROCRED_BENCH_DATABASE_URL"))
    ap.add_argument("--server", choices=("granian", "gunicorn"), default=None)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--setup-concurrency", type=int, default=16)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--quick", action="store_true", help="CI scale: 6 candidates, seconds")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    return ap


def quick(cfg: argparse.Namespace) -> argparse.Namespace:
    """CI scale: a few candidates at a fast cadence for a few seconds."""
    cfg.steps, cfg.seconds, cfg.answer_min, cfg.answer_max = "6", 4, 0.3, 0.6
    cfg.heartbeat_s, cfg.snapshot_s, cfg.event_every = 0.5, 1, 1.0
    cfg.workers, cfg.threads = cfg.workers or 2, cfg.threads or 4
    return cfg


def host_speed() -> float:
    """Seconds this process takes for a plain Python loop of 10^7 additions, the server idle
    (before a step's load and after it). This shared host's CPU speed has been seen to change
    by a factor of 1.7 within an hour, so a run's figures are read with the speed they ran at."""
    t = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return round(time.perf_counter() - t, 2)


def capacity_step(cfg: argparse.Namespace, n: int, step: int) -> dict[str, Any]:
    """One step on an instance of its own: ``n`` candidates set up, the load, the check of
    every acknowledged save. (On one instance for every step, the candidates of the later steps
    sat silent through the earlier ones and the sweeper flagged their cameras by the thousand.)"""
    workdir, log, db, env = bench_instance("microcred-capacity-", cfg.database_url,
                                           {"MICROCRED_START_RATE": "0"})
    server = Server(env, log, cfg.workers, cfg.threads, None, cfg.server)
    if cfg.face_workers is not None:
        server.cmd += ["--face-workers", str(cfg.face_workers)]
    if cfg.no_writer:
        server.cmd += ["--no-writer"]
    failed = True
    try:
        db.create()
        _run([_microcred(), "init"], env, log)
        _run([_microcred(), "demo"], env, log)
        # the policy's interval: what the server expects (it flags silence of 5 intervals)
        emails = prepare(db.url, n, cfg.seconds + 3600, max(5, int(cfg.snapshot_s)))
        server.start()
        heartbeat_s = cfg.heartbeat_s or heartbeat_seconds()
        if step == 0:
            print(f"database {db.kind}; server {server.kind}, {server.workers} workers x "
                  f"{server.threads} threads, {os.cpu_count()} cores\ncadence: a heartbeat "
                  f"every {heartbeat_s:g} s, an answer every {cfg.answer_min:g}-"
                  f"{cfg.answer_max:g} s, a snapshot every {cfg.snapshot_s:g} s, events every "
                  f"~{cfg.event_every:g} s", flush=True)
        cfg.heartbeat_s = heartbeat_s
        t = time.perf_counter()
        cands = asyncio.run(set_up(server.base_url, emails, cfg))
        print(f"{len(cands)}/{n} candidates signed in with a proctored attempt started in "
              f"{time.perf_counter() - t:.1f} s (server log {log})", flush=True)
        if len(cands) < n:
            raise RuntimeError(f"only {len(cands)} of {n} candidates could start")
        time.sleep(2.0)
        speed = host_speed()
        s = run_step(server.base_url, cands, step, cfg, server, db.url, workdir,
                     db.kind == "postgresql")
        s["host_speed_s"] = [speed, host_speed()]
        server.stop()
        check = check_lost(db.url, expected_saves(cands, s.pop("acked")))
        s.update(acknowledged=check["stored"] - check["stored_unacknowledged"],
                 lost=check["lost"], mismatched=check["mismatched"], database=db.kind,
                 server=server.kind, workers=server.workers, threads=server.threads)
        s["ok"] = s["ok"] and not check["lost"] and not check["mismatched"]
        failed = bool(check["lost"] or check["mismatched"])
        return s
    finally:
        end_instance(server, db, workdir, keep=failed or cfg.keep)


def main(argv: list[str] | None = None) -> int:
    ap = parser()
    cfg = ap.parse_args(argv)
    if cfg.quick:
        quick(cfg)
    steps = sorted({int(x) for x in str(cfg.steps).split(",") if x.strip()})
    if not steps or steps[0] < 1 or cfg.seconds < 1 or not 0 < cfg.answer_min <= cfg.answer_max:
        ap.error("--steps must be positive counts, --seconds positive, "
                 "0 < --answer-min <= --answer-max")
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    # wrk and the server inherit the limit; one server worker may hold every connection, so
    # past a quarter of it a connection carries more than one candidate (paced the faster)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    cfg.max_connections = max(1, (hard - 1024) // len(KINDS))
    cfg.exam_code, cfg.password = EXAM_CODE, PASSWORD
    steps_out, capacity = [], 0
    for i, n in enumerate(steps):
        try:
            s = capacity_step(cfg, n, i)
        except (httpx.HTTPError, RuntimeError) as exc:
            print(f"step {n}: bench failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        report(s)
        print(f"  saves: {s['acknowledged']} acknowledged; lost {s['lost']}, mismatched "
              f"{s['mismatched']}", flush=True)
        steps_out.append(s)
        if s["ok"]:
            capacity = n
    lost = sum(s["lost"] + s["mismatched"] for s in steps_out)
    print(f"\ncapacity: {capacity} proctored candidates with p99 < {GOAL_P99_MS:g} ms for saves "
          f"and heartbeats, every answer 200, 0 lost")
    print(json.dumps({"steps": steps_out, "capacity": capacity, "cores": os.cpu_count(),
                      "cadence": {"heartbeat_s": cfg.heartbeat_s,
                                  "answer_s": [cfg.answer_min, cfg.answer_max],
                                  "snapshot_s": cfg.snapshot_s,
                                  "event_every_s": cfg.event_every}}))
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
