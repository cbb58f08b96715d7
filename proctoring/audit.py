"""The tamper-evident audit log: an append-only chain of records, each carrying the hash of the
one before it.

``hash_n = SHA-256(prev_hash || canonical_json(seq, at, actor, action, subject, data))`` with
``hash_0 = GENESIS``. Editing a row changes its hash; deleting or reordering rows breaks the
sequence or the ``prev_hash`` links; deleting the newest rows leaves the chain head pointing
past the end. :func:`verify` finds each of these.

Appending is serialised across processes by the one-row :class:`AuditChainHead`: its UPDATE
takes a row lock on PostgreSQL (concurrent appenders wait, then read the committed head) and the
write lock on SQLite. ``seq`` is unique as a last line of defence.

That lock is held until the transaction commits, and every proctoring state change in the
deployment appends, so nothing slow may run while it is held. :func:`record` therefore only
notes the record in the caller's transaction; the chain is extended when that transaction
commits (:func:`_append_noted`, a ``before_commit`` hook): the head is locked, the records
hashed and inserted, and the transaction committed, three statements however many records.
Image processing, verifier plugins and anything else the transaction does run before, outside
the lock. A transaction that rolls back appends nothing.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import event, insert, select, update
from sqlalchemy.orm import Session

from microcred.db import utcnow
from proctoring.models import AuditChainHead, AuditRecord

GENESIS = "0" * 64
HEAD_ID = 1


class Actor(Protocol):
    id: int
    email: str


def canonical(seq: int, at: dt.datetime, actor_id: int | None, actor: str, action: str,
              subject_type: str, subject_id: str, data: dict[str, Any]) -> bytes:
    """The bytes a record's hash covers: sorted-key compact JSON, times in UTC to the µs."""
    body = {
        "seq": seq,
        "at": at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "actor_id": actor_id,
        "actor": actor,
        "action": action,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "data": data,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def link_hash(prev_hash: str, payload: bytes) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + payload).hexdigest()


def _ensure_head(session: Session) -> None:
    """Create the head row if it is missing (a fresh or emptied database)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    session.execute(
        insert(AuditChainHead)
        .values(id=HEAD_ID, seq=0, hash=GENESIS)
        .on_conflict_do_nothing(index_elements=["id"])
    )


def _advance_head(session: Session, count: int = 1) -> tuple[int, str]:
    """Lock the chain head and claim the next ``count`` sequence numbers. Returns (the first
    claimed seq, the hash it follows)."""
    stmt = (
        update(AuditChainHead)
        .where(AuditChainHead.id == HEAD_ID)
        .values(seq=AuditChainHead.seq + count)
        .returning(AuditChainHead.seq, AuditChainHead.hash)
    )
    row = session.execute(stmt).first()
    if row is None:
        _ensure_head(session)
        row = session.execute(stmt).first()
    return int(row[0]) - count + 1, str(row[1])


@dataclass(frozen=True)
class _Noted:
    at: dt.datetime
    actor_id: int | None
    actor: str
    action: str
    subject_type: str
    subject_id: str
    data: dict[str, Any]


_NOTED = "proctoring.audit.noted"


def record(
    session: Session,
    action: str,
    *,
    actor: Actor | None,
    subject_type: str,
    subject_id: int | str,
    data: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> None:
    """Add one record to the chain when the caller's transaction commits (nothing if it rolls
    back). The record's time is ``at`` (default: now), its place in the chain is taken at the
    commit, under the head's lock, which is held for the append alone.

    ``actor`` None means the system itself (a sweep, a rule, a plugin). ``data`` must be JSON of
    strings, integers, booleans, lists and dicts (floats are refused: their text may change).
    """
    data = dict(data or {})
    _check_json(data, "data")
    if not session.in_transaction():  # so that a rollback before any SQL forgets the note too
        session.begin()
    session.info.setdefault(_NOTED, []).append(_Noted(
        at=at or utcnow(), actor_id=actor.id if actor is not None else None,
        actor=actor.email if actor is not None else "system", action=action,
        subject_type=subject_type, subject_id=str(subject_id), data=data))


@event.listens_for(Session, "before_commit")
def _append_noted(session: Session) -> None:
    noted = session.info.pop(_NOTED, None)
    if noted:
        append(session, noted)


@event.listens_for(Session, "after_soft_rollback")
def _forget_noted(session: Session, previous_transaction: Any) -> None:
    # every rollback, even of a transaction that sent nothing yet (noting sends nothing); a
    # savepoint's rollback leaves the outer transaction's notes
    if not previous_transaction.nested:
        session.info.pop(_NOTED, None)


def append(session: Session, noted: list[_Noted]) -> None:
    """Extend the chain by ``noted``, in order: lock the head and claim their numbers, hash,
    insert them, move the head (three statements, and what the caller flushes first)."""
    session.flush()  # the transaction's own writes first, before the head is locked
    seq, prev = _advance_head(session, len(noted))
    rows = []
    for n in noted:
        payload = canonical(seq, n.at, n.actor_id, n.actor, n.action, n.subject_type,
                            n.subject_id, n.data)
        digest = link_hash(prev, payload)
        rows.append({"seq": seq, "at": n.at, "actor_id": n.actor_id, "actor": n.actor,
                     "action": n.action, "subject_type": n.subject_type,
                     "subject_id": n.subject_id, "data": n.data, "prev_hash": prev,
                     "hash": digest})
        seq, prev = seq + 1, digest
    session.execute(insert(AuditRecord), rows)
    session.execute(update(AuditChainHead).where(AuditChainHead.id == HEAD_ID).values(hash=prev))


def _check_json(value: Any, where: str) -> None:
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        raise TypeError(f"audit {where}: floats are not allowed (store a string or integer)")
    if isinstance(value, list):
        for i, v in enumerate(value):
            _check_json(v, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"audit {where}: keys must be strings")
            _check_json(v, f"{where}.{k}")
        return
    raise TypeError(f"audit {where}: {type(value).__name__} is not JSON")


@dataclass
class VerifyReport:
    """What :func:`verify` found: ``ok`` when the chain is intact."""

    records: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(session: Session, *, batch: int = 5000) -> VerifyReport:
    """Walk the chain in ``seq`` order and report every edited, deleted or reordered row."""
    report = VerifyReport()
    expected_seq, prev = 1, GENESIS
    last_id = 0
    order = (AuditRecord.seq, AuditRecord.id)
    last_seq = 0
    while True:
        rows = list(
            session.scalars(
                select(AuditRecord).where(AuditRecord.seq > last_seq).order_by(*order).limit(batch)
                .execution_options(populate_existing=True)  # what is stored, not what is cached
            )
        )
        if not rows:
            break
        for r in rows:
            report.records += 1
            if r.seq != expected_seq:
                report.problems.append(
                    f"record seq {r.seq} (id {r.id}): expected seq {expected_seq}; "
                    f"{'rows are missing' if r.seq > expected_seq else 'sequence out of order'}"
                )
            if r.prev_hash != prev:
                report.problems.append(
                    f"record seq {r.seq} (id {r.id}): its prev_hash does not match the hash of "
                    "the record before it (a row was deleted, inserted or reordered)"
                )
            if r.id < last_id:
                report.problems.append(
                    f"record seq {r.seq} (id {r.id}): ids run backwards (rows were reordered)"
                )
            payload = canonical(r.seq, r.at, r.actor_id, r.actor, r.action, r.subject_type,
                                r.subject_id, r.data)
            if link_hash(r.prev_hash, payload) != r.hash:
                report.problems.append(
                    f"record seq {r.seq} (id {r.id}): content does not match its hash "
                    "(the row was edited)"
                )
            prev, expected_seq, last_id, last_seq = r.hash, r.seq + 1, r.id, r.seq
    head = session.get(AuditChainHead, HEAD_ID, populate_existing=True)
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS)
    if head_seq != expected_seq - 1 or head_hash != prev:
        report.problems.append(
            f"the chain head says {head_seq} records ending in {head_hash[:12]}, but the log "
            f"ends at seq {expected_seq - 1} with {prev[:12]} (newest rows were deleted or added)"
        )
    return report
