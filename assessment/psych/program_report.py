"""The program report: participation and performance over time, what a program's sponsors ask
for. Candidates, attempts and pass rates by exam, form, month and candidate group; score
distributions; time taken; proctoring outcomes; badges issued, revoked and expiring.

Everything is counted in the database (grouped queries over the finalized attempts in scope);
medians and percentiles, which SQLite cannot compute, come from one query of plain columns
(percent, start and end times), never from ORM objects. Proctoring outcomes and badge counts come
through those packages' public reads (:func:`proctoring.outcomes.outcomes_by_exam`,
:func:`credentials.activity.badge_activity`).

Which attempts: finalized ones whose standing result (the newest, after any rescoring) was
finalized in the date range. Pass rates and score statistics count results that were not
invalidated (as the workspace does everywhere); invalidated results and terminated attempts are
counted beside them.

Small groups are suppressed: a row counting fewer than ``min_group`` candidates shows no counts
or rates (:class:`Suppressed`), a score band with fewer results shows none, and when exactly one
group of an exam is suppressed the next smallest is too, so no total minus the rest reveals it.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Select, String, case, func, literal, select
from sqlalchemy.orm import Session

from assessment.candidate_attributes import current_values
from assessment.delivery.models import Attempt, Result
from assessment.delivery.reads import invalidated_result_ids, is_current_result
from assessment.exams import Exam
from assessment.psych import charts
from credentials.activity import badge_activity
from itembank.models import Form
from microcred.db import utcnow
from proctoring.outcomes import outcomes_by_exam

#: Score bands of the distribution, in percent: [low, high).
BANDS = tuple((low, low + 10) for low in range(0, 100, 10))
NO_VALUE = "(no value)"
EXPIRING_DAYS = 60


class Suppressed:
    """A cell left out because it counts fewer than the minimum number of candidates."""

    def __init__(self, minimum: int) -> None:
        self.minimum = minimum

    def __str__(self) -> str:
        return f"<{self.minimum}"

    __repr__ = __str__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Suppressed) and other.minimum == self.minimum

    def __hash__(self) -> int:
        return hash(("suppressed", self.minimum))


@dataclass
class ProgramScope:
    exam: Exam | None = None
    form: Form | None = None
    since: dt.date | None = None
    until: dt.date | None = None  # inclusive
    #: break results down by this candidate attribute ...
    group_attribute: str | None = None
    #: ... or keep only candidates with this value of it
    group_value: str | None = None
    min_group: int = 5

    def describe(self) -> str:
        parts = [f"exam {self.exam.code}" if self.exam else "all exams"]
        if self.form:
            parts.append(f"form {self.form.code}")
        if self.since or self.until:
            parts.append(f"finalized {self.since or 'from the first'} to {self.until or 'the last'}")
        else:
            parts.append("all dates")
        if self.group_attribute and self.group_value:
            parts.append(f"candidates with {self.group_attribute} = {self.group_value}")
        elif self.group_attribute:
            parts.append(f"by {self.group_attribute}")
        return ", ".join(parts)

    @property
    def start(self) -> dt.datetime | None:
        return None if self.since is None else dt.datetime.combine(self.since, dt.time.min,
                                                                   tzinfo=dt.UTC)

    @property
    def end(self) -> dt.datetime | None:
        return None if self.until is None else dt.datetime.combine(
            self.until + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)


@dataclass
class Table:
    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]]
    note: str = ""


@dataclass
class ProgramReport:
    scope: ProgramScope
    generated_at: dt.datetime
    tables: dict[str, Table]
    charts: list[charts.Chart] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "scope": self.scope.describe(),
            "min_group": self.scope.min_group,
            "generated_at": self.generated_at.isoformat(),
            "notes": self.notes,
            "tables": {t.name: [{c: _plain(v) for c, v in zip(t.columns, row)} for row in t.rows]
                       for t in self.tables.values()},
        }


def _plain(v: Any) -> Any:
    return str(v) if isinstance(v, Suppressed) else v


def _rate(passed: int, counted: int) -> float | None:
    return round(passed / counted, 4) if counted else None


def _month(session: Session, column):
    """``YYYY-MM`` of a UTC timestamp column, in the database's own dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM")
    return func.strftime("%Y-%m", column)


# ---------------------------------------------------------------- the attempts in scope


def attempts_in_scope(scope: ProgramScope) -> Select:
    """One row per finalized attempt in scope with its standing result: ``attempt_id``,
    ``candidate_id``, ``exam_id``, ``form_id``, ``started_at``, ``finalized_at``,
    ``terminated``, ``percent``, ``passed``, ``invalid`` (1: invalidated) and ``grp`` (the
    candidate's value of the group attribute, or None)."""
    invalid = case((Result.id.in_(invalidated_result_ids()), 1), else_=0)
    columns = [
        Attempt.id.label("attempt_id"), Attempt.candidate_id, Attempt.exam_id, Attempt.form_id,
        Attempt.started_at, Attempt.finalized_at,
        case((Attempt.finalize_reason == "terminated", 1), else_=0).label("terminated"),
        Result.percent, Result.passed, invalid.label("invalid"),
    ]
    query = (select(*columns).join(Result, Result.attempt_id == Attempt.id)
             .where(Attempt.status == "finalized", is_current_result()))
    if scope.group_attribute:
        values = current_values(scope.group_attribute).subquery()
        query = query.add_columns(values.c.value.label("grp")).outerjoin(
            values, values.c.candidate_id == Attempt.candidate_id)
        if scope.group_value is not None:
            query = query.where(values.c.value == scope.group_value)
    else:
        query = query.add_columns(literal(None, type_=String).label("grp"))
    if scope.exam is not None:
        query = query.where(Attempt.exam_id == scope.exam.id)
    if scope.form is not None:
        query = query.where(Attempt.form_id == scope.form.id)
    if scope.start is not None:
        query = query.where(Attempt.finalized_at >= scope.start)
    if scope.end is not None:
        query = query.where(Attempt.finalized_at < scope.end)
    return query


def _counts(session: Session, base, *keys) -> list[dict[str, Any]]:
    """Grouped counts over ``base`` (the subquery of :func:`attempts_in_scope`) by ``keys``."""
    counted = 1 - base.c.invalid
    query = select(
        *keys,
        func.count().label("attempts"),
        func.count(func.distinct(base.c.candidate_id)).label("candidates"),
        func.sum(counted).label("counted"),
        func.sum(case((base.c.passed.is_(True), counted), else_=0)).label("passed"),
        func.sum(base.c.invalid).label("invalidated"),
        func.sum(base.c.terminated).label("terminated"),
    ).group_by(*keys).order_by(*keys)
    return [dict(r._mapping) for r in session.execute(query)]


@dataclass
class _Columns:
    """Per-result plain columns for medians: exam, form, group, percent, minutes taken."""

    exam: np.ndarray
    form: np.ndarray
    group: np.ndarray
    percent: np.ndarray
    minutes: np.ndarray


def _columns(session: Session, base) -> _Columns:
    # invalidated results are dropped here, not in a WHERE: PostgreSQL pushed that filter into
    # the scan and ran the invalidation subquery once per row (10,000 attempts: 22 s)
    rows = [r[:-1] for r in session.execute(
        select(base.c.exam_id, base.c.form_id, base.c.grp, base.c.percent, base.c.started_at,
               base.c.finalized_at, base.c.invalid)) if not r[-1]]
    minutes = [(f - s).total_seconds() / 60.0 if f and s else math.nan
               for *_, s, f in rows]
    return _Columns(
        exam=np.array([r[0] for r in rows], dtype=int),
        form=np.array([r[1] for r in rows], dtype=int),
        group=np.array([r[2] for r in rows], dtype=object),
        percent=np.array([r[3] for r in rows], dtype=float),
        minutes=np.array(minutes, dtype=float),
    )


def _median(values: np.ndarray) -> float | None:
    values = values[np.isfinite(values)]
    return round(float(np.median(values)), 2) if values.size else None


# ---------------------------------------------------------------- building


def build_program_report(session: Session, scope: ProgramScope, *,
                         with_charts: bool = True) -> ProgramReport:
    base = attempts_in_scope(scope).subquery()
    cols = _columns(session, base)
    exams = {e.id: e for e in session.scalars(select(Exam).order_by(Exam.code))}
    minimum = scope.min_group
    s = Suppressed(minimum)
    notes: list[str] = []
    tables: dict[str, Table] = {}

    def code(exam_id: int) -> str:
        return exams[exam_id].code if exam_id in exams else str(exam_id)

    def small(row: dict) -> bool:
        return int(row["candidates"]) < minimum

    def stats(row: dict, median: float | None = None, *, hide: bool = False) -> list[Any]:
        if hide or small(row):
            return [s, s, s, s, s] + ([s] if median is not False else [])
        out = [int(row["candidates"]), int(row["attempts"]), int(row["counted"] or 0),
               int(row["passed"] or 0), _rate(int(row["passed"] or 0), int(row["counted"] or 0))]
        return out + ([median] if median is not False else [])

    # by exam
    rows = []
    for r in _counts(session, base, base.c.exam_id):
        mask = cols.exam == r["exam_id"]
        hidden = small(r)
        rows.append([code(r["exam_id"]), exams[r["exam_id"]].title if r["exam_id"] in exams else "",
                     *stats(r, _median(cols.percent[mask])),
                     s if hidden else _median(cols.minutes[mask]),
                     s if hidden else int(r["invalidated"] or 0),
                     s if hidden else int(r["terminated"] or 0)])
    tables["exams"] = Table(
        "exams", "Candidates, attempts and pass rates by exam",
        ["exam", "title", "candidates", "attempts", "results_counted", "passed", "pass_rate",
         "median_percent", "median_minutes", "invalidated", "terminated"], rows)

    # by month
    month = _month(session, base.c.finalized_at).label("month")
    by_month = _counts(session, base, month, base.c.exam_id)
    tables["months"] = Table(
        "months", "Participation and pass rates by month (of finalization)",
        ["month", "exam", "candidates", "attempts", "results_counted", "passed", "pass_rate"],
        [[r["month"], code(r["exam_id"]), *stats(r, False)] for r in by_month])

    # by form
    form_codes = dict(session.execute(select(Form.id, Form.code).where(
        Form.id.in_(select(base.c.form_id).distinct()))).all())
    rows = []
    for r in _counts(session, base, base.c.exam_id, base.c.form_id):
        mask = (cols.exam == r["exam_id"]) & (cols.form == r["form_id"])
        rows.append([code(r["exam_id"]), form_codes.get(r["form_id"], str(r["form_id"])),
                     *stats(r, _median(cols.percent[mask]))])
    tables["forms"] = Table(
        "forms", "Pass rates by form",
        ["exam", "form", "candidates", "attempts", "results_counted", "passed", "pass_rate",
         "median_percent"], rows)

    # by candidate group
    if scope.group_attribute:
        tables["groups"] = _group_table(session, base, cols, scope, code)

    # score distribution (percent bands, counted results)
    band_rows = []
    pooled: list[int] = [0] * len(BANDS)
    for exam_id in sorted(set(cols.exam.tolist())):
        pct = cols.percent[cols.exam == exam_id]
        for k, (low, high) in enumerate(BANDS):
            n = int(((pct >= low) & ((pct < high) if high < 100 else (pct <= 100))).sum())
            pooled[k] += n
            band_rows.append([code(exam_id), _band(low, high), s if 0 < n < minimum else n])
    tables["score_bands"] = Table(
        "score_bands", "Score distribution: counted results by percent band",
        ["exam", "band", "results"], band_rows,
        note=f"Bands with 1 to {minimum - 1} results are not shown.")

    # time taken
    rows = []
    for exam_id in sorted(set(cols.exam.tolist())):
        minutes = cols.minutes[(cols.exam == exam_id) & np.isfinite(cols.minutes)]
        if minutes.size < minimum:
            rows.append([code(exam_id), s, s, s, s, s])
            continue
        q = np.percentile(minutes, [25, 50, 75, 90])
        rows.append([code(exam_id), int(minutes.size), *(round(float(v), 2) for v in q)])
    tables["time_taken"] = Table(
        "time_taken", "Time taken (minutes from start to finalization, counted results)",
        ["exam", "results", "p25_minutes", "median_minutes", "p75_minutes", "p90_minutes"], rows)

    # proctoring outcomes
    exam_ids = [scope.exam.id] if scope.exam else None
    narrowed = scope.form is not None or scope.group_value is not None
    outcomes = outcomes_by_exam(
        session, exam_ids=exam_ids, since=scope.start, until=scope.end,
        attempt_ids=select(base.c.attempt_id) if narrowed else None)
    tables["proctoring"] = Table(
        "proctoring", "Proctoring outcomes (proctored sessions started in the date range)",
        ["exam", "sessions", "flagged_sessions", "high_severity_sessions", "flags", "terminated",
         "in_review", "cleared", "invalidated"],
        [[code(o.exam_id)] + ([s] * 8 if o.sessions < minimum else
                              [o.sessions, o.flagged, o.flagged_high, o.flags, o.terminated,
                               o.in_review, o.cleared, o.invalidated]) for o in outcomes],
        note=("Only sessions of the attempts in scope (sessions ended before an attempt started"
              " are left out)." if narrowed else ""))

    # badges
    activity = badge_activity(session, exam_ids=exam_ids, since=scope.start, until=scope.end,
                              expiring_within_days=EXPIRING_DAYS)
    tables["badges"] = Table(
        "badges", "Badges issued and revoked in the date range, and expiring soon",
        ["achievement", "name", "exam", "issued", "revoked", f"expiring_{EXPIRING_DAYS}_days"],
        [[a.achievement_code, a.achievement_name, code(a.exam_id) if a.exam_id else "",
          a.issued, a.revoked, a.expiring] for a in activity],
        note=(f"Expiring: valid now, not revoked or renewed, and ending within {EXPIRING_DAYS}"
              " days from today. Badges are counted per exam, not by form or candidate group."))

    if not cols.exam.size and not by_month:
        notes.append("No finalized attempt is in scope: widen the date range or the filters.")
    report = ProgramReport(scope, utcnow(), tables, notes=notes)
    if with_charts:
        report.charts = _charts(report, by_month, pooled, code)
    return report


def _band(low: int, high: int) -> str:
    return f"{low}-{high - 1}%" if high < 100 else f"{low}-100%"


def _group_table(session: Session, base, cols: _Columns, scope: ProgramScope, code) -> Table:
    minimum = scope.min_group
    s = Suppressed(minimum)
    counts = _counts(session, base, base.c.exam_id, base.c.grp)
    hidden = {i for i, r in enumerate(counts) if int(r["candidates"]) < minimum}
    # complementary suppression: one hidden group of an exam could be told from the exam's
    # total less the others, so hide the next smallest group of that exam as well
    for exam_id in {r["exam_id"] for r in counts}:
        mine = [i for i, r in enumerate(counts) if r["exam_id"] == exam_id]
        if len([i for i in mine if i in hidden]) == 1 and len(mine) > 1:
            shown = sorted((i for i in mine if i not in hidden),
                           key=lambda i: int(counts[i]["candidates"]))
            hidden.add(shown[0])
    rows = []
    for i, r in enumerate(counts):
        label = NO_VALUE if r["grp"] is None else r["grp"]
        if i in hidden:
            rows.append([code(r["exam_id"]), label, s, s, s, s, s, s])
            continue
        mask = (cols.exam == r["exam_id"]) & np.array(
            [g == r["grp"] for g in cols.group], dtype=bool)
        counted, passed = int(r["counted"] or 0), int(r["passed"] or 0)
        rows.append([code(r["exam_id"]), label, int(r["candidates"]), int(r["attempts"]), counted,
                     passed, _rate(passed, counted), _median(cols.percent[mask])])
    return Table(
        "groups", f"Pass rates by {scope.group_attribute}",
        ["exam", scope.group_attribute, "candidates", "attempts", "results_counted", "passed",
         "pass_rate", "median_percent"], rows,
        note=(f"Groups with fewer than {minimum} candidates are suppressed, and so is the next"
              " smallest group of the same exam when only one would be."))


def _charts(report: ProgramReport, by_month: list[dict], pooled: list[int], code
            ) -> list[charts.Chart]:
    minimum = report.scope.min_group
    out = []
    months = sorted({r["month"] for r in by_month})
    if months:
        by_exam: dict[int, dict[str, dict]] = {}
        for r in by_month:
            by_exam.setdefault(r["exam_id"], {})[r["month"]] = r
        rate_series, attempt_series = [], []
        for exam_id, per in sorted(by_exam.items(), key=lambda kv: code(kv[0])):
            rates, attempts = [], []
            for m in months:
                r = per.get(m)
                ok = r is not None and int(r["candidates"]) >= minimum and r["counted"]
                rates.append(100.0 * int(r["passed"] or 0) / int(r["counted"]) if ok else None)
                attempts.append(int(r["attempts"]) if ok else None)
            rate_series.append((code(exam_id), rates))
            attempt_series.append((code(exam_id), attempts))
        out.append(charts.lines_over_time(
            months, rate_series, title="Pass rate by month", ylabel="pass rate (%)", unit="%",
            ylim=(0, 100)))
        out.append(charts.lines_over_time(
            months, attempt_series, title="Attempts by month", ylabel="attempts"))
    bands = [_band(low, high) for low, high in BANDS]
    out.append(charts.category_bars(
        bands, [None if 0 < n < minimum else n for n in pooled],
        title="Score distribution of counted results (all exams in scope)",
        xlabel="percent score", ylabel="results"))
    groups = report.tables.get("groups")
    if groups is not None and groups.rows:
        labels = [f"{r[0]} {r[1]}" for r in groups.rows]
        rates = [None if isinstance(r[6], Suppressed) or r[6] is None else 100.0 * r[6]
                 for r in groups.rows]
        out.append(charts.category_bars(
            labels, rates, title=f"Pass rate by {report.scope.group_attribute}",
            xlabel=report.scope.group_attribute, ylabel="pass rate (%)", unit="%"))
    return out
