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


def test_a_flush_never_waits_for_a_row_another_transaction_holds(app, db, proctored, make_user):
    """On PostgreSQL a flush skips a session row another transaction has locked (a frame's
    write, the node's writer's group) and writes it at the next flush: waiting for it while
    holding the rows already updated could close a deadlock cycle (seen at 5,000 candidates)."""
    import threading

    import pytest

    from assessment.delivery import service
    from proctoring import liveness
    from proctoring.models import ProctorSession
    from proctoring.sessions import session_for_attempt

    database = app.extensions["microcred.database"]
    if database.is_sqlite:
        pytest.skip("SQLite locks the database, not rows: a flush waits its turn for the lock")
    ns = proctored({"identity": "none", "snapshot_interval_s": 30})
    ids = []
    for _ in range(3):
        attempt = service.start_attempt(db, make_user("candidate"), ns.exam, grace_seconds=5)
        ids.append(session_for_attempt(db, attempt.id).id)
    db.commit()
    liveness.flush()
    at = dt.datetime(2030, 1, 1, 9, tzinfo=dt.UTC)
    for sid in ids:
        liveness.seen(database, sid, at)
    holder = database.session()
    held = holder.get(ProctorSession, ids[1], with_for_update=True)  # another's transaction
    assert held is not None
    done = threading.Event()
    written = []
    flusher = threading.Thread(target=lambda: (written.append(liveness.flush(database)),
                                               done.set()))
    flusher.start()
    assert done.wait(10), "the flush waited for the locked row"
    flusher.join()
    assert written == [2]

    def seen():
        db.commit()
        return dict(db.execute(select(ProctorSession.id, ProctorSession.last_seen_at)
                               .where(ProctorSession.id.in_(ids))).all())

    assert seen()[ids[0]] == at and seen()[ids[2]] == at and seen()[ids[1]] != at
    holder.rollback()
    holder.close()
    assert liveness.flush(database) == 1  # kept, and written once the row is free
    assert set(seen().values()) == {at}
