"""Rescoring after a re-key: every attempt whose standing result scored the re-keyed item
version gets a new result that supersedes it (results are never edited in place).

The item bank records the re-key (``itembank.rekeys.rekey``) and sends
``signals.item_rekeyed``; :func:`on_item_rekeyed` rescores here, in the sender's session, and
answers with a :class:`RescoreReport` listing the results that flip between pass and fail.

Each new result keeps the standing release decision of the one it supersedes (a held result
stays held for its proctor review; an invalidated one stays invalidated). A flip is sent as
``signals.result_rescored``; a released fail that becomes a pass is also sent as
``signals.result_released``, so its badge is issued the usual way. A pass that becomes a fail
revokes nothing by itself: it is reported (the report, the signal) for a person to review the
credential. A result whose score does not change is left standing.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from assessment.delivery.models import Attempt, ItemScore, Result, ResultRelease
from assessment.delivery.reads import is_current_result, newest_release_id, result_summary
from assessment.exams import Exam
from itembank.forms import unscored_versions
from itembank.models import ItemVersion
from itembank.rekeys import scoring_views
from microcred import signals

#: Results rescored per round trip (keeps IN lists short on both databases).
CHUNK = 500


@dataclass(frozen=True)
class Flip:
    attempt_id: int
    candidate_id: int
    exam_id: int
    old_result_id: int
    new_result_id: int
    old_percent: float
    new_percent: float
    passed: bool
    release: str | None
    #: credentials issued on the old result, to review (a pass turned fail); never revoked here
    credentials_to_review: tuple[int, ...] = ()

    @property
    def direction(self) -> str:
        return "fail -> pass" if self.passed else "pass -> fail"


@dataclass
class RescoreReport:
    item_version_id: int
    rekey_id: int
    #: standing results that scored the item
    affected: int = 0
    #: of those, results superseded by a new score
    rescored: int = 0
    flips: list[Flip] = field(default_factory=list)


def on_item_rekeyed(sender: Any, *, session: Session, item_version_id: int, rekey_id: int,
                    reason: str, by_id: int | None, **_: Any) -> RescoreReport:
    return rescore_version(session, item_version_id, rekey_id=rekey_id, reason=reason,
                           by_id=by_id)


def rescore_version(session: Session, item_version_id: int, *, rekey_id: int, reason: str,
                    by_id: int | None) -> RescoreReport:
    """Rescore every standing result that scored ``item_version_id`` (see the module)."""
    report = RescoreReport(item_version_id=item_version_id, rekey_id=rekey_id)
    affected = list(session.scalars(
        select(Result.id).where(is_current_result(), Result.id.in_(
            select(ItemScore.result_id).where(ItemScore.item_version_id == item_version_id)))
        .order_by(Result.id)))
    report.affected = len(affected)
    exams: dict[int, Exam] = {}
    views: dict[int, Any] = {}
    unscored: dict[int, set[int]] = {}
    for start in range(0, len(affected), CHUNK):
        _rescore_chunk(session, affected[start:start + CHUNK], report, exams, views, unscored,
                       rekey_id=rekey_id, reason=reason, by_id=by_id)
    session.flush()
    report.flips = [_announce(session, flip, rekey_id) for flip in report.flips]
    return report


def _rescore_chunk(session: Session, result_ids: list[int], report: RescoreReport,
                   exams: dict[int, Exam], views: dict[int, Any], unscored: dict[int, set[int]],
                   *, rekey_id: int, reason: str, by_id: int | None) -> None:
    rows = list(session.execute(select(Result, Attempt)
                                .join(Attempt, Attempt.id == Result.attempt_id)
                                .where(Result.id.in_(result_ids)).order_by(Result.id)))
    old_scores: dict[int, dict[int, ItemScore]] = {}
    for s in session.scalars(select(ItemScore).where(ItemScore.result_id.in_(result_ids))):
        old_scores.setdefault(s.result_id, {})[s.item_version_id] = s
    releases = dict(session.execute(
        select(ResultRelease.result_id, ResultRelease.status)
        .where(ResultRelease.result_id.in_(result_ids),
               ResultRelease.id == newest_release_id(ResultRelease.result_id))).all())
    missing = {vid for _, attempt in rows for vid in attempt.item_order} - set(views)
    if missing:
        views.update(scoring_views(session, session.scalars(
            select(ItemVersion).where(ItemVersion.id.in_(missing)))))
    from assessment.delivery.service import score_responses, scored_items
    from assessment.psych.cuts import CutAdoption
    from assessment.psych.cuts_scoring import judge

    for old, attempt in rows:
        exam = exams.get(attempt.exam_id) or exams.setdefault(
            attempt.exam_id, session.get(Exam, attempt.exam_id))
        if attempt.form_id not in unscored:
            unscored[attempt.form_id] = unscored_versions(session, attempt.form_id)
        given = old_scores.get(old.id, {})
        new, scores = score_responses(
            session, exam, attempt.item_order, {vid: s.response for vid, s in given.items()},
            unscored=unscored[attempt.form_id], views=views)
        unchanged = all(
            vid in given and (given[vid].score, given[vid].max_score) == (s.score, s.max_score)
            for vid, s in ((s.item_version_id, s) for s in scores))
        if unchanged:
            continue
        new.attempt_id, new.supersedes_id, new.rekey_id = attempt.id, old.id, rekey_id
        # a rescore is judged by the rule the result was given: its pass mark, or its cut
        if old.cut_adoption_id is None:
            new.pass_percent = old.pass_percent
            new.passed = new.percent >= old.pass_percent
        else:
            judge(session, exam, attempt.form_id, scored_items(scores),
                  adoption=session.get(CutAdoption, old.cut_adoption_id)).apply_to(new)
        session.add(new)
        session.flush()
        for s in scores:
            s.result_id = new.id
        session.add_all(scores)
        standing = releases.get(old.id)
        if standing is not None:
            session.add(ResultRelease(result_id=new.id, status=standing, by_user_id=by_id,
                                      reason=f"rescored after re-key {rekey_id}: {reason}"))
        report.rescored += 1
        if new.passed != old.passed:
            report.flips.append(Flip(
                attempt_id=attempt.id, candidate_id=attempt.candidate_id,
                exam_id=attempt.exam_id, old_result_id=old.id, new_result_id=new.id,
                old_percent=old.percent, new_percent=new.percent, passed=new.passed,
                release=standing))


def _announce(session: Session, flip: Flip, rekey_id: int) -> Flip:
    answers = signals.send_isolated(
        signals.result_rescored, "delivery", session=session, attempt_id=flip.attempt_id,
        candidate_id=flip.candidate_id, exam_id=flip.exam_id,
        old_result_id=flip.old_result_id, new_result_id=flip.new_result_id,
        passed=flip.passed, rekey_id=rekey_id)
    if flip.passed and flip.release == "released":
        new = session.get(Result, flip.new_result_id)
        signals.send_isolated(signals.result_released, "delivery", session=session,
                              released=result_summary(session, new, released_at=new.created_at))
    to_review = tuple(cid for answer in answers for cid in (answer or ()))
    return replace(flip, credentials_to_review=to_review)
