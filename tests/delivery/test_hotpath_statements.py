"""The hot path's save on each database (``assessment.delivery.hotpath.save``): on PostgreSQL a
request of up to ``ONE_STATEMENT_SAVES`` saves is one statement (the attempt's UPDATE with the
rows' INSERT in a ``WITH``), so its rows are inserted before the attempt's checks run; a save
those checks refuse must leave nothing behind. Each case runs on a Core connection in a
transaction the test commits only when the save answered (what the group commit and the node's
writer do), and compares what is stored afterwards."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select, update

from assessment.delivery import hotpath
from assessment.delivery.hotpath import ONE_STATEMENT_SAVES, SignedIn
from assessment.delivery.models import Attempt, ResponseSave
from assessment.delivery.service import SaveRequest
from microcred.querycount import count_queries


@pytest.fixture
def attempt(app, db, started, candidate):
    """(attempt id, the candidate's sign-in, the attempt's item ids, an answer for each)."""
    attempt_id, _ = started
    row = db.get(Attempt, attempt_id)
    items = list(row.item_order)
    from itembank.models import ItemVersion

    answers = {}  # two answers for each item: its first, and other content
    for item_id in items:
        kind = db.get(ItemVersion, item_id).item_type
        answers[item_id] = (["A", "C"], ["B", "D"]) if kind == "multiple_response" else ("B", "D")
    db.commit()
    return attempt_id, SignedIn(candidate.id, candidate.session_epoch), items, answers


def _save(app, attempt_id, who, saves, position=None):
    """The hot path's save, committed only when it answered; (answer, statements sent)."""
    database = app.extensions["microcred.database"]
    with database.write_engine.connect() as conn:
        with count_queries(database.write_engine) as queries:
            answer = hotpath.save(conn, attempt_id, saves, position, who, 2.0,
                                  own_transaction=False)
        if answer is None:
            conn.rollback()
        else:
            conn.commit()
    return answer, queries


def _stored(db, attempt_id):
    db.expire_all()
    rows = db.execute(select(ResponseSave.seq, ResponseSave.item_version_id, ResponseSave.value)
                      .where(ResponseSave.attempt_id == attempt_id)
                      .order_by(ResponseSave.seq)).all()
    attempt = db.get(Attempt, attempt_id)
    result = [tuple(r) for r in rows], attempt.last_seq, attempt.position
    db.commit()
    return result


def _statements(db, saves: int) -> int:
    """What a request of ``saves`` saves sends, the item shapes known (cached) already."""
    if db.get_bind().dialect.name == "postgresql" and 0 < saves <= ONE_STATEMENT_SAVES:
        return 1
    return 2


def test_saves_of_several_items_in_one_request(app, db, attempt):
    attempt_id, who, items, answers = attempt
    first = [SaveRequest(seq, item, answers[item][0], False)
             for seq, item in enumerate(items[:3], start=1)]
    hotpath.forget_shapes()
    answer, _ = _save(app, attempt_id, who, first, position=2)
    assert answer["acks"] == [{"seq": s, "status": "saved"} for s in (1, 2, 3)]
    assert answer["last_seq"] == 3
    # the shapes are known now: the statements of the usual save
    again = [SaveRequest(4, items[0], answers[items[0]][1], True)]
    answer, queries = _save(app, attempt_id, who, again)
    assert answer["acks"] == [{"seq": 4, "status": "saved"}]
    assert len(queries) == _statements(db, 1), queries.report()
    # one request with a retry (same content), a new save, and a seq reused for other content
    mixed = [SaveRequest(1, items[0], answers[items[0]][0], False),
             SaveRequest(5, items[1], answers[items[1]][1], False),
             SaveRequest(2, items[1], answers[items[1]][1], False)]
    answer, queries = _save(app, attempt_id, who, mixed)
    assert answer["acks"] == [{"seq": 1, "status": "duplicate"}, {"seq": 5, "status": "saved"},
                              {"seq": 2, "status": "conflict"}]
    assert answer["last_seq"] == 5
    # telling a retry from a conflict reads what was stored: one statement more
    assert len(queries) == _statements(db, 3) + 1, queries.report()
    rows, last_seq, position = _stored(db, attempt_id)
    assert [r[:2] for r in rows] == [(1, items[0]), (2, items[1]), (3, items[2]),
                                     (4, items[0]), (5, items[1])]
    assert rows[1][2] == answers[items[1]][0]  # the conflicting save did not replace seq 2
    assert (last_seq, position) == (5, 2)


def test_more_saves_than_one_statement_holds(app, db, attempt):
    attempt_id, who, items, answers = attempt
    n = ONE_STATEMENT_SAVES + 1
    saves = [SaveRequest(seq, items[seq % len(items)], answers[items[seq % len(items)]][0],
                         seq % 2 == 0) for seq in range(1, n + 1)]
    _save(app, attempt_id, who, saves[:1])
    with app.extensions["microcred.database"].engine.connect() as conn:
        hotpath._shapes(conn, set(items))  # every item's shape read once, before counting
    answer, queries = _save(app, attempt_id, who, saves)
    assert answer["acks"] == [{"seq": 1, "status": "duplicate"}] + [
        {"seq": s, "status": "saved"} for s in range(2, n + 1)]
    # UPDATE, INSERT of the rest, and the stored seq 1 read to tell a retry from a conflict
    assert len(queries) == 3, queries.report()
    rows, last_seq, _ = _stored(db, attempt_id)
    assert [r[0] for r in rows] == list(range(1, n + 1)) and last_seq == n


@pytest.mark.parametrize("refusal", ["paused", "time up", "not its item", "position",
                                     "another candidate", "finished"])
def test_a_save_the_attempt_refuses_keeps_nothing(app, db, attempt, make_user, refusal):
    """Declined (None: the full path answers why) and nothing stored: not the rows, not the
    attempt's last seq or position, though on PostgreSQL the rows went in with the UPDATE."""
    attempt_id, who, items, answers = attempt
    stored = [SaveRequest(1, items[0], answers[items[0]][0], False)]
    assert _save(app, attempt_id, who, stored, position=0)[0] is not None
    before = _stored(db, attempt_id)
    saves = [SaveRequest(2, items[1], answers[items[1]][0], False),
             SaveRequest(3, items[2], answers[items[2]][0], True)]
    position = None
    now = dt.datetime.now(dt.UTC)
    change = None
    if refusal == "paused":
        change = {"paused_since": now}
    elif refusal == "time up":
        change = {"deadline_at": now - dt.timedelta(minutes=5)}
    elif refusal == "finished":
        change = {"status": "submitted"}
    elif refusal == "not its item":
        from itembank.models import ItemVersion
        from tests.conftest import build_exam

        build_exam(db, code="OTHER")
        other = db.scalar(select(ItemVersion.id).where(ItemVersion.id.not_in(items)))
        saves[1] = SaveRequest(3, other, "B", False)  # a published item of another exam
    elif refusal == "position":
        position = len(items)
    elif refusal == "another candidate":
        other = make_user("candidate")
        who = SignedIn(other.id, other.session_epoch)
    if change:
        db.execute(update(Attempt).where(Attempt.id == attempt_id).values(**change))
        db.commit()
    answer, _ = _save(app, attempt_id, who, saves, position=position)
    assert answer is None
    assert _stored(db, attempt_id) == before
    assert db.scalar(select(func.count()).select_from(ResponseSave)) == 1
