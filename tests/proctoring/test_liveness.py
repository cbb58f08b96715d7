"""The heartbeat is the proctoring page's sign of life (proctoring/liveness.py): it writes
nothing itself; each process writes the newest time per session in one statement a few seconds
later, never moving a session's time back, and the console shows the page online."""
from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select


def test_a_heartbeat_marks_the_page_seen_once_flushed(app, client, db, database, proctored,
                                                      signin, csrf_token):
    from proctoring import liveness
    from proctoring.models import ProctorSession

    ns = proctored({"identity": "none", "snapshot_interval_s": 30})
    signin(client, ns.candidate)
    token = csrf_token(client)
    started = client.post(f"/exams/{ns.exam.code}/start", data={"agree": "yes", "csrf_token": token})
    attempt_id = int(re.search(r"/attempts/(\d+)", started.headers["Location"]).group(1))
    liveness.flush()
    ps_id = db.scalar(select(ProctorSession.id).where(ProctorSession.attempt_id == attempt_id))

    def seen():
        db.commit()
        return db.scalar(select(ProctorSession.last_seen_at).where(ProctorSession.id == ps_id))

    before = seen()
    beat = client.get(f"/api/attempts/{attempt_id}/heartbeat")
    assert beat.status_code == 200 and beat.json["extras"]["proctoring"]["session_id"] == ps_id
    assert seen() == before, "the heartbeat itself writes nothing"
    assert liveness.flush(app.extensions["microcred.database"]) == 1
    first = seen()
    assert first is not None and first != before
    # a time older than the stored one (another process's late flush) never moves it back
    liveness.seen(app.extensions["microcred.database"], ps_id, first - dt.timedelta(seconds=20))
    liveness.flush()
    assert seen() == first
    proctor = app.test_client()
    signin(proctor, ns.proctor)
    rows = proctor.get("/api/proctoring/console").json["sessions"]
    assert [r["connection"] for r in rows if r["id"] == ps_id] == ["online"]
