"""Users, roles, passwords (argon2), sign-in throttling and accommodations."""
from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask_login import UserMixin
from sqlalchemy import ForeignKey, Index, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column
from zxcvbn import zxcvbn

from microcred.db import Base, append_only, utcnow
from microcred.errors import DomainError
from microcred.inputs import is_whole

_hasher = PasswordHasher()


class Role(str, enum.Enum):
    CANDIDATE = "candidate"
    PROCTOR = "proctor"
    PSYCHOMETRICIAN = "psychometrician"
    ADMIN = "admin"
    #: writes item drafts in the bank (itembank.workflow); approves nothing
    ITEM_AUTHOR = "item_author"
    #: sits on standard-setting panels: sees only the studies they are seated on
    #: (assessment.psych.studies), nothing else of the workspace, the bank or delivery
    PANELIST = "panelist"


class User(UserMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: The generation of this user's sign-ins. Every session cookie (and remember cookie)
    #: carries the value it was issued under; sign-out, a password change and deactivation
    #: raise it, so every cookie issued before stops working, replayed or not.
    session_epoch: Mapped[int] = mapped_column(default=0, server_default="0")

    @property
    def is_active(self) -> bool:  # Flask-Login
        return self.active

    def get_id(self) -> str:  # Flask-Login: what the session and remember cookies hold
        return f"{self.id}:{self.session_epoch}"

    def has_role(self, *roles: Role | str) -> bool:
        return self.role in {r.value if isinstance(r, Role) else r for r in roles}

    def set_password(self, password: str) -> None:
        """Hash ``password`` after checking it against this user's own words (email, name)."""
        validate_password(password, context=(self.email or "", self.display_name or ""))
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


class UserError(DomainError):
    """A user could not be created or changed; the message says why."""

    status, code = 422, "invalid_user"


#: NIST SP 800-63B 3.1.1.2: at least 8 characters, and at least 64 allowed.
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 256
#: zxcvbn's score (0-4) a password needs: 3 is "safely unguessable" (about 10^8 guesses),
#: enough with argon2 and sign-in throttling. Common passwords, repeats, sequences, dates and
#: the user's own words all score below.
PASSWORD_MIN_SCORE = 3
#: zxcvbn's cost grows with length; the guessable part of a password is in its start anyway.
_SCORED_PREFIX = 72  # also zxcvbn's own limit
#: Words every Microcred password is checked against besides the user's own.
SITE_WORDS = ("microcred", "micro-credential", "microcredential", "credential", "exam")


def password_problem(password: str, context: Iterable[str] = ()) -> str | None:
    """Why ``password`` may not be used, in words for the person choosing it, or None."""
    if len(password) < PASSWORD_MIN_LENGTH:
        return f"a password needs at least {PASSWORD_MIN_LENGTH} characters"
    if len(password) > PASSWORD_MAX_LENGTH:
        return f"a password may have at most {PASSWORD_MAX_LENGTH} characters"
    words = [*SITE_WORDS]
    for item in context:
        item = (item or "").strip().lower()
        local = item.split("@")[0]
        # The whole value, its email local part, and each with and without its separators:
        # "Jane Doe" / "jane.doe@x.org" also rule out "janedoe1985".
        for variant in (item, local):
            words.append(variant)
            words.append("".join(ch for ch in variant if ch.isalnum()))
        words.extend(part for part in re.split(r"[\W_]+", item) if len(part) >= 3)
    words = [w for w in dict.fromkeys(words) if w]
    verdict = zxcvbn(password[:_SCORED_PREFIX], user_inputs=words)
    built_on_context = any(
        match.get("dictionary_name") == "user_inputs" for match in verdict["sequence"])
    if verdict["score"] >= PASSWORD_MIN_SCORE and not _only_context(password, words):
        return None
    if built_on_context or verdict["score"] >= PASSWORD_MIN_SCORE:
        reason = "it is built on your email, your name or the site's name"
    else:
        reason = (verdict["feedback"].get("warning") or "").rstrip(".") or (
            "it would be found quickly by a program that guesses common passwords")
        reason = reason[0].lower() + reason[1:]
    advice = " ".join(verdict["feedback"].get("suggestions") or [])
    advice = advice or "Use a few uncommon words together, or a password manager."
    return f"this password is too easy to guess: {reason}. {advice}"


def _only_context(password: str, words: list[str]) -> bool:
    """The password is the user's own words rearranged, with separators and digits: zxcvbn
    scores "Jane Doe jane.doe" or "doe-jane-2026" highly, a guesser who knows her would not."""
    whole = rest = "".join(ch for ch in password.lower() if ch.isalnum())
    for word in sorted(("".join(c for c in w if c.isalnum()) for w in words), key=len,
                       reverse=True):
        if len(word) >= 3:
            rest = rest.replace(word, "")
    return rest != whole and len(re.sub(r"\d", "", rest)) < 4


def validate_password(password: str, *, context: Iterable[str] = ()) -> None:
    problem = password_problem(password, context)
    if problem:
        raise UserError(problem)


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


def load_signed_in_user(session: Session, cookie_id: str) -> User | None:
    """The user a session or remember cookie names, or None when that sign-in has ended: the
    cookie's generation is not the user's current one (signed out, password changed,
    deactivated since), the account is inactive, or the value is not ``"<id>:<epoch>"``."""
    user_id, sep, epoch = (cookie_id or "").partition(":")
    if not (sep and is_whole(user_id) and is_whole(epoch)) or len(cookie_id) > 40:
        return None
    user = session.get(User, int(user_id))
    if user is None or not user.active or user.session_epoch != int(epoch):
        return None
    return user


def end_sessions(session: Session, user: User) -> None:
    """End every sign-in of ``user`` on every device: cookies issued before stop working.

    One UPDATE raises the generation, so two requests ending sessions at once both count."""
    session.execute(
        update(User).where(User.id == user.id).values(session_epoch=User.session_epoch + 1)
        .execution_options(synchronize_session=False)
    )
    session.refresh(user, ["session_epoch"])


def replace_password(session: Session, user: User, new: str) -> None:
    """Give ``user`` a new password (checked like any other) and end all their sessions.
    The caller has established the right to: the current password, or an admin's say."""
    user.set_password(new)
    session.flush()
    end_sessions(session, user)


def set_active(session: Session, user: User, *, active: bool, by: User | None) -> None:
    """Deactivate (ending every session at once) or reactivate an account; ``by`` is the admin
    doing it, None from the command line."""
    if by is not None and user.id == by.id and not active:
        raise UserError("you cannot deactivate your own account")
    user.active = active
    session.flush()
    if not active:
        end_sessions(session, user)


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
