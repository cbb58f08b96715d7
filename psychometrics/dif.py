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

Matching uses the total score of persons who saw every item (the item included, as ETS does),
or the score on ``anchor`` items plus the studied item, or a ``matching`` variable given.

Mantel-Haenszel chi-square: with the continuity correction by default (Holland & Thayer, 1988;
R's ``mantelhaen.test``), without it on request (``correction=False``, SAS PROC FREQ's CMH).

Generalised Cochran-Mantel-Haenszel statistics for R x C tables over strata (Landis, Heyman &
Koch, 1978; SAS PROC FREQ): with n_h the stratum's cell counts, m_h their expectations under
independence and V_h = n_h^2 / (n_h - 1) (D_r - p_r p_r') x (D_c - p_c p_c') their covariance,
Q = G' (sum_h B V_h B')^-1 G with G = sum_h B (n_h - m_h). B selects the general association
statistic (df (R-1)(C-1)), the row mean scores statistic (column scores; df R-1) or the
correlation statistic (row and column scores; df 1).

Polytomous DIF (Zwick, Donoghue & Grima, 1993): Mantel's (1963) test of the item score against
group within strata of the matching score (the correlation statistic above, df 1), the
generalised Mantel-Haenszel test of the whole category distribution (general association,
df K-1), and the standardised mean difference SMD = sum_k p_Fk (m_Fk - m_Rk) (Dorans & Schmitt,
1991) with p_Fk the focal group's proportion in stratum k. ETS classes for polytomous items
(Zwick, Thayer & Mazzeo, 1997; Allen, Carlson & Zelenak, 1999) use SMD / SD, SD the item's
standard deviation in both groups together: AA when Mantel's p >= .05 or |SMD/SD| <= .17, CC
when p < .05 and |SMD/SD| > .25, BB otherwise.

Ordinal logistic regression DIF (Zumbo, 1999; Choi, Gibbons & Crane, 2011): the cumulative-logit
(proportional odds) model logit P(x >= k) = alpha_k + b1 S (+ b2 G (+ b3 S G)) with the same
likelihood-ratio tests and Nagelkerke R^2 changes as the binary model, which it equals for 0/1
items.

Purification (Holland & Thayer, 1988; Candell & Drasgow, 1988): run the analysis, drop the
flagged items from the matching score (the studied item always stays in its own), and repeat
until the flagged set no longer changes. :func:`purify_dif` does this for every method and
returns the anchor it settled on.

Anchor choice by rank (Woods, 2009): analyse every item against the rest, rank the items by
their DIF statistic (the MH or Mantel chi-square, or the logistic total chi-square) and take
the least DIF-prone ones, by default the 20 % Woods recommends (at least one item), as the
anchor: :func:`select_anchor`.
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
        raise PsychometricsError(
            f"group must have one entry per person ({x.shape[0]}), got {g.shape}"
        )
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
        raise PsychometricsError(
            "group: every person is in the focal group; need a reference group"
        )
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


@dataclass
class MantelHaenszelTest:
    """Mantel-Haenszel test and common odds ratio of stratified 2 x 2 tables."""

    statistic: float
    p_value: float
    odds_ratio: float
    se_log_odds_ratio: float
    conf_int: tuple[float, float]
    correction: bool
    n_strata: int

    def to_dict(self) -> dict:
        return asdict(self)


def mantel_haenszel_test(tables, *, correction: bool = True) -> MantelHaenszelTest:
    """MH chi-square (df 1), MH common odds ratio and its RBG standard error and 95 % interval.

    ``tables`` is (K, 2, 2): per stratum [[A, B], [C, D]], rows the two groups (reference,
    focal), columns the two outcomes (right, wrong). Strata with fewer than 2 persons or an empty
    row carry no information and are skipped (Mantel & Haenszel, 1959; Robins, Breslow &
    Greenland, 1986).
    """
    t = np.asarray(tables, dtype=float)
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3 or t.shape[1:] != (2, 2):
        raise PsychometricsError(f"tables must have shape (K, 2, 2); got {t.shape}")
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise PsychometricsError("tables must hold finite, non-negative counts")
    a, b, c, d = t[:, 0, 0], t[:, 0, 1], t[:, 1, 0], t[:, 1, 1]
    n = a + b + c + d
    keep = (n >= 2) & (a + b > 0) & (c + d > 0)
    a, b, c, d, n = a[keep], b[keep], c[keep], d[keep], n[keep]
    var = (a + b) * (c + d) * (a + c) * (b + d) / (n * n * (n - 1))
    r, s_ = a * d / n, b * c / n
    if var.sum() == 0 or r.sum() == 0 or s_.sum() == 0:
        raise PsychometricsError("tables: no stratum has both groups and both outcomes")
    dev = abs(a.sum() - ((a + b) * (a + c) / n).sum())
    if correction:
        dev = max(0.0, dev - 0.5)
    chi = dev**2 / var.sum()
    p, q = (a + d) / n, (b + c) / n
    big_r, big_s = r.sum(), s_.sum()
    var_log = (
        (p * r).sum() / (2 * big_r**2)
        + (p * s_ + q * r).sum() / (2 * big_r * big_s)
        + (q * s_).sum() / (2 * big_s**2)
    )
    alpha = big_r / big_s
    se = float(np.sqrt(var_log))
    z = stats.norm.ppf(0.975)
    return MantelHaenszelTest(
        float(chi),
        float(stats.chi2.sf(chi, 1)),
        float(alpha),
        se,
        (float(alpha * np.exp(-z * se)), float(alpha * np.exp(z * se))),
        bool(correction),
        int(keep.sum()),
    )


def _matching(x: np.ndarray, matching, anchor, j: int) -> np.ndarray:
    """Matching score for item j: given, anchor items + item j, or the total score."""
    if matching is not None:
        return matching
    if anchor is None:
        return x.sum(axis=1)
    cols = set(anchor)
    cols.add(j)
    return x[:, sorted(cols)].sum(axis=1)


def _anchor_indices(anchor, ids: list[str], matching) -> list[int] | None:
    if anchor is None:
        return None
    if matching is not None:
        raise PsychometricsError("give either matching or anchor, not both")
    out = []
    for a in anchor:
        if isinstance(a, str):
            if a not in ids:
                raise PsychometricsError(f"anchor: no item named {a!r}")
            out.append(ids.index(a))
        else:
            k = int(a)
            if not 0 <= k < len(ids):
                raise PsychometricsError(f"anchor: item index {a!r} is outside 0..{len(ids) - 1}")
            out.append(k)
    if not out:
        raise PsychometricsError("anchor must name at least one item")
    return sorted(set(out))


def _given_matching(matching, n: int):
    if matching is None:
        return None
    m = np.asarray(matching, float)
    if m.shape != (n,):
        raise PsychometricsError("matching must have one value per (complete) person")
    return m


def _two_by_two(y: np.ndarray, foc: np.ndarray, score: np.ndarray) -> np.ndarray:
    strata, idx = np.unique(score, return_inverse=True)
    t = np.zeros((strata.size, 2, 2))
    np.add.at(t, (idx, foc.astype(int), (1 - y).astype(int)), 1.0)
    return t


def mantel_haenszel(
    responses,
    group,
    *,
    focal=1,
    item_ids=None,
    matching=None,
    anchor=None,
    correction: bool = True,
) -> list[MantelHaenszelResult]:
    """Mantel-Haenszel DIF for 0/1 items; ``group`` labels persons, ``focal`` names the focal
    group, ``matching`` optionally replaces the total score as the stratifying variable and
    ``anchor`` (item indices or ids) restricts it to those items plus the studied one.
    ``correction=False`` drops the continuity correction from the chi-square."""
    x, foc = _groups(responses, group, focal)
    if not np.isin(x, (0, 1)).all():
        raise PsychometricsError("responses: Mantel-Haenszel needs 0/1 scores")
    ids = _ids(item_ids, x.shape[1])
    given = _given_matching(matching, x.shape[0])
    anchor = _anchor_indices(anchor, ids, matching)
    out = []
    for j in range(x.shape[1]):
        score = _matching(x, given, anchor, j)
        try:
            mh = mantel_haenszel_test(_two_by_two(x[:, j], foc, score), correction=correction)
        except PsychometricsError:
            mh = None
        if mh is None or not np.isfinite(mh.odds_ratio) or mh.odds_ratio <= 0:
            out.append(
                MantelHaenszelResult(
                    ids[j], None, None, None, None, None, "A", int((~foc).sum()), int(foc.sum())
                )
            )
            continue
        d_dif = D_SCALE * np.log(mh.odds_ratio)
        se_d = 2.35 * mh.se_log_odds_ratio
        out.append(
            MantelHaenszelResult(
                ids[j],
                mh.odds_ratio,
                float(d_dif),
                float(se_d),
                mh.statistic,
                mh.p_value,
                ets_class(d_dif, se_d, mh.p_value),
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


def _effect_label(delta_r2: float) -> str:
    return "negligible" if delta_r2 < 0.035 else "moderate" if delta_r2 < 0.070 else "large"


def _lr_result(item: str, lls, ll0: float, n: int) -> LogisticDIFResult:
    ll1, ll2, ll3 = lls
    r1, r2, r3 = (_nagelkerke(v, ll0, n) for v in (ll1, ll2, ll3))
    u, nu, tot = (max(v, 0.0) for v in (2 * (ll2 - ll1), 2 * (ll3 - ll2), 2 * (ll3 - ll1)))
    delta = r3 - r1
    return LogisticDIFResult(
        item,
        float(u),
        float(stats.chi2.sf(u, 1)),
        float(nu),
        float(stats.chi2.sf(nu, 1)),
        float(tot),
        float(stats.chi2.sf(tot, 2)),
        float(r2 - r1),
        float(delta),
        _effect_label(delta),
    )


def _standardised(score: np.ndarray) -> np.ndarray:
    return (score - score.mean()) / (score.std() or 1.0)


def logistic_dif(
    responses, group, *, focal=1, item_ids=None, matching=None, anchor=None
) -> list[LogisticDIFResult]:
    """Logistic-regression DIF for 0/1 items: uniform, non-uniform and total tests."""
    x, foc = _groups(responses, group, focal)
    if not np.isin(x, (0, 1)).all():
        raise PsychometricsError("responses: logistic DIF needs 0/1 scores")
    ids = _ids(item_ids, x.shape[1])
    given = _given_matching(matching, x.shape[0])
    anchor = _anchor_indices(anchor, ids, matching)
    g = foc.astype(float)
    n = x.shape[0]
    ones = np.ones(n)
    out = []
    for j in range(x.shape[1]):
        z = _standardised(_matching(x, given, anchor, j))
        y = x[:, j]
        designs = [
            np.column_stack([ones, z]),
            np.column_stack([ones, z, g]),
            np.column_stack([ones, z, g, z * g]),
        ]
        ll0 = _logistic_fit(np.column_stack([ones]), y)
        out.append(_lr_result(ids[j], [_logistic_fit(d, y) for d in designs], ll0, n))
    return out


@dataclass
class CMHStatistic:
    statistic: float
    df: int
    p_value: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class CochranMantelHaenszel:
    """The three generalised CMH statistics (Landis, Heyman & Koch, 1978)."""

    correlation: CMHStatistic | None
    row_mean_scores: CMHStatistic | None
    general_association: CMHStatistic | None

    def to_dict(self) -> dict:
        return {
            k: (v.to_dict() if v is not None else None)
            for k, v in (
                ("correlation", self.correlation),
                ("row_mean_scores", self.row_mean_scores),
                ("general_association", self.general_association),
            )
        }


def _quadratic_form(g: np.ndarray, v: np.ndarray, df: int) -> CMHStatistic | None:
    try:
        q = float(g @ np.linalg.solve(v, g))
    except np.linalg.LinAlgError:
        q = float(g @ np.linalg.pinv(v) @ g)
    if not np.isfinite(q):
        return None
    q = max(q, 0.0)
    return CMHStatistic(q, df, float(stats.chi2.sf(q, df)))


def cochran_mantel_haenszel(tables, *, row_scores=None, col_scores=None) -> CochranMantelHaenszel:
    """Generalised CMH statistics of (K, R, C) stratified contingency tables.

    ``row_scores`` (R,) and ``col_scores`` (C,) default to 1, 2, ... (SAS's table scores). A
    statistic whose covariance matrix is singular (e.g. a category seen in no stratum) is
    computed with the pseudo-inverse; one with no information is None.
    """
    t = np.asarray(tables, dtype=float)
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3 or t.shape[1] < 2 or t.shape[2] < 2:
        raise PsychometricsError(f"tables must have shape (K, R, C) with R, C >= 2; got {t.shape}")
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise PsychometricsError("tables must hold finite, non-negative counts")
    _, r, c = t.shape
    rs = np.arange(1.0, r + 1) if row_scores is None else np.asarray(row_scores, float)
    cs = np.arange(1.0, c + 1) if col_scores is None else np.asarray(col_scores, float)
    if rs.shape != (r,) or cs.shape != (c,):
        raise PsychometricsError(f"row_scores needs {r} values and col_scores {c}")
    sel_r = np.eye(r)[:-1]
    sel_c = np.eye(c)[:-1]
    b_general = np.kron(sel_r, sel_c)
    b_rows = np.kron(sel_r, cs[None, :])
    b_corr = np.kron(rs[None, :], cs[None, :])
    gs = [np.zeros(m.shape[0]) for m in (b_corr, b_rows, b_general)]
    vs = [np.zeros((m.shape[0], m.shape[0])) for m in (b_corr, b_rows, b_general)]
    for table in t:
        n = table.sum()
        if n < 2:
            continue
        pr, pc = table.sum(axis=1) / n, table.sum(axis=0) / n
        dev = (table - n * np.outer(pr, pc)).reshape(-1)
        cov = (
            n
            * n
            / (n - 1)
            * np.kron(np.diag(pr) - np.outer(pr, pr), np.diag(pc) - np.outer(pc, pc))
        )
        for k, b in enumerate((b_corr, b_rows, b_general)):
            gs[k] += b @ dev
            vs[k] += b @ cov @ b.T
    dfs = (1, r - 1, (r - 1) * (c - 1))
    res = [
        _quadratic_form(g, v, df) if np.any(np.diag(v) > 0) else None
        for g, v, df in zip(gs, vs, dfs)
    ]
    return CochranMantelHaenszel(*res)


@dataclass
class PolytomousDIFResult:
    item: str
    mantel_chi2: float | None
    mantel_p: float | None
    gmh_chi2: float | None
    gmh_df: int | None
    gmh_p: float | None
    smd: float | None
    effect_size: float | None
    ets_class: str
    n_reference: int
    n_focal: int

    def to_dict(self) -> dict:
        return asdict(self)


def ets_polytomous_class(effect_size: float | None, p_value: float | None) -> str:
    """AA / BB / CC from SMD/SD and Mantel's p (Allen, Carlson & Zelenak, 1999)."""
    if effect_size is None or p_value is None or p_value >= 0.05 or abs(effect_size) <= 0.17:
        return "AA"
    return "CC" if abs(effect_size) > 0.25 else "BB"


def polytomous_dif(
    responses, group, *, focal=1, item_ids=None, matching=None, anchor=None
) -> list[PolytomousDIFResult]:
    """Mantel, generalised MH and SMD DIF statistics for items scored 0..K-1 (0/1 items too).

    Positive SMD means the focal group scores higher than matched reference-group members.
    """
    x, foc = _groups(responses, group, focal)
    ids = _ids(item_ids, x.shape[1])
    given = _given_matching(matching, x.shape[0])
    anchor = _anchor_indices(anchor, ids, matching)
    out = []
    for j in range(x.shape[1]):
        y = x[:, j].astype(int)
        cats = np.unique(y)
        score = _matching(x, given, anchor, j)
        strata, idx = np.unique(score, return_inverse=True)
        col = np.searchsorted(cats, y)
        t = np.zeros((strata.size, 2, cats.size))
        np.add.at(t, (idx, foc.astype(int), col), 1.0)
        n_ref, n_foc = int((~foc).sum()), int(foc.sum())
        if cats.size < 2:
            out.append(
                PolytomousDIFResult(
                    ids[j], None, None, None, None, None, None, None, "AA", n_ref, n_foc
                )
            )
            continue
        cmh = cochran_mantel_haenszel(t, row_scores=[0.0, 1.0], col_scores=cats.astype(float))
        both = (t[:, 0].sum(axis=1) > 0) & (t[:, 1].sum(axis=1) > 0)
        m_ref = (t[both, 0] @ cats) / t[both, 0].sum(axis=1)
        m_foc = (t[both, 1] @ cats) / t[both, 1].sum(axis=1)
        w = t[both, 1].sum(axis=1) / max(t[both, 1].sum(), 1.0)
        smd = float(w @ (m_foc - m_ref)) if both.any() else None
        sd = float(y.std())
        es = smd / sd if smd is not None and sd > 0 else None
        corr, gen = cmh.correlation, cmh.general_association
        out.append(
            PolytomousDIFResult(
                ids[j],
                corr.statistic if corr else None,
                corr.p_value if corr else None,
                gen.statistic if gen else None,
                gen.df if gen else None,
                gen.p_value if gen else None,
                smd,
                es,
                ets_polytomous_class(es, corr.p_value if corr else None),
                n_ref,
                n_foc,
            )
        )
    return out


def _cumulative_logit_fit(design: np.ndarray, y: np.ndarray, n_cat: int) -> float:
    """Maximised log-likelihood of the proportional-odds model logit P(y >= k) = alpha_k + X b.

    Newton-Raphson on (alpha_1..alpha_{K-1}, b) with the exact Hessian (McCullagh, 1980),
    starting from the marginal cumulative logits, with step halving.
    """
    n, p = design.shape
    k1 = n_cat - 1
    cum = np.array([(y >= k).mean() for k in range(1, n_cat)])
    cum = np.clip(cum, 1e-6, 1 - 1e-6)
    theta = np.concatenate([np.log(cum / (1 - cum)), np.zeros(p)])
    onehot_lo = np.zeros((n, k1))  # indicator that alpha_k is the lower cut of y: k = y
    onehot_hi = np.zeros((n, k1))  # alpha_{y+1}
    rows = np.arange(n)
    yi = y.astype(int)
    lo_ok = yi >= 1
    hi_ok = yi <= k1 - 1
    onehot_lo[rows[lo_ok], yi[lo_ok] - 1] = 1.0
    onehot_hi[rows[hi_ok], yi[hi_ok]] = 1.0

    def loglik(th):
        alpha, beta = th[:k1], th[k1:]
        eta = design @ beta
        # P(y >= y_i) and P(y >= y_i + 1); 1 and 0 at the ends
        upper = np.where(lo_ok, expit(onehot_lo @ alpha + eta), 1.0)
        lower = np.where(hi_ok, expit(onehot_hi @ alpha + eta), 0.0)
        return upper, lower

    def value(th):
        upper, lower = loglik(th)
        return float(np.log(np.maximum(upper - lower, 1e-300)).sum())

    current = value(theta)
    for _ in range(100):
        alpha, beta = theta[:k1], theta[k1:]
        eta = design @ beta
        zu = np.where(lo_ok, onehot_lo @ alpha + eta, np.inf)
        zl = np.where(hi_ok, onehot_hi @ alpha + eta, -np.inf)
        fu, fl = expit(zu), expit(zl)
        du, dl = fu * (1 - fu), fl * (1 - fl)  # densities
        pr = np.maximum(fu - fl, 1e-300)
        # gradient of log(F(zu) - F(zl)) wrt zu and zl
        gu, gl = du / pr, -dl / pr
        ju = np.hstack([onehot_lo, design])  # d zu / d theta (rows with lo_ok)
        jl = np.hstack([onehot_hi, design])
        ju[~lo_ok] = 0.0
        jl[~hi_ok] = 0.0
        grad = ju.T @ gu + jl.T @ gl
        # second derivatives
        ddu = du * (1 - 2 * fu)
        ddl = dl * (1 - 2 * fl)
        huu = ddu / pr - gu**2
        hll = -ddl / pr - gl**2
        hul = -gu * gl
        hess = (ju * huu[:, None]).T @ ju + (jl * hll[:, None]).T @ jl
        hess += (ju * hul[:, None]).T @ jl + (jl * hul[:, None]).T @ ju
        try:
            step = np.linalg.solve(hess - 1e-10 * np.eye(hess.shape[0]), -grad)
        except np.linalg.LinAlgError:
            break
        scale, accepted = 1.0, None
        for _ in range(30):
            trial = theta + scale * step
            if k1 == 1 or np.all(np.diff(trial[:k1]) < 0):
                new = value(trial)
                if new >= current - 1e-12:
                    accepted = (trial, new)
                    break
            scale /= 2
        if accepted is None:
            break
        theta, new = accepted
        change = new - current
        current = new
        if abs(change) < 1e-10 and np.abs(scale * step).max() < 1e-8:
            break
    return current


def ordinal_logistic_dif(
    responses, group, *, focal=1, item_ids=None, matching=None, anchor=None
) -> list[LogisticDIFResult]:
    """Ordinal (cumulative-logit) logistic-regression DIF: uniform, non-uniform, total tests.

    Categories an item does not use are dropped (its scores are re-ranked 0..K'-1).
    """
    x, foc = _groups(responses, group, focal)
    ids = _ids(item_ids, x.shape[1])
    given = _given_matching(matching, x.shape[0])
    anchor = _anchor_indices(anchor, ids, matching)
    g = foc.astype(float)
    n = x.shape[0]
    out = []
    for j in range(x.shape[1]):
        cats, y = np.unique(x[:, j], return_inverse=True)
        if cats.size < 2:
            out.append(
                LogisticDIFResult(ids[j], 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, "negligible")
            )
            continue
        z = _standardised(_matching(x, given, anchor, j))
        counts = np.bincount(y, minlength=cats.size)
        ll0 = float(counts @ np.log(counts / n))
        designs = [z[:, None], np.column_stack([z, g]), np.column_stack([z, g, z * g])]
        out.append(
            _lr_result(ids[j], [_cumulative_logit_fit(d, y, cats.size) for d in designs], ll0, n)
        )
    return out


PURIFY_METHODS = ("mantel-haenszel", "logistic", "polytomous", "ordinal-logistic")


@dataclass
class DIFPurification:
    """Result of :func:`purify_dif`: the final DIF results and the anchor they were matched on."""

    method: str
    results: list
    anchor: list[str]
    flagged: list[str]
    iterations: int
    converged: bool

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "results": [r.to_dict() for r in self.results],
            "anchor": self.anchor,
            "flagged": self.flagged,
            "iterations": self.iterations,
            "converged": self.converged,
        }


def _dif_method(method: str, options: dict, refusal: str):
    """The normalised name and the DIF function of ``method`` (one of ``PURIFY_METHODS``); the
    caller picks the matching score, so ``matching``/``anchor`` in ``options`` raise ``refusal``."""
    name = str(method).lower().replace("_", "-")
    funcs = {
        "mantel-haenszel": mantel_haenszel,
        "logistic": logistic_dif,
        "polytomous": polytomous_dif,
        "ordinal-logistic": ordinal_logistic_dif,
    }
    if name not in funcs:
        raise PsychometricsError(f"method must be one of {', '.join(PURIFY_METHODS)}; got {name!r}")
    if "matching" in options or "anchor" in options:
        raise PsychometricsError(refusal)
    return name, funcs[name]


def _is_flagged(result, alpha: float) -> bool:
    if isinstance(result, MantelHaenszelResult):
        return result.ets_class in ("B", "C")
    if isinstance(result, PolytomousDIFResult):
        return result.ets_class in ("BB", "CC")
    return result.total_p < alpha and result.effect != "negligible"


def purify_dif(
    responses,
    group,
    *,
    method: str = "mantel-haenszel",
    focal=1,
    item_ids=None,
    alpha: float = 0.05,
    max_iter: int = 10,
    **options,
) -> DIFPurification:
    """Iterative purification of the matching score.

    An item is flagged when its ETS class is B/C (BB/CC for polytomous items) or, for the
    logistic methods, when the total test is significant at ``alpha`` and the R^2 change is not
    negligible. Each round matches on the items not flagged in the previous round (the studied
    item always included); the loop stops when the flagged set repeats or after ``max_iter``.
    """
    method, fn = _dif_method(
        method, options, "purify_dif chooses the anchor itself; do not pass matching or anchor"
    )
    if int(max_iter) != max_iter or max_iter < 1:
        raise PsychometricsError(f"max_iter must be a positive integer, got {max_iter!r}")
    if not 0 < alpha < 1:
        raise PsychometricsError(f"alpha must be in (0, 1), got {alpha!r}")
    results = fn(responses, group, focal=focal, item_ids=item_ids, **options)
    ids = [r.item for r in results]
    flagged = {k for k, r in enumerate(results) if _is_flagged(r, alpha)}
    seen = [frozenset(flagged)]
    converged = not flagged
    iterations = 1
    used = list(range(len(ids)))
    while flagged and iterations < max_iter:
        anchor = [k for k in range(len(ids)) if k not in flagged]
        if not anchor:
            break
        results = fn(responses, group, focal=focal, item_ids=item_ids, anchor=anchor, **options)
        used = anchor
        iterations += 1
        flagged = {k for k, r in enumerate(results) if _is_flagged(r, alpha)}
        if frozenset(flagged) in seen:
            converged = frozenset(flagged) == seen[-1]
            break
        seen.append(frozenset(flagged))
    return DIFPurification(
        method,
        results,
        [ids[k] for k in used],
        [ids[k] for k in sorted(flagged)],
        iterations,
        converged,
    )


def _dif_statistic(result) -> float:
    if isinstance(result, MantelHaenszelResult):
        return result.chi_square if result.chi_square is not None else 0.0
    if isinstance(result, PolytomousDIFResult):
        return result.mantel_chi2 if result.mantel_chi2 is not None else 0.0
    return result.total_chi2


def select_anchor(
    responses,
    group,
    *,
    method: str = "mantel-haenszel",
    focal=1,
    item_ids=None,
    proportion: float = 0.2,
    n_anchor: int | None = None,
    **options,
) -> list[str]:
    """Ids of the anchor items: the ``n_anchor`` (or ``proportion`` of all) items with the
    smallest DIF statistics when each is matched on the total score (Woods, 2009).

    Pass the result as ``anchor=`` to any DIF function.
    """
    method, fn = _dif_method(
        method,
        options,
        "select_anchor matches on the total score; do not pass matching or anchor",
    )
    results = fn(responses, group, focal=focal, item_ids=item_ids, **options)
    n_items = len(results)
    if n_anchor is None:
        if not 0 < proportion <= 1:
            raise PsychometricsError(f"proportion must be in (0, 1], got {proportion!r}")
        n_anchor = max(1, round(proportion * n_items))
    if int(n_anchor) != n_anchor or not 1 <= n_anchor < n_items:
        raise PsychometricsError(
            f"n_anchor must be an integer in 1..{n_items - 1}, got {n_anchor!r}"
        )
    order = sorted(range(n_items), key=lambda k: (_dif_statistic(results[k]), k))
    return [results[k].item for k in sorted(order[: int(n_anchor)])]
