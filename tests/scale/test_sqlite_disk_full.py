"""SQLite's disk full (issue 15, goal 8): a clear error, and nothing acknowledged that is not
stored.

The disk is filled the way a process meets a full disk without root: ``microcred serve`` runs
with a file size limit (RLIMIT_FSIZE, what ``ulimit -f`` sets) just above the database's size,
so SQLite's write of the WAL fails in the kernel (EFBIG; a full filesystem gives ENOSPC, the same
path in SQLite: the write fails, the transaction rolls back). Saves go on until the limit is met;
the one that does not fit gets a 507 with ``storage_full`` and a message saying nothing was
stored, and is not acknowledged. Then space is freed (the limit lifted on the running
processes) and the same save, sent again as the runner does, is stored: every acknowledged save
is in the database as sent.
"""
from __future__ import annotations

import resource

import httpx

from tests.scale.cluster import Candidate, Node, _canonical, prepare


def test_sqlite_disk_full_is_a_clear_error_and_loses_nothing(tmp_path):
    db_path = tmp_path / "microcred.db"
    url = f"sqlite:///{db_path}"
    emails = prepare(url, n_candidates=1)
    node = Node("sqlite", tmp_path, url, None, workers=1, sweep_every=0)
    wal = db_path.with_name(db_path.name + "-wal")
    node.file_size_limit = db_path.stat().st_size + 96 * 1024
    candidate = None
    try:
        node.start()
        candidate = Candidate(node.base_url, emails[0])
        candidate.sign_in()
        candidate.start()
        refused = None
        for _ in range(400):
            candidate.seq += 1
            item = candidate.items[candidate.seq % len(candidate.items)]
            value = [o["id"] for o in item["options"]][: 2 if item["type"] ==
                                                         "multiple_response" else 1]
            value = value if item["type"] == "multiple_response" else value[0]
            body = {"saves": [{"seq": candidate.seq, "item": item["id"], "value": value,
                               "flagged": False}], "position": 0}
            resp = candidate.client.post(f"/api/attempts/{candidate.attempt_id}/saves", json=body,
                                         headers={"X-CSRFToken": candidate.token})
            if resp.status_code != 200:
                refused = resp
                break
            (ack,) = resp.json()["acks"]
            assert ack["status"] == "saved", ack
            candidate.acked[candidate.seq] = (item["id"], _canonical(value), False)
        assert refused is not None, (
            f"400 saves fitted under the limit (database {db_path.stat().st_size} B, "
            f"WAL {wal.stat().st_size if wal.exists() else 0} B)")
        assert refused.status_code == 507, (refused.status_code, refused.text[:300])
        problem = refused.json()
        assert problem["error"] == "storage_full"
        assert "nothing of this request was stored" in problem["message"]
        assert refused.headers["Retry-After"] == "2"
        assert len(candidate.acked) > 3, "the limit left no room for the first saves"
        assert candidate.lost(url) == {}

        # Space is freed; the refused save, sent again with its seq, is stored.
        for pid in node.group_pids():
            resource.prlimit(pid, resource.RLIMIT_FSIZE,
                       (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        candidate.seq -= 1
        for _ in range(3):
            candidate.save()
        candidate.submit()
        assert candidate.lost(url) == {}
        assert httpx.get(node.base_url + "/healthz").status_code == 200
    except BaseException:
        print(node.tail(60))
        raise
    finally:
        if candidate:
            candidate.close()
        node.stop()
