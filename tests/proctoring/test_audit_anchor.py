"""The audit chain anchored outside the database (issue 9, finding 6), on SQLite and PostgreSQL.

Both attacks of the finding are done for real in the database: a record edited with every later
hash and the head recomputed, and the newest records deleted with the head moved back. Each
fools the hash chain alone (``audit.verify`` says intact) and is found by ``microcred audit
verify`` against the signed checkpoints. A clean chain verifies; an edited checkpoint file is
found; a rewritten chain is never signed; an exported copy holds even when the attacker also
controls the instance folder."""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import stat

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from proctoring import audit, checkpoints
from proctoring.models import AuditRecord


@pytest.fixture
def cli(db, settings, monkeypatch):
    """``cli(*args)`` runs ``microcred ...`` on the test database and instance folder."""
    from assessment.cli import main

    monkeypatch.setenv("MICROCRED_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("MICROCRED_INSTANCE_DIR", str(settings.instance_dir))
    monkeypatch.delenv("MICROCRED_AUDIT_SIGNING_KEY", raising=False)
    return lambda *args: CliRunner().invoke(main, list(args))


def _append(db, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        audit.record(db, "test.action", actor=None, subject_type="thing", subject_id=i,
                     data={"i": i, "verdict": "cleared"})
    db.commit()


def _json_param(db) -> str:
    return "CAST(:d AS JSON)" if db.get_bind().dialect.name == "postgresql" else ":d"


def rewrite(db, seq: int, data: dict) -> None:
    """What a database writer does: edit record ``seq``, recompute every hash after it and
    move the head to the new last hash."""
    prev = audit.GENESIS
    for r in db.query(AuditRecord).order_by(AuditRecord.seq).all():
        body = data if r.seq == seq else r.data
        h = audit.link_hash(prev, audit.canonical(r.seq, r.at, r.actor_id, r.actor, r.action,
                                                  r.subject_type, r.subject_id, body))
        db.execute(text(f"UPDATE audit_records SET data = {_json_param(db)}, prev_hash = :p, "
                        "hash = :h WHERE id = :id"),
                   {"d": json.dumps(body), "p": prev, "h": h, "id": r.id})
        prev = h
    db.execute(text("UPDATE audit_chain_head SET hash = :h"), {"h": prev})
    db.commit()


def truncate(db, keep: int) -> None:
    """What a database writer does: delete the newest records and move the head back."""
    last = db.query(AuditRecord).filter(AuditRecord.seq == keep).one()
    db.execute(text("DELETE FROM audit_records WHERE seq > :k"), {"k": keep})
    db.execute(text("UPDATE audit_chain_head SET seq = :k, hash = :h"), {"k": keep, "h": last.hash})
    db.commit()


def test_a_clean_chain_verifies_against_its_checkpoints(db, settings, cli):
    _append(db, 3)
    first = cli("audit", "checkpoint")
    assert first.exit_code == 0 and "3 records" in first.output, first.output
    _append(db, 2, start=3)
    assert cli("audit", "checkpoint").exit_code == 0
    ok = cli("audit", "verify")
    assert ok.exit_code == 0, ok.output
    assert "audit log intact: 5 records" in ok.output
    assert "anchored by 2 signed checkpoint(s)" in ok.output and "at seq 5" in ok.output

    key = settings.instance_dir / checkpoints.KEY_FILE
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    lines = (settings.instance_dir / checkpoints.CHECKPOINT_FILE).read_text().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [3, 5]


def test_a_rewritten_and_rehashed_record_is_found(db, cli):
    _append(db, 4)
    assert cli("audit", "checkpoint").exit_code == 0
    _append(db, 1, start=4)
    rewrite(db, 2, {"i": 1, "verdict": "invalidated"})
    assert audit.verify(db).ok  # the attack of the finding: the chain alone says intact
    bad = cli("audit", "verify")
    assert bad.exit_code == 1, bad.output
    assert "TAMPERED" in bad.output
    assert "record seq 4 does not carry the hash the checkpoint" in bad.output
    assert "were rewritten" in bad.output


def test_deleted_newest_records_with_the_head_moved_back_are_found(db, cli):
    _append(db, 5)
    assert cli("audit", "checkpoint").exit_code == 0
    truncate(db, 3)
    assert audit.verify(db).ok  # the attack of the finding: the chain alone says intact
    bad = cli("audit", "verify")
    assert bad.exit_code == 1, bad.output
    assert "signed 5 records, but the log now has 3" in bad.output
    assert "newest rows were deleted" in bad.output


def test_an_edited_or_pruned_checkpoint_file_is_found(db, settings, cli):
    _append(db, 2)
    for n in (3, 2):
        assert cli("audit", "checkpoint").exit_code == 0
        _append(db, n, start=10 * n)
    assert cli("audit", "checkpoint").exit_code == 0
    path = settings.instance_dir / checkpoints.CHECKPOINT_FILE
    lines = path.read_text().splitlines()
    forged = json.loads(lines[0]) | {"seq": 1}
    path.write_text("\n".join([json.dumps(forged), *lines[1:]]) + "\n")
    edited = cli("audit", "verify")
    assert edited.exit_code == 1 and "checkpoint 1" in edited.output
    assert "not signed by the audit key" in edited.output
    path.write_text("\n".join([lines[0], lines[2]]) + "\n")  # the middle one removed
    pruned = cli("audit", "verify")
    assert pruned.exit_code == 1 and "checkpoints were removed or reordered" in pruned.output


def test_the_sweeper_signs_when_due_and_never_signs_a_rewritten_chain(db, settings, caplog):
    t0 = dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC)
    instance = settings.instance_dir
    assert checkpoints.checkpoint_if_due(db, instance, every_s=300, now=t0) is None  # empty
    _append(db, 2)
    assert checkpoints.checkpoint_if_due(db, instance, every_s=300, now=t0).seq == 2
    _append(db, 1, start=2)
    later = t0 + dt.timedelta(seconds=100)
    assert checkpoints.checkpoint_if_due(db, instance, every_s=300, now=later) is None  # not due
    due = t0 + dt.timedelta(seconds=301)
    assert checkpoints.checkpoint_if_due(db, instance, every_s=300, now=due).seq == 3
    assert checkpoints.checkpoint_if_due(db, instance, every_s=300,  # nothing new
                                         now=due + dt.timedelta(hours=1)) is None
    _append(db, 1, start=3)
    rewrite(db, 1, {"forged": True})
    with caplog.at_level(logging.ERROR, logger="microcred.audit"):
        assert checkpoints.checkpoint_if_due(db, instance, every_s=300,
                                             now=due + dt.timedelta(hours=2)) is None
    assert "audit record 3 no longer has the hash the last checkpoint" in caplog.text
    with pytest.raises(checkpoints.CheckpointError, match="were rewritten"):
        checkpoints.write_checkpoint(db, instance)
    assert len(checkpoints.read_checkpoints(checkpoints.checkpoint_path(instance))) == 2


def test_the_sweep_command_writes_a_checkpoint(db, settings, cli):
    _append(db, 2)
    swept = cli("sweep")
    assert swept.exit_code == 0, swept.output
    signed = checkpoints.read_checkpoints(checkpoints.checkpoint_path(settings.instance_dir))
    assert [(c.seq, c.head) for c in signed] == [(2, _head(db))]


def _head(db) -> str:
    return db.query(AuditRecord).order_by(AuditRecord.seq.desc()).first().hash


def test_an_export_holds_against_an_attacker_with_the_database_and_the_instance_folder(
        db, settings, cli, tmp_path):
    _append(db, 4)
    assert cli("audit", "checkpoint").exit_code == 0
    exported = tmp_path / "offsite.json"
    out = cli("audit", "export-checkpoints", "-o", str(exported))
    assert out.exit_code == 0, out.output
    doc = json.loads(exported.read_text())
    assert doc["format"] == checkpoints.EXPORT_FORMAT and len(doc["checkpoints"]) == 1
    public_key = doc["public_key"]

    # the attacker rewrites the chain, deletes the checkpoint file and signs a fresh one with
    # the instance folder's key: the server's own files now agree with the forgery
    rewrite(db, 1, {"forged": True})
    checkpoints.checkpoint_path(settings.instance_dir).unlink()
    assert cli("audit", "checkpoint").exit_code == 0
    assert cli("audit", "verify").exit_code == 0

    # the exported copy, checked with the public key kept with it, still finds the rewrite
    held = cli("audit", "verify", "--checkpoints", str(exported), "--public-key", public_key)
    assert held.exit_code == 1, held.output
    assert "record seq 4 does not carry the hash" in held.output

    # and a different key is refused: an export is only as good as the key it is checked with
    other = checkpoints.public_key_text(
        checkpoints.load_signer(tmp_path, {"MICROCRED_AUDIT_SIGNING_KEY": "11" * 32}).public_key)
    wrong = cli("audit", "verify", "--checkpoints", str(exported), "--public-key", other)
    assert wrong.exit_code == 1 and "not signed by the audit key" in wrong.output


def test_verify_without_checkpoints_says_so(db, cli):
    _append(db, 1)
    out = cli("audit", "verify")
    assert out.exit_code == 0
    assert "no signed checkpoint yet" in out.output
