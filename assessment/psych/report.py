"""The item-analysis report of an exam: built once as :class:`ItemAnalysisReport`, rendered three
ways (the workspace page, a WeasyPrint PDF, CSV/JSON of every table; see
:mod:`assessment.psych.report_output`).

Every number comes from the engine: classical statistics and distractors
(:func:`psychometrics.item_analysis` through :mod:`assessment.psych.item_statistics`), abilities
(:func:`psychometrics.scoring.theta_eap`), S-X2 (:func:`psychometrics.s_x2`), Mantel-Haenszel DIF
with ETS classes (:func:`psychometrics.dif.mantel_haenszel`), information, CSEM and the theta of
a raw cut (:mod:`psychometrics.reliability`, :mod:`psychometrics.equating`). This module chooses
what to compute on which candidates and items, and keeps it as plain rows.

IRT sections use the bank's *current* (approved) parameters, never a proposed run's. The cut is
the exam's adopted cut (:mod:`assessment.psych.cuts`) when it has one: its theta cut and each
form's raw cut through the form's test characteristic curve. Without one it is the exam's pass
mark, a percent of the form's items, and its theta is where the form's test characteristic curve
reaches that raw score; either way the conditional SEM at the cut is the form's own.
"""
from __future__ import annotations

import datetime as dt
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from assessment.delivery.models import Attempt, Result
from assessment.exams import Exam
from assessment.psych import charts
from assessment.psych.item_statistics import ExamItemAnalysis, analyse_matrix
from assessment.psych.response_matrix import ScoreMatrix, score_matrix, version_label
from assessment.psych.results import counted_results
from itembank.models import Form
from itembank.parameters import CurrentParameters, current_parameters
from microcred.db import utcnow
from psychometrics import PsychometricsError, carry_cut, s_x2
from psychometrics.dif import mantel_haenszel
from psychometrics.equating import raw_score_sem, theta_for_raw
from psychometrics.irt.information import test_information
from psychometrics.irt.models import DICHOTOMOUS_MODELS, ItemParameters
from psychometrics.scoring import theta_eap

#: The theta grid of every curve in the report.
THETA = np.linspace(-4.0, 4.0, 81)
#: Ability groups of the observed ICC: EAP theta cut at these points.
GROUP_EDGES = (-1.5, -0.5, 0.5, 1.5)
FIT_ALPHA = 0.01
PREVIEW_LENGTH = 240


@dataclass
class ReportScope:
    exam: Exam
    form: Form | None = None
    since: dt.date | None = None
    until: dt.date | None = None  # inclusive
    dif_attribute: str | None = None
    #: the two groups DIF compares (values of ``dif_attribute``); None: chosen from the data
    dif_reference: str | None = None
    dif_focal: str | None = None
    #: groups with fewer candidates than this are not analysed (MICROCRED_REPORT_MIN_GROUP)
    min_group: int = 5

    def describe(self) -> str:
        forms = f"form {self.form.code}" if self.form else "all forms"
        dates = (f"{self.since or 'the first result'} to {self.until or 'the last result'}"
                 if self.since or self.until else "all dates")
        return f"{forms}, {dates}"


@dataclass
class IrtItem:
    model: str
    a: float | None
    b: float | None
    c: float | None
    se: dict[str, float | None]
    source: str
    #: S-X2 per form code on this report's data: {"F1": (statistic, df, p)}.
    fit: dict[str, tuple[float | None, int | None, float | None]] = field(default_factory=dict)

    @property
    def misfits(self) -> list[str]:
        return [f for f, (_, _, p) in self.fit.items() if p is not None and p < FIT_ALPHA]


@dataclass
class ItemSection:
    column: int
    label: str
    item_code: str
    version: int
    version_id: int
    item_type: str
    domain: str
    preview: str
    bank_url: str | None
    stats: Any  # psychometrics.ctt.ItemStatistics
    flags: list[tuple[str, str]]  # (code, reason)
    forms: list[str]
    irt: IrtItem | None = None
    dif: list[dict] = field(default_factory=list)
    icc: charts.Chart | charts.PendingChart | None = None
    trace: charts.Chart | charts.PendingChart | None = None
    item_version: Any = None  # the ItemVersion, for the page's rendering of the whole item

    @property
    def anchor(self) -> str:
        return f"item-{self.version_id}"

    @property
    def pending_charts(self) -> list[charts.PendingChart]:
        return [c for c in (self.icc, self.trace) if isinstance(c, charts.PendingChart)]


@dataclass
class FormSummary:
    code: str
    n_persons: int
    n_items: int
    alpha: float | None
    alpha_ci: tuple[float | None, float | None]
    sem: float | None
    mean: float | None
    sd: float | None
    raw_cut: int
    pass_rate: float | None
    theta_cut: float | None = None
    csem_theta_at_cut: float | None = None
    csem_raw_at_cut: float | None = None
    n_items_calibrated: int = 0
    histogram: charts.Chart | None = None
    information: charts.Chart | None = None


@dataclass
class ItemAnalysisReport:
    scope: ReportScope
    generated_at: dt.datetime
    first_result: dt.datetime | None
    last_result: dt.datetime | None
    n_candidates: int
    pass_percent: float
    forms: list[FormSummary]
    items: list[ItemSection]
    distribution: Any  # psychometrics.ctt.ScoreDistribution (pooled totals)
    histogram: charts.Chart
    irt_note: str | None
    dif_note: str | None
    notes: list[str] = field(default_factory=list)
    #: the adopted cut the forms' cuts come from (None: the pass percent)
    cut_id: int | None = None
    theta_cut: float | None = None

    @property
    def exam(self) -> Exam:
        return self.scope.exam

    @property
    def flagged(self) -> list[ItemSection]:
        return [i for i in self.items if i.flags]

    @property
    def has_irt(self) -> bool:
        return any(i.irt for i in self.items)

    @property
    def has_dif(self) -> bool:
        return any(i.dif for i in self.items)

    @property
    def data_range(self) -> str:
        if self.first_result is None:
            return "no results"
        return f"{self.first_result:%Y-%m-%d} to {self.last_result:%Y-%m-%d}"

    # ------------------------------------------------------------ tables (CSV/JSON/HTML)

    def tables(self) -> dict[str, tuple[list[str], list[list[Any]]]]:
        """Every table of the report: name -> (columns, rows of plain values)."""
        out: dict[str, tuple[list[str], list[list[Any]]]] = {}
        out["items"] = (
            ["item", "version_id", "type", "domain", "version", "forms", "n", "p",
             "point_biserial", "corrected_r", "biserial", "upper_lower_d", "flags"],
            [[i.label, i.version_id, i.item_type, i.domain, i.version, " ".join(i.forms), i.stats.n,
              _r(i.stats.p), _r(i.stats.point_biserial), _r(i.stats.corrected_r),
              _r(i.stats.biserial), _r(i.stats.upper_lower_d), " ".join(c for c, _ in i.flags)]
             for i in self.items],
        )
        out["distractors"] = (
            ["item", "option", "key", "proportion", "q1", "q2", "q3", "q4", "q5",
             "point_biserial", "flagged"],
            [[i.label, o.option, o.is_key, _r(o.proportion), *(_r(q) for q in o.by_quintile),
              _r(o.point_biserial), o.flagged]
             for i in self.items for o in (i.stats.options or [])],
        )
        if self.has_irt:
            fit_forms = sorted({f for i in self.items if i.irt for f in i.irt.fit})
            out["irt"] = (
                ["item", "model", "a", "se_a", "b", "se_b", "c", "se_c", "source"]
                + [f"s_x2_{f}" for f in fit_forms] + [f"df_{f}" for f in fit_forms]
                + [f"p_{f}" for f in fit_forms],
                [[i.label, i.irt.model, _r(i.irt.a), _r(i.irt.se.get("a")), _r(i.irt.b),
                  _r(i.irt.se.get("b")), _r(i.irt.c), _r(i.irt.se.get("c")), i.irt.source]
                 + [_r(i.irt.fit.get(f, (None,) * 3)[0]) for f in fit_forms]
                 + [i.irt.fit.get(f, (None,) * 3)[1] for f in fit_forms]
                 + [_r(i.irt.fit.get(f, (None,) * 3)[2]) for f in fit_forms]
                 for i in self.items if i.irt],
            )
        if self.has_dif:
            out["dif"] = (
                ["item", "form", "focal", "mh_alpha", "mh_d_dif", "se_d", "chi_square", "p_value",
                 "ets_class", "n_reference", "n_focal", "attribute", "reference"],
                [[i.label, d["form"], d["focal"], _r(d["alpha"]), _r(d["d_dif"]), _r(d["se_d"]),
                  _r(d["chi_square"]), _r(d["p_value"]), d["ets_class"], d["n_reference"],
                  d["n_focal"], self.scope.dif_attribute, d["reference"]]
                 for i in self.items for d in i.dif],
            )
        out["reliability"] = (
            ["form", "candidates", "items", "alpha", "alpha_ci_low", "alpha_ci_high", "sem",
             "mean", "sd", "raw_cut", "pass_rate", "theta_cut", "csem_theta_at_cut",
             "csem_raw_at_cut"],
            [[f.code, f.n_persons, f.n_items, _r(f.alpha), _r(f.alpha_ci[0]), _r(f.alpha_ci[1]),
              _r(f.sem), _r(f.mean), _r(f.sd), f.raw_cut, _r(f.pass_rate), _r(f.theta_cut),
              _r(f.csem_theta_at_cut), _r(f.csem_raw_at_cut)] for f in self.forms],
        )
        out["score_distribution"] = (
            ["raw_score", "candidates"],
            [[s, n] for s, n in sorted(self.distribution.frequencies.items())],
        )
        out["flags"] = (
            ["item", "flag", "reason"],
            [[i.label, code, reason] for i in self.items for code, reason in i.flags],
        )
        return out

    def to_dict(self) -> dict:
        return {
            "exam": self.exam.code,
            "title": self.exam.title,
            "scope": self.scope.describe(),
            "form": self.scope.form.code if self.scope.form else None,
            "since": self.scope.since.isoformat() if self.scope.since else None,
            "until": self.scope.until.isoformat() if self.scope.until else None,
            "generated_at": self.generated_at.isoformat(),
            "data_range": self.data_range,
            "n_candidates": self.n_candidates,
            "n_items": len(self.items),
            "pass_percent": self.pass_percent,
            "cut_id": self.cut_id,
            "theta_cut": self.theta_cut,
            "irt_note": self.irt_note,
            "dif_note": self.dif_note,
            "dif": ({"attribute": self.scope.dif_attribute, "reference": self.scope.dif_reference,
                     "focal": self.scope.dif_focal, "min_group": self.scope.min_group}
                    if self.scope.dif_attribute else None),
            "notes": self.notes,
            "tables": {
                name: [dict(zip(cols, row)) for row in rows]
                for name, (cols, rows) in self.tables().items()
            },
        }


def _r(v, digits: int = 4):
    if v is None:
        return None
    v = float(v)
    return round(v, digits) if math.isfinite(v) else None


# ---------------------------------------------------------------- building


def build_report(
    session: Session,
    scope: ReportScope,
    *,
    groups: dict[int, str] | None = None,
    focal: str | None = None,
    reference: str | None = None,
    bank_url=None,
    with_charts: bool = True,
    item_charts_later: bool = False,
) -> ItemAnalysisReport:
    """The report of ``scope`` from the database (raises ``AnalysisError`` with no results).

    ``groups`` maps result ids to a candidate attribute's value for DIF (``focal`` and
    ``reference`` name the two groups compared, else the scope's); ``bank_url(version)`` gives an item's page in the bank, or None."""
    since = _start(scope.since)
    until = _start(scope.until + dt.timedelta(days=1)) if scope.until else None
    matrix = score_matrix(session, scope.exam, form_id=scope.form.id if scope.form else None,
                          since=since, until=until)
    scoped = counted_results(scope.exam.id)
    if scope.form is not None:
        scoped = scoped.where(Attempt.form_id == scope.form.id)
    if since is not None:
        scoped = scoped.where(Attempt.finalized_at >= since)
    if until is not None:
        scoped = scoped.where(Attempt.finalized_at < until)
    counted = scoped.subquery()
    first, last = session.execute(
        select(func.min(Attempt.finalized_at), func.max(Attempt.finalized_at))
        .join(Result, Result.attempt_id == Attempt.id)
        .where(Result.id.in_(select(counted.c.result_id)))
    ).one()
    params = current_parameters(session, [v.id for v in matrix.versions])
    from assessment.psych.cuts import current_cut

    return report_from_matrix(
        scope, matrix, params, cut=current_cut(session, scope.exam.id), first_result=first,
        last_result=last, groups=groups, focal=focal, reference=reference, bank_url=bank_url,
        with_charts=with_charts, item_charts_later=item_charts_later,
    )


def _start(day: dt.date | None) -> dt.datetime | None:
    return None if day is None else dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def _preview(stem: str) -> str:
    from markupsafe import Markup

    text = " ".join(Markup(stem or "").striptags().split())
    return text if len(text) <= PREVIEW_LENGTH else text[: PREVIEW_LENGTH - 1].rstrip() + "…"


def _irt_params(rows: dict[int, CurrentParameters], matrix: ScoreMatrix
                ) -> tuple[list[int], ItemParameters | None]:
    """Columns with usable dichotomous current parameters, and those parameters."""
    cols, models, a, b, c = [], [], [], [], []
    for j, v in enumerate(matrix.versions):
        row = rows.get(v.id)
        if row is None or row.model.lower() not in DICHOTOMOUS_MODELS or row.b is None:
            continue
        cols.append(j)
        models.append(row.model.lower())
        a.append(row.a)
        b.append(row.b)
        c.append(row.c or 0.0)
    if not cols:
        return [], None
    return cols, ItemParameters("mixed", a, b, c, item_models=tuple(models))


def _form_raw_cut(exam: Exam, cut: Any, form_id: int, n_items: int,
                  fparams: ItemParameters | None) -> int:
    """The form's raw cut: the adopted cut's (stored when adopted, or carried through the
    form's approved parameters), else the exam's pass percent of the form's items."""
    if cut is not None:
        stored = cut.form_cut(form_id)
        if stored is not None and stored.get("max_score") == n_items:
            return int(stored["raw_cut"])
        if fparams is not None:
            try:
                return carry_cut(cut.theta_cut, fparams, rounding=cut.rounding).forms[0].raw_cut
            except PsychometricsError:
                pass
    return math.ceil(exam.pass_percent / 100.0 * n_items - 1e-9)


def report_from_matrix(
    scope: ReportScope,
    matrix: ScoreMatrix,
    param_rows: dict[int, CurrentParameters],
    *,
    cut: Any = None,
    first_result: dt.datetime | None = None,
    last_result: dt.datetime | None = None,
    groups: dict[int, str] | None = None,
    focal: str | None = None,
    reference: str | None = None,
    bank_url=None,
    with_charts: bool = True,
    item_charts_later: bool = False,
) -> ItemAnalysisReport:
    """The report of a score matrix already read (``build_report``; the bench builds one from a
    simulated matrix). ``param_rows``: version id -> current parameter row.

    ``item_charts_later`` (a report built for its PDF): the item charts are left as
    :class:`charts.PendingChart`, drawn by the process that renders each item's part of the PDF
    (:func:`assessment.psych.report_output.render_pdf`), at once with the layout of the others;
    the summary charts are drawn here either way."""
    exam = scope.exam
    if with_charts and item_charts_later:
        # the PDF's part workers start (importing WeasyPrint and matplotlib) while the
        # statistics run on this CPU
        from assessment.psych.report_output import prestart_pdf_workers

        prestart_pdf_workers(matrix.scores.shape[1])
    elif with_charts:
        # two charts an item: the pool's server starts while the statistics run
        charts.warm_pool(2 * matrix.scores.shape[1])
    analysis: ExamItemAnalysis = analyse_matrix(exam, matrix)
    notes: list[str] = []
    cols, params = _irt_params(param_rows, matrix)
    col_pos = {j: k for k, j in enumerate(cols)}
    theta = None
    if params is not None:
        sub = matrix.scores[:, cols]
        seen_any = ~np.isnan(sub).all(axis=1)
        theta = np.full(matrix.n_persons, np.nan)
        if seen_any.any():
            theta[seen_any] = theta_eap(sub[seen_any], params).theta
    missing = matrix.scores.shape[1] - len(cols)
    if params is None:
        irt_note = ("No item has approved IRT parameters yet: approve a calibration run to see"
                    " parameters, S-X2 fit, characteristic curves and information.")
    elif missing:
        irt_note = (f"{missing} of {matrix.scores.shape[1]} item versions have no approved"
                    " parameters (pretest or not yet calibrated); IRT sections cover the rest.")
    else:
        irt_note = None

    # forms: reliability, cut, information
    forms: list[FormSummary] = []
    fits: dict[int, dict[str, tuple]] = {}
    form_of_col: dict[int, list[str]] = {}
    totals = np.nansum(matrix.scores, axis=1)
    for fr in analysis.by_form:
        form_id = fr.form.id
        rows, fcols = matrix.form_block(form_id)
        for j in fcols:
            form_of_col.setdefault(int(j), []).append(fr.form.code)
        n_items = int(fcols.size)
        calibrated = [j for j in fcols if int(j) in col_pos]
        fparams = (params.subset([col_pos[int(j)] for j in calibrated])
                   if params is not None and len(calibrated) == n_items else None)
        raw_cut = _form_raw_cut(exam, cut, form_id, n_items, fparams)
        form_totals = totals[rows]
        summary = FormSummary(
            code=fr.form.code, n_persons=int(rows.sum()), n_items=n_items,
            alpha=fr.reliability.alpha, alpha_ci=(fr.reliability.ci_low, fr.reliability.ci_high),
            sem=fr.reliability.sem, mean=fr.distribution.mean, sd=fr.distribution.sd,
            raw_cut=raw_cut,
            pass_rate=float((form_totals >= raw_cut).mean()) if form_totals.size else None,
        )
        summary.n_items_calibrated = len(calibrated)
        if params is not None and len(calibrated) >= 2:
            # the form's calibrated items (all of them, unless some are pretest or new); with
            # some missing, the cut is the same percent of the calibrated items
            calibrated = np.array(calibrated, dtype=int)
            fparams = params.subset([col_pos[int(j)] for j in calibrated])
            theta_raw = raw_cut if len(calibrated) == n_items else (
                exam.pass_percent / 100.0 * len(calibrated))
            if len(calibrated) < n_items:
                notes.append(
                    f"form {fr.form.code}: {n_items - len(calibrated)} of its items have no"
                    f" approved parameters; its theta cut, information and S-X2 use the other"
                    f" {len(calibrated)} (cut: {exam.pass_percent:g}% of them, {theta_raw:.2f})")
            try:
                # the adopted theta cut itself; without one, where the TCC reaches the raw cut
                summary.theta_cut = (float(cut.theta_cut) if cut is not None
                                     else float(theta_for_raw(fparams, theta_raw)[0]))
                info_cut = float(test_information(fparams, [summary.theta_cut])[0])
                summary.csem_theta_at_cut = 1.0 / math.sqrt(info_cut)
                summary.csem_raw_at_cut = float(raw_score_sem(fparams, [summary.theta_cut])[0])
            except PsychometricsError as exc:
                notes.append(f"form {fr.form.code}: no theta for the raw cut {theta_raw:g} ({exc})")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    block = matrix.scores[np.ix_(rows, calibrated)]
                    for j, f in zip(calibrated, s_x2(block, fparams)):
                        fits.setdefault(int(j), {})[fr.form.code] = (f.statistic, f.df, f.p_value)
                except PsychometricsError as exc:
                    notes.append(f"form {fr.form.code}: S-X2 not available ({exc})")
            if with_charts:
                info = test_information(fparams, THETA)
                summary.information = charts.information_and_csem(
                    THETA, info, 1.0 / np.sqrt(info), cut_theta=summary.theta_cut,
                    title=f"Test information and conditional SEM of form {fr.form.code}",
                )
        if with_charts:
            summary.histogram = charts.score_histogram(
                fr.distribution.frequencies, cut=raw_cut, max_score=n_items,
                title=f"Score distribution of form {fr.form.code}",
            )
        forms.append(summary)

    # DIF by a candidate attribute, per form (matching on the form's total)
    dif, dif_note = _dif_by_form(scope, matrix, analysis, groups, focal, reference, notes)

    items: list[ItemSection] = []
    wanted: list[tuple[ItemSection, str, tuple[str, tuple, dict]]] = []
    for j, stats in analysis.rows():
        v = matrix.versions[j]
        flags = [(c, analysis.flag_reasons([c])[0]) for c in stats.flags]
        irt = None
        if j in col_pos:
            row = param_rows[v.id]
            se = {k: (float(x) if isinstance(x, (int, float)) else None)
                  for k, x in (row.standard_errors or {}).items()}
            irt = IrtItem(row.model.lower(), row.a, row.b, row.c, se, row.source, fits.get(j, {}))
            for code in irt.misfits:
                flags.append(("misfit", f"S-X2 misfit on form {code}: p below {FIT_ALPHA}"))
        for d in dif.get(j, []):
            if d["ets_class"] == "C":
                flags.append(("dif_c", f"large DIF (ETS class C) on form {d['form']}"))
        section = ItemSection(
            column=j, label=version_label(v), item_code=v.item.code, version=v.version,
            version_id=v.id, item_type=v.item_type, domain=v.domain_code,
            preview=_preview(v.stem), bank_url=bank_url(v) if bank_url else None, stats=stats,
            flags=flags, forms=form_of_col.get(j, []), irt=irt, dif=dif.get(j, []),
            item_version=v,
        )
        if with_charts:
            wanted += _item_charts(section, matrix, j, irt, params, col_pos, theta)
        items.append(section)
    if item_charts_later:
        drawn = [charts.PendingChart(n, request) for n, (_, _, request) in enumerate(wanted)]
    else:
        drawn = charts.draw_many([request for _, _, request in wanted])
    for (section, attr, _), chart in zip(wanted, drawn):
        setattr(section, attr, chart)

    if cut is not None:
        notes.insert(0, f"The cut is the adopted cut {cut.id}: theta {cut.theta_cut:.4f}, carried"
                        " to each form's raw cut through its test characteristic curve.")
    with_totals = analysis.analysis.distribution
    histogram = charts.score_histogram(
        with_totals.frequencies,
        cut=forms[0].raw_cut if len(forms) == 1 else None,
        title="Score distribution, all candidates in scope",
    ) if with_charts else None
    return ItemAnalysisReport(
        scope=scope, generated_at=utcnow(), first_result=first_result, last_result=last_result,
        n_candidates=matrix.n_persons, pass_percent=exam.pass_percent, forms=forms, items=items,
        distribution=with_totals, histogram=histogram, irt_note=irt_note, dif_note=dif_note,
        notes=notes, cut_id=cut.id if cut is not None else None,
        theta_cut=float(cut.theta_cut) if cut is not None else None,
    )


def _dif_groups(scope: ReportScope, values: dict[str, int], focal: str | None,
                reference: str | None) -> tuple[str | None, str | None, str | None]:
    """(reference, focal, None), or (None, None, why not) when the two groups cannot be told.
    With two values and none chosen, the smaller group is the focal one."""
    attr = scope.dif_attribute
    if focal is not None and focal not in values:
        return None, None, f"No candidate in scope has {attr} = {focal!r} (the focal group)."
    if reference is not None and reference not in values:
        return None, None, f"No candidate in scope has {attr} = {reference!r} (the reference group)."
    if focal is not None and focal == reference:
        return None, None, "The reference and focal groups must differ."
    if focal is None or reference is None:
        others = [v for v in values if v not in (focal, reference)]
        if focal is None and reference is None and len(values) == 2:
            focal, reference = sorted(values, key=lambda v: (values[v], v))
            return reference, focal, None
        if len(others) == 1:
            return (others[0], focal, None) if reference is None else (reference, others[0], None)
        if len(values) < 2:
            return None, None, (f"DIF needs two groups, but every candidate in scope with a value"
                                f" of {attr} has the same one.")
        return None, None, (f"{attr} has {len(values)} values ({', '.join(sorted(values))}):"
                            " choose the reference and the focal group.")
    return reference, focal, None


def _dif_by_form(scope: ReportScope, matrix: ScoreMatrix, analysis: ExamItemAnalysis,
                 groups: dict[int, str] | None, focal: str | None, reference: str | None,
                 notes: list[str]) -> tuple[dict[int, list[dict]], str | None]:
    """Mantel-Haenszel DIF of each form's 0/1 items between the reference and focal groups,
    matched on the form's total score. A form where either group has fewer than
    ``scope.min_group`` candidates is left out with a note saying so."""
    dif: dict[int, list[dict]] = {}
    if scope.dif_attribute is None:
        return dif, ("No candidate attribute is chosen, so DIF is not reported: choose one, with"
                     " its reference and focal groups, to see Mantel-Haenszel DIF.")
    attr = scope.dif_attribute
    labels = np.array([(groups or {}).get(r) for r in matrix.result_ids], dtype=object)
    counts: dict[str, int] = {}
    for v in labels:
        if v is not None:
            counts[v] = counts.get(v, 0) + 1
    if not counts:
        return dif, f"No candidate in scope has a value of {attr}, so DIF is not reported."
    reference, focal, why = _dif_groups(scope, counts,
                                        focal if focal is not None else scope.dif_focal,
                                        reference if reference is not None else scope.dif_reference)
    if why:
        return dif, why
    scope.dif_reference, scope.dif_focal = reference, focal
    minimum = scope.min_group
    reported = 0
    for fr in analysis.by_form:
        rows, fcols = matrix.form_block(fr.form.id)
        in_ref = rows & (labels == reference)
        in_foc = rows & (labels == focal)
        n_ref, n_foc = int(in_ref.sum()), int(in_foc.sum())
        small = [(name, value, n) for name, value, n in (("reference", reference, n_ref),
                                                         ("focal", focal, n_foc)) if n < minimum]
        if small:
            notes.append(f"form {fr.form.code}: DIF not reported: " + "; ".join(
                f"the {name} group ({attr} = {value}) has {n} candidate{'s' if n != 1 else ''}"
                for name, value, n in small)
                + f" on this form, fewer than the minimum of {minimum}.")
            continue
        keep = (in_ref | in_foc) & ~np.isnan(matrix.scores[:, fcols]).any(axis=1)
        block = matrix.scores[np.ix_(keep, fcols)]
        binary = np.isin(block, (0.0, 1.0)).all(axis=0)
        if not binary.all():
            notes.append(f"form {fr.form.code}: {int((~binary).sum())} item(s) scored with partial"
                         " credit count in the matching score but are not tested"
                         " (Mantel-Haenszel needs 0/1 scores).")
        try:
            res = mantel_haenszel(block[:, binary], labels[keep], focal=focal,
                                  matching=block.sum(axis=1))
        except PsychometricsError as exc:
            notes.append(f"form {fr.form.code}: DIF not available ({exc})")
            continue
        reported += 1
        for j, r in zip(fcols[binary], res):
            dif.setdefault(int(j), []).append(
                {"form": fr.form.code, "focal": focal, "reference": reference, **r.to_dict()})
    if not reported:
        return dif, (f"DIF by {attr} ({focal} against {reference}) is not reported: no form has"
                     f" at least {minimum} candidates in each group.")
    return dif, None


def _item_charts(section: ItemSection, matrix: ScoreMatrix, j: int, irt: IrtItem | None,
                 params: ItemParameters | None, col_pos: dict[int, int], theta
                 ) -> list[tuple[ItemSection, str, tuple[str, tuple, dict]]]:
    """The item's charts as requests for :func:`charts.draw_many`: (section, attribute,
    request); they are drawn together, in a process pool when there are many."""
    wanted = []
    if irt is not None and params is not None:
        one = params.subset([col_pos[j]])
        model_p = one.prob(THETA)[0, 1]
        seen = ~np.isnan(matrix.scores[:, j]) & np.isfinite(theta)
        group = np.digitize(theta[seen], GROUP_EDGES)
        x = matrix.scores[seen, j]
        mids, props, ns = [], [], []
        for g in range(len(GROUP_EDGES) + 1):
            hit = group == g
            if hit.sum() >= 5:
                mids.append(float(theta[seen][hit].mean()))
                props.append(float(x[hit].mean()))
                ns.append(int(hit.sum()))
        wanted.append((section, "icc", (
            "item_characteristic_curve", (section.label, THETA, model_p, mids, props, ns),
            {"model": irt.model})))
    if section.stats.options:
        wanted.append((section, "trace", (
            "option_trace_lines",
            (section.label, [(o.option, o.is_key, list(o.by_quintile))
                             for o in section.stats.options]), {})))
    return wanted
