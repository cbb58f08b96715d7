"""An exam's counted results as a persons x item versions score matrix, with the chosen options.

Columns are item *versions*: two wordings of an item are two items to a psychometrician. A cell
is the item's score divided by its maximum (0 or 1) and NaN where the item was not presented, as
when candidates sit different forms. Partial-credit scores are refused with a message, because
every model offered here is dichotomous.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from assessment.delivery.models import Attempt, ItemScore
from assessment.exams import Exam
from assessment.psych.errors import AnalysisError
from assessment.psych.results import counted_results
from itembank.models import Form, ItemVersion

#: The option label of a presented item left unanswered (distractor analysis counts it as a
#: choice; an empty label means "not presented").
OMITTED = "(omitted)"
#: Items whose responses are option ids, analysed option by option; the responses of the other
#: types (typed text, numbers, orders, pairs, points) are labelled by their credit instead.
CHOICE_TYPES = {"single_choice", "multiple_response", "true_false"}
FULL_CREDIT = "(full credit)"
OTHER_ANSWER = "(other answer)"


@dataclass
class ScoreMatrix:
    """Persons x item versions, 0/1 with NaN where the item was not presented."""

    scores: np.ndarray
    #: The chosen option per cell ("A"; "A+C" for a multiple response; ``OMITTED``; "" where the
    #: item was not presented) and the keyed label per column, for distractor analysis.
    choices: np.ndarray
    keys: list[str]
    result_ids: list[int]
    form_ids: np.ndarray  # per person
    versions: list[ItemVersion]  # per column
    forms: dict[int, Form]

    @property
    def n_persons(self) -> int:
        return self.scores.shape[0]

    @property
    def item_ids(self) -> list[str]:
        return [version_label(v) for v in self.versions]

    def form_block(self, form_id: int) -> tuple[np.ndarray, np.ndarray]:
        """Row mask of the form's candidates and the columns every one of them saw."""
        rows = self.form_ids == form_id
        cols = np.flatnonzero(~np.isnan(self.scores[rows]).any(axis=0)) if rows.any() else np.array([], int)
        return rows, cols


_NO_RESULTS = "exam {code} has no finalized results yet, so there is nothing to analyse"


def version_label(version: ItemVersion) -> str:
    code = version.item.code
    return code if version.version == 1 else f"{code} v{version.version}"


def require_results(session: Session, exam: Exam) -> None:
    """Raise :class:`AnalysisError` (as :func:`score_matrix` would) when ``exam`` has no counted
    results: one cheap query, asked before a calibration is queued."""
    counted = counted_results(exam.id).subquery()
    if session.execute(select(counted.c.result_id).limit(1)).first() is None:
        raise AnalysisError(_NO_RESULTS.format(code=exam.code))


def score_matrix(
    session: Session,
    exam: Exam,
    *,
    form_id: int | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> ScoreMatrix:
    """The counted results of ``exam`` as a persons x item versions matrix (see module doc),
    optionally only one form's and only attempts finalized in ``[since, until)``.

    Raises :class:`AnalysisError` when the exam has no counted results or a score is not 0/1.
    """
    query = counted_results(exam.id)
    if form_id is not None:
        query = query.where(Attempt.form_id == form_id)
    if since is not None:
        query = query.where(Attempt.finalized_at >= since)
    if until is not None:
        query = query.where(Attempt.finalized_at < until)
    counted = query.subquery()
    people = session.execute(
        select(counted.c.result_id, counted.c.form_id).order_by(counted.c.result_id)
    ).all()
    if not people:
        scoped = form_id is not None or since is not None or until is not None
        raise AnalysisError(
            _NO_RESULTS.format(code=exam.code) if not scoped else
            f"exam {exam.code} has no finalized results in the chosen form and dates, so there"
            " is nothing to analyse"
        )
    cells = session.execute(
        select(ItemScore.result_id, ItemScore.item_version_id, ItemScore.score, ItemScore.max_score,
               ItemScore.response)
        .join(counted, counted.c.result_id == ItemScore.result_id)
    ).all()
    result_ids = [r.result_id for r in people]
    row_of = {rid: i for i, rid in enumerate(result_ids)}
    version_ids = sorted({c.item_version_id for c in cells})
    if not version_ids:
        raise AnalysisError(f"exam {exam.code}: its results hold no item scores")
    col_of = {vid: j for j, vid in enumerate(version_ids)}
    versions_by_id = {
        v.id: v
        for v in session.scalars(
            select(ItemVersion).where(ItemVersion.id.in_(version_ids)).options(selectinload(ItemVersion.item))
        )
    }
    scores = np.full((len(result_ids), len(version_ids)), np.nan)
    rows = np.fromiter((row_of[c.result_id] for c in cells), dtype=int, count=len(cells))
    cols = np.fromiter((col_of[c.item_version_id] for c in cells), dtype=int, count=len(cells))
    values = np.fromiter(
        (c.score / c.max_score if c.max_score else np.nan for c in cells), dtype=float, count=len(cells)
    )
    scores[rows, cols] = values
    choices = np.full(scores.shape, "", dtype=object)
    kinds = {vid: versions_by_id[vid].item_type for vid in version_ids}
    choices[rows, cols] = [_choice_label(c.response) if kinds[c.item_version_id] in CHOICE_TYPES
                           else _credit_label(c.response, c.score, c.max_score) for c in cells]
    bad = ~np.isnan(scores) & (scores != 0) & (scores != 1)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise AnalysisError(
            f"item {version_label(versions_by_id[version_ids[j]])} has a partial-credit score"
            f" ({scores[i, j]:.3g} of its maximum); the workspace analyses items scored 0/1"
        )
    form_ids = np.array([r.form_id for r in people], dtype=int)
    forms = {f.id: f for f in session.scalars(select(Form).where(Form.id.in_(set(form_ids.tolist()))))}
    versions = [versions_by_id[vid] for vid in version_ids]
    return ScoreMatrix(
        scores=scores,
        choices=choices,
        keys=[_choice_label((v.key or {}).get("correct")) if v.item_type in CHOICE_TYPES
              else FULL_CREDIT for v in versions],
        result_ids=result_ids,
        form_ids=form_ids,
        versions=versions,
        forms=forms,
    )


def _credit_label(response, score: float, max_score: float) -> str:
    """A response of a type without options, as its credit: full, other, or omitted."""
    if response is None or response in ([], "", {}):
        return OMITTED
    return FULL_CREDIT if max_score and score >= max_score else OTHER_ANSWER


def _choice_label(response) -> str:
    """A response as an option label: "B" for one choice, "A+C" for several (all-or-nothing
    multiple response is right exactly when this equals the key's label)."""
    if response is None or response == [] or response == "":
        return OMITTED
    if isinstance(response, list):
        return "+".join(sorted(str(r) for r in response))
    return str(response)

