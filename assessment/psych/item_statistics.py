"""Classical item analysis of an exam: the items page and its JSON export both render it.

The pooled statistics come from :func:`psychometrics.item_analysis` on the whole score matrix;
alpha, the score distribution and alpha-if-deleted are also computed per form, because they
need candidates who saw every item.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from assessment.exams import Exam
from assessment.psych.response_matrix import ScoreMatrix, score_matrix
from itembank.models import Form
from psychometrics import ItemAnalysis, item_analysis
from psychometrics.ctt import (
    FlagRules,
    ItemStatistics,
    ReliabilityEstimate,
    ScoreDistribution,
    cronbach_alpha,
    score_distribution,
)

FLAG_REASONS = {
    "few_responses": "fewer than {r.min_responses} responses",
    "too_hard": "too hard: p below {r.p_min:.2f}",
    "too_easy": "too easy: p above {r.p_max:.2f}",
    "low_discrimination": "low discrimination: corrected item-total r below {r.corrected_r_min:.2f}",
    "negative_discrimination": "negative discrimination: corrected item-total r below 0 (check the key)",
    "alpha_increases_if_deleted": "alpha would rise if the item were deleted",
    "distractor_attracts_high_scorers": "a distractor attracts high scorers",
}



@dataclass
class FormReliability:
    """A form's own classical analysis over the candidates who sat it: alpha, the score
    distribution and each item's alpha-if-deleted (which need everyone to have seen every
    item, so they exist per form, not pooled over forms)."""

    form: Form
    reliability: ReliabilityEstimate
    distribution: ScoreDistribution
    alpha_if_deleted: dict[int, float | None]  # column -> alpha of the form without the item


@dataclass
class ExamItemAnalysis:
    """The one classical analysis of an exam: the page and the JSON export both render it."""

    exam: Exam
    matrix: ScoreMatrix
    analysis: ItemAnalysis
    by_form: list[FormReliability]

    def flag_reasons(self, flags: Sequence[str]) -> list[str]:
        return [FLAG_REASONS.get(f, f).format(r=self.analysis.rules) for f in flags]

    def alpha_if_deleted(self, column: int) -> dict[str, float | None]:
        """Form code -> alpha of that form without the item, for each form the item is on."""
        return {
            f.form.code: f.alpha_if_deleted[column] for f in self.by_form if column in f.alpha_if_deleted
        }

    def rows(self) -> list[tuple[int, ItemStatistics]]:
        """(column, statistics) of every item version, flagged ones first."""
        pairs = list(enumerate(self.analysis.items))
        return [p for p in pairs if p[1].flags] + [p for p in pairs if not p[1].flags]

    def to_dict(self) -> dict:
        doc = self.analysis.to_dict()
        for j, (item, version) in enumerate(zip(doc["items"], self.matrix.versions)):
            item["item_version_id"] = version.id
            item["alpha_if_deleted"] = self.alpha_if_deleted(j)
            item["flag_reasons"] = self.flag_reasons(item["flags"])
        doc["exam"] = self.exam.code
        doc["n_persons"] = self.matrix.n_persons
        doc["forms"] = [
            {"form": f.form.code, **ItemAnalysis([], f.reliability, f.distribution, self.analysis.rules)
             .to_dict()} for f in self.by_form
        ]
        for f in doc["forms"]:
            del f["items"], f["flag_rules"]
        return doc


def analyse_items(session: Session, exam: Exam, *, rules: FlagRules | None = None) -> ExamItemAnalysis:
    """Classical item analysis (``psychometrics.item_analysis``) of the exam's counted results,
    with distractor analysis of the chosen options, plus each form's own alpha, score
    distribution and alpha-if-deleted: those need persons who saw every item, which nobody
    does when forms differ.

    The pooled score distribution is of every counted candidate's total over the items they
    were presented (so its ``n`` is the number of results); pooled alpha and alpha-if-deleted
    stay per form."""
    return analyse_matrix(exam, score_matrix(session, exam), rules=rules)


def analyse_matrix(exam: Exam, matrix: ScoreMatrix, *, rules: FlagRules | None = None
                   ) -> ExamItemAnalysis:
    """:func:`analyse_items` of a matrix already read (the report reads one with filters)."""
    rules = rules or FlagRules()
    by_form = []
    for form_id in sorted(matrix.forms):
        rows, cols = matrix.form_block(form_id)
        block = matrix.scores[np.ix_(rows, cols)]
        if block.size == 0:
            continue
        form_items = item_analysis(block, rules=rules).items
        by_form.append(
            FormReliability(
                matrix.forms[form_id],
                cronbach_alpha(block),
                score_distribution(block),
                {int(j): s.alpha_if_deleted for j, s in zip(cols, form_items)},
            )
        )
    analysis = item_analysis(
        matrix.scores, item_ids=matrix.item_ids, choices=matrix.choices, key=matrix.keys, rules=rules
    )
    # each candidate's total over the items presented (not presented counts 0); passed as the
    # 0/1 matrix, not as one column of totals, which the engine would read as an item's scores
    # and refuse beyond 49 points
    analysis.distribution = score_distribution(np.nan_to_num(matrix.scores, nan=0.0))
    for j, item in enumerate(analysis.items):
        alpha_rises = any(
            f.alpha_if_deleted.get(j) is not None and f.reliability.alpha is not None
            and f.alpha_if_deleted[j] > f.reliability.alpha
            for f in by_form
        )
        if alpha_rises and "alpha_increases_if_deleted" not in item.flags:
            item.flags.append("alpha_increases_if_deleted")
    return ExamItemAnalysis(exam, matrix, analysis, by_form)

