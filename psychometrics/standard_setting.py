"""Standard setting: cut scores from panel judgments and from candidate data.

Every method returns a dataclass with ``to_dict()``; cuts are on the metric of the input (raw
expected score for Angoff, theta for Bookmark, the score scale of ``scores`` for the compromise
and examinee-centred methods). :mod:`psychometrics.cut_scores` carries a cut to the theta scale
and to every form.

* Modified Angoff (Angoff, 1971; Hambleton & Pitoniak, 2006; Cizek & Bunch, 2007, ch. 6): panelist
  p rates each item j with the probability (or, for a polytomous item, the expected score) of the
  minimally competent candidate, r_pj. Panelist p's cut is ``sum_j r_pj``; the panel's cut is the
  mean of those, ``sum_j mean_p r_pj``; its standard error over panelists is
  ``SD(panelist cuts) / sqrt(P)`` (Hambleton & Pitoniak, 2006, p. 459; Cizek & Bunch, 2007,
  p. 59). The Yes/No variant (Impara & Plake, 1997) takes 0/1 judgments and is computed the same
  way. Agreement: the SD of the panelist cuts, the per-item SD of ratings (items whose SD exceeds
  ``flag_sd`` of their maximum are flagged for discussion), and intraclass correlations
  (Shrout & Fleiss, 1979) with items as targets and panelists as judges.
* Bookmark (Lewis, Mitzel & Green, 1996; Mitzel, Lewis, Patz & Green, 2001): items (for a
  polytomous item, each score point k >= 1) are ordered by their RP location, the theta at which
  the candidate has probability RP of success. For the 2PL this is ``b + ln(RP / (1 - RP)) / a``;
  for the 3PL (Huynh, 2006; Cizek & Bunch, 2007, ch. 10) ``b + ln((RP - c) / (1 - RP)) / a``
  (defined when RP > c); for GRM and GPCM score point k it is the theta at which
  ``P(X >= k | theta) = RP`` (the cumulative probability of reaching k, Mitzel et al., 2001),
  found by bisection.
* Hofstee (1983) compromise: the panel's mean minimum and maximum acceptable cut (c_min, c_max)
  and fail rate (f_min, f_max) define the line from (c_min, f_max) to (c_max, f_min); the cut is
  where it meets the observed fail-rate curve ``F(c) = P(X < c)`` (Cizek & Bunch, 2007, ch. 14).
* Beuk (1984) compromise: each panelist gives a cut k_p and an expected pass rate v_p; the line
  through (mean k, mean v) with slope ``SD(v) / SD(k)`` meets the observed pass-rate curve
  ``P(X >= c)`` at the cut (Cizek & Bunch, 2007, ch. 14).
* Contrasting groups (Livingston & Zieky, 1982; Cizek & Bunch, 2007, ch. 8): candidates judged
  qualified or not; the cut minimises the number misclassified (optionally weighted), or lies
  where the two groups' (smoothed) score densities intersect, or where the logistic regression of
  group on score gives probability 1/2.
* Borderline group (Livingston & Zieky, 1982): the median (or mean) score of candidates judged
  borderline. Borderline regression (Kramer et al., 2003; Wood, Humphrey-Murto & Norman, 2006):
  the least-squares regression of score on the global rating, evaluated at the borderline rating.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats
from scipy.optimize import brentq

from psychometrics.calibration import _num
from psychometrics.errors import PsychometricsError
from psychometrics.irt.models import DICHOTOMOUS_MODELS, ItemParameters

DEFAULT_RP = 0.67


# --------------------------------------------------------------------------- helpers
def _array(x, name: str, ndim: int | tuple[int, ...] | None = None) -> np.ndarray:
    try:
        a = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise PsychometricsError(f"{name} must be numeric") from None
    dims = (ndim,) if isinstance(ndim, int) else ndim
    if dims is not None and a.ndim not in dims:
        raise PsychometricsError(
            f"{name} must have {' or '.join(map(str, dims))} dimension(s); got shape {a.shape}"
        )
    return a


def _finite(a: np.ndarray, name: str) -> np.ndarray:
    if not np.all(np.isfinite(a)):
        idx = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
        raise PsychometricsError(f"{name} must be finite; entry {idx} is {a[idx]!r}")
    return a


def _list(a) -> list:
    return [_num(v) for v in np.asarray(a, dtype=float).reshape(-1)]


# --------------------------------------------------------------------------- ICC
@dataclass
class IntraclassCorrelation:
    """Shrout & Fleiss (1979) intraclass correlations of an n targets x k judges table.

    ``icc1``, ``icc2``, ``icc3``: single-judge ICC(1,1), ICC(2,1), ICC(3,1); ``icc1k`` etc. the
    reliability of the mean of the k judges.
    """

    n_targets: int
    n_judges: int
    icc1: float
    icc2: float
    icc3: float
    icc1k: float
    icc2k: float
    icc3k: float

    def to_dict(self) -> dict:
        return {k: (_num(v) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def intraclass_correlation(table) -> IntraclassCorrelation:
    """ICC(1,1), ICC(2,1), ICC(3,1) and their k-judge versions (Shrout & Fleiss, 1979, Table 1).

    With BMS, WMS, JMS, EMS the between-targets, within-targets, between-judges and residual mean
    squares of the two-way table::

        ICC(1,1) = (BMS - WMS) / (BMS + (k - 1) WMS)
        ICC(2,1) = (BMS - EMS) / (BMS + (k - 1) EMS + k (JMS - EMS) / n)
        ICC(3,1) = (BMS - EMS) / (BMS + (k - 1) EMS)
        ICC(1,k) = (BMS - WMS) / BMS
        ICC(2,k) = (BMS - EMS) / (BMS + (JMS - EMS) / n)
        ICC(3,k) = (BMS - EMS) / BMS

    ``table`` is targets (rows, for Angoff: items) x judges (columns: panelists), complete.
    """
    x = _finite(_array(table, "table", 2), "table")
    n, k = x.shape
    if n < 2 or k < 2:
        raise PsychometricsError(
            f"table needs at least 2 targets and 2 judges; got shape {x.shape}"
        )
    grand = x.mean()
    ss_total = ((x - grand) ** 2).sum()
    ss_b = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_j = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_w = ss_total - ss_b
    ss_e = ss_total - ss_b - ss_j
    bms = ss_b / (n - 1)
    wms = ss_w / (n * (k - 1))
    jms = ss_j / (k - 1)
    ems = ss_e / ((n - 1) * (k - 1))

    def ratio(num, den):
        return float(num / den) if den > 0 else float("nan")

    return IntraclassCorrelation(
        n_targets=n,
        n_judges=k,
        icc1=ratio(bms - wms, bms + (k - 1) * wms),
        icc2=ratio(bms - ems, bms + (k - 1) * ems + k * (jms - ems) / n),
        icc3=ratio(bms - ems, bms + (k - 1) * ems),
        icc1k=ratio(bms - wms, bms),
        icc2k=ratio(bms - ems, bms + (jms - ems) / n),
        icc3k=ratio(bms - ems, bms),
    )


# --------------------------------------------------------------------------- Angoff
@dataclass
class AngoffRound:
    """One round of Angoff ratings, summarised."""

    round: int
    cut: float
    cut_percent: float
    panelist_cuts: np.ndarray
    sd: float
    se: float
    item_means: np.ndarray
    item_sd: np.ndarray
    flagged_items: list
    icc: IntraclassCorrelation | None
    pass_rate: float | None = None  # impact: share of ``scores`` at or above ceil(cut)

    def to_dict(self) -> dict:
        return {
            "round": self.round,
            "pass_rate": _num(self.pass_rate) if self.pass_rate is not None else None,
            "cut": _num(self.cut),
            "cut_percent": _num(self.cut_percent),
            "panelist_cuts": _list(self.panelist_cuts),
            "sd": _num(self.sd),
            "se": _num(self.se),
            "item_means": _list(self.item_means),
            "item_sd": _list(self.item_sd),
            "flagged_items": list(self.flagged_items),
            "icc": self.icc.to_dict() if self.icc is not None else None,
        }


@dataclass
class AngoffResult:
    """A (modified or Yes/No) Angoff study: the final round's cut and every round's summary.

    ``cut`` is the recommended raw cut as an expected score (a true score; carry it to theta with
    :func:`psychometrics.cut_scores.theta_cut_from_raw`), ``se`` its standard error over panelists.
    """

    method: str
    cut: float
    se: float
    sd: float
    cut_percent: float
    max_score: float
    n_panelists: int
    n_items: int
    panelist_ids: list
    item_ids: list
    rounds: list[AngoffRound] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "cut": _num(self.cut),
            "se": _num(self.se),
            "sd": _num(self.sd),
            "cut_percent": _num(self.cut_percent),
            "max_score": _num(self.max_score),
            "n_panelists": self.n_panelists,
            "n_items": self.n_items,
            "panelist_ids": list(self.panelist_ids),
            "item_ids": list(self.item_ids),
            "rounds": [r.to_dict() for r in self.rounds],
        }


def angoff_cut(
    ratings,
    *,
    item_max=None,
    yes_no: bool = False,
    flag_sd: float = 0.15,
    panelist_ids=None,
    item_ids=None,
    scores=None,
) -> AngoffResult:
    """Cut score from (modified or Yes/No) Angoff ratings over one or more rounds.

    Parameters
    ----------
    ratings : panelists x items (one round) or rounds x panelists x items. For a dichotomous item
        the rating is the probability (0..1) that the minimally competent candidate answers it
        correctly; for a polytomous item the expected score (0..``item_max[j]``). With
        ``yes_no=True`` every rating must be 0 or 1 (Impara & Plake, 1997).
    item_max : maximum score of each item (default 1 for every item).
    flag_sd : an item is flagged in a round when the SD of its ratings across panelists exceeds
        ``flag_sd * item_max[j]`` (0.15 of the item's range by default).
    scores : observed raw scores on the rated form; each round then reports the impact data
        shown to the panel before the next round, the share of candidates at or above the
        round's cut rounded up to a whole score.

    The panel cut of a round is ``sum_j mean_p r_pj`` = the mean of the panelist cuts
    ``sum_j r_pj`` (Angoff, 1971); its standard error is ``SD(panelist cuts) / sqrt(P)`` with the
    n - 1 SD (Hambleton & Pitoniak, 2006). The result's ``cut`` is the last round's.
    """
    r = _array(ratings, "ratings", (2, 3))
    if r.ndim == 2:
        r = r[None]
    n_rounds, n_p, n_i = r.shape
    _finite(r, "ratings")
    if n_p < 1 or n_i < 1:
        raise PsychometricsError(
            f"ratings must have at least one panelist and one item; got {r.shape}"
        )
    if item_max is None:
        top = np.ones(n_i)
    else:
        top = _finite(_array(item_max, "item_max", 1), "item_max")
        if top.shape != (n_i,):
            raise PsychometricsError(
                f"item_max must have one value per item ({n_i}); got {top.shape}"
            )
        if np.any(top <= 0):
            raise PsychometricsError("item_max must be positive for every item")
    p_ids = _ids(panelist_ids, n_p, "panelist_ids", "panelist")
    i_ids = _ids(item_ids, n_i, "item_ids", "item")
    if yes_no and not np.all((r == 0) | (r == 1)):
        rd, p, j = (int(i) for i in np.argwhere((r != 0) & (r != 1))[0])
        raise PsychometricsError(
            f"ratings: round {rd + 1}, panelist {p_ids[p]}, item {i_ids[j]} is {r[rd, p, j]:g}; "
            "Yes/No Angoff ratings must be 0 or 1"
        )
    bad = (r < 0) | (r > top[None, None, :])
    if bad.any():
        rd, p, j = (int(i) for i in np.argwhere(bad)[0])
        raise PsychometricsError(
            f"ratings: round {rd + 1}, panelist {p_ids[p]}, item {i_ids[j]} is {r[rd, p, j]:g}; "
            f"ratings must lie in 0..{top[j]:g} (the item's maximum score)"
        )
    if not 0 < flag_sd:
        raise PsychometricsError(f"flag_sd must be positive, got {flag_sd!r}")
    max_score = float(top.sum())
    observed = None if scores is None else _finite(_array(scores, "scores", 1), "scores")
    rounds = []
    for k in range(n_rounds):
        x = r[k]
        cuts = x.sum(axis=1)
        sd = float(cuts.std(ddof=1)) if n_p > 1 else float("nan")
        item_sd = x.std(axis=0, ddof=1) if n_p > 1 else np.full(n_i, np.nan)
        flagged = [i_ids[j] for j in np.flatnonzero(item_sd > flag_sd * top)]
        icc = None
        if n_p >= 2 and n_i >= 2:
            icc = intraclass_correlation(x.T)
        cut = float(cuts.mean())
        rounds.append(
            AngoffRound(
                round=k + 1,
                cut=cut,
                cut_percent=100.0 * cut / max_score,
                panelist_cuts=cuts,
                sd=sd,
                se=sd / np.sqrt(n_p),
                item_means=x.mean(axis=0),
                item_sd=item_sd,
                flagged_items=flagged,
                icc=icc,
                pass_rate=(
                    None if observed is None else float(np.mean(observed >= np.ceil(cut - 1e-9)))
                ),
            )
        )
    last = rounds[-1]
    return AngoffResult(
        method="yes_no_angoff" if yes_no else "angoff",
        cut=last.cut,
        se=last.se,
        sd=last.sd,
        cut_percent=last.cut_percent,
        max_score=max_score,
        n_panelists=n_p,
        n_items=n_i,
        panelist_ids=p_ids,
        item_ids=i_ids,
        rounds=rounds,
    )


def _ids(ids, n: int, name: str, stem: str) -> list:
    if ids is None:
        return [f"{stem}{i + 1}" for i in range(n)]
    out = [str(v) for v in ids]
    if len(out) != n:
        raise PsychometricsError(f"{name} has {len(out)} entries for {n} {stem}s")
    if len(set(out)) != n:
        raise PsychometricsError(f"{name} must be unique")
    return out


# --------------------------------------------------------------------------- Bookmark
@dataclass
class OrderedItemBooklet:
    """Pages of an ordered item booklet: one per dichotomous item, one per score point k >= 1 of a
    polytomous item, sorted by RP location (ties keep item order)."""

    rp: float
    item: np.ndarray  # item index of each page
    score_point: np.ndarray  # 1 for dichotomous items, k for polytomous score points
    location: np.ndarray  # theta at which P(X >= k) = rp
    item_ids: list

    @property
    def n_pages(self) -> int:
        return int(self.location.size)

    def to_dict(self) -> dict:
        return {
            "rp": self.rp,
            "pages": [
                {
                    "page": i + 1,
                    "item": self.item_ids[int(self.item[i])],
                    "score_point": int(self.score_point[i]),
                    "location": _num(self.location[i]),
                }
                for i in range(self.n_pages)
            ],
        }


def rp_location(params: ItemParameters, rp: float = DEFAULT_RP) -> np.ndarray:
    """RP locations: theta with ``P(X_j >= k | theta) = rp`` for every item j and score point k.

    Shape (J, K-1), NaN where an item has no such score point. Closed form for dichotomous items,
    ``b + ln((rp - c) / (1 - rp)) / a`` (the 2PL's ``b + ln(rp / (1 - rp)) / a`` when c = 0;
    Huynh, 2006); bisection on the cumulative category probability for GRM/GPCM items (Mitzel et
    al., 2001). Raises when rp <= c for a 3PL item (the item never reaches rp).
    """
    if not isinstance(params, ItemParameters):
        raise TypeError(f"params must be ItemParameters, got {type(params).__name__}")
    rp = float(rp)
    if not 0 < rp < 1:
        raise PsychometricsError(f"rp must lie strictly between 0 and 1, got {rp!r}")
    if np.any(params.a <= 0):
        j = int(np.flatnonzero(params.a <= 0)[0])
        raise PsychometricsError(f"params: item {j} has slope a <= 0; RP locations need a > 0")
    n_i = params.n_items
    width = max(int(params.n_categories.max()) - 1, 1)
    out = np.full((n_i, width), np.nan)
    b2 = params.b.reshape(n_i, -1)
    for j, m in enumerate(params.item_models):
        if m in DICHOTOMOUS_MODELS:
            c = float(params.c[j])
            if rp <= c:
                raise PsychometricsError(
                    f"rp = {rp:g} is not above item {j}'s lower asymptote c = {c:g}; the item "
                    "never reaches that probability"
                )
            out[j, 0] = b2[j, 0] + np.log((rp - c) / (1 - rp)) / params.a[j]
        else:
            sub = params.subset([j])
            for k in range(1, int(params.n_categories[j])):
                out[j, k - 1] = _solve_cumulative(sub, k, rp)
    return out


def _solve_cumulative(item: ItemParameters, k: int, rp: float) -> float:
    def f(t):
        p = item.prob(np.array([t]))[0, :, 0]
        return float(p[k:].sum()) - rp

    lo, hi = -40.0, 40.0
    if f(lo) > 0 or f(hi) < 0:
        raise PsychometricsError(f"score point {k}: P(X >= {k}) does not cross rp = {rp:g}")
    return float(brentq(f, lo, hi, xtol=1e-12))


def ordered_item_booklet(
    params: ItemParameters, rp: float = DEFAULT_RP, item_ids=None
) -> OrderedItemBooklet:
    """The ordered item booklet at response probability ``rp`` (RP67 by default)."""
    loc = rp_location(params, rp)
    ids = _ids(item_ids, params.n_items, "item_ids", "item")
    items, points, locs = [], [], []
    for j in range(params.n_items):
        for k in range(int(params.n_categories[j]) - 1):
            items.append(j)
            points.append(k + 1)
            locs.append(loc[j, k])
    locs_a = np.asarray(locs)
    order = np.argsort(locs_a, kind="stable")
    return OrderedItemBooklet(
        rp=float(rp),
        item=np.asarray(items)[order],
        score_point=np.asarray(points)[order],
        location=locs_a[order],
        item_ids=ids,
    )


@dataclass
class BookmarkResult:
    """Bookmark cut on the theta scale with the panelists' individual cuts."""

    cut: float
    se: float
    sd: float
    aggregate: str
    placement: str
    rp: float
    bookmarks: np.ndarray
    panelist_cuts: np.ndarray
    booklet: OrderedItemBooklet

    def to_dict(self) -> dict:
        return {
            "method": "bookmark",
            "cut": _num(self.cut),
            "se": _num(self.se),
            "sd": _num(self.sd),
            "aggregate": self.aggregate,
            "placement": self.placement,
            "rp": self.rp,
            "bookmarks": [int(v) for v in self.bookmarks],
            "panelist_cuts": _list(self.panelist_cuts),
            "booklet": self.booklet.to_dict(),
        }


def bookmark_cut(
    params: ItemParameters | OrderedItemBooklet,
    bookmarks,
    *,
    rp: float = DEFAULT_RP,
    placement: str = "bookmarked",
    aggregate: str = "median",
    item_ids=None,
) -> BookmarkResult:
    """Theta cut from the panelists' bookmarks in an ordered item booklet.

    ``bookmarks[p]`` is the 1-based page on which panelist p placed the bookmark: the first page
    the minimally competent candidate would *not* answer with probability ``rp`` (Mitzel et al.,
    2001). The judgment places the candidate's theta in [loc(page - 1), loc(page)); programs
    differ on which point of that interval is the cut, so ``placement`` chooses: "bookmarked"
    the RP location of the bookmarked page (the default), "before" that of the last mastered
    page, or "midpoint" the mean of the two (Cizek & Bunch, 2007, ch. 10, and Karantonis &
    Sireci, 2006, review the variants). A bookmark may be placed after the last page
    (``n_pages + 1``: every page mastered) only with "before".

    The panel's cut is the median (default, Mitzel et al., 2001) or mean of the panelist cuts;
    the SE is ``SD / sqrt(P)`` for the mean and ``1.2533 SD / sqrt(P)`` (sqrt(pi / 2), the
    large-sample efficiency of the median under normality) for the median.
    """
    if isinstance(params, OrderedItemBooklet):
        booklet = params
    else:
        booklet = ordered_item_booklet(params, rp, item_ids)
    placement = str(placement).lower()
    if placement not in ("bookmarked", "before", "midpoint"):
        raise PsychometricsError(
            f"placement must be 'bookmarked', 'before' or 'midpoint'; got {placement!r}"
        )
    aggregate = str(aggregate).lower()
    if aggregate not in ("median", "mean"):
        raise PsychometricsError(f"aggregate must be 'median' or 'mean'; got {aggregate!r}")
    pages = _array(bookmarks, "bookmarks", (0, 1)).reshape(-1)
    if pages.size == 0:
        raise PsychometricsError("bookmarks must hold at least one panelist's page")
    n = booklet.n_pages
    hi = n + 1 if placement == "before" else n
    lo = 2 if placement in ("before", "midpoint") else 1
    bad = (pages != np.round(pages)) | (pages < lo) | (pages > hi)
    if bad.any():
        p = int(np.flatnonzero(bad)[0])
        raise PsychometricsError(
            f"bookmarks: panelist {p} placed page {pages[p]:g}; with placement {placement!r} the "
            f"page must be an integer in {lo}..{hi}"
        )
    idx = pages.astype(int) - 1
    loc = booklet.location
    if placement == "bookmarked":
        cuts = loc[idx]
    elif placement == "before":
        cuts = loc[idx - 1]
    else:
        cuts = 0.5 * (loc[idx - 1] + loc[idx])
    sd = float(cuts.std(ddof=1)) if cuts.size > 1 else float("nan")
    if aggregate == "median":
        cut = float(np.median(cuts))
        se = float(np.sqrt(np.pi / 2) * sd / np.sqrt(cuts.size))
    else:
        cut = float(cuts.mean())
        se = float(sd / np.sqrt(cuts.size))
    return BookmarkResult(
        cut=cut,
        se=se,
        sd=sd,
        aggregate=aggregate,
        placement=placement,
        rp=booklet.rp,
        bookmarks=pages.astype(int),
        panelist_cuts=cuts,
        booklet=booklet,
    )


# --------------------------------------------------------------------------- compromise methods
def _score_distribution(scores) -> np.ndarray:
    x = _finite(_array(scores, "scores", 1), "scores")
    if x.size < 2:
        raise PsychometricsError("scores must hold at least two candidates' scores")
    return np.sort(x)


def fail_rate(scores, cut) -> np.ndarray:
    """Observed fail rate ``P(X < cut)`` of a score sample at each cut (the pass rate is 1 minus
    it: a candidate passes with a score at or above the cut)."""
    x = _score_distribution(scores)
    c = np.atleast_1d(np.asarray(cut, dtype=float))
    return np.searchsorted(x, c, side="left") / x.size


@dataclass
class CompromiseResult:
    """Hofstee or Beuk cut: the intersection of the panel's line with the observed curve."""

    method: str
    cut: float
    raw_cut: float
    fail_rate: float
    intersects: bool
    line: dict

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "cut": _num(self.cut),
            "raw_cut": _num(self.raw_cut),
            "fail_rate": _num(self.fail_rate),
            "pass_rate": _num(1 - self.fail_rate),
            "intersects": self.intersects,
            "line": {k: _num(v) for k, v in self.line.items()},
        }


def _compromise(method: str, x: np.ndarray, cut, hit, step: float, line: dict) -> CompromiseResult:
    """The result of a compromise method whose line meets the curve at ``cut``: the raw cut is the
    next score point at or above it, and the fail rate is the observed one at that raw cut."""
    raw_cut = float(np.ceil(cut / step - 1e-9) * step)
    return CompromiseResult(
        method=method,
        cut=float(cut),
        raw_cut=raw_cut,
        fail_rate=float(fail_rate(x, raw_cut)[0]),
        intersects=bool(hit),
        line=line,
    )


def _fail_curve(x: np.ndarray, step: float):
    """Fail rate as a continuous function: linear between the fail rates at consecutive score
    points ``lo, lo + step, ...`` (the usual drawn cumulative curve)."""
    lo = np.floor(x[0] / step) * step
    hi = np.ceil(x[-1] / step) * step + step
    grid = np.arange(lo, hi + step / 2, step)
    f = np.searchsorted(x, grid - 1e-9 * step, side="left") / x.size

    def curve(c):
        return np.interp(c, grid, f)

    return curve


def hofstee_cut(scores, c_min, c_max, f_min, f_max, *, step: float = 1.0) -> CompromiseResult:
    """Hofstee (1983) compromise cut.

    ``c_min, c_max`` (score metric) and ``f_min, f_max`` (fail rates as proportions 0..1) are
    the panel's judgments: scalars, or one value per panelist, averaged. The line runs from
    (c_min, f_max) to (c_max, f_min); the observed fail rate ``F(c) = P(X < c)`` is interpolated
    linearly between score points ``step`` apart, and the cut is the root of ``F(c) - line(c)``
    in [c_min, c_max]. When the curve does not cross the line inside the rectangle the nearer
    corner's cut is returned with ``intersects=False`` (c_min when even c_min fails more than the
    line allows, else c_max). ``raw_cut`` is the smallest score point at or above the cut.
    """
    x = _score_distribution(scores)
    vals = {}
    for name, v in (("c_min", c_min), ("c_max", c_max), ("f_min", f_min), ("f_max", f_max)):
        a = _finite(_array(v, name, (0, 1)), name).reshape(-1)
        if a.size == 0:
            raise PsychometricsError(f"{name} must hold at least one judgment")
        vals[name] = float(a.mean())
    cmin, cmax, fmin, fmax = vals["c_min"], vals["c_max"], vals["f_min"], vals["f_max"]
    if not cmin < cmax:
        raise PsychometricsError(f"c_min ({cmin:g}) must be below c_max ({cmax:g})")
    if not 0 <= fmin < fmax <= 1:
        raise PsychometricsError(
            f"fail rates must satisfy 0 <= f_min < f_max <= 1 (proportions); got {fmin:g}, {fmax:g}"
        )
    if not step > 0:
        raise PsychometricsError(f"step must be positive, got {step!r}")
    curve = _fail_curve(x, step)
    cut, hit = _hofstee_root(curve, cmin, cmax, fmin, fmax)
    line = {"c_min": cmin, "c_max": cmax, "f_min": fmin, "f_max": fmax}
    return _compromise("hofstee", x, cut, hit, step, line)


def _hofstee_root(curve, cmin: float, cmax: float, fmin: float, fmax: float
                  ) -> tuple[float, bool]:
    """Where Hofstee's line meets ``curve`` in [cmin, cmax] (the nearer corner when it does
    not), and whether it meets it."""

    def line(c):
        return fmax - (fmax - fmin) * (c - cmin) / (cmax - cmin)

    g_lo = curve(cmin) - line(cmin)
    g_hi = curve(cmax) - line(cmax)
    if g_lo >= 0:
        return float(cmin), bool(g_lo == 0)
    if g_hi <= 0:
        return float(cmax), bool(g_hi == 0)
    return float(brentq(lambda c: curve(c) - line(c), cmin, cmax, xtol=1e-12)), True


def beuk_cut(scores, panel_cuts, panel_pass_rates, *, step: float = 1.0) -> CompromiseResult:
    """Beuk (1984) compromise cut.

    ``panel_cuts`` (score metric) and ``panel_pass_rates`` (proportions 0..1) hold one judgment
    per panelist. The line through (mean cut, mean pass rate) with slope ``SD(pass rates) /
    SD(cuts)`` (rising: a stricter cut is traded against a higher pass rate) meets the observed
    pass-rate curve ``P(X >= c)``, interpolated linearly between score points, at the cut.
    """
    x = _score_distribution(scores)
    k = _finite(_array(panel_cuts, "panel_cuts", 1), "panel_cuts")
    v = _finite(_array(panel_pass_rates, "panel_pass_rates", 1), "panel_pass_rates")
    if k.size != v.size:
        raise PsychometricsError(
            f"panel_cuts ({k.size}) and panel_pass_rates ({v.size}) need one value per panelist"
        )
    if k.size < 2:
        raise PsychometricsError("Beuk's method needs at least two panelists")
    if np.any((v < 0) | (v > 1)):
        raise PsychometricsError("panel_pass_rates must be proportions in 0..1")
    curve = _fail_curve(x, step)
    lo = np.floor(x[0] / step) * step - step
    hi = np.ceil(x[-1] / step) * step + step
    cut, hit, line = _beuk_root(curve, lo, hi, k, v)
    return _compromise("beuk", x, cut, hit, step, line)


def _beuk_root(curve, lo: float, hi: float, k: np.ndarray, v: np.ndarray
               ) -> tuple[float, bool, dict]:
    """Where Beuk's line through (mean k, mean v), slope SD(v) / SD(k), meets the pass-rate
    curve ``1 - curve`` in [lo, hi]; the nearer end when it does not."""
    sk, sv = float(k.std(ddof=1)), float(v.std(ddof=1))
    if sk == 0:
        raise PsychometricsError(
            "panel_cuts have no spread; Beuk's slope SD(v) / SD(k) is undefined"
        )
    mk, mv = float(k.mean()), float(v.mean())
    slope = sv / sk

    def g(c):
        return (1 - curve(c)) - (mv + slope * (c - mk))

    if g(lo) < 0 or g(hi) > 0:
        cut, hit = (lo if g(lo) < 0 else hi), False
    else:
        cut, hit = brentq(g, lo, hi, xtol=1e-12), True
    line = {"mean_cut": mk, "mean_pass_rate": mv, "sd_cut": sk, "sd_pass_rate": sv, "slope": slope}
    return float(cut), bool(hit), line


# --------------------------------------------------------------------------- examinee-centred
@dataclass
class ExamineeCentredResult:
    """Contrasting-groups or borderline cut from candidate classifications."""

    method: str
    cut: float
    details: dict

    def to_dict(self) -> dict:
        out = {"method": self.method, "cut": _num(self.cut)}
        out.update({k: (_num(v) if isinstance(v, float) else v) for k, v in self.details.items()})
        return out


def contrasting_groups_cut(
    scores,
    qualified,
    *,
    method: str = "misclassification",
    smoothing: str = "none",
    false_pass_weight: float = 1.0,
    step: float = 1.0,
) -> ExamineeCentredResult:
    """Contrasting-groups cut (Livingston & Zieky, 1982; Cizek & Bunch, 2007, ch. 8).

    ``qualified`` is 1 for a candidate the panel judged qualified (master), 0 otherwise.

    method:
    * "misclassification": the score point c (``step`` apart) minimising
      ``w * #{unqualified, X >= c} + #{qualified, X < c}`` with ``w = false_pass_weight``; with
      ``smoothing="normal"`` the counts come from normal densities fitted to each group, with
      "kde" from Gaussian kernel density estimates (Scott's bandwidth), each weighted by its group
      size, so the cut is continuous. Ties take the midpoint of the minimising run.
    * "intersection": where the two groups' smoothed densities (each integrating to its group's
      size; normal unless ``smoothing="kde"``) cross between the group means, the cut that
      minimises misclassification for continuous densities.
    * "logistic": where the logistic regression of qualified on score gives probability
      ``w / (1 + w)`` (1/2 with unit weight).
    """
    x = _finite(_array(scores, "scores", 1), "scores")
    g = _array(qualified, "qualified", 1)
    if g.shape != x.shape:
        raise PsychometricsError(
            f"qualified must have one entry per score ({x.size}); got {g.size}"
        )
    if not np.all((g == 0) | (g == 1)):
        raise PsychometricsError("qualified must be 0 (not qualified) or 1 (qualified)")
    q, u = x[g == 1], x[g == 0]
    if q.size < 2 or u.size < 2:
        raise PsychometricsError("each group (qualified and not) needs at least two candidates")
    method = str(method).lower()
    smoothing = str(smoothing).lower()
    if smoothing not in ("none", "normal", "kde"):
        raise PsychometricsError(f"smoothing must be 'none', 'normal' or 'kde'; got {smoothing!r}")
    w = float(false_pass_weight)
    if not w > 0:
        raise PsychometricsError(f"false_pass_weight must be positive, got {false_pass_weight!r}")
    details: dict = {
        "n_qualified": int(q.size),
        "n_unqualified": int(u.size),
        "mean_qualified": float(q.mean()),
        "mean_unqualified": float(u.mean()),
    }
    if method == "misclassification":
        if smoothing == "none":
            lo = np.floor(x.min() / step) * step
            grid = np.arange(lo, x.max() + 2 * step, step)
            errors = w * (u[None, :] >= grid[:, None] - 1e-9 * step).sum(axis=1) + (
                q[None, :] < grid[:, None] - 1e-9 * step
            ).sum(axis=1)
            best = np.flatnonzero(errors == errors.min())
            run = best[
                : 1 + int(np.argmax(np.diff(best) > 1)) if np.any(np.diff(best) > 1) else best.size
            ]
            cut = float(0.5 * (grid[run[0]] + grid[run[-1]]))
            details["misclassified"] = float(errors.min())
        else:
            cdf_q, cdf_u = _group_cdfs(q, u, smoothing)
            lo, hi = min(q.min(), u.min()), max(q.max(), u.max())
            grid = np.linspace(lo, hi, 4001)
            errors = w * u.size * (1 - cdf_u(grid)) + q.size * cdf_q(grid)
            cut = float(grid[int(np.argmin(errors))])
            details["misclassified"] = float(errors.min())
    elif method == "intersection":
        pdf_q, pdf_u = _group_pdfs(q, u, "kde" if smoothing == "kde" else "normal")
        a, b = sorted((float(u.mean()), float(q.mean())))

        def diff(c):
            return q.size * pdf_q(c) - w * u.size * pdf_u(c)

        if diff(a) * diff(b) > 0:
            raise PsychometricsError(
                "the smoothed group densities do not cross between the group means; use "
                "method='misclassification'"
            )
        cut = float(brentq(diff, a, b, xtol=1e-10))
    elif method == "logistic":
        beta0, beta1 = _logistic_fit(x, g)
        if beta1 <= 0:
            raise PsychometricsError("qualified does not rise with score; no logistic cut exists")
        cut = float((np.log(w) - beta0) / beta1)
        details.update({"intercept": beta0, "slope": beta1})
    else:
        raise PsychometricsError(
            f"method must be 'misclassification', 'intersection' or 'logistic'; got {method!r}"
        )
    details["smoothing"] = smoothing
    return ExamineeCentredResult(method=f"contrasting_groups_{method}", cut=cut, details=details)


def _group_pdfs(q, u, smoothing):
    if smoothing == "kde":
        kq, ku = stats.gaussian_kde(q), stats.gaussian_kde(u)
        return (lambda c: float(kq(c)[0])), (lambda c: float(ku(c)[0]))
    nq = stats.norm(q.mean(), q.std(ddof=1))
    nu = stats.norm(u.mean(), u.std(ddof=1))
    return nq.pdf, nu.pdf


def _group_cdfs(q, u, smoothing):
    if smoothing == "kde":
        kq, ku = stats.gaussian_kde(q), stats.gaussian_kde(u)

        def cdf(k):
            return lambda c: np.array([k.integrate_box_1d(-np.inf, v) for v in np.atleast_1d(c)])

        return cdf(kq), cdf(ku)
    return stats.norm(q.mean(), q.std(ddof=1)).cdf, stats.norm(u.mean(), u.std(ddof=1)).cdf


def _logistic_fit(x, y, iterations: int = 100):
    """Maximum-likelihood logistic regression of y on x by Newton-Raphson."""
    xm, xs = x.mean(), x.std()
    z = (x - xm) / (xs if xs > 0 else 1.0)
    design = np.column_stack([np.ones_like(z), z])
    beta = np.zeros(2)
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-design @ beta))
        grad = design.T @ (y - p)
        hess = design.T @ (design * (p * (1 - p))[:, None])
        try:
            delta = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            raise PsychometricsError(
                "logistic regression failed: groups are perfectly separated"
            ) from None
        beta += delta
        if np.max(np.abs(delta)) < 1e-10:
            break
    if not np.all(np.isfinite(beta)) or np.max(np.abs(beta)) > 50:
        raise PsychometricsError("logistic regression failed: groups are perfectly separated")
    b1 = beta[1] / (xs if xs > 0 else 1.0)
    b0 = beta[0] - b1 * xm
    return float(b0), float(b1)


def borderline_group_cut(
    scores, ratings, *, borderline=1, statistic: str = "median"
) -> ExamineeCentredResult:
    """Borderline-group cut (Livingston & Zieky, 1982): the median (or mean) score of the
    candidates whose global rating equals ``borderline``."""
    x = _finite(_array(scores, "scores", 1), "scores")
    r = np.asarray(ratings)
    if r.shape != x.shape:
        raise PsychometricsError(f"ratings must have one entry per score ({x.size}); got {r.size}")
    sel = x[r == borderline]
    if sel.size == 0:
        raise PsychometricsError(f"no candidate has the borderline rating {borderline!r}")
    statistic = str(statistic).lower()
    if statistic not in ("median", "mean"):
        raise PsychometricsError(f"statistic must be 'median' or 'mean'; got {statistic!r}")
    cut = float(np.median(sel) if statistic == "median" else sel.mean())
    return ExamineeCentredResult(
        method="borderline_group",
        cut=cut,
        details={"n_borderline": int(sel.size), "statistic": statistic},
    )


def borderline_regression_cut(scores, ratings, *, borderline: float = 1.0) -> ExamineeCentredResult:
    """Borderline-regression cut (Kramer et al., 2003; Wood, Humphrey-Murto & Norman, 2006).

    The least-squares line ``score = b0 + b1 * rating`` over every candidate (global ratings on an
    ordinal scale coded as numbers), evaluated at the borderline rating: ``cut = b0 + b1 *
    borderline``. ``details`` holds the intercept, slope, R^2 and the residual SD.
    """
    x = _finite(_array(scores, "scores", 1), "scores")
    r = _finite(_array(ratings, "ratings", 1), "ratings")
    if r.shape != x.shape:
        raise PsychometricsError(f"ratings must have one entry per score ({x.size}); got {r.size}")
    if x.size < 3:
        raise PsychometricsError("borderline regression needs at least three candidates")
    if np.ptp(r) == 0:
        raise PsychometricsError(
            "ratings have no spread; the regression of score on rating is undefined"
        )
    fit = stats.linregress(r, x)
    resid = x - (fit.intercept + fit.slope * r)
    return ExamineeCentredResult(
        method="borderline_regression",
        cut=float(fit.intercept + fit.slope * float(borderline)),
        details={
            "intercept": float(fit.intercept),
            "slope": float(fit.slope),
            "r_squared": float(fit.rvalue**2),
            "residual_sd": float(np.sqrt((resid**2).sum() / (x.size - 2))),
            "borderline": float(borderline),
        },
    )


# --------------------------------------------------------------------------- standard errors
#: Bootstrap replicates and seed: fixed, so the same judgments always show the same SE.
DEFAULT_N_BOOT = 1000
DEFAULT_SEED = 14


@dataclass
class CutStandardError:
    """The standard error of a cut and how it was obtained.

    ``method`` is "bootstrap_panelists", "bootstrap_candidates" (Efron & Tibshirani, 1993),
    "regression" (the OLS standard error of the fitted value) or "delta" (the delta method on the
    logistic regression's estimates). ``n_boot``: replicates drawn, ``n_failed``: replicates in
    which the method had no cut (e.g. Beuk's slope undefined, both groups not drawn), left out.
    """

    se: float
    method: str
    n: int
    n_boot: int | None = None
    n_failed: int = 0
    seed: int | None = None

    def to_dict(self) -> dict:
        return {"se": _num(self.se), "method": self.method, "n": self.n, "n_boot": self.n_boot,
                "n_failed": self.n_failed, "seed": self.seed}


def bootstrap_se(statistic, n: int, *, strata=None, n_boot: int = DEFAULT_N_BOOT,
                 seed: int = DEFAULT_SEED) -> tuple[float, int]:
    """Bootstrap standard error of ``statistic(index)`` over ``n`` independent units.

    Each replicate draws ``n`` indices with replacement (within each stratum, keeping its size,
    when ``strata`` labels the units) and evaluates ``statistic`` on them; the SE is the SD (B - 1
    denominator) of the replicates (Efron & Tibshirani, 1993, *An Introduction to the Bootstrap*,
    ch. 6, Algorithm 6.1). A replicate in which ``statistic`` raises
    :class:`PsychometricsError` is left out and counted; the SE is NaN when more than half fail.
    For the mean the bootstrap SE tends to the plug-in ``sqrt((n - 1) / n) SD / sqrt(n)``
    (ibid., ch. 5-6): with few units it runs below ``SD / sqrt(n)`` by that factor.
    Returns ``(se, n_failed)``.
    """
    n = int(n)
    if n < 2:
        raise PsychometricsError(f"n must be at least 2 for a bootstrap; got {n}")
    n_boot = int(n_boot)
    if n_boot < 2:
        raise PsychometricsError(f"n_boot must be at least 2; got {n_boot}")
    rng = np.random.default_rng(seed)
    if strata is None:
        groups = [np.arange(n)]
    else:
        labels = np.asarray(strata)
        if labels.shape != (n,):
            raise PsychometricsError(f"strata must have one label per unit ({n}); got {labels.size}")
        groups = [np.flatnonzero(labels == g) for g in np.unique(labels)]
    values, failed = [], 0
    for _ in range(n_boot):
        idx = np.concatenate([g[rng.integers(0, g.size, g.size)] for g in groups])
        try:
            v = float(statistic(idx))
        except PsychometricsError:
            failed += 1
            continue
        if np.isfinite(v):
            values.append(v)
        else:
            failed += 1
    if len(values) < max(2, n_boot / 2):
        return float("nan"), failed
    return float(np.std(values, ddof=1)), failed


def _panel_vectors(n_min: int, **judgments) -> dict[str, np.ndarray]:
    out, size = {}, None
    for name, v in judgments.items():
        a = _finite(_array(v, name, 1), name)
        if size is None:
            size = a.size
        elif a.size != size:
            raise PsychometricsError(
                f"{name} has {a.size} judgments; every judgment needs one value per panelist "
                f"({size})")
        out[name] = a
    if size is None or size < n_min:
        raise PsychometricsError(
            f"a standard error over panelists needs at least {n_min} panelists; got {size or 0}")
    return out


def hofstee_cut_se(scores, c_min, c_max, f_min, f_max, *, step: float = 1.0,
                   n_boot: int = DEFAULT_N_BOOT, seed: int = DEFAULT_SEED) -> CutStandardError:
    """Standard error over panelists of the Hofstee (1983) cut: a bootstrap over panelists.

    The cut is a nonlinear function (the crossing of a line with the observed fail-rate curve)
    of the panel's four mean judgments, not the mean of per-panelist cuts, so ``SD / sqrt(n)``
    does not apply; each replicate resamples the panelists (their four judgments together) and
    recomputes the cut against the same observed scores (Efron & Tibshirani, 1993, ch. 6). The
    SE is conditional on the observed score distribution: it measures how much the cut depends on
    which panelists sat, the uncertainty a panel-judgment SE is about (Hambleton & Pitoniak,
    2006). Arguments as :func:`hofstee_cut`, one value per panelist (at least two).
    """
    hofstee_cut(scores, c_min, c_max, f_min, f_max, step=step)  # validates, as the cut does
    p = _panel_vectors(2, c_min=c_min, c_max=c_max, f_min=f_min, f_max=f_max)
    curve = _fail_curve(_score_distribution(scores), step)

    def cut(idx):
        return _hofstee_root(curve, *(float(p[k][idx].mean())
                                      for k in ("c_min", "c_max", "f_min", "f_max")))[0]

    n = p["c_min"].size
    se, failed = bootstrap_se(cut, n, n_boot=n_boot, seed=seed)
    return CutStandardError(se, "bootstrap_panelists", n, n_boot, failed, seed)


def beuk_cut_se(scores, panel_cuts, panel_pass_rates, *, step: float = 1.0,
                n_boot: int = DEFAULT_N_BOOT, seed: int = DEFAULT_SEED) -> CutStandardError:
    """Standard error over panelists of the Beuk (1984) cut: a bootstrap over panelists.

    Beuk's cut depends on the means *and* SDs of the panel's cuts and pass rates (through the
    slope), so it is no mean of panelist cuts and has no ``SD / sqrt(n)``; each replicate
    resamples panelists (cut and pass rate together) and recomputes the cut against the same
    observed scores (Efron & Tibshirani, 1993, ch. 6). A replicate whose drawn cuts are all
    equal has no slope; it is left out and counted in ``n_failed``.
    """
    beuk_cut(scores, panel_cuts, panel_pass_rates, step=step)
    p = _panel_vectors(2, panel_cuts=panel_cuts, panel_pass_rates=panel_pass_rates)
    x = _score_distribution(scores)
    curve = _fail_curve(x, step)
    lo = np.floor(x[0] / step) * step - step
    hi = np.ceil(x[-1] / step) * step + step

    def cut(idx):
        return _beuk_root(curve, lo, hi, p["panel_cuts"][idx], p["panel_pass_rates"][idx])[0]

    n = p["panel_cuts"].size
    se, failed = bootstrap_se(cut, n, n_boot=n_boot, seed=seed)
    return CutStandardError(se, "bootstrap_panelists", n, n_boot, failed, seed)


def contrasting_groups_cut_se(scores, qualified, *, method: str = "misclassification",
                              smoothing: str = "none", false_pass_weight: float = 1.0,
                              step: float = 1.0, se_method: str = "auto",
                              n_boot: int = DEFAULT_N_BOOT, seed: int = DEFAULT_SEED
                              ) -> CutStandardError:
    """Standard error over candidates of the contrasting-groups cut.

    se_method:
    * "bootstrap": resample candidates (score and classification together) with replacement and
      recompute the cut (Efron & Tibshirani, 1993, ch. 6). The group sizes vary between
      replicates as they vary between samples of candidates (a classification is an outcome, not
      a design; resampling within groups fixed them and understated the logistic cut's SE by a
      third on a simulation). Works for every ``method``; the misclassification cut moves in
      steps of ``step``, so its replicates do too.
    * "delta" (``method="logistic"`` only): the cut ``c = (ln w - b0) / b1`` has, by the delta
      method with the inverse information matrix of (b0, b1),
      ``Var c = (Var b0 + 2 c Cov(b0, b1) + c^2 Var b1) / b1^2`` (the SE of a median effective
      level; Finney, 1971, *Probit Analysis*; Agresti, 2013, *Categorical Data Analysis*).
    * "auto": "delta" for the logistic cut, "bootstrap" otherwise.
    """
    kw = {"method": method, "smoothing": smoothing, "false_pass_weight": false_pass_weight,
          "step": step}
    res = contrasting_groups_cut(scores, qualified, **kw)
    x = np.asarray(scores, dtype=float)
    g = np.asarray(qualified, dtype=float)
    se_method = str(se_method).lower()
    if se_method == "auto":
        se_method = "delta" if res.method == "contrasting_groups_logistic" else "bootstrap"
    if se_method == "delta":
        if res.method != "contrasting_groups_logistic":
            raise PsychometricsError("se_method 'delta' needs method='logistic'")
        b0, b1 = res.details["intercept"], res.details["slope"]
        cov = _logistic_cov(x, g, b0, b1)
        c = res.cut
        var = (cov[0, 0] + 2 * c * cov[0, 1] + c * c * cov[1, 1]) / b1**2
        return CutStandardError(float(np.sqrt(var)), "delta", int(x.size))
    if se_method != "bootstrap":
        raise PsychometricsError(
            f"se_method must be 'auto', 'bootstrap' or 'delta'; got {se_method!r}")

    def cut(idx):
        return contrasting_groups_cut(x[idx], g[idx], **kw).cut

    se, failed = bootstrap_se(cut, x.size, n_boot=n_boot, seed=seed)
    return CutStandardError(se, "bootstrap_candidates", int(x.size), n_boot, failed, seed)


def _logistic_cov(x: np.ndarray, y: np.ndarray, b0: float, b1: float) -> np.ndarray:
    """Inverse Fisher information of (b0, b1) at the estimates: ``(X' W X)^-1``,
    ``W = diag(p (1 - p))``."""
    p = 1 / (1 + np.exp(-(b0 + b1 * x)))
    design = np.column_stack([np.ones_like(x), x])
    info = design.T @ (design * (p * (1 - p))[:, None])
    try:
        return np.linalg.inv(info)
    except np.linalg.LinAlgError:
        raise PsychometricsError("the logistic fit's information matrix is singular") from None


def borderline_regression_cut_se(scores, ratings, *, borderline: float = 1.0,
                                 se_method: str = "regression", n_boot: int = DEFAULT_N_BOOT,
                                 seed: int = DEFAULT_SEED) -> CutStandardError:
    """Standard error over candidates of the borderline-regression cut.

    The cut ``b0 + b1 B`` is the fitted mean score at the borderline rating B, linear in the
    estimates, so its least-squares standard error is exact (no delta approximation needed):
    ``SE = s sqrt(1/n + (B - mean r)^2 / S_rr)`` with ``s`` the residual SD (n - 2) and ``S_rr``
    the ratings' sum of squared deviations (Draper & Smith, 1998, *Applied Regression Analysis*,
    3rd ed., section 1.4, the standard error of the fitted value at X0). ``se_method="bootstrap"`` resamples
    candidates (pairs of score and rating) instead (Efron & Tibshirani, 1993, ch. 9), which does
    not lean on constant residual variance.
    """
    res = borderline_regression_cut(scores, ratings, borderline=borderline)
    x = np.asarray(scores, dtype=float)
    r = np.asarray(ratings, dtype=float)
    se_method = str(se_method).lower()
    if se_method == "regression":
        s = res.details["residual_sd"]
        srr = float(((r - r.mean()) ** 2).sum())
        se = s * np.sqrt(1 / x.size + (float(borderline) - r.mean()) ** 2 / srr)
        return CutStandardError(float(se), "regression", int(x.size))
    if se_method != "bootstrap":
        raise PsychometricsError(
            f"se_method must be 'regression' or 'bootstrap'; got {se_method!r}")

    def cut(idx):
        return borderline_regression_cut(x[idx], r[idx], borderline=borderline).cut

    se, failed = bootstrap_se(cut, x.size, n_boot=n_boot, seed=seed)
    return CutStandardError(se, "bootstrap_candidates", int(x.size), n_boot, failed, seed)
