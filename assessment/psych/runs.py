"""Calibration runs: a calibration is stored as a run, and its estimates become an exam's current
item parameters only when a psychometrician approves the run.

A run is ``proposed`` when stored (:func:`record_run`). Approving it writes its usable estimates
as new ``ItemParameter`` rows through :func:`itembank.parameters.supersede_parameters`, the one
writer of those rows (the newest row of an item version is current), and marks the exam's previously approved run ``superseded`` and the run
``approved``. A run that did not converge is approved only with an explicit override and a
reason. Rejecting a proposed run leaves the parameters alone. Any run that is not the current
one (proposed, rejected or superseded) may be approved later: that is the way back to an earlier
calibration, and it again adds rows rather than editing any.

The run's ``status`` and "last decision" columns say where it stands now; every decision is also
kept as an append-only :class:`CalibrationDecision` row (who, when, why, override), which is the
audit trail.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship, selectinload

from assessment.psych.calibration import ExamCalibration
from itembank.models import ItemVersion
from itembank.parameters import ParameterValues, supersede_parameters
from microcred.db import Base, append_only, utcnow
from microcred.errors import DomainError

RUN_STATUSES = ("proposed", "approved", "rejected", "superseded")
REASON_LENGTH = 500
ERROR_LENGTH = 1000
JOB_STATES = ("queued", "running", "finished", "failed")


class CalibrationRefused(DomainError):
    """An approval or rejection that may not happen; the message says why, for people."""

    status, code = 409, "calibration_refused"


class CalibrationRun(Base):
    """One IRT calibration of an exam's item versions on its counted results (all forms at once,
    on the common scale their shared items give)."""

    __tablename__ = "calibration_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    exam_id: Mapped[int] = mapped_column(ForeignKey("exams.id"), index=True)
    model: Mapped[str] = mapped_column(String(10))
    #: What was asked: ``{"max_iter": 500}``.
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    run_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    converged: Mapped[bool]
    iterations: Mapped[int]
    log_likelihood: Mapped[float | None]
    #: Everything else the run page shows: persons, items, forms, AIC, BIC, latent distribution,
    #: computing time, recovery of simulated parameters, notes on item fit.
    fit_summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    warnings: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(20), default="proposed")
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[dt.datetime | None]
    decision_reason: Mapped[str] = mapped_column(String(REASON_LENGTH), default="")
    approved_with_override: Mapped[bool] = mapped_column(default=False)
    #: Where the background job stands (:mod:`assessment.psych.jobs`): ``queued``, ``running``,
    #: ``finished`` (the estimates are stored) or ``failed`` (``error`` says why). Only a
    #: finished run can be approved or rejected.
    job_state: Mapped[str] = mapped_column(String(20), default="finished",
                                           server_default="finished")
    #: The last EM cycle reported while running: ``{"iteration", "max_iter", "loglik",
    #: "change", "at"}``.
    progress: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(String(ERROR_LENGTH))
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]

    estimates: Mapped[list[CalibrationEstimate]] = relationship(
        back_populates="run", order_by="CalibrationEstimate.position"
    )
    decisions: Mapped[list[CalibrationDecision]] = relationship(
        order_by="CalibrationDecision.id"
    )
    linkings: Mapped[list[CalibrationLinking]] = relationship(order_by="CalibrationLinking.id")

    @property
    def usable_estimates(self) -> list[CalibrationEstimate]:
        return [e for e in self.estimates if e.note is None]

    @property
    def finished(self) -> bool:
        return self.job_state == "finished"

    @property
    def approvable(self) -> bool:
        return self.finished and self.status != "approved"

    @property
    def rejectable(self) -> bool:
        return self.finished and self.status == "proposed"


class CalibrationEstimate(Base):
    """One item version's estimates in a run. ``note`` says why the estimate may not become
    current (not estimable, non-finite); None when it may."""

    __tablename__ = "calibration_estimates"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("calibration_runs.id"), index=True)
    item_version_id: Mapped[int] = mapped_column(ForeignKey("item_versions.id"))
    position: Mapped[int]
    n_responses: Mapped[int]
    a: Mapped[float | None]
    b: Mapped[float | None]
    c: Mapped[float | None]
    standard_errors: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(String(200))
    #: S-X2 per form code: ``{"F1": {"statistic": ..., "df": ..., "p_value": ...}}``.
    item_fit: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: Classical statistics on the run's data, kept so the item's history shows them per run:
    #: the proportion correct and the corrected item-total correlation (None when not defined).
    p: Mapped[float | None]
    corrected_r: Mapped[float | None]

    run: Mapped[CalibrationRun] = relationship(back_populates="estimates")
    item_version: Mapped[ItemVersion] = relationship()


append_only(CalibrationEstimate)


class CalibrationDecision(Base):
    """An approval or rejection of a run: who, when, why, and whether a non-converged run was
    approved on purpose. Never edited."""

    __tablename__ = "calibration_decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("calibration_runs.id"), index=True)
    decision: Mapped[str] = mapped_column(String(20))  # approved | rejected
    by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    reason: Mapped[str] = mapped_column(String(REASON_LENGTH), default="")
    override_not_converged: Mapped[bool] = mapped_column(default=False)


append_only(CalibrationDecision)


class CalibrationLinking(Base):
    """The linking constants recorded with an approval (:mod:`assessment.psych.runs_compare`):
    through which anchors, by which method, and whether the approval placed the run's estimates
    on the bank's scale with them (``applied``) or wrote them as estimated. Never edited."""

    __tablename__ = "calibration_linkings"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("calibration_runs.id"), index=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("calibration_decisions.id"), index=True)
    #: "bank": the current approved parameters at approval time
    base: Mapped[str] = mapped_column(String(20))
    method: Mapped[str] = mapped_column(String(20))
    A: Mapped[float]
    B: Mapped[float]
    se_A: Mapped[float | None]
    se_B: Mapped[float | None]
    criterion: Mapped[float | None]
    #: item version ids of the anchors used, and of the anchors the psychometrician excluded
    anchors: Mapped[list[Any]] = mapped_column(default=list)
    excluded: Mapped[list[Any]] = mapped_column(default=list)
    applied: Mapped[bool]
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


append_only(CalibrationLinking)


# ---------------------------------------------------------------- storing


def queue_run(session: Session, exam: Any, *, model: str, max_iter: int,
              run_by_id: int | None) -> CalibrationRun:
    """A ``queued`` run of ``exam`` for the job to fill (flushed, not committed): what was asked
    and by whom, no estimates yet. ``model`` and ``max_iter`` must be checked already
    (``check_model_choice``, ``check_max_iter``)."""
    run = CalibrationRun(
        exam_id=exam.id, model=model, options={"max_iter": int(max_iter)}, run_by_id=run_by_id,
        converged=False, iterations=0, status="proposed", job_state="queued",
        progress={"iteration": 0, "max_iter": int(max_iter)},
    )
    session.add(run)
    session.flush()
    return run


def record_run(
    session: Session, calibration: ExamCalibration, *, run_by_id: int | None, max_iter: int,
    run: CalibrationRun | None = None,
) -> CalibrationRun:
    """Store ``calibration`` as a proposed run with one estimate row per item version (flushed,
    not committed): into ``run`` when given (the queued run a job fills), else a new run. The
    current parameters do not change."""
    fit, matrix = calibration.fit, calibration.matrix
    three = fit.model == "3pl"
    if run is None:
        run = CalibrationRun(exam_id=calibration.exam.id, run_by_id=run_by_id)
        session.add(run)
    run.model = fit.model
    run.options = {**(run.options or {}), "max_iter": int(max_iter)}
    run.job_state = "finished"
    run.error = None
    run.finished_at = utcnow()
    for name, value in {
        "converged": bool(fit.converged),
        "iterations": int(fit.iterations),
        "log_likelihood": _finite_or_none(fit.loglik),
        "fit_summary": _json_safe({
            "exam": calibration.exam.code,
            "engine": fit.engine,
            "n_persons": fit.n_persons,
            "n_items": fit.n_items,
            "forms": [matrix.forms[f].code for f in sorted(matrix.forms)],
            "max_change": fit.max_change,
            "aic": fit.aic,
            "bic": fit.bic,
            "n_params": fit.n_params,
            "latent_mean": fit.latent_mean,
            "latent_sd": fit.latent_sd,
            "seconds": calibration.seconds,
            "recovery": [vars(r) for r in calibration.recovery],
            "fit_forms": calibration.fit_forms(),
            "fit_notes": calibration.fit_notes,
        }),
        "warnings": [str(w) for w in calibration.warnings],
        "status": "proposed",
    }.items():
        setattr(run, name, value)
    session.flush()
    p_values, r_values = classical_statistics(matrix.scores)
    for j, version in enumerate(matrix.versions):
        session.add(CalibrationEstimate(
            run_id=run.id,
            item_version_id=version.id,
            position=j,
            n_responses=int((~np.isnan(matrix.scores[:, j])).sum()),
            a=_finite_or_none(fit.a[j]),
            b=_finite_or_none(fit.b[j]),
            c=_finite_or_none(fit.c[j]) if three else 0.0,
            standard_errors={
                name: _finite_or_none(se[j])
                for name, se in (("a", fit.se_a), ("b", fit.se_b), ("c", fit.se_c))
                if three or name != "c"
            },
            status=str(fit.status[j])[:20],
            note=calibration.unusable.get(j),
            item_fit=_json_safe({
                code: item.to_dict() for code, item in calibration.item_fit.get(j, [])
            }),
            p=p_values[j],
            corrected_r=r_values[j],
        ))
    session.flush()
    return run


def classical_statistics(scores: np.ndarray) -> tuple[list[float | None], list[float | None]]:
    """Per column of the 0/1 score matrix (NaN: not presented): the proportion correct p and the
    corrected item-total correlation r, the Pearson correlation of the item score with the rest
    score (the person's summed score on the other items presented to them) among the persons who
    saw the item (Henrysson, 1963). None where undefined: no responses, or no variance (r needs
    two persons)."""
    seen = ~np.isnan(scores)
    filled = np.where(seen, scores, 0.0)
    total = filled.sum(axis=1)
    ps: list[float | None] = []
    rs: list[float | None] = []
    for j in range(scores.shape[1]):
        rows = seen[:, j]
        n = int(rows.sum())
        if not n:
            ps.append(None)
            rs.append(None)
            continue
        item = filled[rows, j]
        rest = total[rows] - item
        ps.append(float(item.mean()))
        sx, sy = item.std(), rest.std()
        if n < 2 or sx == 0 or sy == 0:
            rs.append(None)
        else:
            rs.append(float(np.mean((item - item.mean()) * (rest - rest.mean())) / (sx * sy)))
    return ps, rs


def _json_safe(value):
    """NaN and infinities become None (JSON has neither), numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _finite_or_none(value)
    return value


def _finite_or_none(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None



# ---------------------------------------------------------------- reading


def runs_of_exam(session: Session, exam_id: int, *, limit: int | None = None) -> list[CalibrationRun]:
    """The exam's runs, newest first, with their decisions (the pages name who decided)."""
    return list(
        session.scalars(
            select(CalibrationRun)
            .where(CalibrationRun.exam_id == exam_id)
            .order_by(CalibrationRun.id.desc())
            .limit(limit)
            .options(selectinload(CalibrationRun.decisions))
        )
    )


def get_run(session: Session, run_id: int, *, for_update: bool = False) -> CalibrationRun | None:
    """The run alone: what deciding on it needs (:func:`approve_run` locks and refreshes it)."""
    query = select(CalibrationRun).where(CalibrationRun.id == run_id)
    if for_update:
        query = query.with_for_update()
    return session.scalar(query)


def run_with_details(session: Session, run_id: int) -> CalibrationRun | None:
    """The run with everything its page shows loaded up front: the estimates with their item
    versions and items, and the decisions. A fixed number of queries however many items the
    run has (``tests/test_psych_queries.py`` holds the page to it)."""
    return session.scalar(
        select(CalibrationRun)
        .where(CalibrationRun.id == run_id)
        .options(
            selectinload(CalibrationRun.estimates)
            .selectinload(CalibrationEstimate.item_version)
            .selectinload(ItemVersion.item),
            selectinload(CalibrationRun.decisions),
            selectinload(CalibrationRun.linkings),
        )
    )


# ---------------------------------------------------------------- deciding


def _check_reason(reason: str, *, required: str | None) -> str:
    reason = (reason or "").strip()
    if required and not reason:
        raise CalibrationRefused(required)
    if len(reason) > REASON_LENGTH:
        raise CalibrationRefused(
            f"the reason is {len(reason)} characters long; keep it to {REASON_LENGTH}"
        )
    return reason


def _decide(session: Session, run: CalibrationRun, decision: str, by: Any, reason: str,
            override: bool) -> CalibrationDecision:
    now = utcnow()
    run.status = decision
    run.decided_by_id = by.id
    run.decided_at = now
    run.decision_reason = reason
    run.approved_with_override = override and decision == "approved"
    row = CalibrationDecision(run_id=run.id, decision=decision, by_id=by.id, at=now,
                              reason=reason, override_not_converged=run.approved_with_override)
    session.add(row)
    session.flush()
    return row


def _require_finished(run: CalibrationRun) -> None:
    if run.job_state != "finished":
        state = {"queued": "is waiting for a worker", "running": "is still running",
                 "failed": "failed"}.get(run.job_state, run.job_state)
        raise CalibrationRefused(
            f"calibration run {run.id} {state}: only a finished run has estimates to decide on"
        )


def approve_run(session: Session, run: CalibrationRun, *, by: Any, reason: str = "",
                override_not_converged: bool = False, linking: Any = None,
                apply_linking: bool = False) -> CalibrationDecision:
    """Make the run's usable estimates the current parameters (new rows; flushed, not
    committed). Raises :class:`CalibrationRefused` when the run is already current, did not
    converge and the override is not given with a reason, or has nothing usable.

    ``linking`` is the run's comparison with the bank's parameters
    (:class:`assessment.psych.runs_compare.RunComparison`, computed when approving): its
    constants are recorded with the decision, and with ``apply_linking`` the estimates are
    written on the bank's scale (a / A, A b + B, c; standard errors scaled alike)."""
    if apply_linking and (linking is None or linking.constants is None):
        raise CalibrationRefused(
            "placing the estimates on the bank's scale needs linking constants, and there are none"
        )
    # Two approvals of runs of the same exam at once would each supersede the other's previous
    # run and leave two "approved": lock the exam's runs so they happen one after the other.
    session.execute(
        select(CalibrationRun.id).where(CalibrationRun.exam_id == run.exam_id).with_for_update()
    )
    session.refresh(run)
    _require_finished(run)
    if run.status == "approved":
        raise CalibrationRefused(
            f"calibration run {run.id} is already approved: its estimates are the current ones"
        )
    if not run.converged:
        if not override_not_converged:
            raise CalibrationRefused(
                f"calibration run {run.id} did not converge (it stopped after {run.iterations} "
                "EM cycles). Run the calibration again with more cycles, or tick \u201cApprove "
                "although it did not converge\u201d and give the reason"
            )
        reason = _check_reason(
            reason, required="approving a run that did not converge needs a reason: say why "
            "these estimates are good enough to use",
        )
    else:
        reason = _check_reason(reason, required=None)
    usable = run.usable_estimates
    if not usable:
        raise CalibrationRefused(
            f"calibration run {run.id} has no usable estimates, so approving it would change nothing"
        )
    for previous in session.scalars(
        select(CalibrationRun).where(
            CalibrationRun.exam_id == run.exam_id,
            CalibrationRun.status == "approved",
            CalibrationRun.id != run.id,
        )
    ):
        previous.status = "superseded"
    decision = _decide(session, run, "approved", by, reason, override_not_converged)
    values = []
    for e in usable:
        a, b, c, se = float(e.a), e.b, float(e.c or 0.0), dict(e.standard_errors or {})
        if apply_linking:
            a, b, c, se = linking.transform(a, b, c, se)
        values.append(ParameterValues(item_version_id=e.item_version_id, model=run.model,
                                      a=a, b=b, c=c, standard_errors=se))
    record = None
    if linking is not None and linking.constants is not None:
        k = linking.constants
        record = CalibrationLinking(
            run_id=run.id, decision_id=decision.id, base=str(k["base"])[:20],
            method=k["method"], A=k["A"], B=k["B"], se_A=k.get("se_A"), se_B=k.get("se_B"),
            criterion=k.get("criterion"), anchors=list(k["anchors"]),
            excluded=list(k["excluded"]), applied=bool(apply_linking), at=decision.at,
        )
        session.add(record)
    supersede_parameters(session, values, source=parameter_source(run, by, record))
    return decision


def reject_run(session: Session, run: CalibrationRun, *, by: Any,
               reason: str) -> CalibrationDecision:
    """Record that the run's estimates are not to be used; the parameters stay as they are."""
    _require_finished(run)
    if run.status != "proposed":
        raise CalibrationRefused(
            f"calibration run {run.id} is {run.status}; only a proposed run can be rejected"
        )
    reason = _check_reason(reason, required="say why the run is rejected")
    return _decide(session, run, "rejected", by, reason, False)


def parameter_source(run: CalibrationRun, by: Any, linking: CalibrationLinking | None = None
                     ) -> str:
    """The ``ItemParameter.source`` text of rows written by approving ``run``."""
    summary = run.fit_summary or {}
    parts = [
        f"calibration run {run.id}",
        f"exam {summary.get('exam', run.exam_id)}",
        f"{run.model} MML-EM",
        f"N={summary.get('n_persons', '?')}",
        f"converged in {run.iterations} cycles"
        if run.converged
        else f"NOT converged ({run.iterations} cycles; approved with override)",
        f"approved by {by.email}",
    ]
    if linking is not None and linking.applied:
        parts.insert(4, f"linked to bank scale ({linking.method}, A={linking.A:.4f}, "
                        f"B={linking.B:.4f}, {len(linking.anchors)} anchors)")
    return "; ".join(parts)
