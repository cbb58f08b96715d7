"""Standard-setting studies: a panel of subject-matter experts, rounds of judgments, and the
facilitator (a psychometrician) who runs them. The numbers come from
:mod:`psychometrics.standard_setting`; this module holds the study, not the formulas
(:mod:`assessment.psych.study_results` computes a study's cut from what is stored here).

A study is on one exam and one *reference form* (a fixed form of the exam): the items panelists
judge, the raw-score metric of the cut, and the form whose calibrated parameters carry the cut
to theta through the test characteristic curve.

Methods and what a panelist records in each round:

- ``angoff`` (modified Angoff): for every item the probability that a minimally competent
  candidate answers it correctly (the expected score for an item worth more than one point);
- ``yes_no_angoff``: for every item, yes or no: would the minimally competent candidate answer it
  correctly (Impara & Plake, 1997);
- ``bookmark``: a page of the ordered item booklet (items by their RP location, RP67 unless the
  study says otherwise): the first page the minimally competent candidate would *not* master;
- ``hofstee``: the lowest and highest acceptable cut (percent correct) and the lowest and highest
  acceptable fail rate (percent);
- ``beuk``: the cut (percent correct) and the pass rate (percent) the panelist expects;
- ``contrasting_groups`` and ``borderline_regression``: no per-round ratings; a judgment of each
  candidate (qualified or not, or a global rating on an ordinal scale), set against the
  candidate's score on the reference form. Panelists enter them on their own screen (without the
  scores: the judgment must come from other evidence); the facilitator may enter or upload them
  too. The newest classification of a candidate stands, whoever entered it.

A facilitator may remove a seated panelist (conflict of interest, not following the instructions):
the removal is a row of its own (who removed whom, when and why); the panelist's seat and past
ratings stay as they were (append-only) but count in no result computed from then on, in any
round, and the removed panelist's study screens answer 403. A removed panelist is not seated again.

Ratings and judgments are append-only: changing one adds a row that supersedes it (the newest row
of a panelist, item and round is the standing one), and only while its round is open. A closed
round's ratings never change. Who may see what: the facilitator sees everything; a panelist sees
their own studies and their own ratings, and the panel's results of a closed round once the
facilitator has released them (never another panelist's individual ratings).
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from assessment.exams import Exam
from assessment.users import Role, User, find_user_by_email
from itembank.models import FIXED, Form, FormItem, ItemVersion
from microcred.db import Base, append_only, utcnow
from microcred.errors import Conflict, Forbidden, Invalid, NotFound
from microcred.inputs import is_whole

METHODS = {
    "angoff": "Modified Angoff",
    "yes_no_angoff": "Yes/No Angoff",
    "bookmark": "Bookmark",
    "hofstee": "Hofstee",
    "beuk": "Beuk",
    "contrasting_groups": "Contrasting groups",
    "borderline_regression": "Borderline regression",
}
ITEM_METHODS = ("angoff", "yes_no_angoff")
JUDGMENT_METHODS = ("bookmark", "hofstee", "beuk")
CLASSIFICATION_METHODS = ("contrasting_groups", "borderline_regression")
DEFAULT_RP = 0.67
#: Roles that may sit on a panel. Candidates never: a panel sees items and their keys.
PANEL_ROLES = (Role.PANELIST.value, Role.ITEM_AUTHOR.value, Role.PSYCHOMETRICIAN.value,
               Role.ADMIN.value, Role.PROCTOR.value)
#: Borderline regression's default global-rating scale: 0 fail, 1 borderline, 2 pass, 3 good.
DEFAULT_RATING_SCALE = (0, 3)
TITLE_LENGTH = 200
REASON_LENGTH = 500
MAX_CSV_LINES = 20_000


class Study(Base):
    """One standard-setting study of an exam."""

    __tablename__ = "ss_studies"

    id: Mapped[int] = mapped_column(primary_key=True)
    exam_id: Mapped[int] = mapped_column(ForeignKey("exams.id"), index=True)
    title: Mapped[str] = mapped_column(String(TITLE_LENGTH))
    method: Mapped[str] = mapped_column(String(30))
    reference_form_id: Mapped[int] = mapped_column(ForeignKey("forms.id"))
    #: Bookmark's response probability (RP67 by default); unused by the other methods.
    rp: Mapped[float] = mapped_column(default=DEFAULT_RP)
    #: Method options: ``{"borderline": 1, "scale": [0, 3]}`` (borderline regression).
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(10), default="open")
    facilitator_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[dt.datetime | None]

    exam: Mapped[Exam] = relationship()
    reference_form: Mapped[Form] = relationship()
    panelists: Mapped[list[StudyPanelist]] = relationship(order_by="StudyPanelist.id")
    removals: Mapped[list[PanelistRemoval]] = relationship(order_by="PanelistRemoval.id")
    rounds: Mapped[list[StudyRound]] = relationship(order_by="StudyRound.number")

    @property
    def method_name(self) -> str:
        return METHODS.get(self.method, self.method)

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    @property
    def open_round(self) -> StudyRound | None:
        return next((r for r in self.rounds if r.is_open), None)

    @property
    def closed_rounds(self) -> list[StudyRound]:
        return [r for r in self.rounds if not r.is_open]

    @property
    def has_rounds(self) -> bool:
        return self.method not in CLASSIFICATION_METHODS

    def removed_ids(self) -> set[int]:
        """Users removed from the panel: their rows stay, but count for nothing."""
        return {r.user_id for r in self.removals}

    @property
    def seated(self) -> list[StudyPanelist]:
        """The panel as it stands: every seat not removed."""
        removed = self.removed_ids()
        return [p for p in self.panelists if p.user_id not in removed]

    def panelist_ids(self) -> set[int]:
        """Who sits on the panel now (removed panelists not included)."""
        return {p.user_id for p in self.seated}


class StudyPanelist(Base):
    """A user's seat on a study's panel: the only thing that lets them see the study."""

    __tablename__ = "ss_panelists"
    __table_args__ = (UniqueConstraint("study_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("ss_studies.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    invited_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(foreign_keys=[user_id])


append_only(StudyPanelist)


class PanelistRemoval(Base):
    """A panelist's removal from a study's panel: who removed whom, when and why. The seat and
    the panelist's ratings stay (append-only); from this row on they count in no result and the
    panelist can no longer see or post to the study."""

    __tablename__ = "ss_panelist_removals"
    __table_args__ = (UniqueConstraint("study_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("ss_studies.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    removed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    removed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    reason: Mapped[str] = mapped_column(String(REASON_LENGTH))

    user: Mapped[User] = relationship(foreign_keys=[user_id])
    removed_by: Mapped[User] = relationship(foreign_keys=[removed_by_id])


append_only(PanelistRemoval)


class StudyRound(Base):
    """A round of judgments. Open until the facilitator closes it; its results are shown to the
    panel once the facilitator releases them (``released_at``)."""

    __tablename__ = "ss_rounds"
    __table_args__ = (UniqueConstraint("study_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("ss_studies.id"), index=True)
    number: Mapped[int]
    opened_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    opened_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    closed_at: Mapped[dt.datetime | None]
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    released_at: Mapped[dt.datetime | None]
    released_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


class StudyRating(Base):
    """A panelist's rating of one item in one round (Angoff: a probability or expected score;
    Yes/No: 1 or 0). Never edited: a change is a new row; the newest is the standing rating."""

    __tablename__ = "ss_ratings"

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("ss_rounds.id"), index=True)
    panelist_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    item_version_id: Mapped[int] = mapped_column(ForeignKey("item_versions.id"))
    value: Mapped[float]
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("ss_ratings.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


append_only(StudyRating)


class StudyJudgment(Base):
    """A panelist's judgment of the whole test in one round: a bookmark page, Hofstee's four
    numbers or Beuk's two. Never edited: a change is a new row; the newest stands."""

    __tablename__ = "ss_judgments"

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("ss_rounds.id"), index=True)
    panelist_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    values: Mapped[dict[str, Any]]
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("ss_judgments.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


append_only(StudyJudgment)


class StudyClassification(Base):
    """A judgment of one candidate's result (contrasting groups: 1 qualified, 0 not; borderline
    regression: a global rating). Never edited: a new row for the same result supersedes."""

    __tablename__ = "ss_classifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("ss_studies.id"), index=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("results.id"))
    rating: Mapped[int]
    entered_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    source: Mapped[str] = mapped_column(String(20), default="form")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


append_only(StudyClassification)


# ---------------------------------------------------------------- reading


def get_study(session: Session, study_id: int) -> Study:
    study = session.get(Study, study_id)
    if study is None:
        raise NotFound(f"there is no standard-setting study {study_id}")
    return study


def studies_of_exam(session: Session, exam_id: int | None = None) -> list[Study]:
    query = select(Study).order_by(Study.created_at.desc(), Study.id.desc())
    if exam_id is not None:
        query = query.where(Study.exam_id == exam_id)
    return list(session.scalars(query))


def studies_of_panelist(session: Session, user_id: int) -> list[Study]:
    """The studies ``user_id`` sits on, newest first (and nothing else)."""
    removed = select(PanelistRemoval.id).where(PanelistRemoval.study_id == Study.id,
                                               PanelistRemoval.user_id == user_id).exists()
    return list(session.scalars(
        select(Study).join(StudyPanelist, StudyPanelist.study_id == Study.id)
        .where(StudyPanelist.user_id == user_id, ~removed)
        .order_by(Study.created_at.desc(), Study.id.desc())))


def require_panelist(study: Study, user: User) -> None:
    """Refuse (403) anyone who does not sit on ``study``'s panel."""
    if user.id not in study.panelist_ids():
        raise Forbidden(f"you are not on the panel of study {study.id}")


@dataclass
class StudyItem:
    """An item of the reference form as a panel judges it."""

    version: ItemVersion
    position: int
    label: str

    @property
    def max_score(self) -> float:
        return float(self.version.max_score or 1.0)


def study_items(session: Session, study: Study) -> list[StudyItem]:
    """The scored items of the reference form, in form order (pretest items count for nothing,
    so they are not judged)."""
    rows = session.execute(
        select(FormItem.position, ItemVersion)
        .join(ItemVersion, ItemVersion.id == FormItem.item_version_id)
        .where(FormItem.form_id == study.reference_form_id, FormItem.scored.is_(True))
        .order_by(FormItem.position)
    ).all()
    out = []
    for position, version in rows:
        code = version.item.code
        label = code if version.version == 1 else f"{code} v{version.version}"
        out.append(StudyItem(version=version, position=position, label=label))
    return out


def standing_ratings(session: Session, round_ids: list[int],
                     panelist_id: int | None = None) -> dict[tuple[int, int, int], StudyRating]:
    """The standing (newest) rating per (round, panelist, item version)."""
    if not round_ids:
        return {}
    query = select(StudyRating).where(StudyRating.round_id.in_(round_ids))
    if panelist_id is not None:
        query = query.where(StudyRating.panelist_id == panelist_id)
    out: dict[tuple[int, int, int], StudyRating] = {}
    for r in session.scalars(query.order_by(StudyRating.id)):
        out[(r.round_id, r.panelist_id, r.item_version_id)] = r
    return out


def standing_judgments(session: Session, round_ids: list[int],
                       panelist_id: int | None = None) -> dict[tuple[int, int], StudyJudgment]:
    """The standing (newest) judgment per (round, panelist)."""
    if not round_ids:
        return {}
    query = select(StudyJudgment).where(StudyJudgment.round_id.in_(round_ids))
    if panelist_id is not None:
        query = query.where(StudyJudgment.panelist_id == panelist_id)
    out: dict[tuple[int, int], StudyJudgment] = {}
    for j in session.scalars(query.order_by(StudyJudgment.id)):
        out[(j.round_id, j.panelist_id)] = j
    return out


def standing_classifications(session: Session, study_id: int, *,
                             excluded: set[int] | frozenset[int] = frozenset(),
                             entered_by: int | None = None) -> dict[int, StudyClassification]:
    """The standing (newest) classification per result, whoever entered it, leaving out rows
    entered by ``excluded`` users (removed panelists); only ``entered_by``'s rows when given."""
    query = select(StudyClassification).where(StudyClassification.study_id == study_id)
    if excluded:
        query = query.where(StudyClassification.entered_by_id.not_in(excluded))
    if entered_by is not None:
        query = query.where(StudyClassification.entered_by_id == entered_by)
    out: dict[int, StudyClassification] = {}
    for c in session.scalars(query.order_by(StudyClassification.id)):
        out[c.result_id] = c
    return out


# ---------------------------------------------------------------- the facilitator's actions


def create_study(session: Session, *, exam: Exam, title: str, method: str,
                 reference_form_code: str, facilitator: User, rp: Any = DEFAULT_RP,
                 borderline: Any = 1) -> Study:
    """A new open study (no panel, no round yet). Refuses with the field named."""
    title = (title or "").strip()
    if not title:
        raise Invalid("title: give the study a title (e.g. 'Angoff 2026, main panel')",
                      field="title")
    if len(title) > TITLE_LENGTH:
        raise Invalid(f"title: at most {TITLE_LENGTH} characters", field="title")
    if method not in METHODS:
        raise Invalid(f"method: {str(method)[:40]!r} is not one of {', '.join(METHODS)}",
                      field="method")
    form = next((ef.form for ef in exam.forms if ef.form.code == reference_form_code), None)
    if form is None:
        raise Invalid(f"reference_form: exam {exam.code} has no form "
                      f"{str(reference_form_code)[:64]!r}", field="reference_form")
    if form.kind != FIXED or not form.is_published:
        raise Invalid(f"reference_form: {form.code} is not a published fixed form",
                      field="reference_form")
    rp_value = _number("rp", rp)
    if not 0 < rp_value < 1:
        raise Invalid(f"rp: the response probability must lie strictly between 0 and 1, got "
                      f"{rp_value:g}", field="rp")
    settings: dict[str, Any] = {}
    if method == "borderline_regression":
        b = _number("borderline", borderline)
        lo, hi = DEFAULT_RATING_SCALE
        if b != int(b) or not lo <= b <= hi:
            raise Invalid(f"borderline: the borderline rating must be a whole number in "
                          f"{lo}..{hi}, got {b:g}", field="borderline")
        settings = {"borderline": int(b), "scale": list(DEFAULT_RATING_SCALE)}
    study = Study(exam_id=exam.id, title=title, method=method, reference_form_id=form.id,
                  rp=rp_value, settings=settings, facilitator_id=facilitator.id)
    session.add(study)
    session.flush()
    return study


def _number(name: str, value: Any) -> float:
    try:
        x = float(str(value).strip())
    except (TypeError, ValueError):
        raise Invalid(f"{name}: {str(value)[:40]!r} is not a number", field=name) from None
    if not math.isfinite(x):
        raise Invalid(f"{name}: {str(value)[:40]!r} is not a finite number", field=name)
    return x


def _require_open(study: Study) -> None:
    if not study.is_open:
        raise Conflict(f"study {study.id} is closed; nothing in it changes any more")


def invite_panelist(session: Session, study: Study, email: str, *, by: User) -> StudyPanelist:
    """Seat an existing user (any role but candidate) on the panel."""
    _require_open(study)
    email = (email or "").strip()
    if not email:
        raise Invalid("email: enter the email of the panelist's account", field="email")
    user = find_user_by_email(session, email)
    if user is None:
        raise Invalid(f"email: there is no account {email[:254]!r}; an administrator creates "
                      "panelist accounts (role 'panelist') under Admin, Users", field="email")
    if user.role not in PANEL_ROLES:
        raise Invalid(f"email: {user.email} is a {user.role}; candidates may not sit on a panel "
                      "(the panel sees items and their keys)", field="email")
    if not user.active:
        raise Invalid(f"email: {user.email}'s account is deactivated", field="email")
    removal = next((r for r in study.removals if r.user_id == user.id), None)
    if removal is not None:
        raise Conflict(f"{user.email} was removed from this panel on "
                       f"{removal.removed_at:%Y-%m-%d %H:%M} UTC and is not seated again")
    if user.id in study.panelist_ids():
        raise Conflict(f"{user.email} is on the panel already")
    seat = StudyPanelist(study_id=study.id, user_id=user.id, invited_by_id=by.id)
    session.add(seat)
    _flush_or_conflict(session, f"{user.email} was seated meanwhile")
    session.refresh(study, ["panelists"])
    return seat


def remove_panelist(session: Session, study: Study, user_id: Any, reason: Any, *,
                    by: User) -> PanelistRemoval:
    """Remove a seated panelist, recording who, when and why. Their seat and ratings stay
    (append-only); they count in no result from now on, and the panelist loses the study."""
    _require_open(study)
    try:
        uid = int(str(user_id))
    except ValueError:
        raise Invalid(f"panelist: {str(user_id)[:20]!r} is not a panelist of study {study.id}",
                      field="panelist") from None
    seat = next((p for p in study.panelists if p.user_id == uid), None)
    if seat is None:
        raise Invalid(f"panelist: user {uid} is not on the panel of study {study.id}",
                      field="panelist")
    if uid in study.removed_ids():
        raise Conflict(f"{seat.user.email} was removed from the panel already")
    text = " ".join(str(reason or "").split())
    if not text:
        raise Invalid("reason: say why the panelist is removed (it is kept with the study's "
                      "record)", field="reason")
    if len(text) > REASON_LENGTH:
        raise Invalid(f"reason: at most {REASON_LENGTH} characters (got {len(text)})",
                      field="reason")
    row = PanelistRemoval(study_id=study.id, user_id=uid, removed_by_id=by.id, reason=text,
                          removed_at=utcnow())
    session.add(row)
    _flush_or_conflict(session, f"{seat.user.email} was removed meanwhile")
    session.refresh(study, ["removals"])
    return row


def open_round(session: Session, study: Study, *, by: User) -> StudyRound:
    _require_open(study)
    if not study.has_rounds:
        raise Conflict(f"a {study.method_name} study has no rounds: it records judgments of "
                       "candidates")
    if study.open_round is not None:
        raise Conflict(f"round {study.open_round.number} is still open; close it first")
    if not study.seated:
        raise Conflict("invite at least one panelist before opening a round")
    number = (max((r.number for r in study.rounds), default=0)) + 1
    rnd = StudyRound(study_id=study.id, number=number, opened_by_id=by.id, opened_at=utcnow())
    session.add(rnd)
    _flush_or_conflict(session, f"round {number} was opened meanwhile; reload the page")
    session.refresh(study, ["rounds"])
    return rnd


def _flush_or_conflict(session: Session, message: str) -> None:
    """Flush; two facilitators doing the same at once (on PostgreSQL, where both may read
    before either writes) meet the unique constraint: the second gets a 409, not a 500."""
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(message) from None


def close_round(session: Session, study: Study, *, by: User) -> StudyRound:
    rnd = study.open_round
    if rnd is None:
        raise Conflict("no round is open")
    rnd = _locked(session, rnd)
    if not rnd.is_open:
        raise Conflict(f"round {rnd.number} was closed meanwhile")
    rnd.closed_at, rnd.closed_by_id = utcnow(), by.id
    session.flush()
    return rnd


def release_round(session: Session, study: Study, number: int, *, by: User) -> StudyRound:
    """Show the panel the results (cut, impact, item feedback) of a closed round."""
    rnd = next((r for r in study.rounds if r.number == number), None)
    if rnd is None:
        raise NotFound(f"study {study.id} has no round {number}")
    if rnd.is_open:
        raise Conflict(f"round {number} is open; close it before releasing its results")
    if rnd.released_at is None:
        rnd.released_at, rnd.released_by_id = utcnow(), by.id
        session.flush()
    return rnd


def close_study(session: Session, study: Study, *, by: User) -> None:
    _require_open(study)
    if study.open_round is not None:
        close_round(session, study, by=by)
    study.status, study.closed_at = "closed", utcnow()
    session.flush()


# ---------------------------------------------------------------- a panelist's ratings


def _locked(session: Session, rnd: StudyRound) -> StudyRound:
    """The round re-read under a row lock (PostgreSQL; SQLite's write transactions are
    serial anyway): a rating and the round's closing cannot interleave, so no rating lands in a
    round that closed meanwhile."""
    return session.scalars(select(StudyRound).where(StudyRound.id == rnd.id).with_for_update()
                           .execution_options(populate_existing=True)).one()


def _round_for_rating(session: Session, study: Study, user: User, round_number: Any
                      ) -> StudyRound:
    require_panelist(study, user)
    rnd = None
    try:
        number = int(round_number)
    except (TypeError, ValueError):
        number = None
    if number is not None:
        rnd = next((r for r in study.rounds if r.number == number), None)
    if rnd is None:
        raise Invalid(f"round: study {study.id} has no round {str(round_number)[:20]!r}",
                      field="round")
    rnd = _locked(session, rnd)
    if not rnd.is_open:
        raise Conflict(f"round {rnd.number} closed at {rnd.closed_at:%Y-%m-%d %H:%M} UTC; the "
                       "ratings of a closed round never change")
    return rnd


def record_ratings(session: Session, study: Study, user: User, round_number: Any,
                   values: dict[str, Any]) -> int:
    """Store a panelist's Angoff ratings of the round: ``values`` maps item version id (as
    given in the form) to the rating as text; blank entries are skipped. Every value is checked
    before any is stored; an unchanged rating adds no row. Returns the number of rows added."""
    if study.method not in ITEM_METHODS:
        raise Conflict(f"a {study.method_name} study has no item ratings")
    rnd = _round_for_rating(session, study, user, round_number)
    items = {str(i.version.id): i for i in study_items(session, study)}
    clean: dict[int, float] = {}
    for key, raw in values.items():
        text = str(raw).strip()
        if key not in items:
            raise Invalid(f"rating-{str(key)[:20]}: item version {str(key)[:20]} is not on "
                          f"the reference form {study.reference_form.code}",
                          field=f"rating-{str(key)[:20]}")
        if text == "":
            continue
        item = items[key]
        name = f"rating-{key}"
        try:
            x = float(text)
        except ValueError:
            raise Invalid(f"{item.label}: {text[:20]!r} is not a number", field=name) from None
        if study.method == "yes_no_angoff":
            if x not in (0.0, 1.0):
                raise Invalid(f"{item.label}: answer yes (1) or no (0), not {text[:20]!r}",
                              field=name)
        elif not (math.isfinite(x) and 0 <= x <= item.max_score):
            what = ("probability" if item.max_score == 1
                    else f"expected score (0 to {item.max_score:g})")
            raise Invalid(f"{item.label}: the {what} {text[:20]} is outside "
                          f"[0, {item.max_score:g}]", field=name)
        clean[item.version.id] = x
    standing = standing_ratings(session, [rnd.id], user.id)
    added = 0
    for version_id, x in clean.items():
        before = standing.get((rnd.id, user.id, version_id))
        if before is not None and before.value == x:
            continue
        session.add(StudyRating(round_id=rnd.id, panelist_id=user.id, item_version_id=version_id,
                                value=x, supersedes_id=before.id if before else None))
        added += 1
    session.flush()
    return added


def record_judgment(session: Session, study: Study, user: User, round_number: Any,
                    form: dict[str, Any], *, n_pages: int | None = None) -> StudyJudgment | None:
    """Store a panelist's Bookmark, Hofstee or Beuk judgment of the round (checked first);
    None when it equals the standing one."""
    if study.method not in JUDGMENT_METHODS:
        raise Conflict(f"a {study.method_name} study takes no whole-test judgments")
    rnd = _round_for_rating(session, study, user, round_number)
    if study.method == "bookmark":
        page = _number("page", form.get("page", ""))
        top = n_pages or 0
        if page != int(page) or not 1 <= page <= top:
            raise Invalid(f"page: the bookmark goes on a page of the booklet, 1 to {top}; got "
                          f"{page:g}", field="page")
        values: dict[str, Any] = {"page": int(page)}
    elif study.method == "hofstee":
        values = {k: _percent(k, form.get(k, "")) for k in ("c_min", "c_max", "f_min", "f_max")}
        if not values["c_min"] < values["c_max"]:
            raise Invalid("c_max: the highest acceptable cut must be above the lowest "
                          f"({values['c_min']:g}%)", field="c_max")
        if not values["f_min"] < values["f_max"]:
            raise Invalid("f_max: the highest acceptable fail rate must be above the lowest "
                          f"({values['f_min']:g}%)", field="f_max")
    else:
        values = {k: _percent(k, form.get(k, "")) for k in ("cut", "pass_rate")}
    before = standing_judgments(session, [rnd.id], user.id).get((rnd.id, user.id))
    if before is not None and before.values == values:
        return None
    row = StudyJudgment(round_id=rnd.id, panelist_id=user.id, values=values,
                        supersedes_id=before.id if before else None)
    session.add(row)
    session.flush()
    return row


def _percent(name: str, value: Any) -> float:
    x = _number(name, value)
    if not 0 <= x <= 100:
        raise Invalid(f"{name}: a percentage lies in 0..100, got {x:g}", field=name)
    return x


# ---------------------------------------------------------------- classifications of candidates


def classification_scale(study: Study) -> tuple[int, int]:
    if study.method == "contrasting_groups":
        return (0, 1)
    lo, hi = study.settings.get("scale", DEFAULT_RATING_SCALE)
    return int(lo), int(hi)


#: What each classification means, as a panelist chooses it.
CLASSIFICATION_LABELS = {
    "contrasting_groups": {0: "Not qualified", 1: "Qualified"},
    "borderline_regression": {0: "Fail", 1: "Borderline", 2: "Pass", 3: "Good"},
}


def classification_choices(study: Study) -> list[tuple[int, str]]:
    """The (value, label) choices of the study's classification scale."""
    lo, hi = classification_scale(study)
    labels = CLASSIFICATION_LABELS.get(study.method, {})
    return [(v, f"{v}: {labels[v]}" if v in labels else str(v)) for v in range(lo, hi + 1)]


def record_panel_classifications(session: Session, study: Study, user: User,
                                 values: dict[str, Any], attempts: dict[int, int]) -> int:
    """Store a seated panelist's classifications from their screen: ``values`` maps an attempt
    id (as text) to the rating as text (blank: not classified, skipped); ``attempts`` maps each
    counted attempt on the reference form to its result. Every value is checked before any is
    stored; a rating equal to the panelist's own standing one adds no row. Append-only: a change
    is a new row (source "panel"), which becomes the candidate's standing classification."""
    require_panelist(study, user)
    if study.method not in CLASSIFICATION_METHODS:
        raise Conflict(f"a {study.method_name} study does not classify candidates")
    _require_open(study)
    lo, hi = classification_scale(study)
    clean: list[tuple[int, int]] = []
    for key, raw in values.items():
        name = f"class-{str(key)[:20]}"
        text = str(raw).strip()
        result_id = attempts.get(int(key)) if is_whole(str(key)) else None
        if result_id is None:
            raise Invalid(f"{name}: attempt {str(key)[:20]} is not a counted attempt on form "
                          f"{study.reference_form.code}", field=name)
        if text == "":
            continue
        if not (is_whole(text.removeprefix("-")) and lo <= int(text) <= hi):
            raise Invalid(f"attempt {key}: the classification {text[:20]!r} is not a whole "
                          f"number in {lo}..{hi}", field=name)
        clean.append((result_id, int(text)))
    return _add_changed(session, study, clean, by=user, source="panel",
                        standing=standing_classifications(session, study.id,
                                                          entered_by=user.id))


def record_classifications(session: Session, study: Study, rows: list[tuple[int, int]],
                           *, by: User, source: str) -> int:
    """Store ``(result id, rating)`` pairs (already checked); unchanged ones add no row."""
    return _add_changed(session, study, rows, by=by, source=source,
                        standing=standing_classifications(session, study.id,
                                                          excluded=study.removed_ids()))


def _add_changed(session: Session, study: Study, rows: list[tuple[int, int]], *, by: User,
                 source: str, standing: dict) -> int:
    """Add a classification row for each ``(result id, rating)`` that differs from the one
    standing (append-only: an unchanged rating adds nothing); how many were added."""
    added = 0
    for result_id, rating in rows:
        before = standing.get(result_id)
        if before is not None and before.rating == rating:
            continue
        session.add(StudyClassification(study_id=study.id, result_id=result_id, rating=rating,
                                        entered_by_id=by.id, source=source))
        added += 1
    session.flush()
    return added


class CsvProblems(Invalid):
    """A classification upload with bad lines: ``problems`` lists each one; nothing was stored."""

    def __init__(self, problems: list[str]) -> None:
        shown = "; ".join(problems[:20]) + (f"; and {len(problems) - 20} more" if
                                             len(problems) > 20 else "")
        super().__init__(f"nothing was stored: {shown}", field="file", problems=problems)
        self.problems = problems


def parse_classification_csv(study: Study, text: str, candidates: dict[str, int],
                             attempts: dict[int, int]) -> list[tuple[int, int]]:
    """Rows ``(result id, rating)`` of a CSV with a header naming ``rating`` and either
    ``attempt_id`` or ``candidate_email``. ``candidates`` maps a candidate's email to their counted
    result on the reference form, ``attempts`` an attempt id to its counted result. Every line is
    checked; any problem refuses the whole file, listing each bad line by number."""
    lo, hi = classification_scale(study)
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip().lower() for f in (reader.fieldnames or [])]
    if "rating" not in fields or not ({"attempt_id", "candidate_email"} & set(fields)):
        raise CsvProblems([("line 1: the header must name 'rating' and 'attempt_id' or "
                           "'candidate_email'")])
    reader.fieldnames = fields
    problems, rows, seen = [], [], {}
    for n, line in enumerate(reader, start=2):
        if n > MAX_CSV_LINES:
            problems.append(f"the file has more than {MAX_CSV_LINES} lines")
            break
        line = {k: (v or "").strip() for k, v in line.items() if k}
        if not any(line.values()):
            continue
        result_id = None
        if line.get("attempt_id"):
            aid = line["attempt_id"]
            result_id = attempts.get(int(aid)) if is_whole(aid) else None
            if result_id is None:
                problems.append(f"line {n}: attempt {aid[:20]!r} is not a counted attempt on "
                                f"form {study.reference_form.code}")
                continue
        else:
            email = line.get("candidate_email", "").lower()
            result_id = candidates.get(email)
            if result_id is None:
                problems.append(f"line {n}: {email[:80]!r} has no counted result on form "
                                f"{study.reference_form.code}")
                continue
        raw = line.get("rating", "")
        if not (is_whole(raw.removeprefix("-")) and lo <= int(raw) <= hi):
            problems.append(f"line {n}: rating {raw[:20]!r} is not a whole number in {lo}..{hi}")
            continue
        if result_id in seen:
            problems.append(f"line {n}: the same candidate as line {seen[result_id]}")
            continue
        seen[result_id] = n
        rows.append((result_id, int(raw)))
    if problems:
        raise CsvProblems(problems)
    if not rows:
        raise CsvProblems(["the file has no data lines"])
    return rows


def progress_counts(session: Session, study: Study, rnd: StudyRound) -> dict[int, int]:
    """How many items (Angoff) or judgments (other methods) each panelist has in ``rnd``."""
    if study.method in ITEM_METHODS:
        return dict(session.execute(
            select(StudyRating.panelist_id, func.count(func.distinct(StudyRating.item_version_id)))
            .where(StudyRating.round_id == rnd.id).group_by(StudyRating.panelist_id)).all())
    return dict(session.execute(
        select(StudyJudgment.panelist_id, func.count(func.distinct(StudyJudgment.round_id)))
        .where(StudyJudgment.round_id == rnd.id).group_by(StudyJudgment.panelist_id)).all())


def study_recommendation(session: Session, study_id: int) -> dict[str, Any] | None:
    """The study's recommended cut for the adoption page (see
    :func:`assessment.psych.study_results.study_recommendation`; ``theta`` repeats
    ``theta_cut``), or None when there is no such study."""
    from assessment.psych.study_results import study_recommendation as recommend

    if session.get(Study, study_id) is None:
        return None
    return recommend(session, study_id)


EXPORT_COLUMNS = ("round", "panelist_email", "panelist_name", "item", "value", "judgment",
                  "entered_at", "row_id", "supersedes_row", "standing")


def export_rows(session: Session, study: Study) -> list[dict[str, Any]]:
    """Every rating and judgment row of the study, superseded ones too (``standing`` says which
    stand), oldest first: the study's record, for the facilitator's download."""
    rounds = {r.id: r.number for r in study.rounds}
    people = {p.user_id: p.user for p in study.panelists}
    labels = {i.version.id: i.label for i in study_items(session, study)}
    out: list[dict[str, Any]] = []
    if not rounds:
        return out
    standing_r = {r.id for r in standing_ratings(session, list(rounds)).values()}
    for r in session.scalars(select(StudyRating).where(StudyRating.round_id.in_(rounds))
                             .order_by(StudyRating.id)):
        out.append(_export_row(rounds[r.round_id], people.get(r.panelist_id), r,
                               item=labels.get(r.item_version_id, str(r.item_version_id)),
                               value=r.value, judgment="", standing=r.id in standing_r))
    standing_j = {j.id for j in standing_judgments(session, list(rounds)).values()}
    for j in session.scalars(select(StudyJudgment).where(StudyJudgment.round_id.in_(rounds))
                             .order_by(StudyJudgment.id)):
        judgment = "; ".join(f"{k}={v:g}" for k, v in sorted(j.values.items()))
        out.append(_export_row(rounds[j.round_id], people.get(j.panelist_id), j, item="",
                               value="", judgment=judgment, standing=j.id in standing_j))
    return out


def _export_row(number: int, user: User | None, row: Any, **fields: Any) -> dict[str, Any]:
    return {"round": number, "panelist_email": user.email if user else "",
            "panelist_name": user.display_name if user else "",
            "entered_at": row.created_at.isoformat(), "row_id": row.id,
            "supersedes_row": row.supersedes_id or "", **fields,
            "standing": "yes" if fields.pop("standing") else "no"}
