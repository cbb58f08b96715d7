"""Person fit: the standardised log-likelihood lz (Drasgow, Levine & Williams, 1985), Zh for
polytomous items (the same statistic over all categories, Drasgow, Levine & Williams, 1985),
and person infit and outfit mean squares with their standardised values (Wright & Masters,
1982), plus a flag list.

For person i and the items j they answered, with P_jk the model probabilities at the person's
ability estimate, x_j the observed score, E_j = sum_k k P_jk, W_j = sum_k (k - E_j)^2 P_jk and
C_j = sum_k (k - E_j)^4 P_jk::

    l0 = sum_j log P_j,x_j
    E(l0) = sum_j sum_k P_jk log P_jk
    Var(l0) = sum_j [sum_k P_jk (log P_jk)^2 - (sum_k P_jk log P_jk)^2]
    lz = (l0 - E(l0)) / sqrt(Var(l0))                       (large negative: aberrant)

    outfit = (1/n) sum_j (x_j - E_j)^2 / W_j                (unweighted mean square)
    infit = sum_j (x_j - E_j)^2 / sum_j W_j                 (information-weighted)
    q_out^2 = sum_j C_j / W_j^2 / n^2 - 1 / n,   q_in^2 = sum_j (C_j - W_j^2) / (sum_j W_j)^2
    ZSTD = (MS^(1/3) - 1) (3 / q) + q / 3                   (Wilson-Hilferty cube root)

As in mirt's ``personfit`` (Chalmers, 2012), W_j is floored at sqrt(1e-5) and q at sqrt(2) so
that persons far outside the items' range do not divide by zero. With missing responses n is
the number of items the person answered throughout (Wright & Masters, 1982); mirt divides the
outfit's q^2 term by the square of the full test length instead, so its z_outfit differs there.
Checked against Winsteps on the Knox Cube Test (Wright & Stone, 1979) and, through item Zh,
against mirt on LSAT7 (tests/psychometrics/test_person_fit.py). The same cell terms summed
over persons instead of items give item infit/outfit and item Zh (:mod:`psychometrics.rasch`).

Abilities default to EAP estimates (mirt's default); pass ``theta`` to use others (WLE is the
usual choice for Rasch infit/outfit). Persons with no responses get NaN statistics and no flag.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from psychometrics.calibration import _num
from psychometrics.errors import PsychometricsError
from psychometrics.irt.models import ItemParameters
from psychometrics.scoring import _check_inputs, score

W_FLOOR = np.sqrt(1e-5)
Q_CAP = np.sqrt(2.0)
PERSON_BLOCK = 20_000


@dataclass
class ResidualSums:
    """Sums of the per-response terms over persons (axis 1) or items (axis 0)."""

    n: np.ndarray
    z2: np.ndarray  # sum (x - E)^2 / W
    r2: np.ndarray  # sum (x - E)^2
    w: np.ndarray  # sum W
    c_over_w2: np.ndarray  # sum C / W^2
    c_minus_w2: np.ndarray  # sum C - W^2
    loglik: np.ndarray  # sum log P_x
    loglik_mean: np.ndarray
    loglik_var: np.ndarray


def residual_sums(
    x: np.ndarray, params: ItemParameters, theta: np.ndarray, axis: int
) -> ResidualSums:
    """Accumulate the person/item fit terms; ``axis=1`` sums over items (per person)."""
    n_persons, n_items = x.shape
    size = n_persons if axis == 1 else n_items
    acc = {k: np.zeros(size) for k in ResidualSums.__dataclass_fields__}
    cats = np.arange(params.max_categories, dtype=float)
    for start in range(0, n_persons, PERSON_BLOCK):
        xb = x[start : start + PERSON_BLOCK]
        tb = theta[start : start + PERSON_BLOCK]
        obs = ~np.isnan(xb) & np.isfinite(tb)[:, None]
        p = params.prob(np.where(np.isfinite(tb), tb, 0.0))  # (J, K, N)
        p = np.transpose(p, (2, 0, 1))  # (N, J, K)
        with np.errstate(divide="ignore"):
            logp = np.where(p > 0, np.log(np.maximum(p, 1e-300)), 0.0)
        e = p @ cats
        dev = cats[None, None, :] - e[:, :, None]
        w = np.maximum((dev**2 * p).sum(axis=2), W_FLOOR)
        c = (dev**4 * p).sum(axis=2)
        mu = (p * logp).sum(axis=2)
        var = (p * logp**2).sum(axis=2) - mu**2
        codes = np.where(obs, xb, 0).astype(int)
        lx = np.take_along_axis(logp, codes[:, :, None], axis=2)[:, :, 0]
        r2 = (np.where(obs, xb, 0.0) - e) ** 2
        terms = {
            "n": np.ones_like(w),
            "z2": r2 / w,
            "r2": r2,
            "w": w,
            "c_over_w2": c / w**2,
            "c_minus_w2": c - w**2,
            "loglik": lx,
            "loglik_mean": mu,
            "loglik_var": var,
        }
        for key, val in terms.items():
            summed = np.where(obs, val, 0.0).sum(axis=axis)
            if axis == 1:
                acc[key][start : start + xb.shape[0]] += summed
            else:
                acc[key] += summed
    return ResidualSums(**acc)


def fit_statistics(s: ResidualSums) -> dict[str, np.ndarray]:
    """lz, outfit, infit and their ZSTD from summed terms; NaN where nothing was answered."""
    with np.errstate(divide="ignore", invalid="ignore"):
        n = np.where(s.n > 0, s.n, np.nan)
        outfit = s.z2 / n
        infit = s.r2 / np.where(s.w > 0, s.w, np.nan)
        q_out = np.minimum(np.sqrt(np.abs(s.c_over_w2 / n**2 - 1 / n)), Q_CAP)
        q_in = np.minimum(np.sqrt(np.abs(s.c_minus_w2) / s.w**2), Q_CAP)
        z_out = (np.cbrt(outfit) - 1) * (3 / q_out) + q_out / 3
        z_in = (np.cbrt(infit) - 1) * (3 / q_in) + q_in / 3
        lz = (s.loglik - s.loglik_mean) / np.sqrt(np.where(s.loglik_var > 0, s.loglik_var, np.nan))
    return {"lz": lz, "outfit": outfit, "z_outfit": z_out, "infit": infit, "z_infit": z_in}


@dataclass(frozen=True)
class PersonFitRules:
    """When a person is flagged.

    ``lz_below``: lz under the one-sided 5 % normal point (Drasgow, Levine & McLaughlin, 1987
    use lz as approximately standard normal). ``mnsq_above`` and ``zstd_above``: a mean square
    both substantively large (Linacre, 2002: above 1.5 noise degrades measurement) and
    significant (|ZSTD| > 2, Wright & Linacre, 1994). ``min_items``: fewer answered items give
    no flag (the statistics are unstable on short records).
    """

    lz_below: float = -1.645
    mnsq_above: float = 1.5
    zstd_above: float = 2.0
    min_items: int = 5

    def __post_init__(self) -> None:
        if not self.mnsq_above > 1:
            raise PsychometricsError("mnsq_above must exceed 1 (a mean square of 1 is perfect fit)")
        if self.min_items < 1:
            raise PsychometricsError("min_items must be at least 1")


@dataclass
class PersonFit:
    """Person fit statistics in input row order; ``flags[i]`` names the rules person i broke."""

    theta: np.ndarray
    n_items: np.ndarray
    lz: np.ndarray
    outfit: np.ndarray
    z_outfit: np.ndarray
    infit: np.ndarray
    z_infit: np.ndarray
    flags: list[list[str]] = field(default_factory=list)
    rules: PersonFitRules = field(default_factory=PersonFitRules)

    @property
    def flagged(self) -> list[int]:
        """Row indices of flagged persons."""
        return [i for i, f in enumerate(self.flags) if f]

    def flag_list(self, person_ids=None) -> list[dict]:
        """One entry per flagged person, worst lz first: id, statistics and the rules broken."""
        ids = list(range(len(self.flags))) if person_ids is None else list(person_ids)
        if len(ids) != len(self.flags):
            raise PsychometricsError(
                f"person_ids must name {len(self.flags)} persons, got {len(ids)}"
            )
        rows = [self.row(i) | {"person": ids[i]} for i in self.flagged]
        return sorted(rows, key=lambda r: r["lz"] if r["lz"] is not None else np.inf)

    def row(self, i: int) -> dict:
        return {
            "theta": _num(self.theta[i]),
            "n_items": int(self.n_items[i]),
            "lz": _num(self.lz[i]),
            "outfit": _num(self.outfit[i]),
            "z_outfit": _num(self.z_outfit[i]),
            "infit": _num(self.infit[i]),
            "z_infit": _num(self.z_infit[i]),
            "flags": list(self.flags[i]),
        }

    def to_dict(self) -> dict:
        return {
            "rules": {
                "lz_below": self.rules.lz_below,
                "mnsq_above": self.rules.mnsq_above,
                "zstd_above": self.rules.zstd_above,
                "min_items": self.rules.min_items,
            },
            "persons": [self.row(i) for i in range(len(self.flags))],
            "flagged": self.flagged,
        }


def _theta_for(x, params, theta, method) -> np.ndarray:
    if theta is None:
        return np.asarray(score(x, params, method).theta, dtype=float)
    t = np.atleast_1d(np.asarray(theta, dtype=float))
    if t.shape != (x.shape[0],):
        raise PsychometricsError(
            f"theta must have one value per person ({x.shape[0]}), got {t.shape}"
        )
    return t


def person_fit(
    responses,
    params: ItemParameters,
    *,
    theta=None,
    method: str = "eap",
    rules: PersonFitRules | None = None,
) -> PersonFit:
    """lz / Zh, infit and outfit (with ZSTD) for every person, and the persons they flag."""
    x = _check_inputs(responses, params)
    rules = rules or PersonFitRules()
    t = _theta_for(x, params, theta, method)
    answered = (~np.isnan(x)).sum(axis=1)
    t = np.where(answered > 0, t, np.nan)
    stats = fit_statistics(residual_sums(x, params, t, axis=1))
    flags: list[list[str]] = []
    for i in range(x.shape[0]):
        f = []
        if answered[i] >= rules.min_items:
            if stats["lz"][i] < rules.lz_below:
                f.append("lz")
            for name in ("outfit", "infit"):
                if stats[name][i] > rules.mnsq_above and stats["z_" + name][i] > rules.zstd_above:
                    f.append(name)
        flags.append(f)
    return PersonFit(
        theta=t,
        n_items=answered,
        lz=stats["lz"],
        outfit=stats["outfit"],
        z_outfit=stats["z_outfit"],
        infit=stats["infit"],
        z_infit=stats["z_infit"],
        flags=flags,
        rules=rules,
    )
