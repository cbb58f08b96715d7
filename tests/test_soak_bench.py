"""The soak bench (``bench/soak.py``) for a few seconds, so it keeps working: candidates
autosave against this app on a real HTTP server in this process, one row of figures per
interval (memory, saves/s, latency, the client's loop lag and CPU), and every acknowledged
save is in the database. Figures are not asserted: the bench prints them (30 minutes is the
issue's soak, not CI's)."""
from __future__ import annotations

import asyncio
import math
import os
import threading

from werkzeug.serving import make_server

from tests.conftest import bench_candidates


def test_soak_bench_runs_briefly(app, db, database, build_exam):
    from bench import delivery_load as dl
    from bench import soak

    build_exam(db, code=dl.EXAM_CODE, minutes=30)
    emails = bench_candidates(db, 3, "soak")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        out = _run_apart(soak.soak(f"http://127.0.0.1:{server.server_port}",
                                    lambda: soak.tree_rss(os.getpid()), emails, minutes=0.06,
                                    interval=0.3, report_every=1.0, setup_concurrency=3,
                                    seed=1))
    finally:
        server.shutdown()
        thread.join(5)
    assert out["active"] == 3
    rows = out["rows"]
    # a row at each second's mark and one for the run's tail: a late wake-up on a busy
    # machine shortens an interval but drops no row, and the rows reach the run's end (3.6 s,
    # less up to 1.5 intervals of 0.3 s: a candidate whose next change falls past it stops)
    assert len(rows) >= 2 and all(r["rss_mb"] > 0 for r in rows), rows
    assert sum(r["span_s"] for r in rows) >= 3.1, rows
    assert sum(r["saves_per_s"] * r["span_s"] for r in rows) > 0, rows
    assert {"t_s", "span_s", "rss_mb", "worker_rss_mb", "saves_per_s", "p50_ms", "p99_ms",
            "errors", "lag_p50_ms", "lag_p99_ms", "lag_max_ms", "client_cpu",
            "machine_cpu"} <= set(rows[0])
    # the loop-lag monitor sampled every interval, and the client's CPU was counted
    assert all(math.isfinite(r["lag_max_ms"]) and r["lag_p50_ms"] <= r["lag_max_ms"]
               for r in rows), rows
    assert any(r["client_cpu"] > 0 for r in rows), rows
    stats = out["stats"]
    assert not stats.errors, stats.errors
    check = dl.check_lost(database.url, stats.acked)
    assert stats.acked and check["lost"] == 0 and check["mismatched"] == 0, check


def _run_apart(coro):
    """``asyncio.run`` in a thread of its own: a browser test earlier in this worker may leave
    Playwright's event loop running in the main thread, where asyncio.run refuses to start."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
