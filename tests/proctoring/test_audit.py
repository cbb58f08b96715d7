"""The hash-chained audit log: appends, verification, tampering of every kind, and concurrent
appenders on SQLite and PostgreSQL."""
from __future__ import annotations

import itertools
import json
import threading

from click.testing import CliRunner
from sqlalchemy import text

from proctoring import audit
from proctoring.models import AuditRecord


def _append(db, n: int, actor=None) -> None:
    for i in range(n):
        audit.record(db, "test.action", actor=actor, subject_type="thing", subject_id=i,
                     data={"i": i, "note": f"row {i}", "nested": {"ok": True}})
    db.commit()


def test_chain_appends_and_verifies(db, make_user):
    admin = make_user("admin")
    _append(db, 5, admin)
    rows = list(db.query(AuditRecord).order_by(AuditRecord.seq))
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    assert rows[0].actor == admin.email
    report = audit.verify(db)
    assert report.ok and report.records == 5


def test_empty_chain_verifies(db):
    assert audit.verify(db).ok


def test_edited_row_is_found(db):
    _append(db, 4)
    db.execute(text(f"UPDATE audit_records SET data = {_set_json(db)} WHERE seq = 2"),
               {"d": '{"i": 99}'})
    db.commit()
    report = audit.verify(db)
    assert not report.ok
    assert any("seq 2" in p and "edited" in p for p in report.problems)


def test_edited_actor_is_found(db):
    _append(db, 3)
    db.execute(text("UPDATE audit_records SET actor = 'someone-else' WHERE seq = 3"))
    db.commit()
    assert any("seq 3" in p and "edited" in p for p in audit.verify(db).problems)


def test_deleted_row_is_found(db):
    _append(db, 5)
    db.execute(text("DELETE FROM audit_records WHERE seq = 3"))
    db.commit()
    problems = audit.verify(db).problems
    assert any("expected seq 3" in p and "missing" in p for p in problems)
    assert any("seq 4" in p and "prev_hash" in p for p in problems)


def test_deleted_newest_rows_are_found(db):
    _append(db, 5)
    db.execute(text("DELETE FROM audit_records WHERE seq >= 4"))
    db.commit()
    problems = audit.verify(db).problems
    assert len(problems) == 1 and "chain head" in problems[0]


def test_reordered_rows_are_found(db):
    _append(db, 4)
    # swap rows 2 and 3 wholesale, hashes included: the links no longer follow
    db.execute(text("UPDATE audit_records SET seq = -2 WHERE seq = 2"))
    db.execute(text("UPDATE audit_records SET seq = 2 WHERE seq = 3"))
    db.execute(text("UPDATE audit_records SET seq = 3 WHERE seq = -2"))
    db.commit()
    problems = audit.verify(db).problems
    assert any("prev_hash" in p for p in problems)


def _set_json(db) -> str:
    return "CAST(:d AS JSON)" if db.get_bind().dialect.name == "postgresql" else ":d"


def test_rehashed_forgery_without_the_head_is_found(db):
    """A forger who edits a row and recomputes every later hash still leaves the head behind."""
    _append(db, 3)
    rows = list(db.query(AuditRecord).order_by(AuditRecord.seq))
    prev = audit.GENESIS
    for r in rows:
        data = {"forged": True} if r.seq == 2 else r.data
        h = audit.link_hash(prev, audit.canonical(r.seq, r.at, r.actor_id, r.actor, r.action,
                                                  r.subject_type, r.subject_id, data))
        db.execute(text(f"UPDATE audit_records SET data = {_set_json(db)}, prev_hash = :p, "
                        "hash = :h WHERE id = :id"),
                   {"d": json.dumps(data), "p": prev, "h": h, "id": r.id})
        prev = h
    db.commit()
    problems = audit.verify(db).problems
    assert len(problems) == 1 and "chain head" in problems[0]


def test_floats_are_refused(db):
    import pytest

    with pytest.raises(TypeError, match="floats"):
        audit.record(db, "x", actor=None, subject_type="t", subject_id=1, data={"v": 0.1})


def test_concurrent_appenders_never_fork_the_chain(database, db):
    """Two writers (own connections, as two app processes would have) append at once."""
    errors: list[BaseException] = []

    def writer(tag: str) -> None:
        try:
            for i in range(15):
                with database.session() as s:
                    audit.record(s, "concurrent", actor=None, subject_type="w", subject_id=tag,
                                 data={"i": i})
                    s.commit()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    report = audit.verify(db)
    assert report.ok, report.problems
    assert report.records == 30


def test_cli_verify(db, settings, monkeypatch):
    from assessment.cli import main

    _append(db, 3)
    monkeypatch.setenv("MICROCRED_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("MICROCRED_INSTANCE_DIR", str(settings.instance_dir))
    ok = CliRunner().invoke(main, ["audit", "verify"])
    assert ok.exit_code == 0, ok.output
    assert "3 records" in ok.output and "intact" in ok.output
    db.execute(text("UPDATE audit_records SET action = 'forged' WHERE seq = 1"))
    db.commit()
    bad = CliRunner().invoke(main, ["audit", "verify"])
    assert bad.exit_code == 1
    assert "seq 1" in bad.output
