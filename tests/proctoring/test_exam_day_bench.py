"""The exam-day bench (``bench/exam_day.py``) at a tiny scale, so it keeps working: its
candidates (sign-in, start, heartbeats, answers, events, snapshots, review, submit) against
this app on a real HTTP server in this process, and its check of every acknowledged save
against the database. Figures are not asserted here: the bench prints them."""
from __future__ import annotations

import asyncio
import threading
import time

from werkzeug.serving import make_server

from tests.conftest import PASSWORD


class _InProcess:
    """The bench's view of the server: its CPU (this process: the server and its face checker
    run in it)."""

    workers = threads = 1

    def cpu(self) -> float:
        return time.process_time()

    def faces_cpu(self) -> float:
        return 0.0  # counted in cpu(): one process

    def writer_cpu(self) -> float:
        return 0.0  # no node's writer: the app writes itself, in this process


def test_exam_day_bench_runs_at_tiny_scale(app, db, database, proctored, make_user):
    from bench import exam_day
    from bench.delivery_load import check_lost
    from proctoring import face_checks

    ns = proctored({"identity": "none", "snapshot_interval_s": 5}, code="DAY-TINY")
    emails = [ns.candidate.email] + [make_user("candidate").email for _ in range(2)]
    cfg = exam_day.quick(exam_day.parser().parse_args([]))
    cfg.steps, cfg.step_seconds, cfg.warmup, cfg.cpu_requests = [3], 2.0, 0.2, 4
    cfg.exam_code, cfg.password = ns.exam.code, PASSWORD
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    stop = threading.Event()  # the face checker `microcred serve` starts beside the server
    faces = threading.Thread(target=face_checks.serve, args=(
        database.session, app.extensions["microcred.proctoring"].vault),
        kwargs={"stop": stop, "idle_s": 0.1}, daemon=True)
    thread.start()
    faces.start()
    try:
        out = _run_apart(exam_day.exam_day(f"http://127.0.0.1:{server.server_port}", emails,
                                            cfg, _InProcess(), False,
                                            exam_day.PHOTO.read_bytes(), database.url))
    finally:
        server.shutdown()
        thread.join(5)
        stop.set()
        faces.join(10)
    assert out["spikes"][0]["started"] == 3, out["spikes"]
    step = out["steps"][0]
    assert not step["errors"], step
    assert {"heartbeat", "save"} <= set(step["endpoints"]), step
    assert out["finish"] == {**out["finish"], "submitted": 3, "errors": {}}
    assert set(out["cpu_ms"]) >= {"heartbeat", "save", "snapshot", "snapshot_face_check"}
    assert {"faces_owed", "faces_counted_per_s", "face_checker_cpu_cores"} <= set(step), step
    check = check_lost(database.url, out["acked"])
    assert out["acked"] and check["lost"] == 0 and check["mismatched"] == 0, check


def _run_apart(coro):
    """``asyncio.run`` in a thread of its own: a browser test earlier in this worker may leave
    Playwright's event loop running in the main thread, where asyncio.run refuses to start."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
