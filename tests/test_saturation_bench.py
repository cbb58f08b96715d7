"""The save-saturation bench (``bench/save_saturation.py``) for a second, so it keeps working:
wrk sends the candidates' saves and heartbeats to this app on a real HTTP server in this
process, and every save it was told was stored is in the database with the item, value and
flag the bench's rule says it sent. Figures are not asserted: the bench prints them."""
from __future__ import annotations

import asyncio
import os
import shutil
import threading

import pytest
from werkzeug.serving import make_server

from tests.conftest import bench_candidates

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None,
                                reason="wrk is not installed ('make test' installs it as root; "
                                       "else 'sudo apt-get install wrk')")


def test_saturation_bench_runs_briefly(app, db, database, build_exam, tmp_path):
    from bench import delivery_load as dl
    from bench import save_saturation as sat
    from bench import soak

    build_exam(db, code=dl.EXAM_CODE, minutes=30)
    emails = bench_candidates(db, 3, "wrk")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{server.server_port}"
    try:
        stats = dl.Stats()
        cands = _run_apart(sat.sign_in_all(base_url, emails, 3, stats))
        assert len(cands) == 3 and not stats.errors, stats.errors
        w = sat.run_wrk(base_url, cands, "mixed", 1, 2, 1, tmp_path)
        # the soak: two paced windows, the second's saves going on after the first's
        soaked = sat.soak(base_url, cands, "saves", 2 / 60, 1, 20, 2, 1, tmp_path,
                          lambda: 0.0, lambda: soak.tree_rss(os.getpid()),
                          lambda expected: dl.check_lost(database.url, expected))
    finally:
        server.shutdown()
        thread.join(5)
    expected = sat.expected_saves(cands, w["acked"])
    check = dl.check_lost(database.url, expected)
    out = sat.figures(w, check)
    # saves and heartbeats both answered, every answer a 200, every acknowledged save stored
    # as the bench's rule says it was sent (a second save of each candidate: the rule's j > 0)
    assert out["statuses"].keys() == {"200"} and out["socket_errors"] == 0, out
    assert out["acknowledged"] >= 6 and out["requests_per_s"] > out["saves_per_s"], out
    assert {seq for seq in w["acked"]} >= {1, 2, 3, 4, 5, 6}, sorted(w["acked"])[:10]
    assert check["lost"] == 0 and check["mismatched"] == 0 and check["stored"] >= 6, check
    rows = soaked["rows"]
    assert [r["window"] for r in rows] == [1, 2] and all(r["rss_mb"] > 0 for r in rows), rows
    # paced: 2 connections waiting 20 ms before each request answer under 100 requests/s
    assert all(0 < r["requests_per_s"] < 100 and r["statuses"].keys() == {"200"} for r in rows)
    assert soaked["acknowledged"] >= 4 and soaked["lost"] == 0 and soaked["mismatched"] == 0


def test_expected_saves_follows_the_lua_rule():
    """Seq i+1+j*N is candidate i's j-th save: item j mod its items, option j mod its options
    (a list of one for multiple response, as the check compares it: a sorted tuple)."""
    from types import SimpleNamespace

    from bench import save_saturation as sat

    items = [(0, {"id": 10, "type": "single_choice",
                  "options": [{"id": "A"}, {"id": "B"}, {"id": "C"}]}),
             (3, {"id": 11, "type": "multiple_response", "options": [{"id": "X"}, {"id": "Y"}]})]
    cands = [SimpleNamespace(attempt_id=100 + i, simple=items) for i in range(2)]
    assert sat.expected_saves(cands, [1, 2, 3, 4, 6]) == {
        (100, 1): (10, "A", False),      # candidate 0, j=0
        (101, 2): (10, "A", False),      # candidate 1, j=0
        (100, 3): (11, ("Y",), False),     # candidate 0, j=1: item 1, option 1
        (101, 4): (11, ("Y",), False),
        (101, 6): (10, "C", False),      # candidate 1, j=2: item 0, option 2
    }


def _run_apart(coro):
    """``asyncio.run`` in a thread of its own (a browser test may leave Playwright's loop
    running in this worker's main thread)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
