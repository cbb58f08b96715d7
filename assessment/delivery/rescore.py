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

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from assessment.delivery.models import Attempt, ItemScore, Result, ResultRelease
from assessment.delivery.reads import is_current_result, newest_release_id, result_summary
from assessment.exams import Exam
from itembank.forms import unscored_versions
from itembank.models import ItemVersion
from itembank.rekeys import scoring_views
from microcred import signals
from microcred.db import utcnow
from microcred.errors import Conflict

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


# ---------------------------------------------------------------- rescoring for a cut change
#
# A newly adopted cut applies to attempts finalized after it. Results finalized before keep
# their decision until a psychometrician reviews the preview (every decision that flips and
# what happens to the badges it touches) and confirms it with a reason: then each standing
# result not scored by the current cut is superseded by a new one judged by it
# (``assessment.psych.cuts_scoring.judge``, the one rule), the rescoring is recorded as a
# ``CutRescoring`` row, a released fail that becomes a pass is sent as ``result_released`` (its
# badge is issued by the usual job) and a released pass that becomes a fail has its badges
# revoked with the reason (``credentials.issuance.revoke_for_results``). Held results keep
# their hold: their badge waits for the review. Invalidated results are not measurements and
# are left alone.


@dataclass(frozen=True)
class CutChange:
    attempt_id: int
    candidate_id: int
    candidate_name: str
    form_code: str
    old_result_id: int
    old_rule: str
    old_passed: bool
    old_percent: float
    old_scale: float | None
    raw_score: float
    max_score: float
    new: Any  # assessment.psych.cuts_scoring.Judgement
    release: str | None
    #: every result of the attempt (a badge may have been issued on an earlier one)
    attempt_result_ids: tuple[int, ...]
    #: what happens to badges: "issue", "revoke", "none" (and why, in ``badge_note``)
    badge_action: str = "none"
    badge_note: str = ""
    credentials: tuple[int, ...] = ()

    @property
    def flips(self) -> bool:
        return self.new.passed != self.old_passed

    @property
    def direction(self) -> str:
        return "fail -> pass" if self.new.passed else "pass -> fail"


@dataclass
class CutRescorePreview:
    exam: Exam
    adoption: Any  # assessment.psych.cuts.CutAdoption
    changes: list[CutChange] = field(default_factory=list)

    @property
    def flips(self) -> list[CutChange]:
        return [c for c in self.changes if c.flips]

    @property
    def digest(self) -> str:
        """What the preview showed, so a confirmation applies exactly that (or is refused)."""
        import hashlib

        text = f"{self.adoption.id}:" + ";".join(
            f"{c.old_result_id},{int(c.new.passed)},{c.new.scale_score}" for c in self.changes)
        return hashlib.sha256(text.encode()).hexdigest()[:32]


class CutRescoreRefused(Conflict):
    """A cut rescoring that cannot be applied as asked; the message says why."""

    code = "cut_rescore_refused"


def preview_cut_rescoring(session: Session, exam: Exam) -> CutRescorePreview:
    """Every standing result of ``exam`` not scored by its current cut, judged by it (nothing
    is written). Refused when the exam has no adopted cut."""
    from assessment.psych.cuts import current_cut
    from assessment.psych.cuts_scoring import judge_many
    from assessment.users import User
    from itembank.models import Form

    adoption = current_cut(session, exam.id)
    if adoption is None:
        raise CutRescoreRefused(f"exam {exam.code} has no adopted cut: adopt one before "
                                "rescoring for it")
    preview = CutRescorePreview(exam=exam, adoption=adoption)
    ids = list(session.scalars(
        select(Result.id).join(Attempt, Attempt.id == Result.attempt_id)
        .where(Attempt.exam_id == exam.id, Attempt.status == "finalized", is_current_result(),
               (Result.cut_adoption_id.is_(None)) | (Result.cut_adoption_id != adoption.id))
        .order_by(Result.id)))
    cache: dict = {}
    earns = _earns_credential(session, exam.id)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        rows = list(session.execute(
            select(Result, Attempt, User.display_name, Form.code)
            .join(Attempt, Attempt.id == Result.attempt_id)
            .join(User, User.id == Attempt.candidate_id)
            .join(Form, Form.id == Attempt.form_id)
            .where(Result.id.in_(chunk)).order_by(Result.id)))
        scored: dict[int, list[tuple[int, float, float]]] = {}
        for s in session.execute(  # plain rows: thousands of results, dozens of items each
                select(ItemScore.result_id, ItemScore.item_version_id, ItemScore.score,
                       ItemScore.max_score)
                .where(ItemScore.result_id.in_(chunk), ItemScore.scored.is_(True))
                .order_by(ItemScore.result_id, ItemScore.position)):
            scored.setdefault(s.result_id, []).append(
                (s.item_version_id, float(s.score), float(s.max_score)))
        releases = dict(session.execute(
            select(ResultRelease.result_id, ResultRelease.status)
            .where(ResultRelease.result_id.in_(chunk),
                   ResultRelease.id == newest_release_id(ResultRelease.result_id))).all())
        chains: dict[int, list[int]] = {}
        for rid, aid in session.execute(select(Result.id, Result.attempt_id).where(
                Result.attempt_id.in_([a.id for _, a, _, _ in rows]))):
            chains.setdefault(aid, []).append(rid)
        standing = [row for row in rows if releases.get(row[0].id) != "invalidated"]
        judged = judge_many(session, exam, [(a.form_id, scored.get(old.id, []))
                                            for old, a, _, _ in standing],
                            adoption=adoption, cache=cache)
        for (old, attempt, name, form_code), new in zip(standing, judged, strict=True):
            release = releases.get(old.id)
            change = CutChange(
                attempt_id=attempt.id, candidate_id=attempt.candidate_id, candidate_name=name,
                form_code=form_code, old_result_id=old.id, old_rule=old.scoring_rule,
                old_passed=old.passed, old_percent=old.percent, old_scale=old.scale_score,
                raw_score=old.raw_score, max_score=old.max_score, new=new, release=release,
                attempt_result_ids=tuple(sorted(chains.get(attempt.id, [old.id]))))
            preview.changes.append(_badge_plan(session, change, earns) if change.flips
                                   else change)
    return preview


def _earns_credential(session: Session, exam_id: int) -> bool:
    try:
        from credentials.issuance import exam_earns_credential
    except ImportError:  # credentials not installed: nothing is ever issued
        return False
    return exam_earns_credential(session, exam_id)


def _badge_plan(session: Session, change: CutChange, earns: bool) -> CutChange:
    if change.release != "released":
        return replace(change, badge_note="held for proctoring review: no badge changes until "
                                          "the review releases it")
    if change.new.passed:
        if not earns:
            return replace(change, badge_note="no active achievement is linked to this exam")
        return replace(change, badge_action="issue", badge_note="a badge is issued")
    try:
        from credentials.issuance import credentials_of_results
        from credentials.revocation import status_of
    except ImportError:
        return replace(change, badge_note="credentials are not installed")
    live = tuple(c.id for c in credentials_of_results(session, list(change.attempt_result_ids))
                 if not status_of(session, c).revoked)
    if not live:
        return replace(change, badge_note="no badge was issued on this attempt")
    return replace(change, badge_action="revoke", credentials=live,
                   badge_note=f"badge{'s' if len(live) != 1 else ''} "
                              f"{', '.join(map(str, live))} revoked")


def apply_cut_rescoring(session: Session, exam: Exam, *, by: Any, reason: str,
                        digest: str) -> Any:
    """Apply the preview the person saw (``digest``): new results superseding every standing
    result not scored by the current cut, the rescoring recorded (a ``CutRescoring``), badges
    issued or revoked for the released decisions that flip. Flushed, not committed; a badge is
    issued by the job queued when the transaction commits."""
    from assessment.delivery.models import CutRescoring

    reason = (reason or "").strip()
    if not reason:
        raise CutRescoreRefused("say why these results are rescored (the cut change it follows)")
    if len(reason) > 1000:
        raise CutRescoreRefused(f"the reason is {len(reason)} characters long; keep it to 1000")
    session.execute(select(Exam.id).where(Exam.id == exam.id).with_for_update())
    preview = preview_cut_rescoring(session, exam)
    if not preview.changes:
        raise CutRescoreRefused(f"every standing result of exam {exam.code} is already scored "
                                f"by cut {preview.adoption.id}: there is nothing to rescore")
    if digest != preview.digest:
        raise CutRescoreRefused("the results changed since the preview was shown (an attempt "
                                "was finalized, reviewed or rescored meanwhile): review the "
                                "preview again before applying it")
    adoption = preview.adoption
    row = CutRescoring(
        exam_id=exam.id, cut_adoption_id=adoption.id, by_id=by.id, reason=reason,
        rescored=len(preview.changes),
        flips=[{"attempt_id": c.attempt_id, "old_result_id": c.old_result_id,
                "passed": c.new.passed, "release": c.release, "badges": c.badge_action,
                "credentials": list(c.credentials), "note": c.badge_note}
               for c in preview.flips])
    session.add(row)
    session.flush()
    new_ids = _supersede(session, preview.changes, row, adoption.id, by.id, reason)
    session.flush()
    why = f"result rescored under cut {adoption.id}: {reason}"
    for change in preview.flips:
        new_id = new_ids[change.old_result_id]
        signals.send_isolated(
            signals.result_rescored, "delivery", session=session, attempt_id=change.attempt_id,
            candidate_id=change.candidate_id, exam_id=exam.id,
            old_result_id=change.old_result_id, new_result_id=new_id, passed=change.new.passed,
            rekey_id=None, cut_rescoring_id=row.id)
        if change.badge_action == "issue":
            new = session.get(Result, new_id)
            signals.send_isolated(signals.result_released, "delivery", session=session,
                                  released=result_summary(session, new,
                                                          released_at=new.created_at))
        elif change.badge_action == "revoke":
            from credentials.config import current
            from credentials.issuance import revoke_for_results

            revoke_for_results(session, current(), list(change.attempt_result_ids),
                               reason=why[:500], by_user_id=by.id)
    session.flush()
    return row


def _supersede(session: Session, changes: list[CutChange], row: Any, adoption_id: int,
               by_id: int, reason: str) -> dict[int, int]:
    """A new result (and its item scores and release) for each change; old id -> new id."""
    new_ids: dict[int, int] = {}
    for start in range(0, len(changes), CHUNK):
        chunk = changes[start:start + CHUNK]
        olds = {r.id: r for r in session.scalars(
            select(Result).where(Result.id.in_([c.old_result_id for c in chunk])))}
        scores: dict[int, list[Any]] = {}
        for s in session.execute(
                select(ItemScore.result_id, ItemScore.item_version_id, ItemScore.position,
                       ItemScore.domain_code, ItemScore.response, ItemScore.score,
                       ItemScore.max_score, ItemScore.scored)
                .where(ItemScore.result_id.in_(list(olds))).order_by(ItemScore.position)):
            scores.setdefault(s.result_id, []).append(s)
        made = []
        for c in chunk:
            old = olds[c.old_result_id]
            new = Result(attempt_id=old.attempt_id, supersedes_id=old.id,
                         cut_rescoring_id=row.id, raw_score=old.raw_score,
                         max_score=old.max_score, percent=old.percent,
                         pass_percent=old.pass_percent, passed=old.passed, answered=old.answered,
                         n_items=old.n_items, domain_scores=old.domain_scores, theta=None,
                         theta_se=None)
            c.new.apply_to(new)
            made.append((c, old, new))
        session.add_all([new for _, _, new in made])
        session.flush()  # one round of inserts for the chunk's results
        item_rows, release_rows = [], []
        for c, old, new in made:
            new_ids[old.id] = new.id
            item_rows += [{"result_id": new.id, "item_version_id": s.item_version_id,
                           "position": s.position, "domain_code": s.domain_code,
                           "response": s.response, "score": s.score, "max_score": s.max_score,
                           "scored": s.scored} for s in scores.get(old.id, [])]
            if c.release is not None:
                release_rows.append({
                    "result_id": new.id, "status": c.release, "by_user_id": by_id,
                    "reason": f"rescored under cut {adoption_id}: {reason}"[:1000],
                    "at": utcnow()})
        # new rows only (append-only tables), inserted in bulk: a rescoring copies every item
        # score of every result it supersedes
        # Core executemany on the session's connection: the ORM's bulk path costs several
        # times more per row, and nothing here needs the objects back
        if item_rows:
            session.connection().execute(insert(ItemScore.__table__), item_rows)
        if release_rows:
            session.connection().execute(insert(ResultRelease.__table__), release_rows)
    return new_ids
