"""Users, roles, passwords (argon2), sign-in throttling and accommodations."""
from __future__ import annotations

import datetime as dt
import enum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask_login import UserMixin
from sqlalchemy import ForeignKey, Index, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from microcred.db import Base, append_only, utcnow

_hasher = PasswordHasher()


class Role(str, enum.Enum):
    CANDIDATE = "candidate"
    PROCTOR = "proctor"
    PSYCHOMETRICIAN = "psychometrician"
    ADMIN = "admin"


class User(UserMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    @property
    def is_active(self) -> bool:  # Flask-Login
        return self.active

    def has_role(self, *roles: Role | str) -> bool:
        return self.role in {r.value if isinstance(r, Role) else r for r in roles}

    def set_password(self, password: str) -> None:
        validate_password(password)
        self.password_hash = _hasher.hash(password)

    def check_password(self, password: str) -> bool:
        try:
            ok = _hasher.verify(self.password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return ok


_DUMMY_HASH: str | None = None


def spend_password_check(password: str) -> bool:
    """Verify ``password`` against a throwaway hash and return False: a sign-in for an unknown
    email costs as much as a wrong password, so timing does not tell which accounts exist."""
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = _hasher.hash("microcred: no account has this password")
    try:
        _hasher.verify(_DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        pass
    return False


class UserError(ValueError):
    """A user could not be created or changed; the message says why."""


def validate_password(password: str) -> None:
    if len(password) < 10:
        raise UserError("password must be at least 10 characters long")
    if len(password) > 200:
        raise UserError("password must be at most 200 characters long")


def normalize_email(email: str) -> str:
    email = (email or "").strip().lower()
    if "@" not in email or email.startswith("@") or email.endswith("@") or " " in email:
        raise UserError(f"not an email address: {email!r}")
    return email


def create_user(
    session: Session, *, email: str, password: str, role: Role | str, display_name: str
) -> User:
    email = normalize_email(email)
    try:
        role_value = Role(role).value
    except ValueError:
        raise UserError(
            f"unknown role {role!r}; choose one of {', '.join(r.value for r in Role)}"
        ) from None
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise UserError(f"a user with email {email} already exists")
    if not display_name.strip():
        raise UserError("display name must not be empty")
    user = User(email=email, display_name=display_name.strip(), role=role_value)
    user.set_password(password)
    session.add(user)
    session.flush()
    return user


def find_user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.strip().lower()))


class SigninAttempt(Base):
    """Every sign-in try, kept to throttle guessing per account and per address."""

    __tablename__ = "signin_attempts"
    __table_args__ = (
        Index("ix_signin_attempts_email_at", "email", "at"),
        Index("ix_signin_attempts_address_at", "address", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    address: Mapped[str] = mapped_column(String(64))
    succeeded: Mapped[bool]
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


append_only(SigninAttempt)


def recent_failures(
    session: Session, *, email: str | None = None, address: str | None = None, window_s: int
) -> int:
    """Failed sign-ins since the last success (per account) or in the window (per address)."""
    since = utcnow() - dt.timedelta(seconds=window_s)
    q = select(func.count()).select_from(SigninAttempt).where(
        SigninAttempt.at >= since, SigninAttempt.succeeded.is_(False)
    )
    if email is not None:
        last_ok = session.scalar(
            select(func.max(SigninAttempt.at)).where(
                SigninAttempt.email == email, SigninAttempt.succeeded.is_(True)
            )
        )
        q = q.where(SigninAttempt.email == email)
        if last_ok is not None and last_ok > since:
            q = q.where(SigninAttempt.at > last_ok)
    if address is not None:
        q = q.where(SigninAttempt.address == address)
    return int(session.scalar(q) or 0)


class Accommodation(Base):
    """A time multiplier granted to a candidate, for one exam or for all (exam_id NULL).

    Rows are never edited: a new grant supersedes the previous one (the newest wins).
    """

    __tablename__ = "accommodations"

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    exam_id: Mapped[int | None] = mapped_column(ForeignKey("exams.id"))
    time_multiplier: Mapped[float]
    reason: Mapped[str] = mapped_column(String(500))
    granted_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


append_only(Accommodation)

MAX_TIME_MULTIPLIER = 4.0


def grant_accommodation(
    session: Session,
    *,
    candidate: User,
    time_multiplier: float,
    reason: str,
    granted_by: User,
    exam_id: int | None = None,
) -> Accommodation:
    if not candidate.has_role(Role.CANDIDATE):
        raise UserError(f"{candidate.email} is not a candidate")
    if not (1.0 <= time_multiplier <= MAX_TIME_MULTIPLIER):
        raise UserError(
            f"time multiplier must be between 1.0 and {MAX_TIME_MULTIPLIER}, got {time_multiplier}"
        )
    if not reason.strip():
        raise UserError("an accommodation needs a reason (e.g. the approved request)")
    if exam_id is not None:
        from assessment.exams import Exam

        if session.get(Exam, exam_id) is None:
            raise UserError(f"there is no exam {exam_id}")
    acc = Accommodation(
        candidate_id=candidate.id,
        exam_id=exam_id,
        time_multiplier=time_multiplier,
        reason=reason.strip(),
        granted_by_id=granted_by.id,
    )
    session.add(acc)
    session.flush()
    return acc


def time_multiplier_for(session: Session, candidate_id: int, exam_id: int) -> float:
    """The newest accommodation for this exam, else the newest for all exams, else 1.0."""
    for exam_filter in (Accommodation.exam_id == exam_id, Accommodation.exam_id.is_(None)):
        row = session.scalar(
            select(Accommodation)
            .where(Accommodation.candidate_id == candidate_id, exam_filter)
            .order_by(Accommodation.created_at.desc(), Accommodation.id.desc())
            .limit(1)
        )
        if row is not None:
            return row.time_multiplier
    return 1.0
