"""Differential item functioning: Mantel-Haenszel with the ETS A/B/C classes, and logistic
regression (uniform and non-uniform).

Mantel-Haenszel (Holland & Thayer, 1988), strata k of the matching score, with reference right
A_k, wrong B_k, focal right C_k, wrong D_k, N_k the stratum size::

    alpha_MH = sum(A_k D_k / N_k) / sum(B_k C_k / N_k),   MH D-DIF = -2.35 ln(alpha_MH)

chi-square with continuity correction (|sum A - sum E(A)| - 0.5)^2 / sum Var(A), and the standard
error of ln(alpha_MH) from Robins, Breslow & Greenland (1986). Negative D-DIF means the item is
harder for the focal group. ETS classes (Zwick, 2012): A when |D| < 1 or the chi-square is not
significant at .05; C when |D| >= 1.5 and |D| is significantly greater than 1 (one-sided .05);
B otherwise.

Logistic regression (Swaminathan & Rogers, 1990; Zumbo, 1999): nested models
logit P(x = 1) = b0 + b1 S (+ b2 G (+ b3 S G)); uniform DIF is the likelihood-ratio test of b2
(df 1), non-uniform of b3 (df 1), and the Nagelkerke R^2 change is the effect size
(Jodoin & Gierl, 2001: < .035 negligible, .035-.070 moderate, > .070 large).

Matching uses the total score of persons who saw every item (the item included, as ETS does).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats
from scipy.special import expit

from psychometrics.data import check_responses
from psychometrics.errors import PsychometricsError

D_SCALE = -2.35


@dataclass
class MantelHaenszelResult:
    item: str
    alpha: float | None
    d_dif: float | None
    se_d: float | None
    chi_square: float | None
    p_value: float | None
    ets_class: str
    n_reference: int
    n_focal: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class LogisticDIFResult:
    item: str
    uniform_chi2: float
    uniform_p: float
    nonuniform_chi2: float
    nonuniform_p: float
    total_chi2: float
    total_p: float
    delta_r2_uniform: float
    delta_r2_total: float
    effect: str

    def to_dict(self) -> dict:
        return asdict(self)


def _groups(responses, group, focal):
    x = check_responses(responses, name="responses")
    g = np.asarray(group)
    if g.shape != (x.shape[0],):
        raise PsychometricsError(f"group must have one entry per person ({x.shape[0]}), got {g.shape}")
    missing = _missing_labels(g)
    if missing.any():
        rows = np.flatnonzero(missing)
        raise PsychometricsError(
            f"group: {rows.size} person(s) have no group label (first at row {int(rows[0])});"
            " DIF needs every person in the reference or the focal group (drop or label them;"
            " they are never pooled into the reference group)"
        )
    levels = sorted({v.item() if isinstance(v, np.generic) else v for v in g}, key=repr)
    if len(levels) > 2:
        raise PsychometricsError(
            f"group has {len(levels)} levels {levels[:6]!r}; DIF compares exactly two groups"
            f" (focal {focal!r} against one reference): recode or subset the persons"
        )
    is_focal = g == focal
    if not is_focal.any():
        raise PsychometricsError(f"group: no person belongs to the focal group {focal!r}")
    if is_focal.all():
        raise PsychometricsError("group: every person is in the focal group; need a reference group")
    complete = ~np.isnan(x).any(axis=1)
    if complete.sum() < 2:
        raise PsychometricsError("responses: DIF needs persons who saw every item")
    return x[complete], is_focal[complete]


def _missing_labels(g: np.ndarray) -> np.ndarray:
    """NaN, None or an empty string in a group label vector of any dtype."""
    if g.dtype.kind == "f":
        return np.isnan(g)
    if g.dtype.kind in "iub":
        return np.zeros(g.shape, dtype=bool)
    return np.array(
        [v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and not v.strip())
         for v in g.tolist()],
        dtype=bool,
    )


def _ids(item_ids, k):
    return [f"item{j + 1}" for j in range(k)] if item_ids is None else [str(i) for i in item_ids]


def ets_class(d_dif: float, se_d: float, p_value: float) -> str:
    """ETS A/B/C category from MH D-DIF, its SE and the MH chi-square p-value."""
    if not np.isfinite(d_dif) or abs(d_dif) < 1.0 or p_value >= 0.05:
        return "A"
    if abs(d_dif) >= 1.5 and (abs(d_dif) - 1.0) / se_d > stats.norm.ppf(0.95):
        return "C"
    return "B"


def mantel_haenszel(
    responses, group, *, focal=1, item_ids=None, matching=None
) -> list[MantelHaenszelResult]:
    """Mantel-Haenszel DIF for 0/1 items; ``group`` labels persons, ``focal`` names the focal
    group, ``matching`` optionally replaces the total score as the stratifying variable."""
    x, foc = _groups(responses, group, focal)
    if not np.isin(x, (0, 1)).all():
        raise PsychometricsError("responses: Mantel-Haenszel needs 0/1 scores")
    score = x.sum(axis=1) if matching is None else np.asarray(matching, float)
    if score.shape != (x.shape[0],):
        raise PsychometricsError("matching must have one value per (complete) person")
    ids = _ids(item_ids, x.shape[1])
    strata = np.unique(score)
    out = []
    for j in range(x.shape[1]):
        num = den = sum_a = sum_ea = sum_var = 0.0
        rbg_p = rbg_pq = rbg_q = 0.0
        sum_r = sum_s = 0.0
        for s in strata:
            sel = score == s
            ref, fo = sel & ~foc, sel & foc
            a = x[ref, j].sum()
            b = ref.sum() - a
            c = x[fo, j].sum()
            d = fo.sum() - c
            n = a + b + c + d
            if n < 2 or (a + b) == 0 or (c + d) == 0:
                continue
            r, s_ = a * d / n, b * c / n
            num += r
            den += s_
            m1, m0 = a + c, b + d
            sum_a += a
            sum_ea += (a + b) * m1 / n
            sum_var += (a + b) * (c + d) * m1 * m0 / (n * n * (n - 1))
            p, q = (a + d) / n, (b + c) / n
            rbg_p += p * r
            rbg_pq += p * s_ + q * r
            rbg_q += q * s_
            sum_r += r
            sum_s += s_
        if num == 0 or den == 0 or sum_var == 0:
            out.append(
                MantelHaenszelResult(
                    ids[j], None, None, None, None, None, "A", int((~foc).sum()), int(foc.sum())
                )
            )
            continue
        alpha = num / den
        var_log = rbg_p / (2 * sum_r**2) + rbg_pq / (2 * sum_r * sum_s) + rbg_q / (2 * sum_s**2)
        d_dif = D_SCALE * np.log(alpha)
        se_d = 2.35 * np.sqrt(var_log)
        chi = max(0.0, abs(sum_a - sum_ea) - 0.5) ** 2 / sum_var
        p_value = float(stats.chi2.sf(chi, 1))
        out.append(
            MantelHaenszelResult(
                ids[j],
                float(alpha),
                float(d_dif),
                float(se_d),
                float(chi),
                p_value,
                ets_class(d_dif, se_d, p_value),
                int((~foc).sum()),
                int(foc.sum()),
            )
        )
    return out


def _logistic_fit(design: np.ndarray, y: np.ndarray) -> float:
    """Maximised log-likelihood of a logistic regression by Newton-Raphson (IRLS)."""
    beta = np.zeros(design.shape[1])
    for _ in range(50):
        p = expit(design @ beta)
        w = p * (1 - p)
        grad = design.T @ (y - p)
        hess = (design * w[:, None]).T @ design + 1e-10 * np.eye(design.shape[1])
        step = np.linalg.solve(hess, grad)
        beta += step
        if np.abs(step).max() < 1e-10:
            break
    p = np.clip(expit(design @ beta), 1e-15, 1 - 1e-15)
    return float(y @ np.log(p) + (1 - y) @ np.log1p(-p))


def _nagelkerke(ll: float, ll0: float, n: int) -> float:
    cox_snell = 1 - np.exp(2 * (ll0 - ll) / n)
    return float(cox_snell / (1 - np.exp(2 * ll0 / n)))


def logistic_dif(
    responses, group, *, focal=1, item_ids=None, matching=None
) -> list[LogisticDIFResult]:
    """Logistic-regression DIF for 0/1 items: uniform, non-uniform and total tests."""
    x, foc = _groups(responses, group, focal)
    if not np.isin(x, (0, 1)).all():
        raise PsychometricsError("responses: logistic DIF needs 0/1 scores")
    score = x.sum(axis=1) if matching is None else np.asarray(matching, float)
    z = (score - score.mean()) / (score.std() or 1.0)
    g = foc.astype(float)
    n = x.shape[0]
    ones = np.ones(n)
    designs = [
        np.column_stack([ones]),
        np.column_stack([ones, z]),
        np.column_stack([ones, z, g]),
        np.column_stack([ones, z, g, z * g]),
    ]
    ids = _ids(item_ids, x.shape[1])
    out = []
    for j in range(x.shape[1]):
        y = x[:, j]
        ll0, ll1, ll2, ll3 = (_logistic_fit(d, y) for d in designs)
        r1, r2, r3 = (_nagelkerke(v, ll0, n) for v in (ll1, ll2, ll3))
        u, nu, tot = 2 * (ll2 - ll1), 2 * (ll3 - ll2), 2 * (ll3 - ll1)
        delta = r3 - r1
        effect = "negligible" if delta < 0.035 else "moderate" if delta < 0.070 else "large"
        out.append(
            LogisticDIFResult(
                ids[j],
                float(max(u, 0)),
                float(stats.chi2.sf(max(u, 0), 1)),
                float(max(nu, 0)),
                float(stats.chi2.sf(max(nu, 0), 1)),
                float(max(tot, 0)),
                float(stats.chi2.sf(max(tot, 0), 2)),
                float(r2 - r1),
                float(delta),
                effect,
            )
        )
    return out
