"""Authoring and review as people do it: who may do what, the review path and its record.

Every function takes the ``actor`` (a signed-in user: anything with ``id`` and ``role``) and
checks the actor's role before anything is written:

- an **item author** writes drafts (creates, revises, opens a new draft of a published item),
  submits them for review and comments on them;
- an **admin** or a **psychometrician** does that too, and reviews: assigns reviewers, signs off
  review stages, asks for changes, approves (operational) or sends to pretest, retires;
- nobody else (proctors, candidates) sees the bank (:class:`BankForbidden`, a 403).

Status moves go through :func:`move`, the one place that changes ``ItemVersion.status`` for a
person: it checks the lifecycle (``itembank.lifecycle``), the actor's role, and that every
active review stage (``ReviewStage``) is signed off in this review round before approval; and it
writes the move to the item's history.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from itembank import authoring
from itembank.lifecycle import ACTIONS, check_transition, label
from itembank.models import (
    APPROVED,
    DELIVERABLE,
    DRAFT,
    IN_REVIEW,
    PRETEST,
    RETIRED,
    Item,
    ItemEvent,
    ItemVersion,
    ReviewAssignment,
    ReviewNote,
    ReviewStage,
)
from itembank.types import ItemDefinitionError
from microcred.db import utcnow
from microcred.errors import DomainError

ITEM_AUTHOR = "item_author"
#: Who sees the bank and writes drafts.
BANK_ROLES = frozenset({ITEM_AUTHOR, "admin", "psychometrician"})
#: Who reviews: signs off, asks for changes, approves, sends to pretest, retires.
APPROVERS = frozenset({"admin", "psychometrician"})
#: Who changes a published item's key or scoring (``itembank.rekeys``).
REKEYERS = frozenset({"psychometrician"})
#: Who configures the review stages.
STAGE_EDITORS = frozenset({"admin"})

PASSED = "passed"
CHANGES = "changes"
VERDICTS = (PASSED, CHANGES)
COMMENT_LIMIT = 10_000


class BankForbidden(DomainError):
    """The actor's role may not do this in the item bank."""

    status, code = 403, "forbidden"


class ReviewError(DomainError):
    """A review step that cannot be taken now; the message says why."""

    status, code = 409, "review_refused"


class ReviewInputError(DomainError):
    """A review step's input is not valid (``field`` names it)."""

    status, code = 422, "invalid_review"


def may_see_bank(user: Any) -> bool:
    return getattr(user, "role", None) in BANK_ROLES


def may_approve(user: Any) -> bool:
    return getattr(user, "role", None) in APPROVERS


def require(actor: Any, roles: Iterable[str], doing: str) -> None:
    """Raise :class:`BankForbidden` unless ``actor`` has one of ``roles``."""
    roles = frozenset(roles)
    if getattr(actor, "role", None) not in roles:
        who = ", ".join(sorted(r.replace("_", " ") for r in roles))
        raise BankForbidden(f"only {who} may {doing}")


# ---------------------------------------------------------------- drafts


def create_draft(session: Session, actor: Any, **fields: Any) -> ItemVersion:
    """A new item and its first draft, written by ``actor`` (``authoring.create_item``'s
    fields)."""
    require(actor, BANK_ROLES, "write items")
    return authoring.create_item(session, actor=actor, **fields)


def edit_draft(session: Session, actor: Any, version: ItemVersion, **changes: Any) -> ItemVersion:
    """Revise a draft's content; anything out of draft refuses (open a new draft instead)."""
    require(actor, BANK_ROLES, "write items")
    return authoring.revise_version(session, version, actor=actor, **changes)


def open_draft(session: Session, actor: Any, item: Item) -> ItemVersion:
    """The item's draft: its current one, or a new version copied from its newest."""
    require(actor, BANK_ROLES, "write items")
    return authoring.new_version(session, item, actor=actor)


# ---------------------------------------------------------------- the review path


def move(session: Session, actor: Any, version: ItemVersion, to_status: str, *,
         note: str = "") -> ItemVersion:
    """Move ``version`` to ``to_status`` for ``actor``: the one checked path (see the module)."""
    from_status = version.status
    check_transition(from_status, to_status)
    if (from_status, to_status) == (DRAFT, IN_REVIEW):
        require(actor, BANK_ROLES, "submit items for review")
    else:
        require(actor, APPROVERS, f"move an item version from {label(from_status).lower()} to "
                                  f"{label(to_status).lower()}")
    if from_status == IN_REVIEW and to_status in DELIVERABLE:
        missing = pending_stages(session, version)
        if missing:
            raise ReviewError(
                f"the review stages {', '.join(s.name for s in missing)} are not signed off yet "
                "in this review round", stages=[s.code for s in missing])
    if to_status == RETIRED and not note.strip():
        raise ReviewInputError("retiring an item version needs a reason", field="note")
    version.status = to_status
    if to_status == IN_REVIEW:
        version.review_round = (version.review_round or 0) + 1
    if to_status in DELIVERABLE and version.published_at is None:
        version.published_at = utcnow()
    session.flush()
    action = ACTIONS[(from_status, to_status)]
    summary = f"{label(from_status).lower()} -> {label(to_status).lower()}"
    authoring.record_event(session, version, action=action, actor=actor,
                           summary=summary + (f": {note.strip()}" if note.strip() else ""),
                           changes={"status": {"from": from_status, "to": to_status}})
    return version


def submit_for_review(session: Session, actor: Any, version: ItemVersion,
                      note: str = "") -> ItemVersion:
    authoring.item_type(version.item_type).validate_definition(
        version.interaction, version.key, version.scoring)
    if note.strip():
        _note(session, version, actor, body=note)
    return move(session, actor, version, IN_REVIEW, note=note)


def request_changes(session: Session, actor: Any, version: ItemVersion, comment: str,
                    *, stage_code: str = "") -> ItemVersion:
    """Send a version in review back to draft, saying what to change."""
    require(actor, APPROVERS, "ask for changes")
    comment = _check_body(comment, required="say what should change")
    check_transition(version.status, DRAFT)
    _note(session, version, actor, body=comment, verdict=CHANGES, stage_code=stage_code)
    return move(session, actor, version, DRAFT, note=comment)


def approve(session: Session, actor: Any, version: ItemVersion, *, pretest: bool = False,
            note: str = "") -> ItemVersion:
    """Approve a version in review as operational, or send it to pretest (``pretest``); a
    pretest version is approved once its calibration is reviewed."""
    return move(session, actor, version, PRETEST if pretest else APPROVED, note=note)


def retire(session: Session, actor: Any, version: ItemVersion, reason: str) -> ItemVersion:
    return move(session, actor, version, RETIRED, note=reason)


def assign_reviewer(session: Session, actor: Any, version: ItemVersion, reviewer: Any, *,
                    stage_code: str = "") -> ReviewAssignment:
    require(actor, APPROVERS, "assign reviewers")
    if version.status != IN_REVIEW:
        raise ReviewError(f"only a version in review gets reviewers; this one is "
                          f"{label(version.status).lower()}")
    if not may_see_bank(reviewer) or not getattr(reviewer, "active", True):
        raise ReviewInputError(f"{getattr(reviewer, 'display_name', reviewer)} cannot review "
                               "items (an active item author, admin or psychometrician can)",
                               field="reviewer")
    if stage_code:
        _stage(session, stage_code)
    row = ReviewAssignment(item_version_id=version.id, reviewer_id=reviewer.id,
                           stage_code=stage_code, assigned_by_id=actor.id)
    session.add(row)
    session.flush()
    stage = f" for the {stage_code} stage" if stage_code else ""
    authoring.record_event(session, version, action="reviewer_assigned", actor=actor,
                           summary=f"assigned {reviewer.display_name} to review{stage}",
                           changes={"reviewer_id": reviewer.id, "stage": stage_code})
    return row


def comment(session: Session, actor: Any, version: ItemVersion, body: str) -> ReviewNote:
    require(actor, BANK_ROLES, "comment on items")
    note = _note(session, version, actor, body=_check_body(body, required="write a comment"))
    authoring.record_event(session, version, action="commented", actor=actor,
                           summary=_excerpt(note.body))
    return note


def sign_off(session: Session, actor: Any, version: ItemVersion, stage_code: str, *,
             verdict: str = PASSED, body: str = "") -> ReviewNote:
    """Record a review stage's verdict: ``passed``, or ``changes`` (which sends the version
    back to draft). An admin or psychometrician signs off any stage; an item author only a
    stage (or version) they were assigned to."""
    if verdict not in VERDICTS:
        raise ReviewInputError(f"verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}",
                               field="verdict")
    stage = _stage(session, stage_code)
    if not may_approve(actor):
        require(actor, BANK_ROLES, "review items")
        if not _assigned(session, version, actor, stage.code):
            raise BankForbidden(f"you are not assigned to the {stage.name} review of this item")
    if version.status != IN_REVIEW:
        raise ReviewError(f"only a version in review is signed off; this one is "
                          f"{label(version.status).lower()}")
    if verdict == CHANGES:
        body = _check_body(body, required="say what should change")
    note = _note(session, version, actor, body=body.strip(), verdict=verdict,
                 stage_code=stage.code)
    authoring.record_event(
        session, version, action="signed_off", actor=actor,
        summary=f"{stage.name}: {'passed' if verdict == PASSED else 'changes requested'}"
                + (f" ({_excerpt(body)})" if body.strip() else ""),
        changes={"stage": stage.code, "verdict": verdict})
    if verdict == CHANGES:
        version.status = DRAFT  # (checked: in review -> draft is allowed)
        session.flush()
        authoring.record_event(session, version, action="changes_requested", actor=actor,
                               summary=f"in review -> draft: {stage.name} asked for changes",
                               changes={"status": {"from": IN_REVIEW, "to": DRAFT}})
    return note


def _assigned(session: Session, version: ItemVersion, actor: Any, stage_code: str) -> bool:
    return session.scalar(select(ReviewAssignment.id).where(
        ReviewAssignment.item_version_id == version.id,
        ReviewAssignment.reviewer_id == actor.id,
        ReviewAssignment.stage_code.in_(["", stage_code])).limit(1)) is not None


def _check_body(body: str, *, required: str) -> str:
    body = (body or "").strip()
    if not body:
        raise ReviewInputError(f"{required}: the comment is empty", field="body")
    if len(body) > COMMENT_LIMIT:
        raise ReviewInputError(f"a comment may have at most {COMMENT_LIMIT} characters; "
                               f"{len(body)} were given", field="body")
    return body


def _excerpt(text: str, n: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _note(session: Session, version: ItemVersion, actor: Any, *, body: str, verdict: str = "",
          stage_code: str = "") -> ReviewNote:
    note = ReviewNote(item_version_id=version.id, round=version.review_round or 0,
                      author_id=getattr(actor, "id", None), stage_code=stage_code,
                      verdict=verdict, body=body.strip())
    session.add(note)
    session.flush()
    return note


# ---------------------------------------------------------------- review stages


def review_stages(session: Session) -> list[ReviewStage]:
    """The active review stages, in the order they are taken."""
    return list(session.scalars(select(ReviewStage).where(ReviewStage.active.is_(True))
                                .order_by(ReviewStage.position, ReviewStage.id)))


def _stage(session: Session, code: str) -> ReviewStage:
    stage = session.scalar(select(ReviewStage).where(ReviewStage.code == code,
                                                     ReviewStage.active.is_(True)))
    if stage is None:
        known = ", ".join(s.code for s in review_stages(session)) or "none are configured"
        raise ReviewInputError(f"there is no active review stage {code!r} (stages: {known})",
                               field="stage")
    return stage


def set_review_stages(session: Session, actor: Any,
                      stages: Sequence[tuple[str, str]]) -> list[ReviewStage]:
    """Make ``stages`` (``(code, name)`` in order) the review path; stages not listed stop
    being required (their past sign-offs stay in the record)."""
    require(actor, STAGE_EDITORS, "configure review stages")
    codes = [code.strip().lower() for code, _ in stages]
    for (code, name), clean in zip(stages, codes, strict=True):
        if not clean or not clean.replace("_", "").replace("-", "").isalnum() or len(clean) > 40:
            raise ReviewInputError(f"a stage code is 1-40 letters, digits, - or _; got {code!r}",
                                   field="code")
        if not name.strip():
            raise ReviewInputError(f"stage {clean} needs a name", field="name")
    if len(set(codes)) != len(codes):
        raise ReviewInputError("a stage is listed twice", field="code")
    existing = {s.code: s for s in session.scalars(select(ReviewStage))}
    for stage in existing.values():
        stage.active = stage.code in codes
    for position, ((_, name), code) in enumerate(zip(stages, codes, strict=True)):
        stage = existing.get(code) or ReviewStage(code=code)
        stage.name, stage.position, stage.active = name.strip(), position, True
        session.add(stage)
    session.flush()
    return review_stages(session)


def signoffs(session: Session, version: ItemVersion) -> dict[str, ReviewNote]:
    """The standing verdict of each stage in the version's current review round."""
    rows = session.scalars(select(ReviewNote).where(
        ReviewNote.item_version_id == version.id, ReviewNote.round == version.review_round,
        ReviewNote.stage_code != "", ReviewNote.verdict != "").order_by(ReviewNote.id))
    return {row.stage_code: row for row in rows}


def pending_stages(session: Session, version: ItemVersion) -> list[ReviewStage]:
    """The active stages not yet passed in the version's current review round."""
    passed = {code for code, n in signoffs(session, version).items() if n.verdict == PASSED}
    return [s for s in review_stages(session) if s.code not in passed]


# ---------------------------------------------------------------- reading the record


def history(session: Session, item_id: int) -> list[ItemEvent]:
    """The item's history, newest first."""
    return list(session.scalars(select(ItemEvent).where(ItemEvent.item_id == item_id)
                                .order_by(ItemEvent.id.desc())))


def notes(session: Session, version_ids: Sequence[int]) -> list[ReviewNote]:
    if not version_ids:
        return []
    return list(session.scalars(select(ReviewNote).where(
        ReviewNote.item_version_id.in_(list(version_ids))).order_by(ReviewNote.id)))


def assignments(session: Session, version_ids: Sequence[int]) -> dict[int, list[ReviewAssignment]]:
    out: dict[int, list[ReviewAssignment]] = {}
    if not version_ids:
        return out
    for row in session.scalars(select(ReviewAssignment).where(
            ReviewAssignment.item_version_id.in_(list(version_ids)))
            .order_by(ReviewAssignment.id)):
        out.setdefault(row.item_version_id, []).append(row)
    return out


def ready_for_calibration(status: str, n_responses: int, min_responses: int) -> bool:
    """A pretest version with at least ``min_responses`` scored responses is ready to be
    calibrated and reviewed (the setting ``MICROCRED_PRETEST_MIN_RESPONSES``)."""
    return status == PRETEST and n_responses >= min_responses


@dataclass(frozen=True)
class QueueEntry:
    version: ItemVersion
    code: str
    reviewer_ids: tuple[int, ...]
    pending: tuple[str, ...]
    ready_for_calibration: bool
    n_responses: int


def review_queue(session: Session, *, response_counts: dict[int, int] | None = None,
                 min_responses: int, reviewer_id: int | None = None) -> list[QueueEntry]:
    """What awaits review: versions in review (oldest submission first), then pretest versions
    ready for calibration (``response_counts``: scored responses per pretest version id). With
    ``reviewer_id``, only versions assigned to that reviewer. A fixed number of queries."""
    counts = response_counts or {}
    ready_ids = [vid for vid, n in counts.items() if n >= min_responses]
    rows = list(session.execute(
        select(ItemVersion, Item.code).join(Item, Item.id == ItemVersion.item_id)
        .where((ItemVersion.status == IN_REVIEW)
               | ((ItemVersion.status == PRETEST) & ItemVersion.id.in_(ready_ids)))
        .order_by(ItemVersion.status, ItemVersion.id)))
    ids = [v.id for v, _ in rows]
    assigned = assignments(session, ids)
    stages = [s.code for s in review_stages(session)]
    # the standing verdict of each (version, round, stage) is its newest sign-off
    verdicts: dict[tuple[int, int, str], str] = {}
    if ids:
        for vid, rnd, stage, verdict in session.execute(
                select(ReviewNote.item_version_id, ReviewNote.round, ReviewNote.stage_code,
                       ReviewNote.verdict)
                .where(ReviewNote.item_version_id.in_(ids), ReviewNote.stage_code != "",
                       ReviewNote.verdict != "").order_by(ReviewNote.id)):
            verdicts[(vid, rnd, stage)] = verdict
    out = []
    for version, code in rows:
        reviewers = tuple(a.reviewer_id for a in assigned.get(version.id, []))
        if reviewer_id is not None and reviewer_id not in reviewers:
            continue
        pending = tuple(s for s in stages if verdicts.get(
            (version.id, version.review_round, s)) != PASSED) if version.status == IN_REVIEW else ()
        n = counts.get(version.id, 0)
        out.append(QueueEntry(version=version, code=code, reviewer_ids=reviewers,
                              pending=pending, n_responses=n,
                              ready_for_calibration=ready_for_calibration(
                                  version.status, n, min_responses)))
    return out


def item_or_error(session: Session, code: str) -> Item:
    item = session.scalar(select(Item).where(Item.code == code))
    if item is None:
        raise ItemNotFound(f"there is no item {code}")
    return item


class ItemNotFound(DomainError):
    status, code = 404, "not_found"


def version_of(session: Session, item: Item, number: int | None = None) -> ItemVersion:
    """Version ``number`` of ``item``, or its newest."""
    q = select(ItemVersion).where(ItemVersion.item_id == item.id)
    q = q.where(ItemVersion.version == number) if number is not None else \
        q.order_by(ItemVersion.version.desc()).limit(1)
    version = session.scalar(q)
    if version is None:
        raise ItemNotFound(f"item {item.code} has no version {number}")
    return version


__all__ = ["APPROVERS", "BANK_ROLES", "ITEM_AUTHOR", "BankForbidden", "ItemDefinitionError",
           "ReviewError", "approve", "assign_reviewer", "comment", "create_draft", "edit_draft",
           "history", "move", "open_draft", "request_changes", "retire", "review_queue",
           "set_review_stages", "sign_off", "submit_for_review"]
