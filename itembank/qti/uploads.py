"""A package uploaded in the browser and waiting for its importer to look at the report and
commit it: held in the database (every app node sees it; no node keeps it in memory), under
a random key, for its owner only, until it expires."""
from __future__ import annotations

import datetime as dt
import re
import secrets
from typing import Any

from sqlalchemy import ForeignKey, LargeBinary, String, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from microcred.db import Base, utcnow
from microcred.errors import NotFound

#: how long an upload waits for its commit
TTL = dt.timedelta(hours=1)
#: uploads one person may have waiting (the oldest goes first)
PER_OWNER = 3
#: what a key looks like (``secrets.token_urlsafe(32)``); anything else is no key
KEY = re.compile(r"[A-Za-z0-9_-]{20,64}")


class PendingImport(Base):
    __tablename__ = "pending_imports"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    #: what the import would do (``ImportReport.as_dict``), shown before the commit
    report: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)


def hold(session: Session, owner_id: int, filename: str, data: bytes,
         report: dict[str, Any]) -> PendingImport:
    """Keep ``data`` for ``owner_id``; expired uploads (anyone's) and the owner's oldest
    beyond :data:`PER_OWNER` are dropped."""
    now = utcnow()
    session.execute(delete(PendingImport).where(PendingImport.expires_at < now))
    mine = session.scalars(select(PendingImport.key).where(PendingImport.owner_id == owner_id)
                           .order_by(PendingImport.created_at.desc())).all()
    for key in mine[PER_OWNER - 1:]:
        session.execute(delete(PendingImport).where(PendingImport.key == key))
    row = PendingImport(key=secrets.token_urlsafe(32), owner_id=owner_id,
                        filename=filename[:200], data=data, report=report, created_at=now,
                        expires_at=now + TTL)
    session.add(row)
    session.flush()
    return row


def pending(session: Session, key: str, owner_id: int) -> PendingImport:
    """The owner's upload under ``key``; :class:`NotFound` for another's, an unknown or an
    expired one (which cannot be told apart)."""
    row = session.get(PendingImport, key) if KEY.fullmatch(key or "") else None
    if row is None or row.owner_id != owner_id or _aware(row.expires_at) < utcnow():
        raise NotFound("no such upload waiting (it may have expired: upload it again)")
    return row


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def discard(session: Session, row: PendingImport) -> None:
    session.delete(row)
    session.flush()
