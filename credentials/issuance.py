"""Issuing credentials: build the OpenBadgeCredential, sign it (eddsa-rdfc-2022), store it
verbatim; and the ``result_released`` receiver that does so on a clean pass.

Credentials never import ``assessment``: the released result arrives as a
:class:`microcred.records.ReleasedResult` (who, which exam, the score, whether proctoring
proctored it), and people and exams are read through :func:`microcred.records.records`.

:func:`connect_receivers` connects the receiver (every process calls it through
``microcred.packages.connect_receivers``). The receiver never commits and never signs: it
records the badge as owed (an ``Issuance``, pending) in the sender's session and queues the
``credentials.issue`` job for when the release commits (``credentials.jobs``).

Which exam earns what: ``Achievement.exam_id`` (a pass earns the achievement) and
``Achievement.recertification_exam_id`` (a pass renews it, superseding the holder's latest
credential for it).
"""
from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from credentials import dataintegrity, issuers, openbadge, revocation, statuslist
from credentials import jwt as vcjwt
from credentials.config import CredentialConfig
from credentials.errors import CredentialError
from credentials.evidence import exam_evidence
from credentials.models import Achievement, Credential, HolderChoice, Issuer
from microcred import signals
from microcred.db import utcnow
from microcred.inputs import InvalidInput, add_days, http_url
from microcred.jobs import enqueue_after_commit
from microcred.records import Person, ReleasedResult, ScoreScale, records

#: A credential may be valid for at most a century: longer is a typo, and it keeps every
#: expiry date far from datetime's year-9999 limit.
MAX_VALIDITY_DAYS = 36_500
#: Achievement codes appear in URLs (/achievements/<code>) and file names.
CODE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class IssuanceError(CredentialError):
    """A credential could not be issued; the message says why."""


# --- achievements -----------------------------------------------------------------------------

def achievement_url(cfg: CredentialConfig, achievement: Achievement) -> str:
    return cfg.url(f"/achievements/{achievement.code}")


def achievement_info(session: Session, cfg: CredentialConfig, achievement: Achievement,
                     scale: ScoreScale | None = None) -> openbadge.AchievementInfo:
    """The OB 3.0 Achievement: alignment to the exam blueprint's domains, the score a pass
    needs on its scale: ``scale`` (the scale the credential's result was reported on), else
    the exam's (its adopted cut's scale score, or its pass percent without a cut)."""
    url = achievement_url(cfg, achievement)
    domains: list[openbadge.Domain] = []
    required = exam_title = None
    exam = records().exam(session, achievement.exam_id) if achievement.exam_id else None
    if exam is not None:
        scale = scale or exam.reported_scale
        exam_title = exam.title
    if scale is not None:
        required = scale.passing
        domains = [openbadge.Domain(d.code, d.name, d.description, f"{url}#domain-{d.code}")
                   for d in exam.domains]
    domains += [openbadge.Domain(a["code"], a["name"], a.get("description", ""),
                                 a.get("url", f"{url}#domain-{a['code']}"))
                for a in achievement.extra_alignment or []]
    return openbadge.AchievementInfo(
        id=url, name=achievement.name, description=achievement.description,
        criteria=achievement.criteria, criteria_url=f"{url}#criteria",
        image=f"{url}/image.png", achievement_type=achievement.achievement_type,
        domains=domains, required_score=required, exam_title=exam_title,
        tags=list(achievement.tags or []),
        **({"score_min": scale.lower, "score_max": scale.upper, "score_kind": scale.kind}
           if scale is not None else {}),
    )


def create_achievement(session: Session, cfg: CredentialConfig, *, code: str, name: str,
                       description: str, criteria: str | None = None,
                       exam_id: int | None = None, recertification_exam_id: int | None = None,
                       validity_days: int | None = None, achievement_type: str | None = None,
                       stack_components: list[str] | None = None,
                       stack_required: int | None = None, issuer: Issuer | None = None,
                       tags: list[str] | None = None) -> Achievement:
    """Define an achievement earned by an exam pass, or a stack of others (N of M)."""
    if not CODE_PATTERN.fullmatch(code or ""):
        raise IssuanceError("an achievement needs a code of 1 to 64 letters, digits, dots, "
                            "dashes or underscores, starting with a letter or digit")
    if not (name or "").strip():
        raise IssuanceError("an achievement needs a name")
    if session.scalar(select(Achievement.id).where(Achievement.code == code)) is not None:
        raise IssuanceError(f"an achievement with code {code} already exists")
    if validity_days is not None and not 1 <= validity_days <= MAX_VALIDITY_DAYS:
        raise IssuanceError(f"validity_days must be from 1 to {MAX_VALIDITY_DAYS} "
                            "(or empty for no expiry)")
    for field, exam_ref in (("exam_id", exam_id),
                            ("recertification_exam_id", recertification_exam_id)):
        if exam_ref is not None and records().exam(session, exam_ref) is None:
            raise IssuanceError(f"{field}: there is no exam {exam_ref}")
    is_stack = bool(stack_components)
    rule = None
    if is_stack:
        from credentials import pathway_rules
        from credentials.pathways import Elective, Ref, Rule

        if exam_id:
            raise IssuanceError("a stack is earned by its components, not by an exam")
        missing = [c for c in stack_components if session.scalar(
            select(Achievement.id).where(Achievement.code == c)) is None]
        if missing:
            raise IssuanceError(f"unknown component achievements: {', '.join(missing)}")
        required = stack_required or len(stack_components)
        if not 1 <= required <= len(stack_components):
            raise IssuanceError(
                f"a stack needs between 1 and {len(stack_components)} components, not {required}")
        refs = tuple(Ref("credential", c) for c in stack_components)
        rule = Rule(required=refs) if required == len(refs) else \
            Rule(electives=(Elective(required, refs),))
        try:
            pathway_rules.validate(pathway_rules.Catalog.load(session), rule)
        except pathway_rules.RuleError as exc:
            raise IssuanceError(exc.message) from None
        criteria = criteria or (
            f"Earn {required} of these {len(stack_components)} credentials: "
            + ", ".join(stack_components) + ".")
    elif criteria is None:
        criteria = "Pass the proctored exam."
    achievement = Achievement(
        code=code, name=name, description=description, criteria=criteria,
        achievement_type=achievement_type or ("MicroCredential" if is_stack else "Certification"),
        exam_id=exam_id, recertification_exam_id=recertification_exam_id,
        validity_days=validity_days, is_stack=is_stack,
        stack_components=list(stack_components or []),
        stack_required=(stack_required or len(stack_components)) if is_stack else None,
        issuer_id=(issuer or issuers.default_issuer(session, cfg)).id, tags=list(tags or []),
    )
    session.add(achievement)
    session.flush()
    if rule is not None:
        from credentials import pathway_rules

        pathway_rules.save(session, rule, achievement=achievement)
    return achievement


def achievement_choices(session: Session) -> list[Achievement]:
    """The achievements an exam may lead to (active, not stacks), by code: the exam editor's
    list."""
    return list(session.scalars(select(Achievement).where(
        Achievement.active.is_(True), Achievement.is_stack.is_(False)).order_by(Achievement.code)))


def exam_achievement(session: Session, exam_id: int) -> Achievement | None:
    """The achievement a pass of ``exam_id`` earns, if any."""
    return session.scalar(select(Achievement).where(Achievement.exam_id == exam_id))


def link_exam_achievement(session: Session, exam_id: int, code: str | None) -> None:
    """Make a pass of ``exam_id`` earn the achievement ``code`` (None: no achievement). An
    achievement earned by another exam, or a stack, is refused."""
    current = exam_achievement(session, exam_id)
    if code is None or code == "":
        if current is not None:
            current.exam_id = None
            session.flush()
        return
    chosen = session.scalar(select(Achievement).where(Achievement.code == code))
    if chosen is None or not chosen.active:
        raise IssuanceError(f"there is no active achievement {code}", field="achievement")
    if chosen.is_stack:
        raise IssuanceError(f"achievement {code} is a stack, earned by its components, not by "
                            "an exam", field="achievement")
    if chosen.exam_id not in (None, exam_id):
        raise IssuanceError(f"achievement {code} is already earned by another exam",
                            field="achievement")
    if current is not None and current.id != chosen.id:
        current.exam_id = None
        session.flush()
    chosen.exam_id = exam_id
    session.flush()


# --- holders ----------------------------------------------------------------------------------

def holder_choice(session: Session, user_id: int) -> HolderChoice | None:
    return session.scalar(select(HolderChoice).where(HolderChoice.user_id == user_id)
                          .order_by(HolderChoice.id.desc()).limit(1))


def set_holder_choice(session: Session, user_id: int, *, name_display: str,
                      did: str | None) -> HolderChoice:
    if name_display not in ("full", "initials", "hidden"):
        raise IssuanceError("name display must be full, initials or hidden")
    did = (did or "").strip() or None
    if did and not (did.startswith("did:") and len(did) <= 300 and " " not in did):
        raise IssuanceError(f"{did!r} is not a DID (did:method:identifier)")
    row = HolderChoice(user_id=user_id, name_display=name_display, did=did)
    session.add(row)
    session.flush()
    return row


def shown_name(display_name: str, choice: HolderChoice | None) -> str | None:
    mode = choice.name_display if choice else "full"
    if mode == "hidden":
        return None
    if mode == "initials":
        return " ".join(p[0].upper() + "." for p in display_name.split() if p)
    return display_name


# --- issuing ----------------------------------------------------------------------------------

def issue(
    session: Session, cfg: CredentialConfig, *, achievement: Achievement, holder: Any,
    kind: str, evidence: list[openbadge.EvidenceInfo], result_id: int | None = None,
    score: float | None = None, supersedes: Credential | None = None,
    now: dt.datetime | None = None, scale: ScoreScale | None = None,
) -> Credential:
    """Build, sign and store one credential for ``holder`` (a :class:`~microcred.records.Person`,
    or anything with its ``id`` and ``email``)."""
    now = (now or utcnow()).replace(microsecond=0)
    issuer = session.get(Issuer, achievement.issuer_id)
    key = issuers.current_key(session, issuer)
    status_list, index = revocation.allocate_slot(session, issuer, key)
    public_id, credential_id = openbadge.new_credential_id(cfg.base_url)
    try:
        valid_until = add_days(now, achievement.validity_days, "validity_days") \
            if achievement.validity_days else None
    except InvalidInput as exc:
        raise IssuanceError(f"achievement {achievement.code}: {exc.message}") from None
    choice = holder_choice(session, holder.id)
    unsigned = openbadge.build_credential(
        credential_id=credential_id,
        issuer=issuers.issuer_info(cfg, issuer, key),
        achievement=achievement_info(session, cfg, achievement, scale),
        valid_from=dataintegrity.xsd_datetime(now),
        valid_until=dataintegrity.xsd_datetime(valid_until) if valid_until else None,
        identifier=openbadge.identity_object(holder.email, openbadge.new_salt()),
        subject_did=choice.did if choice else None,
        score=score,
        evidence=evidence,
        credential_status=[
            statuslist.entry(revocation.list_url(cfg, status_list.id, purpose), index, purpose)
            for purpose in statuslist.PURPOSES],
    )
    signed = dataintegrity.add_proof(
        unsigned, issuers.private_key(cfg, issuer, key),
        verification_method=issuers.verification_method(cfg, issuer, key), created=now)
    row = Credential(
        public_id=public_id, achievement_id=achievement.id, issuer_key_id=key.id,
        holder_id=holder.id, result_id=result_id, kind=kind,
        supersedes_id=supersedes.id if supersedes else None, status_list_id=status_list.id,
        status_index=index, valid_from=now, valid_until=valid_until,
        document=json.dumps(signed, ensure_ascii=False), issued_at=now,
    )
    session.add(row)
    session.flush()
    return row


def as_jwt(session: Session, cfg: CredentialConfig, credential: Credential) -> str:
    """The same credential as a VC-JWT (EdDSA), signed with the key that signed it."""
    key = credential.issuer_key
    issuer = session.get(Issuer, key.issuer_id)
    return vcjwt.encode(credential.json, issuers.private_key(cfg, issuer, key),
                        kid=issuers.verification_method(cfg, issuer, key),
                        issued_at=credential.issued_at)


def latest_credential(session: Session, holder_id: int,
                      achievement_id: int) -> Credential | None:
    return session.scalar(
        select(Credential).where(Credential.holder_id == holder_id,
                                 Credential.achievement_id == achievement_id)
        .order_by(Credential.id.desc()).limit(1))


def credentials_of_results(session: Session, result_ids: list[int]) -> list[Credential]:
    """The credentials issued on any of ``result_ids`` (an attempt's results: a rescoring
    supersedes the one a badge was issued on), oldest first."""
    if not result_ids:
        return []
    return list(session.scalars(select(Credential).where(Credential.result_id.in_(result_ids))
                                .order_by(Credential.id)))


def exam_earns_credential(session: Session, exam_id: int) -> bool:
    """Whether a released pass of the exam earns (or renews) an active achievement."""
    return session.scalar(select(Achievement.id).where(
        or_(Achievement.exam_id == exam_id, Achievement.recertification_exam_id == exam_id),
        Achievement.active.is_(True)).limit(1)) is not None


def revoke_for_results(session: Session, cfg: CredentialConfig, result_ids: list[int], *,
                       reason: str, by_user_id: int | None) -> list[int]:
    """Revoke, with ``reason``, every credential issued on ``result_ids`` that is not revoked
    yet (a result rescored into a fail); returns the ids revoked now. Running it again revokes
    nothing more."""
    from credentials.revocation import revoke, status_of

    revoked = []
    for credential in credentials_of_results(session, result_ids):
        if status_of(session, credential).revoked:
            continue
        revoke(session, cfg, credential, reason=reason, by_user_id=by_user_id)
        revoked.append(credential.id)
    return revoked


def _exam_evidence(session: Session, released: ReleasedResult,
                   recert_of: Credential | None) -> list[openbadge.EvidenceInfo]:
    def name_of(user_id: int) -> str | None:
        person = records().person(session, user_id)
        return person.display_name if person else None

    exam = released.exam
    items = [exam_evidence(
        exam_title=exam.title, exam_code=exam.code, program_name=exam.program_name or None,
        passed_on=released.scored_at.date().isoformat(), score=released.reported_score,
        scale=released.reported_scale, proctored=released.proctored,
        proctoring=released.proctoring, name_of=name_of)]
    if recert_of is not None:
        items.append(openbadge.EvidenceInfo(
            id=recert_of.json["id"], name="Recertification",
            narrative=f"Renews the credential issued on {recert_of.issued_at.date().isoformat()}.",
            genre="Recertification"))
    return items


def issue_for_result(session: Session, cfg: CredentialConfig,
                     released: ReleasedResult) -> list[Credential]:
    """Issue what a released pass earns: the exam's achievement, or a renewal; then stacks."""
    if not released.passed:
        return []
    exam_id, holder = released.exam.id, released.candidate
    issued: list[Credential] = []
    earned = session.scalar(select(Achievement).where(Achievement.exam_id == exam_id,
                                                      Achievement.active.is_(True)))
    renewed = session.scalar(select(Achievement).where(
        Achievement.recertification_exam_id == exam_id, Achievement.active.is_(True)))
    for achievement, kind in ((earned, "exam"), (renewed, "recertification")):
        if achievement is None:
            continue
        if session.scalar(select(Credential.id).where(
                Credential.result_id == released.result_id,
                Credential.achievement_id == achievement.id)) is not None:
            continue  # idempotent: this result already earned it
        previous = latest_credential(session, holder.id, achievement.id) \
            if kind == "recertification" else None
        issued.append(issue(
            session, cfg, achievement=achievement, holder=holder, result_id=released.result_id,
            kind=kind if previous else "exam", score=released.reported_score,
            scale=released.reported_scale, supersedes=previous,
            evidence=_exam_evidence(session, released, previous)))
    if issued:
        from credentials import pathways

        issued += pathways.award_completed(session, cfg, holder)
    return issued


def connect_receivers() -> None:
    """Credentials' receivers (called by ``microcred.packages.connect_receivers``)."""
    signals.result_released.connect(on_result_released, weak=False)
    signals.result_rescored.connect(on_result_rescored, weak=False)


def on_result_rescored(sender: Any, *, session: Session, old_result_id: int, passed: bool,
                       **_: Any) -> list[int]:
    """A rescoring turned a result into a fail (or a pass): the credentials the old result
    earned, for a person to review. Nothing is revoked here: a re-key can be wrong too, and
    revoking is a decision with a reason (``credentials.revocation``)."""
    if passed:
        return []
    return list(session.scalars(select(Credential.id).where(Credential.result_id == old_result_id)
                                .order_by(Credential.id)))


def on_result_released(sender: Any, *, session: Session, released: ReleasedResult,
                       **_: Any) -> None:
    """A clean pass that earns (or renews) an achievement is owed its badge: record the
    issuance ``pending`` in the sender's session (never commits) and queue the
    ``credentials.issue`` job for when the release commits (``credentials.jobs``)."""
    if not released.passed:
        return
    exam_id = released.exam.id
    if session.scalar(select(Achievement.id).where(
            or_(Achievement.exam_id == exam_id, Achievement.recertification_exam_id == exam_id),
            Achievement.active.is_(True)).limit(1)) is None:
        return  # nothing to earn (a pass before its achievement exists: ``issue-missing``)
    from credentials.jobs import ISSUE
    from credentials.models import Issuance

    now = utcnow()
    row = session.scalar(select(Issuance).where(Issuance.result_id == released.result_id))
    if row is None:
        session.add(Issuance(result_id=released.result_id, holder_id=released.candidate.id,
                             state="pending", attempts=0, created_at=now, queued_at=now,
                             updated_at=now))
    elif row.state != "issued":
        row.queued_at = row.updated_at = now
    session.flush()
    enqueue_after_commit(session, ISSUE, released.result_id)


def recertify_with_evidence(session: Session, cfg: CredentialConfig, *, credential: Credential,
                            narrative: str, by_user_id: int | None,
                            evidence_url: str | None = None) -> Credential:
    """Renew ``credential`` on continuing-education evidence: a new credential linked to it."""
    if not narrative.strip():
        raise IssuanceError("describe the continuing-education evidence")
    try:
        evidence_url = http_url(evidence_url, "evidence_url")
    except InvalidInput as exc:
        raise IssuanceError(exc.message) from None
    if revocation.status_of(session, credential).revoked:
        raise IssuanceError("a revoked credential cannot be renewed")
    newer = latest_credential(session, credential.holder_id, credential.achievement_id)
    if newer is not None and newer.id != credential.id:
        raise IssuanceError("this credential was already renewed; renew the newest one")
    achievement = session.get(Achievement, credential.achievement_id)
    evidence = [
        openbadge.EvidenceInfo(name="Continuing education", narrative=narrative.strip(),
                               id=evidence_url or None, genre="Continuing education"),
        openbadge.EvidenceInfo(
            id=credential.json["id"], name="Recertification", genre="Recertification",
            narrative=f"Renews the credential issued on "
                      f"{credential.issued_at.date().isoformat()}."),
    ]
    return issue(session, cfg, achievement=achievement,
                 holder=_holder(session, credential.holder_id), kind="recertification",
                 evidence=evidence, supersedes=credential)


def _holder(session: Session, user_id: int) -> Person:
    person = records().person(session, user_id)
    if person is None:
        raise IssuanceError(f"the holder (user {user_id}) no longer exists")
    return person


def expiring(session: Session, *, within_days: int = 60,
             now: dt.datetime | None = None) -> list[Credential]:
    """Credentials that expire within ``within_days`` (or have expired in the last as many
    days) and have not been renewed: the program manager's recertification list."""
    now = now or utcnow()
    rows = session.scalars(
        select(Credential).where(
            Credential.valid_until.is_not(None),
            Credential.valid_until <= now + dt.timedelta(days=within_days),
            Credential.valid_until >= now - dt.timedelta(days=within_days))
        .order_by(Credential.valid_until))
    renewed = set(session.scalars(select(Credential.supersedes_id)
                                  .where(Credential.supersedes_id.is_not(None))))
    return [c for c in rows if c.id not in renewed
            and not revocation.status_of(session, c).revoked]
