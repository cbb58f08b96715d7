"""Training requirements and their completions: defined by an admin, completions recorded by an
admin, imported from a CSV file, or posted by an LMS with a bearer token.

Every way in goes through :func:`validate_completions`, which checks all rows first and
reports every bad one (the CSV line, or the JSON entry ``completions[3]``); nothing is stored
unless every row is good. A completion sent twice (same holder, training and time) is stored
once, so an LMS may retry.
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from credentials.errors import CredentialError
from credentials.issuance import CODE_PATTERN, MAX_VALIDITY_DAYS
from credentials.models import LmsToken, Training, TrainingCompletion
from microcred import environment
from microcred.db import utcnow
from microcred.inputs import EARLIEST_YEAR, LATEST_YEAR
from microcred.records import records

#: at most this many completions per CSV file or API request
MAX_ROWS = 5000
MAX_CSV_BYTES = 2 * 1024 * 1024
CSV_COLUMNS = ("email", "training", "completed_on")
SOURCES = ("admin", "csv", "lms")
#: the key a CSV row that cannot be read at all carries its problem under
PROBLEM = "_problem"


class TrainingError(CredentialError):
    """A training or a completion was refused; ``errors`` lists each bad row when there are
    several (``[{"where": "line 3", "message": ...}]``)."""

    status, code = 422, "invalid_completions"

    def __init__(self, message: str, errors: list[dict[str, str]] | None = None,
                 **extra: Any) -> None:
        super().__init__(message, **({"errors": errors} if errors else {}), **extra)
        self.errors = errors or []


def create_training(session: Session, *, code: str, name: str, description: str = "",
                    validity_days: int | None = None) -> Training:
    code, name = (code or "").strip(), (name or "").strip()
    if not CODE_PATTERN.fullmatch(code):
        raise TrainingError("a training needs a code of 1 to 64 letters, digits, dots, dashes "
                            "or underscores, starting with a letter or digit", field="code")
    if not name:
        raise TrainingError("a training needs a name", field="name")
    if validity_days is not None and not 1 <= validity_days <= MAX_VALIDITY_DAYS:
        raise TrainingError(f"validity_days must be from 1 to {MAX_VALIDITY_DAYS} (or empty: "
                            "a completion counts for ever)", field="validity_days")
    if session.scalar(select(Training.id).where(Training.code == code)) is not None:
        raise TrainingError(f"a training with code {code} already exists", field="code")
    row = Training(code=code, name=name, description=(description or "").strip(),
                   validity_days=validity_days)
    session.add(row)
    session.flush()
    return row


def trainings(session: Session) -> list[Training]:
    return list(session.scalars(select(Training).order_by(Training.code)))


# --- completions ------------------------------------------------------------------------------

@dataclass(frozen=True)
class CompletionRow:
    where: str
    holder_id: int
    training: Training
    completed_at: dt.datetime
    reference: str | None


def parse_completed(value: Any) -> dt.datetime:
    """A date (``2026-03-01``, midnight UTC) or an ISO 8601 time with a zone."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("give the completion date as YYYY-MM-DD or an ISO 8601 time with a "
                         "zone")
    text = value.strip()
    try:
        if len(text) == 10:
            moment = dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), dt.UTC)
        else:
            moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text[:40]!r} is not a date (YYYY-MM-DD) or an ISO 8601 "
                         "time") from None
    if moment.tzinfo is None:
        raise ValueError(f"{text[:40]!r} has no time zone (add Z for UTC)")
    if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
        raise ValueError(f"{text[:40]!r} is not a plausible year")
    return moment.astimezone(dt.UTC).replace(microsecond=0)


def validate_completions(session: Session, entries: list[tuple[str, dict[str, Any]]], *,
                         now: dt.datetime | None = None) -> list[CompletionRow]:
    """Check every ``(where, {email, training, completed_on|completed_at, reference})``;
    raise :class:`TrainingError` listing every bad one, else return them all resolved."""
    now = now or utcnow()
    if not entries:
        raise TrainingError("no completions: send at least one")
    if len(entries) > MAX_ROWS:
        raise TrainingError(f"at most {MAX_ROWS} completions at once, not {len(entries)}")
    by_code = {t.code: t for t in trainings(session)}
    people = records().people_by_email(session, {
        str(e.get("email") or "") for _, e in entries if isinstance(e.get("email"), str)})
    errors: list[dict[str, str]] = []
    rows: list[CompletionRow] = []
    for where, entry in entries:
        if PROBLEM in entry:
            errors.append({"where": where, "message": entry[PROBLEM]})
            continue
        problems = []
        email = entry.get("email")
        person = people.get(email.strip().lower()) if isinstance(email, str) else None
        if not isinstance(email, str) or not email.strip():
            problems.append("email is missing")
        elif person is None:
            problems.append(f"no user with email {email.strip()[:254]}")
        code = entry.get("training")
        training = by_code.get(code.strip()) if isinstance(code, str) else None
        if not isinstance(code, str) or not code.strip():
            problems.append("training is missing")
        elif training is None:
            problems.append(f"unknown training {code.strip()[:64]}")
        raw = entry.get("completed_on", entry.get("completed_at"))
        completed = None
        try:
            completed = parse_completed(raw)
        except ValueError as exc:
            problems.append(f"completed_on: {exc}")
        if completed is not None and completed > now + dt.timedelta(days=1):
            problems.append(f"completed_on {completed.date().isoformat()} is in the future")
        reference = entry.get("reference")
        if reference is not None and (not isinstance(reference, str) or len(reference) > 200):
            problems.append("reference must be text of at most 200 characters")
        if problems:
            errors.append({"where": where, "message": "; ".join(problems)})
        else:
            rows.append(CompletionRow(where, person.id, training, completed,
                                      (reference or "").strip() or None))
    if errors:
        shown = "; ".join(f"{e['where']}: {e['message']}" for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise TrainingError(f"{len(errors)} of {len(entries)} completion(s) refused, nothing "
                            f"was recorded: {shown}{more}", errors=errors)
    return rows


def record(session: Session, rows: list[CompletionRow], *, source: str,
           by_user_id: int | None = None) -> tuple[list[TrainingCompletion], list[int]]:
    """Store the validated rows (skipping those already recorded): the new completions, and
    the holders they concern (whose stacks may now be complete)."""
    if source not in SOURCES:
        raise TrainingError(f"source must be one of {', '.join(SOURCES)}")
    new: list[TrainingCompletion] = []
    seen: set[tuple[int, int, dt.datetime]] = set()
    for r in rows:
        key = (r.training.id, r.holder_id, r.completed_at)
        if key in seen or session.scalar(select(TrainingCompletion.id).where(
                TrainingCompletion.training_id == r.training.id,
                TrainingCompletion.holder_id == r.holder_id,
                TrainingCompletion.completed_at == r.completed_at)) is not None:
            continue
        seen.add(key)
        row = TrainingCompletion(training_id=r.training.id, holder_id=r.holder_id,
                                 completed_at=r.completed_at, source=source,
                                 reference=r.reference, recorded_by_id=by_user_id)
        session.add(row)
        new.append(row)
    session.flush()
    return new, sorted({r.holder_id for r in rows})


def csv_entries(data: bytes | str) -> list[tuple[str, dict[str, Any]]]:
    """The rows of a completions CSV (header ``email,training,completed_on[,reference]``) as
    ``("line N", row)``; a file that is not such a CSV is refused with why."""
    if isinstance(data, bytes):
        if len(data) > MAX_CSV_BYTES:
            raise TrainingError(f"the file is larger than {MAX_CSV_BYTES // 1024} KB; split it")
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise TrainingError("the file is not UTF-8 text (save the CSV as UTF-8)") from None
    reader = csv.reader(io.StringIO(data))
    try:
        header = [h.strip().lower() for h in next(reader, [])]
    except csv.Error as exc:
        raise TrainingError(f"line 1: not CSV ({exc})") from None
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        raise TrainingError(f"line 1: the header needs the columns {', '.join(CSV_COLUMNS)} "
                            f"(missing: {', '.join(missing)})")
    out = []
    try:
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            where = f"line {reader.line_num}"
            if len(values) > len(header):
                out.append((where, {PROBLEM: f"{len(values)} columns, the header has "
                                             f"{len(header)} (a comma inside a value needs "
                                             "quotes)"}))
                continue
            out.append((where, dict(zip(header, values, strict=False))))
            if len(out) > MAX_ROWS:
                break
    except csv.Error as exc:
        raise TrainingError(f"line {reader.line_num}: not CSV ({exc})") from None
    return out


def import_csv(session: Session, data: bytes | str, *,
               by_user_id: int | None) -> tuple[list[TrainingCompletion], list[int]]:
    return record(session, validate_completions(session, csv_entries(data)), source="csv",
                  by_user_id=by_user_id)


# --- LMS tokens -------------------------------------------------------------------------------

def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, *, name: str, by_user_id: int | None) -> tuple[LmsToken, str]:
    """A new LMS token: the row, and the token itself (shown once, never stored)."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise TrainingError("name the LMS this token is for (1 to 100 characters)",
                            field="name")
    token = "mct_" + secrets.token_urlsafe(32)
    row = LmsToken(name=name, token_hash=_hash(token), created_by_id=by_user_id)
    session.add(row)
    session.flush()
    return row, token


def revoke_token(session: Session, token_id: int) -> None:
    row = session.get(LmsToken, token_id)
    if row is None:
        raise TrainingError(f"there is no LMS token {token_id}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()


def tokens(session: Session) -> list[LmsToken]:
    return list(session.scalars(select(LmsToken).order_by(LmsToken.id.desc())))


def token_name(session: Session, presented: str | None) -> str | None:
    """Who a presented bearer token is (the env token: ``environment``), None: not valid."""
    if not presented:
        return None
    env = environment.lms_api_token()
    if env is not None and hmac.compare_digest(presented.encode(), env.encode()):
        return "environment"
    row = session.scalar(select(LmsToken).where(LmsToken.token_hash == _hash(presented)))
    return row.name if row is not None and row.revoked_at is None else None
