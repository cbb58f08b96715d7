"""Comparing a calibration run with another run or with the bank's current (approved) parameters:
the drift table of the items they share and the linking constants through the anchor items.

The anchor items are the item versions both sides have usable parameters for. The engine
computes everything (:mod:`psychometrics.linking`): the constants A, B with theta_base =
A theta_new + B by Stocking-Lord, Haebara, mean-sigma or mean-mean, their jackknife standard
errors over (groups of) the anchors (Haberman, Lee & Qian, 2009), and the robust z drift screen of Huynh &
Meyer (2010). The psychometrician may leave drifting anchors out of the link; the drift screen
itself always looks at every anchor (it is what says which ones drift).

Differences in the drift table are on the base scale: the new estimates are first transformed
with the constants (a* = a / A, b* = A b + B, c* = c; Kolen & Brennan, 2014, eq. 6.14-6.16),
so a change of scale is not read as drift. A difference divided by its standard error is
d / sqrt(SE_base^2 + SE_new*^2), SE_new* scaled like the parameter (SE_a / A, A SE_b).
"""
from __future__ import annotations

import csv
import io
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from assessment.psych.runs import CalibrationRefused, CalibrationRun, run_with_details
from itembank.models import ItemVersion
from itembank.parameters import current_parameters
from microcred.errors import DomainError
from psychometrics import PsychometricsError
from psychometrics.irt.models import ItemParameters
from psychometrics.linking import METHODS, ROBUST_Z_CUT, LinkingConstants, anchor_drift, link

#: Fewest anchors a link is computed on: the drift screen's robust spread needs 4
#: (``anchor_drift``), the jackknife 3. Kolen & Brennan (2014, p. 288) advise at least 20% of a
#: test's items, and at least 20 items, for a stable link: fewer is allowed with a warning.
MIN_ANCHORS = 4
ADVISED_ANCHORS = 20
DEFAULT_METHOD = "stocking-lord"
JACKKNIFE_GROUPS = 10
#: |difference / SE| above this is marked in the drift table (a two-sided 5% test).
SE_SCALED_CUT = 1.96
BANK = "bank"


class ComparisonError(DomainError):
    """A comparison that cannot be made (too few anchors, an unknown method); the message says
    why in a psychometrician's words."""

    status, code = 422, "comparison_refused"


@dataclass(frozen=True)
class Side:
    """One side of a comparison: per item version, (a, b, c, standard errors)."""

    label: str
    key: str  # "bank" or the run id as text
    model: str
    values: dict[int, tuple[float, float, float, dict[str, Any]]]


@dataclass
class DriftRow:
    item_version_id: int
    label: str
    anchor: bool  # both sides have usable parameters
    excluded: bool = False
    old: tuple[float | None, float | None, float | None] = (None, None, None)
    new: tuple[float | None, float | None, float | None] = (None, None, None)
    #: the new estimates on the base scale (after linking)
    linked: tuple[float | None, float | None, float | None] = (None, None, None)
    diff: tuple[float | None, float | None, float | None] = (None, None, None)
    se_scaled: tuple[float | None, float | None, float | None] = (None, None, None)
    z_b: float | None = None
    z_a: float | None = None
    flagged: bool = False

    @property
    def large_se_scaled(self) -> bool:
        return any(v is not None and abs(v) > SE_SCALED_CUT for v in self.se_scaled)


@dataclass
class RunComparison:
    run: CalibrationRun
    base: Side
    new: Side
    method: str
    rows: list[DriftRow]
    excluded: list[int]
    constants: dict[str, Any] | None = None  # LinkingConstants.to_dict() plus n_anchors
    warnings: list[str] = field(default_factory=list)

    @property
    def anchors(self) -> list[DriftRow]:
        return [r for r in self.rows if r.anchor]

    @property
    def used_anchors(self) -> list[DriftRow]:
        return [r for r in self.rows if r.anchor and not r.excluded]

    @property
    def flagged(self) -> list[DriftRow]:
        return [r for r in self.rows if r.flagged]

    def transform(self, a: float, b: float | None, c: float, se: dict[str, Any]
                  ) -> tuple[float, float | None, float, dict[str, Any]]:
        """One new estimate on the base scale with its standard errors."""
        A, B = self.constants["A"], self.constants["B"]
        se = dict(se or {})
        if se.get("a") is not None:
            se["a"] = se["a"] / A
        if se.get("b") is not None:
            se["b"] = se["b"] * A
        return a / A, (None if b is None else A * b + B), c, se

    # -------------------------------------------------------------- downloads

    COLUMNS = ("item_version_id", "item", "anchor", "excluded", "a_old", "b_old", "c_old",
               "a_new", "b_new", "c_new", "a_linked", "b_linked", "c_linked", "diff_a", "diff_b",
               "diff_c", "diff_a_over_se", "diff_b_over_se", "diff_c_over_se", "robust_z_b",
               "robust_z_a", "drift_flag")

    def table(self) -> list[list[Any]]:
        return [
            [r.item_version_id, r.label, r.anchor, r.excluded, *r.old, *r.new, *r.linked,
             *r.diff, *r.se_scaled, r.z_b, r.z_a, r.flagged]
            for r in self.rows
        ]

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.COLUMNS)
        writer.writerows(["" if v is None else v for v in row] for row in self.table())
        return out.getvalue()

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run.id,
            "base": {"key": self.base.key, "label": self.base.label},
            "method": self.method,
            "linking": self.constants,
            "excluded_anchors": self.excluded,
            "n_anchors": len(self.anchors),
            "drift_cut": ROBUST_Z_CUT,
            "warnings": self.warnings,
            "items": [dict(zip(self.COLUMNS, row, strict=True)) for row in self.table()],
        }


# ---------------------------------------------------------------- sides


def run_side(run: CalibrationRun) -> Side:
    values = {
        e.item_version_id: (float(e.a), float(e.b), float(e.c or 0.0), dict(e.standard_errors or {}))
        for e in run.usable_estimates
        if e.a is not None and e.b is not None
    }
    return Side(f"run {run.id} ({run.model}, {run.status})", str(run.id), run.model, values)


def bank_side(session: Session, version_ids: list[int], rows: dict | None = None) -> Side:
    """The current parameters of ``version_ids`` (``rows``: already read by the caller)."""
    if rows is None:
        rows = current_parameters(session, version_ids)
    values = {
        vid: (float(p.a), float(p.b), float(p.c or 0.0), dict(p.standard_errors or {}))
        for vid, p in rows.items()
        if p.b is not None and p.a is not None and p.model in ("rasch", "1pl", "2pl", "3pl")
    }
    models = {p.model for p in rows.values()}
    return Side("the bank's current approved parameters", BANK,
                "/".join(sorted(models)) or "none", values)


def check_method(method: str | None) -> str:
    method = (method or DEFAULT_METHOD).strip().lower()
    if method not in METHODS:
        raise ComparisonError(f"method must be one of {', '.join(METHODS)}; got {method[:40]!r}")
    return method


def parse_exclusions(values: list[str]) -> list[int]:
    out = []
    for v in values:
        try:
            out.append(int(v))
        except (TypeError, ValueError):
            raise ComparisonError(f"exclude must name item version ids; got {str(v)[:40]!r}") from None
    return sorted(set(out))


# ---------------------------------------------------------------- comparing


def compare_run(session: Session, run: CalibrationRun, *, base: str = BANK,
                method: str | None = None, exclude: list[int] | None = None,
                current: dict | None = None, with_se: bool = True) -> RunComparison:
    """Compare ``run`` (its usable estimates) with ``base``: ``"bank"`` (the current approved
    parameters of the run's item versions) or another run's id. Raises
    :class:`ComparisonError` when the base run is unknown or there are too few anchors.
    ``with_se=False`` skips the jackknife (one optimisation instead of eleven: the run page)."""
    method = check_method(method)
    if not run.finished:
        raise ComparisonError(f"calibration run {run.id} has not finished: it has no estimates yet")
    new = run_side(run)
    labels = {e.item_version_id: _label(e.item_version) for e in run.estimates}
    if base == BANK:
        old = bank_side(session, [e.item_version_id for e in run.estimates], current)
    else:
        try:
            base_id = int(base)
        except (TypeError, ValueError):
            raise ComparisonError(f"compare with 'bank' or a run id; got {str(base)[:40]!r}") from None
        other = run_with_details(session, base_id)
        if other is None:
            raise ComparisonError(f"there is no calibration run {base_id} to compare with")
        if other.id == run.id:
            raise ComparisonError("a run compared with itself shows nothing: choose another run")
        if other.exam_id != run.exam_id:
            raise ComparisonError(
                f"run {other.id} calibrates another exam; compare runs of the same exam")
        if not other.finished:
            raise ComparisonError(f"calibration run {other.id} has not finished: it has no estimates")
        old = run_side(other)
        labels.update({e.item_version_id: _label(e.item_version) for e in other.estimates})
    exclude = sorted(set(exclude or ()))
    ids = sorted(set(new.values) | set(old.values), key=lambda v: (labels.get(v, ""), v))
    anchors = [v for v in ids if v in new.values and v in old.values]
    unknown = [v for v in exclude if v not in anchors]
    if unknown:
        raise ComparisonError(
            "only anchor items can be excluded; not anchors of this comparison: "
            + ", ".join(labels.get(v, f"item version {v}") for v in unknown))
    used = [v for v in anchors if v not in exclude]
    rows = [
        DriftRow(v, labels.get(v, f"item version {v}"), v in anchors, v in exclude,
                 old=_abc(old.values.get(v)), new=_abc(new.values.get(v)))
        for v in ids
    ]
    comparison = RunComparison(run, old, new, method, rows, exclude)
    if len(used) < MIN_ANCHORS:
        raise ComparisonError(_too_few(run, old, anchors, used, exclude))
    if len(used) < ADVISED_ANCHORS:
        comparison.warnings.append(
            f"only {len(used)} anchor items link the scales; at least {ADVISED_ANCHORS} (and 20% of "
            "the test) are advised for a stable link (Kolen & Brennan, 2014)")
    three = any(old.values[v][2] or new.values[v][2] for v in anchors)
    model = "3pl" if three else "2pl"

    def params(side: Side, vids: list[int]) -> ItemParameters:
        a, b, c = zip(*[side.values[v][:3] for v in vids], strict=True)
        return ItemParameters(model, np.array(a), np.array(b), np.array(c))

    try:
        with warnings.catch_warnings(), np.errstate(invalid="ignore"):
            # the optimiser probes A <= 0, where the criterion is infinite on purpose
            warnings.simplefilter("ignore", RuntimeWarning)
            constants = (_link_with_se(params(new, used), params(old, used), method) if with_se
                         else link(params(new, used), params(old, used), method))
        drift = anchor_drift(params(new, anchors), params(old, anchors), item_ids=anchors)
    except PsychometricsError as exc:
        raise ComparisonError(f"the scales could not be linked: {exc}") from None
    if not (math.isfinite(constants.A) and constants.A > 0 and math.isfinite(constants.B)):
        raise ComparisonError(f"the {method} link gave no usable constants (A={constants.A}, "
                              f"B={constants.B}); try another method or other anchors")
    comparison.constants = {**constants.to_dict(), "n_anchors": len(used),
                            "anchors": used, "excluded": exclude, "base": old.key}
    by_id = {int(d.item): d for d in drift}
    for row in rows:
        if row.new[0] is None:
            continue
        a, b, c, se_new = comparison.transform(*new.values[row.item_version_id])
        row.linked = (a, b, c)
        if row.old[0] is None:
            continue
        se_old = old.values[row.item_version_id][3]
        row.diff = tuple(n - o for n, o in zip(row.linked, row.old, strict=True))
        row.se_scaled = tuple(
            _over_se(d, se_old.get(name), se_new.get(name))
            for d, name in zip(row.diff, "abc", strict=True))
        d = by_id.get(row.item_version_id)
        if d is not None:
            row.z_b, row.z_a, row.flagged = _finite(d.z_b), _finite(d.z_a), d.flagged
    if comparison.flagged:
        kept = [r.label for r in comparison.flagged if not r.excluded]
        if kept:
            comparison.warnings.append(
                f"{len(kept)} anchor item(s) drift (|robust z| > {ROBUST_Z_CUT}) and are still in "
                f"the link: {', '.join(kept)}. Consider excluding them and linking again")
    return comparison


def _link_with_se(new: ItemParameters, base: ItemParameters, method: str) -> LinkingConstants:
    """The link with jackknife standard errors over groups of anchors: the anchors are dealt
    into G = min(n, JACKKNIFE_GROUPS) groups and each replicate leaves one group out,
    SE^2 = (G - 1) / G sum_g (A_(g) - mean A)^2 (the delete-a-group jackknife; with G = n it is
    the delete-one-item jackknife of ``psychometrics.linking``, Haberman, Lee & Qian, 2009).
    Groups keep a characteristic-curve link to G + 1 optimisations however many anchors there
    are (each takes about a second for 100 anchors), so the run page stays usable."""
    full = link(new, base, method)
    n = new.n_items
    groups = min(n, JACKKNIFE_GROUPS)
    reps = np.array([
        (k.A, k.B) for k in (
            link(new.subset(keep), base.subset(keep), method)
            for keep in ([i for i in range(n) if i % groups != g] for g in range(groups))
        )
    ])
    se_a, se_b = np.sqrt((groups - 1) / groups * ((reps - reps.mean(axis=0)) ** 2).sum(axis=0))
    return LinkingConstants(full.A, full.B, method, full.criterion, float(se_a), float(se_b))


def _too_few(run, old: Side, anchors: list[int], used: list[int], exclude: list[int]) -> str:
    against = "the bank's approved parameters" if old.key == BANK else f"run {old.key}"
    text = (f"linking run {run.id} to {against} needs at least {MIN_ANCHORS} anchor items (item "
            f"versions with usable parameters on both sides); ")
    if exclude and len(anchors) >= MIN_ANCHORS:
        return text + (f"{len(anchors)} are shared but {len(exclude)} are excluded, leaving "
                       f"{len(used)}. Exclude fewer anchors")
    if not anchors:
        return text + ("they share none. A first calibration has nothing to link to: approve it "
                       "without linking, and it sets the scale")
    return text + f"they share only {len(anchors)}"


def _abc(value) -> tuple[float | None, float | None, float | None]:
    return (None, None, None) if value is None else tuple(value[:3])


def _over_se(d: float | None, se_old, se_new) -> float | None:
    if d is None or se_old is None or se_new is None:
        return None
    var = float(se_old) ** 2 + float(se_new) ** 2
    if not var > 0:
        return None
    return d / math.sqrt(var)


def _finite(v: float) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


def _label(version: ItemVersion | None) -> str:
    if version is None:
        return "?"
    from assessment.psych.response_matrix import version_label

    return version_label(version)


__all__ = [
    "BANK",
    "CalibrationRefused",
    "ComparisonError",
    "DriftRow",
    "RunComparison",
    "check_method",
    "compare_run",
    "parse_exclusions",
]
