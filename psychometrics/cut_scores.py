"""Carrying a cut score: raw (or Angoff expected score) -> theta -> every form's raw cut and a
reported scale score.

* A recommended raw cut on a reference form, or an Angoff cut (an expected score, i.e. a true
  score), becomes a theta cut through the test characteristic curve: ``theta_c = T^{-1}(raw)``
  (Lord, 1980; Kolen & Brennan, 2014, sec. 6.6.2), :func:`psychometrics.theta_for_raw`.
* A theta cut gives each form's expected raw score at the cut ``T_f(theta_c)``, which is rounded
  to a whole raw cut by a stated rule (``rounding``): "ceil" (default) the smallest whole score
  at or above the true-score cut, so no candidate whose score is below the cut's expected score
  passes; "round" the nearest whole score (halves up); "floor" the largest whole score at or
  below it. A candidate passes with a raw score at or above the raw cut.
* Scale scores are a linear transform of theta anchored at the cut, ``scale = cut_scale +
  slope * (theta - theta_c)``, clipped to ``limits`` and rounded (halves away from zero) to
  ``decimals`` (e.g. 100..500 with the cut at 350).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from psychometrics.calibration import Calibration
from psychometrics.equating import max_score, raw_for_theta, theta_for_raw
from psychometrics.errors import PsychometricsError
from psychometrics.irt.information import conditional_sem
from psychometrics.irt.models import ItemParameters

ROUNDING_RULES = ("ceil", "round", "floor")
# expected scores within this distance of a whole number count as that number when rounding,
# so that a cut computed as exactly 18 through floating arithmetic does not ceil to 19
_ROUND_TOL = 1e-9


def theta_cut_from_raw(params: ItemParameters, raw_cut: float) -> float:
    """Theta cut from a raw (true-score) cut on the reference form ``params``: ``T^{-1}(raw_cut)``.

    An Angoff cut (sum of mean ratings, an expected score of the minimally competent candidate)
    is such a true score; so is a whole raw cut recommended on the reference form.
    """
    return float(theta_for_raw(params, float(raw_cut))[0])


def round_raw_cut(expected: float | np.ndarray, rounding: str = "ceil") -> np.ndarray:
    """Whole raw cut(s) from expected score(s) at the cut by ``rounding`` (see module docs)."""
    rule = str(rounding).lower()
    if rule not in ROUNDING_RULES:
        raise PsychometricsError(
            f"rounding must be one of {', '.join(ROUNDING_RULES)}; got {rounding!r}"
        )
    e = np.asarray(expected, dtype=float)
    near = np.round(e)
    snapped = np.where(np.abs(e - near) <= _ROUND_TOL, near, e)
    if rule == "ceil":
        return np.ceil(snapped)
    if rule == "floor":
        return np.floor(snapped)
    return np.floor(snapped + 0.5)


@dataclass
class ScaleTransform:
    """Reported scale score ``cut_scale + slope * (theta - theta_cut)``, clipped to ``limits`` and
    rounded to ``decimals`` (halves away from zero), except that a theta below the cut reports at
    most ``cut_scale`` minus one rounding unit, so a failing score never shows the passing
    scale score. ``inverse`` maps a scale score back. Callable: pass it as ``scale`` to
    :func:`psychometrics.conversion_table` for a raw-to-scale table anchored at the cut."""

    theta_cut: float
    cut_scale: float = 350.0
    slope: float = 50.0
    limits: tuple[float, float] | None = (100.0, 500.0)
    decimals: int | None = 0

    def __post_init__(self) -> None:
        for name in ("theta_cut", "cut_scale", "slope"):
            v = float(getattr(self, name))
            if not np.isfinite(v):
                raise PsychometricsError(f"{name} must be finite, got {v!r}")
            setattr(self, name, v)
        if self.slope <= 0:
            raise PsychometricsError(
                f"slope must be positive (scale rises with theta); got {self.slope!r}"
            )
        if self.limits is not None:
            lo, hi = (float(v) for v in self.limits)
            if not lo < hi:
                raise PsychometricsError(f"limits must satisfy lower < upper, got {self.limits!r}")
            if not lo <= self.cut_scale <= hi:
                raise PsychometricsError(
                    f"cut_scale {self.cut_scale:g} lies outside limits {self.limits!r}"
                )
            self.limits = (lo, hi)
        if self.decimals is not None and (int(self.decimals) != self.decimals or self.decimals < 0):
            raise PsychometricsError(
                f"decimals must be a non-negative integer or None, got {self.decimals!r}"
            )

    @classmethod
    def through(
        cls,
        theta_cut: float,
        *,
        cut_scale: float,
        theta_anchor: float,
        scale_anchor: float,
        limits: tuple[float, float] | None = None,
        decimals: int | None = 0,
    ) -> ScaleTransform:
        """The line through (theta_cut, cut_scale) and a second anchor (theta_anchor, scale_anchor)."""
        if theta_anchor == theta_cut:
            raise PsychometricsError("theta_anchor must differ from theta_cut")
        slope = (scale_anchor - cut_scale) / (theta_anchor - theta_cut)
        return cls(theta_cut, cut_scale, slope, limits, decimals)

    def __call__(self, theta) -> np.ndarray:
        t = np.asarray(theta, dtype=float)
        out = self.cut_scale + self.slope * (t - self.theta_cut)
        if self.limits is not None:
            out = np.clip(out, *self.limits)
        if self.decimals is not None:
            f = 10.0 ** int(self.decimals)
            out = np.sign(out) * np.floor(np.abs(out) * f + 0.5) / f
            # a theta below the cut never reports the cut's scale score (349.6 is not 350)
            out = np.where(t < self.theta_cut, np.minimum(out, self.cut_scale - 1.0 / f), out)
        return out

    def inverse(self, scale) -> np.ndarray:
        """Theta of an (unclipped) scale score."""
        return self.theta_cut + (np.asarray(scale, dtype=float) - self.cut_scale) / self.slope

    def to_dict(self) -> dict:
        return {
            "theta_cut": self.theta_cut,
            "cut_scale": self.cut_scale,
            "slope": self.slope,
            "intercept": self.cut_scale - self.slope * self.theta_cut,
            "limits": list(self.limits) if self.limits is not None else None,
            "decimals": self.decimals,
        }


@dataclass
class FormCut:
    """A theta cut carried to one form."""

    form: str
    expected_raw: float  # T_f(theta_cut), the true-score cut
    raw_cut: int
    max_score: int
    percent: float  # raw_cut as a percent of the maximum
    theta_at_raw_cut: float | None  # T_f^{-1}(raw_cut): the theta the whole cut really demands
    csem_theta: float  # 1 / sqrt(I_f(theta_cut))
    scale_at_raw_cut: float | None

    def to_dict(self) -> dict:
        return {
            k: (float(v) if isinstance(v, (float, np.floating)) else v)
            for k, v in self.__dict__.items()
        }


@dataclass
class CarriedCut:
    """A theta cut with each form's raw cut and the scale transform."""

    theta_cut: float
    rounding: str
    forms: list[FormCut]
    scale: ScaleTransform | None

    def form(self, name: str) -> FormCut:
        for f in self.forms:
            if f.form == name:
                return f
        raise PsychometricsError(f"no form named {name!r}")

    def to_dict(self) -> dict:
        return {
            "theta_cut": self.theta_cut,
            "rounding": self.rounding,
            "forms": [f.to_dict() for f in self.forms],
            "scale": self.scale.to_dict() if self.scale is not None else None,
        }


def carry_cut(
    theta_cut: float,
    forms: Mapping[str, ItemParameters] | ItemParameters,
    *,
    rounding: str = "ceil",
    scale: ScaleTransform | None = None,
) -> CarriedCut:
    """Each form's raw cut from a theta cut (forms on one theta scale; link first).

    For form f: the expected raw score at the cut ``T_f(theta_c)`` (Lord, 1980), the whole raw
    cut by ``rounding`` (module docs), that cut as a percent of the maximum, the theta the whole
    cut corresponds to (``T_f^{-1}(raw_cut)``; None when the raw cut is at the maximum or at or
    below the sum of the guessing parameters), the theta SEM at the cut ``1 / sqrt(I_f(theta_c))``
    and, with a ``scale``, the scale score of the raw cut's theta.
    """
    t = float(theta_cut)
    if not np.isfinite(t):
        raise PsychometricsError(f"theta_cut must be finite, got {theta_cut!r}")
    if isinstance(forms, (ItemParameters, Calibration)):
        forms = {"form": forms}
    if not isinstance(forms, Mapping) or not forms:
        raise PsychometricsError(
            "forms must be ItemParameters or a non-empty mapping name -> ItemParameters"
        )
    if scale is not None and not isinstance(scale, ScaleTransform):
        raise PsychometricsError(f"scale must be a ScaleTransform, got {type(scale).__name__}")
    out = []
    for name, params in forms.items():
        if isinstance(params, Calibration):
            params = params.params
        if not isinstance(params, ItemParameters):
            raise PsychometricsError(f"form {name!r}: parameters must be ItemParameters")
        expected = float(raw_for_theta(params, t)[0])
        raw = int(round_raw_cut(expected, rounding))
        top = max_score(params)
        try:
            theta_raw = float(theta_for_raw(params, raw, bounds=(-40.0, 40.0))[0])
        except PsychometricsError:
            theta_raw = None
        out.append(
            FormCut(
                form=str(name),
                expected_raw=expected,
                raw_cut=raw,
                max_score=top,
                percent=100.0 * raw / top,
                theta_at_raw_cut=theta_raw,
                csem_theta=float(conditional_sem(params, [t])[0]),
                scale_at_raw_cut=(
                    float(scale(theta_raw)) if scale is not None and theta_raw is not None else None
                ),
            )
        )
    return CarriedCut(theta_cut=t, rounding=str(rounding).lower(), forms=out, scale=scale)
