"""The identity check before the exam: the candidate submits a selfie and a photo ID, the
verifiers the exam's policy requires look at them, and the session is admitted, or waits for a
proctor, who admits or rejects it with a reason.

Admission rule: every required verifier must pass. The ``proctor`` verifier passes only by a
proctor's admit. When an automated verifier fails (or breaks, or is not installed), the session
is not rejected by a machine: it waits for a proctor, and the finding is raised as a flag.
A proctor's admit or reject decides, whatever the automated verifiers said.
"""
from __future__ import annotations

import datetime as dt
import math
import os
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from microcred.db import utcnow
from microcred.errors import Conflict, Invalid, TooManyRequests
from microcred.inputs import is_whole
from proctoring import audit, hooks
from proctoring.events import raise_flags
from proctoring.images import ImageTooLarge, ImageUnreadable, ImageVault, SealedImage
from proctoring.models import IdentityAttempt, IdentityCheck, ProctorSession, StoredImage
from proctoring.sessions import Actor, info, policy, transition
from proctoring.states import State
from proctoring.verifiers import finding, label, outcome_words

MAX_REASON = 2000
SUBMITTABLE = (State.CREATED, State.IDENTITY_REJECTED)


@dataclass(frozen=True)
class AttemptLimit:
    """At most ``attempts`` identity submissions per session in any ``window_s`` seconds."""

    attempts: int = 5
    window_s: int = 600

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> AttemptLimit:
        env = os.environ if environ is None else environ
        values = []
        for name, default in (("MICROCRED_IDENTITY_ATTEMPTS", cls.attempts),
                              ("MICROCRED_IDENTITY_WINDOW_SECONDS", cls.window_s)):
            raw = env.get(name, "").strip() or str(default)
            if not is_whole(raw) or int(raw) < 1:
                raise ValueError(f"{name} must be a whole number of at least 1, got {raw!r}")
            values.append(int(raw))
        return cls(*values)


def _require_submittable(ps: ProctorSession) -> None:
    if ps.state not in SUBMITTABLE:
        raise Conflict(f"the identity check cannot be submitted now: the session is {ps.state}",
                       state=ps.state)


def count_attempt(session: Session, ps: ProctorSession, limit: AttemptLimit, *,
                  now: dt.datetime | None = None) -> IdentityAttempt:
    """Count one identity submission against the session's limit, or raise
    :class:`TooManyRequests` (``retry_after`` in seconds) when the window is full.

    The caller holds the session row's lock, so concurrent submissions (any worker) are counted
    one after the other, and commits the attempt before processing the photos: a refused photo
    counts too (the session stays ``created``, so a refusal alone would never stop anyone)."""
    _require_submittable(ps)
    now = now or utcnow()
    since = now - dt.timedelta(seconds=limit.window_s)
    count, oldest = session.execute(
        select(func.count(), func.min(IdentityAttempt.at))
        .where(IdentityAttempt.session_id == ps.id, IdentityAttempt.at > since)).one()
    if count >= limit.attempts:
        wait = max(1, math.ceil((oldest - since).total_seconds()))
        raise TooManyRequests(
            f"{count} identity submissions in the last {_span(limit.window_s)} is the most "
            f"allowed; try again in {_span(wait)}", retry_after=wait)
    attempt = IdentityAttempt(session_id=ps.id, at=now)
    session.add(attempt)
    session.flush()
    return attempt


def _span(seconds: int) -> str:
    n, unit = (seconds // 60, "minute") if seconds % 60 == 0 else (seconds, "second")
    return f"{n} {unit}{'' if n == 1 else 's'}"


def _seal(vault: ImageVault, ps: ProctorSession, kind: str, image: bytes, label: str) -> SealedImage:
    try:
        return vault.seal(session_id=ps.id, kind=kind, image=image)
    except ImageTooLarge as exc:
        raise Invalid(f"{label} is too large: {exc}", field=kind) from None
    except ImageUnreadable as exc:
        raise Invalid(f"{label} is not an image: {exc}", field=kind) from None


def next_submission(session: Session, ps: ProctorSession) -> int:
    """The number the next identity submission of the session will have (1, 2, ...)."""
    return int(session.scalar(select(func.count()).select_from(StoredImage).where(
        StoredImage.session_id == ps.id, StoredImage.kind == "selfie")) or 0) + 1


@dataclass(frozen=True)
class PreparedSubmission:
    """A submission's slow part, done before any lock: both images decoded, shrunk and
    encrypted, and every verifier's outcome (a remote verifier may take seconds)."""

    submission: int
    selfie: SealedImage
    id_document: SealedImage
    outcomes: tuple[hooks.IdentityOutcome, ...]


def prepare(ps: ProctorSession, vault: ImageVault, *, submission: int, selfie: bytes,
            id_document: bytes) -> PreparedSubmission:
    """Seal the two images and run the verifiers the policy requires, with no database work
    at all: the caller holds no lock and no transaction meanwhile (on SQLite, not the write
    lock; on PostgreSQL, neither the session's row nor the audit chain's head), so a slow
    verifier delays this candidate only. :func:`submit` then stores the result."""
    _require_submittable(ps)
    selfie_img = _seal(vault, ps, "selfie", selfie, "the photo of you")
    id_img = _seal(vault, ps, "id_document", id_document, "the photo of your ID")
    request = hooks.IdentityRequest(session=info(ps), submission=submission,
                                    selfie=selfie_img.jpeg, id_document=id_img.jpeg,
                                    required=tuple(policy(ps).identity))
    outcomes = []
    for plugin, outcome in hooks.call("microcred_verify_identity", request=request):
        if hooks.failed(outcome):
            outcome = hooks.IdentityOutcome(plugin, "error", "the verifier failed; see the log")
        elif not isinstance(outcome, hooks.IdentityOutcome) or outcome.outcome not in (
                "passed", "failed", "pending"):
            outcome = hooks.IdentityOutcome(plugin, "error", f"the verifier answered {outcome!r}")
        outcomes.append(outcome)
    return PreparedSubmission(submission, selfie_img, id_img, tuple(outcomes))


def submit(
    session: Session, ps: ProctorSession, vault: ImageVault, *, selfie: bytes | None = None,
    id_document: bytes | None = None, by: Actor, prepared: PreparedSubmission | None = None,
) -> list[IdentityCheck]:
    """Store the two images encrypted and the verifiers' outcomes, and admit when they all pass.
    ``prepared`` (:func:`prepare`, done before the caller locked the session) is how the web
    submits; with raw images instead, they are prepared here. (The web view counts the
    submission first: :func:`count_attempt`.)"""
    _require_submittable(ps)
    if prepared is None:
        prepared = prepare(ps, vault, submission=next_submission(session, ps),
                           selfie=selfie or b"", id_document=id_document or b"")
    elif next_submission(session, ps) != prepared.submission:
        raise Conflict("another identity submission arrived meanwhile; look at the page and "
                       "submit again if needed", state=ps.state)
    submission = prepared.submission
    selfie_row = vault.add(session, prepared.selfie, session_id=ps.id)
    id_row = vault.add(session, prepared.id_document, session_id=ps.id)
    transition(session, ps, State.IDENTITY_PENDING, by=by, reason="identity images submitted",
               data={"submission": submission, "selfie_image_id": selfie_row.id,
                     "id_image_id": id_row.id})
    required = policy(ps).identity
    checks = []
    for outcome in prepared.outcomes:
        check = IdentityCheck(session_id=ps.id, submission=submission, verifier=outcome.verifier[:64],
                              outcome=outcome.outcome, reason=outcome.reason[:MAX_REASON],
                              details=dict(outcome.details), selfie_image_id=selfie_row.id,
                              id_image_id=id_row.id)
        session.add(check)
        checks.append(check)
    session.flush()
    by_verifier = {c.verifier: c for c in checks}
    for name in required:
        c = by_verifier.get(name)
        if name != "proctor" and (c is None or c.outcome in ("failed", "error")):
            what = c.reason if c else "this verifier is not installed"
            raise_flags(session, ps, [hooks.FlagSpec(
                "identity_check", f"{name}-{submission}", "medium", finding(name, what))])
    if required and all(by_verifier.get(n) and by_verifier[n].outcome == "passed" for n in required):
        transition(session, ps, State.ADMITTED, by=None,
                   reason="every required identity verifier passed: " + ", ".join(required))
    return checks


def decide(
    session: Session, ps: ProctorSession, *, admit: bool, reason: str, by: Actor
) -> ProctorSession:
    """A proctor admits or rejects the candidate. A rejection needs a reason; admitting a
    candidate who submitted no images (checked in person) needs one too."""
    reason = (reason or "").strip()
    if len(reason) > MAX_REASON:
        raise Invalid(f"the reason is longer than {MAX_REASON} characters", field="reason")
    if not admit and not reason:
        raise Invalid("rejecting an identity needs a reason the candidate will see", field="reason")
    if admit and ps.state == State.CREATED and not reason:
        raise Invalid("admitting without submitted images needs a reason (e.g. checked in person)",
                      field="reason")
    allowed = (State.IDENTITY_PENDING, State.CREATED) if admit else (State.IDENTITY_PENDING,)
    if ps.state not in allowed:
        raise Conflict(f"the session is {ps.state}; there is no identity to "
                       f"{'admit' if admit else 'reject'}", state=ps.state)
    latest = latest_submission(session, ps)
    session.add(IdentityCheck(
        session_id=ps.id, submission=latest.number if latest else 0, verifier="proctor",
        outcome="passed" if admit else "failed", reason=reason or "identity confirmed by the proctor",
        details={}, selfie_image_id=latest.selfie_image_id if latest else None,
        id_image_id=latest.id_image_id if latest else None, by_user_id=by.id))
    session.flush()
    if admit:
        return transition(session, ps, State.ADMITTED, by=by,
                          reason=reason or "identity confirmed by the proctor")
    return transition(session, ps, State.IDENTITY_REJECTED, by=by, reason=reason)


@dataclass
class Submission:
    number: int
    selfie_image_id: int | None
    id_image_id: int | None
    checks: list[IdentityCheck] = field(default_factory=list)


def latest_submission(session: Session, ps: ProctorSession) -> Submission | None:
    checks = list(session.scalars(select(IdentityCheck).where(IdentityCheck.session_id == ps.id)
                                  .order_by(IdentityCheck.id)))
    images = list(session.scalars(select(StoredImage).where(
        StoredImage.session_id == ps.id, StoredImage.kind.in_(["selfie", "id_document"]))
        .order_by(StoredImage.id)))
    selfies = [i for i in images if i.kind == "selfie"]
    if not selfies:
        return Submission(0, None, None, [c for c in checks if c.submission == 0]) if checks else None
    number = len(selfies)
    ids = [i for i in images if i.kind == "id_document"]
    return Submission(number, selfies[-1].id, ids[-1].id if ids else None,
                      [c for c in checks if c.submission == number])


def status(session: Session, ps: ProctorSession) -> dict[str, Any]:
    """A short account for the console and the candidate: what is known and who decided."""
    sub = latest_submission(session, ps)
    # one line per verifier, its newest word: the proctor's decision replaces "waiting"
    checks = list({c.verifier: c for c in (sub.checks if sub else [])}.values())
    decided = [c for c in checks if c.verifier == "proctor" and c.by_user_id]
    summary = {
        State.CREATED: "not submitted",
        State.IDENTITY_PENDING: "waiting for the proctor",
        State.IDENTITY_REJECTED: "rejected",
    }.get(State(ps.state), "admitted")
    if ps.state == State.IDENTITY_PENDING:
        failed = [c for c in checks if c.outcome in ("failed", "error")]
        if failed:
            summary = "to check: " + "; ".join(finding(c.verifier, c.reason) for c in failed)
    return {
        "summary": summary,
        "submission": sub.number if sub else 0,
        "selfie_image_id": sub.selfie_image_id if sub else None,
        "id_image_id": sub.id_image_id if sub else None,
        "checks": [{"verifier": c.verifier, "outcome": c.outcome, "reason": c.reason,
                    "label": label(c.verifier), "outcome_words": outcome_words(c.outcome),
                    "finding": finding(c.verifier, c.reason),
                    "by_user_id": c.by_user_id, "at": c.at.isoformat()} for c in checks],
        "decision_reason": decided[-1].reason if decided else None,
    }


def record_view(session: Session, ps: ProctorSession, image: StoredImage, by: Actor) -> None:
    """Seeing a candidate's identity images is itself recorded."""
    audit.record(session, "identity.image_viewed", actor=by, subject_type="proctoring_session",
                 subject_id=ps.id, data={"image_id": image.id, "kind": image.kind})
