"""The node-capacity bench (``bench/node_capacity.py``) for a few seconds, so it keeps working:
proctored candidates sign in and start through the pages, then four wrk runs send their
heartbeats, saves, camera frames and integrity events at once to this app on a real HTTP
server in this process, with the face checker beside it; every save wrk was told was stored is
in the database as the bench's rule says it was sent. Figures are not asserted: the bench
prints them."""
from __future__ import annotations

import shutil
import threading

import pytest
from werkzeug.serving import make_server

from tests.conftest import PASSWORD
from tests.proctoring.test_exam_day_bench import _InProcess
from tests.test_saturation_bench import _run_apart

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None,
                                reason="wrk is not installed ('make test' installs it as root; "
                                       "else 'sudo apt-get install wrk')")


def test_node_capacity_bench_runs_briefly(app, database, proctored, make_user, tmp_path):
    from bench import node_capacity as nc
    from bench.delivery_load import check_lost
    from bench.save_saturation import expected_saves
    from proctoring import face_checks

    ns = proctored({"identity": "none", "snapshot_interval_s": 5}, code="CAP-TINY")
    emails = [ns.candidate.email] + [make_user("candidate").email for _ in range(2)]
    cfg = nc.quick(nc.parser().parse_args([]))
    cfg.seconds, cfg.exam_code, cfg.password = 2, ns.exam.code, PASSWORD
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stop = threading.Event()
    checker = threading.Thread(target=face_checks.serve, args=(
        database.session, app.extensions["microcred.proctoring"].vault),
        kwargs={"stop": stop, "idle_s": 0.05}, daemon=True)
    checker.start()
    base_url = f"http://127.0.0.1:{server.server_port}"
    try:
        cands = _run_apart(nc.set_up(base_url, emails, cfg))
        assert len(cands) == 3
        step = nc.run_step(base_url, cands, 0, cfg, _InProcess(), database.url, tmp_path, False)
    finally:
        stop.set()
        server.shutdown()
        thread.join(5)
        checker.join(10)
    kinds = step["kinds"]
    assert list(kinds) == ["heartbeat", "saves", "snapshot", "events"], kinds
    # every kind of request sent and answered 200, none failed on its socket
    for kind, f in kinds.items():
        assert f["requests"] > 0 and f["statuses"].keys() == {"200"}, (kind, f)
        assert f["socket_errors"] == 0, (kind, f)
    # the frames were stored (and owed or counted), the events batches ingested
    assert step["snapshots_per_s"] > 0
    check = check_lost(database.url, expected_saves(cands, step["acked"]))
    assert step["acked"] and check["lost"] == 0 and check["mismatched"] == 0, check
    # each candidate's saves followed its own seqs: candidate i sends i+1, i+1+3, ...
    assert {seq % 3 for seq in step["acked"]} == {0, 1, 2}
