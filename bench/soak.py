"""Benchmark: a soak (issue 15, goal 12). ``--minutes`` of candidates autosaving at 80 % of the
capacity you measured (``--capacity``: candidates the node sustained within its latency goal, as
bench/delivery_load.py or bench/exam_day.py print it), printing per interval the memory of the
server's processes and the latency, so growth in memory and drift in latency show.

It reuses bench/delivery_load.py's machinery (a throwaway instance, ``microcred init`` and
``demo``, an unproctored copy of the demo exam, ``microcred serve``, candidates that keep one
save request in flight and queue the rest, every acknowledged save checked in the database at
the end). Per interval (``--report-every`` seconds, on fixed marks from the start, and one
more for the run's tail) it prints one line:

- ``t_s`` when the row was taken and ``span_s`` the interval it covers (shorter than
  ``--report-every`` after a late wake-up or for the tail; rates are per second of the span);
- ``rss_mb``: resident memory of the server's whole process tree (gunicorn master, workers,
  sweeper, job worker), and ``worker_rss_mb`` the largest worker's;
- ``saves_per_s``, save latency ``p50_ms`` / ``p99_ms`` (answer changed -> acknowledged) of the
  saves acknowledged in that interval, and the errors in it;
- the client's own share of the blame, since it is one asyncio process on the server's machine:
  ``lag_p50_ms`` / ``lag_p99_ms`` / ``lag_max_ms``, how late its event loop woke up (delivery_load's
  monitor, every 10 ms), ``client_cpu`` the cores this process kept busy (1.0: its one loop is
  saturated, and every save waits for it) and ``machine_cpu`` the cores the whole machine kept
  busy. A save tail that the loop lag matches is the client's, not the server's. The server
  sends no timing of its own (no ``Server-Timing`` header, no access log), so its time per save
  is not shown.

At the end: the growth of RSS from the first whole interval to the last (``rss_growth_mb``) and the
ratio of the last interval's p99 to the first's (``p99_drift``), the loop lag's p99 over the
whole run, lost and mismatched saves.
No growth and no drift means ``rss_growth_mb`` near 0 (a few MB of warm-up) and
``p99_drift`` near 1. The last line printed is one JSON object.

Usage::

    .venv/bin/python bench/soak.py --capacity 1000 --minutes 30 [--interval 20]
        [--report-every 60] [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]

``--interval`` is the mean seconds between one candidate's answer changes (default 20, the
runner's realistic rate; delivery_load.py's 0.2 s compresses many candidates into few sockets).
It is a benchmark, not a test: 30 minutes is the issue's soak, CI runs none of it.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import delivery_load as dl  # the sibling bench, its machinery reused


def tree_rss(root: int) -> tuple[float, float]:
    """(MB of resident memory of ``root`` and every descendant, MB of the largest child)."""
    children: dict[int, list[int]] = {}
    for pid, ppid, _, _ in dl._proc_stats():
        children.setdefault(ppid, []).append(pid)
    todo, total, largest = [root], 0.0, 0.0
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                mb = int(line.split()[1]) / 1024
                total += mb
                if pid != root:
                    largest = max(largest, mb)
    return total, largest


async def soak(base_url: str, rss: Callable[[], tuple[float, float]], emails: list[str],
               minutes: float, interval: float, report_every: float, setup_concurrency: int,
               seed: int) -> dict[str, Any]:
    """Candidates of ``emails`` autosave against ``base_url`` for ``minutes``; every
    ``report_every`` seconds a row of figures (``rss()``: the server's memory, MB in all and
    of its largest worker)."""
    stats = dl.Stats()
    candidates = [dl.Candidate(n, e, base_url, stats, seed) for n, e in enumerate(emails)]
    gate = asyncio.Semaphore(setup_concurrency)

    async def setup(c: dl.Candidate) -> bool:
        async with gate:
            return await c.setup()

    ok = await asyncio.gather(*(setup(c) for c in candidates))
    active = [c for c, good in zip(candidates, ok, strict=True) if good]
    print(f"set-up: {len(active)}/{len(candidates)} candidates started", flush=True)
    rows: list[dict[str, Any]] = []
    stop = asyncio.Event()
    monitor = asyncio.create_task(dl.lag_monitor(stats, stop))
    t0 = time.perf_counter()
    end = t0 + minutes * 60

    finished = asyncio.Event()

    async def reporter() -> None:
        """A row at every ``report_every`` mark after ``t0`` (the marks are fixed, so a late
        wake-up on a busy machine shortens the next interval rather than dropping a row), and
        one last row for the interval the run ends in."""
        seen_lat, seen_err, seen_lag = 0, 0, 0
        then, cpu_then, machine_then = t0, time.process_time(), dl.machine_cpu()
        mark = t0 + report_every
        while True:
            last = False
            try:
                await asyncio.wait_for(finished.wait(), max(0.0, mark - time.perf_counter()))
                last = True
            except TimeoutError:
                pass
            now, cpu, machine = time.perf_counter(), time.process_time(), dl.machine_cpu()
            if last and now - then < 0.05:
                return  # the run ended on a mark: that interval's row is already written
            while mark <= now:
                mark += report_every
            lat = stats.save_latency[seen_lat:]
            lag = stats.loop_lag[seen_lag:]
            errors = sum(stats.errors.values())
            total, worker = rss()
            row = {"t_s": round(now - t0), "span_s": round(now - then, 2),
                   "rss_mb": round(total, 1),
                   "worker_rss_mb": round(worker, 1),
                   "saves_per_s": round(len(lat) / (now - then), 1),
                   "p50_ms": dl.ms(dl.pct(lat, 50)), "p99_ms": dl.ms(dl.pct(lat, 99)),
                   "errors": errors - seen_err,
                   "lag_p50_ms": dl.ms(dl.pct(lag, 50)), "lag_p99_ms": dl.ms(dl.pct(lag, 99)),
                   "lag_max_ms": dl.ms(max(lag, default=float("nan"))),
                   "client_cpu": round((cpu - cpu_then) / (now - then), 2),
                   "machine_cpu": round((machine - machine_then) / (now - then), 2)}
            seen_lat, seen_err, seen_lag = len(stats.save_latency), errors, len(stats.loop_lag)
            then, cpu_then, machine_then = now, cpu, machine
            rows.append(row)
            print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
            if last:
                return

    report = asyncio.create_task(reporter())
    await asyncio.gather(*(c.autosave(t0, end, interval) for c in active))
    finished.set()
    await report
    stop.set()
    await monitor
    await asyncio.gather(*(c.submit() for c in active))
    await asyncio.gather(*(c.close() for c in candidates))
    return {"stats": stats, "rows": rows, "active": len(active)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--capacity", type=int, required=True,
                    help="candidates the node sustains within its goal (measured); 80 %% run")
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--interval", type=float, default=20.0,
                    help="mean seconds between one candidate's answer changes")
    ap.add_argument("--report-every", type=float, default=60.0)
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--setup-concurrency", type=int, default=16)
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args(argv)
    if args.capacity < 2 or args.minutes <= 0 or args.interval <= 0 or args.report_every <= 0:
        ap.error("--capacity (>= 2), --minutes, --interval and --report-every must be positive")
    n = max(1, round(0.8 * args.capacity))

    _workdir, log, db, env = dl.bench_instance("microcred-soak-", args.database_url)
    server = dl.Server(env, log, args.workers, args.threads, None)
    try:
        db.create()
        dl._run([dl._microcred(), "init"], env, log)
        dl._run([dl._microcred(), "demo"], env, log)
        emails = dl.prepare(db.url, n, int(args.minutes * 60) + 1800)
        server.start()
        print(f"soak: {n} candidates (80 % of {args.capacity}), {args.minutes} min, a change "
              f"every ~{args.interval} s each; {db.kind}; server log {log}", flush=True)
        run = asyncio.run(soak(server.base_url, lambda: tree_rss(server.proc.pid), emails,
                               args.minutes, args.interval, args.report_every,
                               args.setup_concurrency, args.seed))
        server.stop()
        stats, rows = run["stats"], run["rows"]
        check = dl.check_lost(db.url, stats.acked)
        # the drift compares whole intervals: the run's last row may cover only its tail
        whole = [r for r in rows if r["span_s"] >= 0.5 * args.report_every] or rows
        first, last = (whole[0], whole[-1]) if whole else ({}, {})
        out = {
            "candidates": run["active"], "minutes": args.minutes,
            "acknowledged": len(stats.acked), "lost": check["lost"],
            "mismatched": check["mismatched"], "errors": sum(stats.errors.values()),
            "error_kinds": dict(stats.errors),
            "rss_first_mb": first.get("rss_mb"), "rss_last_mb": last.get("rss_mb"),
            "rss_growth_mb": round(last["rss_mb"] - first["rss_mb"], 1) if rows else None,
            "p99_first_ms": first.get("p99_ms"), "p99_last_ms": last.get("p99_ms"),
            "p99_drift": (round(last["p99_ms"] / first["p99_ms"], 2)
                          if rows and first.get("p99_ms") else None),
            "lag_p99_ms": dl.ms(dl.pct(stats.loop_lag, 99)),
            "intervals": rows,
        }
        print(json.dumps(out))
        return 0 if check["lost"] == 0 else 1
    finally:
        server.stop()
        db.drop()


if __name__ == "__main__":
    sys.exit(main())
