"""Automated test assembly as a mixed-integer program (van der Linden, 2005, *Linear Models for
Optimal Test Design*), solved by HiGHS through :func:`scipy.optimize.milp`.

One binary variable x_i per eligible item (the newest deliverable version of each item):

- blueprint counts: for each domain d, sum_{i in d} x_i = n_d (scored items, operational
  versions with parameters); for each subdomain likewise; for each domain's pretest slots,
  sum_{i in d, pretest} x_i = p_d (pretest versions, unscored);
- enemies: x_i + x_j <= 1 for every enemy pair;
- exposure: x_i = 0 when the item's exposure has reached the ceiling;
- uniqueness (linear-on-the-fly): sum_{i in F} x_i <= |F| - 1 for a form F already used;
- objective, either the test information at the cut, maximise sum_i I_i(theta_c) x_i (the
  "maximin at one point" of Theunissen, 1985), or a target curve T(theta_k) at several
  abilities: minimise y subject to |sum_i I_i(theta_k) x_i - T_k| <= y <= tolerance.

A linear-on-the-fly form perturbs each item's weight by a seeded factor in [1 - r, 1 + r], so
candidates get different near-optimal forms. A constraint that cannot be met is named in an
:class:`InfeasibleAssembly` ("domain D2 needs 8 items, 5 eligible").
"""
from __future__ import annotations

import math
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from itembank.blueprints import top_domains
from itembank.enemies import enemy_pairs
from itembank.exposure import exposure_counts
from itembank.forms import (
    DELIVERABLE_STATUSES,
    OPERATIONAL_STATUSES,
    PRETEST_STATUSES,
    FormError,
    build_form,
    item_set_digest,
    subdomain_of,
)
from itembank.information import information_by_version
from itembank.models import LOFT, Blueprint, Form, Item, ItemParameter, ItemVersion
from microcred.errors import DomainError
from microcred.inputs import is_whole

#: how long one solve may take before the best form found so far is used
TIME_LIMIT_S = 10.0
#: a solve stops when its form is within this fraction of the best possible
MIP_GAP = 1e-6
#: the relative gap a target-curve solve stops at (its deviation y within 10% of the best)
CURVE_GAP = 0.1
MAX_THETA = 6.0


class AssemblyError(DomainError):
    """An assembly target that is malformed; ``field`` names the part."""

    status, code = 422, "invalid_assembly_target"


class InfeasibleAssembly(DomainError):
    """No form meets the constraints; the message (and ``constraint``) names which one."""

    status, code = 422, "infeasible_assembly"


@dataclass(frozen=True)
class AssemblyTarget:
    """What assembly aims at: information at ``cut_theta``, or the target curve ``information``
    at ``thetas`` within ``tolerance``; an optional exposure ceiling; and for
    linear-on-the-fly forms the ``randomness`` r of the item weights."""

    cut_theta: float = 0.0
    thetas: tuple[float, ...] = ()
    information: tuple[float, ...] = ()
    tolerance: float | None = None
    exposure_ceiling: int | None = None
    randomness: float = 0.0

    @property
    def matches_curve(self) -> bool:
        return bool(self.thetas)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"cut_theta": self.cut_theta}
        if self.matches_curve:
            out["target"] = {"thetas": list(self.thetas), "information": list(self.information),
                             "tolerance": self.tolerance}
        if self.exposure_ceiling is not None:
            out["exposure_ceiling"] = self.exposure_ceiling
        if self.randomness:
            out["randomness"] = self.randomness
        return out

    @classmethod
    def from_dict(cls, raw: Any) -> AssemblyTarget:
        """Read and check a target such as ``{"cut_theta": 0.5, "exposure_ceiling": 200}``."""
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise AssemblyError("the assembly target must be an object", field="assembly")
        unknown = sorted(set(raw) - {"cut_theta", "target", "exposure_ceiling", "randomness"})
        if unknown:
            raise AssemblyError(f"assembly: unknown field {unknown[0]!r}; the fields are "
                                "cut_theta, target, exposure_ceiling, randomness",
                                field=f"assembly.{unknown[0]}")
        cut = _number(raw.get("cut_theta", 0.0), "assembly.cut_theta", -MAX_THETA, MAX_THETA)
        ceiling = raw.get("exposure_ceiling")
        if ceiling is not None and (not isinstance(ceiling, int) or isinstance(ceiling, bool)
                                    or ceiling < 1):
            raise AssemblyError("assembly.exposure_ceiling must be a whole number of at least 1 "
                                f"(or absent), got {ceiling!r}", field="assembly.exposure_ceiling")
        randomness = _number(raw.get("randomness", 0.0), "assembly.randomness", 0.0, 0.9)
        target = raw.get("target")
        thetas: tuple[float, ...] = ()
        info: tuple[float, ...] = ()
        tolerance = None
        if target is not None:
            if not isinstance(target, dict):
                raise AssemblyError("assembly.target must be an object with thetas, information "
                                    "and tolerance", field="assembly.target")
            t_raw, i_raw = target.get("thetas"), target.get("information")
            if not isinstance(t_raw, list) or not isinstance(i_raw, list) or not t_raw \
                    or len(t_raw) != len(i_raw) or len(t_raw) > 50:
                raise AssemblyError("assembly.target: thetas and information must be lists of "
                                    "the same length, 1 to 50 values",
                                    field="assembly.target.thetas")
            thetas = tuple(_number(t, f"assembly.target.thetas[{k}]", -MAX_THETA, MAX_THETA)
                           for k, t in enumerate(t_raw))
            info = tuple(_number(v, f"assembly.target.information[{k}]", 0.0, 1e6)
                         for k, v in enumerate(i_raw))
            tolerance = _number(target.get("tolerance"), "assembly.target.tolerance", 0.0, 1e6)
        return cls(cut_theta=cut, thetas=thetas, information=info, tolerance=tolerance,
                   exposure_ceiling=ceiling, randomness=randomness)


def target_from_fields(*, cut_theta: str = "", exposure_ceiling: str = "", curve: str = "",
                       tolerance: str = "") -> dict[str, Any]:
    """An assembly target (as :meth:`AssemblyTarget.from_dict` takes it) from a screen's text
    fields; ``curve`` is written ``theta:information`` pairs, e.g. ``-1:4, 0:6, 1:4``. The
    result is checked, and a bad part named (``assembly.target.thetas``)."""
    raw: dict[str, Any] = {}
    if cut_theta.strip():
        raw["cut_theta"] = cut_theta.strip()
    if exposure_ceiling.strip():
        text = exposure_ceiling.strip()
        raw["exposure_ceiling"] = int(text) if is_whole(text) else text
    if curve.strip():
        thetas, values = [], []
        for k, pair in enumerate(p for p in curve.replace(";", ",").split(",") if p.strip()):
            theta, sep, value = pair.partition(":")
            if not sep:
                raise AssemblyError(f"target curve: point {k + 1} ({pair.strip()!r}) must be "
                                    "written theta:information, e.g. 0:6",
                                    field="assembly.target.thetas")
            thetas.append(theta.strip())
            values.append(value.strip())
        raw["target"] = {"thetas": thetas, "information": values,
                         "tolerance": tolerance.strip() or None}
    target = AssemblyTarget.from_dict(raw)
    return target.as_dict()


def _number(raw: Any, name: str, low: float, high: float) -> float:
    if isinstance(raw, bool):
        raw = None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise AssemblyError(f"{name} must be a number from {low:g} to {high:g}, got {raw!r}",
                            field=name) from None
    if not (math.isfinite(value) and low <= value <= high):
        raise AssemblyError(f"{name} must be a number from {low:g} to {high:g}, got {raw!r}",
                            field=name)
    return value


# --------------------------------------------------------------------------- the bank's data


@dataclass
class Bank:
    """The eligible item versions of a bank as arrays (one row per item)."""

    version_ids: np.ndarray
    item_ids: np.ndarray
    codes: list[str]
    domains: list[str]
    subdomains: list[str | None]
    #: True: an operational version with parameters (may fill a scored slot)
    operational: np.ndarray
    #: True: a pretest version (may fill a pretest slot)
    pretest: np.ndarray
    #: item information at ``thetas``, shape (n, Q); row 0 where there are no parameters
    info: np.ndarray
    thetas: tuple[float, ...]
    exposure: np.ndarray
    #: enemy pairs as row indices (i < j)
    enemies: list[tuple[int, int]]

    @property
    def size(self) -> int:
        return int(self.version_ids.size)


def _target_thetas(target: AssemblyTarget) -> tuple[float, ...]:
    return target.thetas if target.matches_curve else (target.cut_theta,)


def load_bank(session: Session, target: AssemblyTarget) -> Bank:
    """Every item's newest deliverable version, with its information at the target's
    abilities, its exposure and its enemies (plain rows: no ORM objects for 2,000 items)."""
    rows = session.execute(
        select(ItemVersion.id, ItemVersion.item_id, ItemVersion.status,
               ItemVersion.domain_code, ItemVersion.subdomain_code, ItemVersion.meta, Item.code)
        .join(Item, Item.id == ItemVersion.item_id)
        .where(ItemVersion.status.in_(DELIVERABLE_STATUSES))
        .order_by(ItemVersion.item_id, ItemVersion.version.desc())).all()
    newest: dict[int, Any] = {}
    for v in rows:
        newest.setdefault(v.item_id, v)
    versions = list(newest.values())
    ids = [v.id for v in versions]
    thetas = _target_thetas(target)
    wanted = set(ids)
    params = [p for p in session.execute(
        select(ItemParameter.item_version_id, ItemParameter.model, ItemParameter.a,
               ItemParameter.b, ItemParameter.c, ItemParameter.thresholds)
        .where(ItemParameter.id.in_(select(func.max(ItemParameter.id))
                                    .group_by(ItemParameter.item_version_id))))
        if p.item_version_id in wanted]
    info_by = information_by_version(params, thetas)
    zero = np.zeros(len(thetas))
    info = np.array([info_by.get(i, zero) for i in ids]).reshape(len(ids), len(thetas))
    exposure = exposure_counts(session)
    index = {v.item_id: k for k, v in enumerate(versions)}
    pairs = [(index[a], index[b]) for a, b in enemy_pairs(session, index)]
    return Bank(
        version_ids=np.array(ids, dtype=int),
        item_ids=np.array([v.item_id for v in versions], dtype=int),
        codes=[v.code for v in versions],
        domains=[v.domain_code for v in versions],
        subdomains=[subdomain_of(v) for v in versions],
        operational=np.array([v.status in OPERATIONAL_STATUSES and v.id in info_by
                              for v in versions], dtype=bool),
        pretest=np.array([v.status in PRETEST_STATUSES for v in versions], dtype=bool),
        info=info, thetas=thetas,
        exposure=np.array([exposure.get(i, 0) for i in ids], dtype=int),
        enemies=[(min(p), max(p)) for p in pairs],
    )


def bank_versions(session: Session, bank: Bank, rows: Iterable[int]) -> list[ItemVersion]:
    """The ``ItemVersion`` objects of bank rows, in the order given."""
    ids = [int(bank.version_ids[i]) for i in rows]
    found = {v.id: v for v in session.scalars(select(ItemVersion).where(ItemVersion.id.in_(ids)))}
    return [found[i] for i in ids]


# --------------------------------------------------------------------------- the program


@dataclass(frozen=True)
class Slots:
    """A blueprint's demands as plain data: (code, count) per domain, per subdomain, and
    pretest (code, count) per domain."""

    domains: tuple[tuple[str, int], ...]
    subdomains: tuple[tuple[str, str, int], ...]
    pretest: tuple[tuple[str, int], ...]

    @classmethod
    def of(cls, blueprint: Blueprint) -> Slots:
        return cls(
            domains=tuple((d.code, d.items_on_form) for d in top_domains(blueprint)),
            subdomains=tuple((d.parent_code, d.code, d.items_on_form)
                             for d in blueprint.domains if d.parent_code is not None),
            pretest=tuple((d.code, d.pretest_items) for d in top_domains(blueprint)
                          if d.pretest_items))


@dataclass(frozen=True)
class Assembled:
    """One solved form: row indices into the bank, scored and pretest."""

    scored: tuple[int, ...]
    pretest: tuple[int, ...]
    #: test information of the scored items at each of the target's abilities
    information: tuple[float, ...]
    seconds: float

    def version_ids(self, bank: Bank) -> list[int]:
        return [int(bank.version_ids[i]) for i in (*self.scored, *self.pretest)]


def _upper_bounds(bank: Bank, slots: Slots, target: AssemblyTarget) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """Which rows may be chosen as scored (``op``) and as pretest (``pre``) items."""
    scored_domains = {code for code, _ in slots.domains}
    pretest_domains = {code for code, _ in slots.pretest}
    dom = np.array(bank.domains, dtype=object)
    under = (np.ones(bank.size, dtype=bool) if target.exposure_ceiling is None
             else bank.exposure < target.exposure_ceiling)
    op = bank.operational & np.isin(dom, list(scored_domains)) & under
    pre = bank.pretest & np.isin(dom, list(pretest_domains)) & under
    return op, pre


def _check_counts(bank: Bank, slots: Slots, target: AssemblyTarget, op: np.ndarray,
                  pre: np.ndarray) -> None:
    """The plain shortages, named before any solving."""
    dom = np.array(bank.domains, dtype=object)
    sub = np.array(bank.subdomains, dtype=object)
    ceiling = ("" if target.exposure_ceiling is None
               else f" under the exposure ceiling of {target.exposure_ceiling}")
    for code, n in slots.domains:
        have = int((op & (dom == code)).sum())
        if have < n:
            raise InfeasibleAssembly(
                f"domain {code} needs {n} items, {have} eligible (approved versions with "
                f"parameters{ceiling})", constraint=f"domain {code}")
    for parent, code, n in slots.subdomains:
        have = int((op & (dom == parent) & (sub == code)).sum())
        if have < n:
            raise InfeasibleAssembly(
                f"subdomain {code} of domain {parent} needs {n} items, {have} eligible "
                f"(approved versions with parameters{ceiling})", constraint=f"subdomain {code}")
    for code, n in slots.pretest:
        have = int((pre & (dom == code)).sum())
        if have < n:
            raise InfeasibleAssembly(
                f"domain {code} needs {n} pretest items, {have} eligible (pretest "
                f"versions{ceiling})", constraint=f"pretest {code}")


def solve(bank: Bank, slots: Slots, target: AssemblyTarget, *, rng: random.Random | None = None,
          used: Sequence[Iterable[int]] = (), use_enemies: bool = True,
          use_tolerance: bool = True) -> Assembled:
    """One form from ``bank`` to ``slots`` and ``target`` (``used``: sets of row indices of
    forms it must differ from). Raises :class:`InfeasibleAssembly` naming the constraint."""
    started = time.perf_counter()
    op, pre = _upper_bounds(bank, slots, target)
    _check_counts(bank, slots, target, op, pre)
    curve = target.matches_curve
    noise_all = np.zeros(bank.size)
    if rng is not None and target.randomness:
        noise_all = np.random.default_rng(rng.getrandbits(64)).uniform(-1.0, 1.0, bank.size)
    if not curve:
        op = op & _worth_considering(bank, slots, op, bank.info[:, 0] *
                                     (1.0 + target.randomness * noise_all),
                                     len(used))
    chosen = np.flatnonzero(op | pre)  # the program only sees rows that may be chosen
    m = chosen.size
    local = {int(g): k for k, g in enumerate(chosen)}
    n_vars = m + (2 if curve else 0)  # a curve adds y and a constant (see below)
    dom = np.array(bank.domains, dtype=object)[chosen]
    sub = np.array(bank.subdomains, dtype=object)[chosen]
    is_op, is_pre = op[chosen], pre[chosen]
    info = bank.info[chosen]
    noise = noise_all[chosen]
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    lo: list[float] = []
    hi: list[float] = []

    def add(members: np.ndarray, coef: np.ndarray | float, low: float, high: float) -> None:
        r = len(lo)
        rows.append(np.full(members.size, r))
        cols.append(members)
        vals.append(np.broadcast_to(np.asarray(coef, dtype=float), members.shape).copy())
        lo.append(low)
        hi.append(high)

    for code, n in slots.domains:
        add(np.flatnonzero(is_op & (dom == code)), 1.0, n, n)
    for parent, code, n in slots.subdomains:
        add(np.flatnonzero(is_op & (dom == parent) & (sub == code)), 1.0, n, n)
    for code, n in slots.pretest:
        add(np.flatnonzero(is_pre & (dom == code)), 1.0, n, n)
    if use_enemies:
        for a, b in bank.enemies:
            if a in local and b in local:
                add(np.array([local[a], local[b]]), 1.0, 0.0, 1.0)
    for form in used:
        members = np.array(sorted(local[i] for i in form if i in local), dtype=int)
        if members.size:
            add(members, 1.0, 0.0, members.size - 1)
    scored_weight = np.where(is_op, 1.0, 0.0)
    # pretest items: the least exposed first (a tiny cost that never outweighs information)
    exposure_cost = np.where(is_pre, 1e-6 * bank.exposure[chosen] / (1 + bank.exposure.max()),
                             0.0)
    c = np.zeros(n_vars)
    if curve:
        y = m
        for k, t in enumerate(target.information):
            members = np.flatnonzero(is_op)
            coef = info[members, k]
            # sum I x - y <= T  and  sum I x + y >= T
            add(np.append(members, y), np.append(coef, -1.0), -np.inf, t)
            add(np.append(members, y), np.append(coef, 1.0), t, np.inf)
        c[y] = 1.0
        # the constant variable (fixed at 1) adds the tolerance to the objective, so the
        # relative gap becomes "within 10% of the tolerance" rather than of a y near 0
        c[m + 1] = max(target.tolerance or 0.0, 1e-3)
        c[:m] = 1e-6 * noise * scored_weight * target.randomness + exposure_cost
    else:
        weight = info[:, 0] * (1.0 + target.randomness * noise)
        c[:m] = -weight * scored_weight + exposure_cost
    integrality = np.ones(n_vars)
    upper = np.ones(n_vars)
    lower = np.zeros(n_vars)
    if curve:
        integrality[m] = integrality[m + 1] = 0
        upper[m] = target.tolerance if use_tolerance and target.tolerance is not None else np.inf
        lower[m + 1] = 1.0
    constraints = []
    if lo:
        matrix = coo_matrix((np.concatenate(vals), (np.concatenate(rows),
                                                    np.concatenate(cols))),
                            shape=(len(lo), n_vars)).tocsr()
        constraints = [LinearConstraint(matrix, np.array(lo), np.array(hi))]
    # a curve is met once within tolerance: proving the closest fit optimal can take long
    gap = CURVE_GAP if curve else MIP_GAP
    result = milp(c, integrality=integrality, bounds=Bounds(lower, upper),
                  constraints=constraints,
                  options={"time_limit": TIME_LIMIT_S, "mip_rel_gap": gap})
    if result.x is None:
        _explain(bank, slots, target, used=used, use_enemies=use_enemies,
                 use_tolerance=use_tolerance, rng=rng)
    x = np.round(result.x[:m]).astype(bool)
    picked = chosen[x]
    scored = tuple(int(i) for i in picked if op[i])
    pretest = tuple(int(i) for i in picked if not op[i])
    totals = bank.info[list(scored)].sum(axis=0) if scored else np.zeros(len(bank.thetas))
    return Assembled(scored, pretest, tuple(float(v) for v in totals),
                     time.perf_counter() - started)


def _worth_considering(bank: Bank, slots: Slots, op: np.ndarray, weight: np.ndarray,
                       n_used: int) -> np.ndarray:
    """The rows an optimal form at the cut can be found among: in each cell (a subdomain, or the
    rest of a domain) that needs n items, its K best by weight, where K >= n + b + u with b the
    enemy pairs touching those K and u the forms to differ from. (If an optimum picked a row
    outside them, at least K - n + 1 of the K are unpicked and at most b + u of those are barred
    by an enemy in the form or a used form, so one can replace it at no loss.)"""
    keep = np.zeros(bank.size, dtype=bool)
    dom = np.array(bank.domains, dtype=object)
    sub = np.array(bank.subdomains, dtype=object)
    touching: dict[int, list[int]] = {}
    for a, b in bank.enemies:
        touching.setdefault(a, []).append(b)
        touching.setdefault(b, []).append(a)
    for code, n in slots.domains:
        subs = {s: k for parent, s, k in slots.subdomains if parent == code}
        in_domain = op & (dom == code)
        cells = [(in_domain & (sub == s), k) for s, k in subs.items()]
        cells.append((in_domain & ~np.isin(sub, list(subs)), n - sum(subs.values())))
        for mask, need in cells:
            rows = np.flatnonzero(mask)
            if rows.size == 0 or need <= 0:
                continue
            ranked = rows[np.argsort(-weight[rows], kind="stable")]
            k = min(rows.size, need + n_used + 1)
            while True:
                top = set(ranked[:k].tolist())
                blocked = sum(1 for a, b in bank.enemies if a in top or b in top)
                if k >= need + blocked + n_used or k == rows.size:
                    break
                k = min(rows.size, need + blocked + n_used)
            keep[ranked[:k]] = True
    return keep


def _explain(bank: Bank, slots: Slots, target: AssemblyTarget, *, used: Sequence[Any],
             use_enemies: bool, use_tolerance: bool, rng: random.Random | None) -> None:
    """Find which constraint made the program infeasible (by relaxing one at a time) and say."""
    if target.matches_curve and use_tolerance:
        try:
            closest = solve(bank, slots, target, used=used, use_enemies=use_enemies,
                            use_tolerance=False)
        except InfeasibleAssembly:
            pass
        else:
            misses = [abs(got - want) for got, want in zip(closest.information,
                                                           target.information)]
            k = int(np.argmax(misses))
            raise InfeasibleAssembly(
                f"the target information curve cannot be matched within the tolerance of "
                f"{target.tolerance:g}: the closest form misses it by {misses[k]:.3f} at "
                f"theta {target.thetas[k]:g}", constraint="target tolerance")
    if use_enemies and bank.enemies:
        try:
            solve(bank, slots, target, used=used, use_enemies=False, use_tolerance=False)
        except InfeasibleAssembly:
            pass
        else:
            raise InfeasibleAssembly(
                "enemy items: no form meets the blueprint without placing enemies together "
                f"({len(bank.enemies)} enemy pairs among the eligible items)",
                constraint="enemies")
    if used:
        raise InfeasibleAssembly(
            f"uniqueness: every form that meets the blueprint differs too little from the "
            f"{len(used)} forms already assembled for this exam", constraint="uniqueness")
    raise InfeasibleAssembly("no form meets the blueprint, the enemy relations and the exposure "
                             "ceiling together", constraint="blueprint")


# --------------------------------------------------------------------------- building forms


def assemble(session: Session, blueprint: Blueprint, target: AssemblyTarget, *,
             seed: int | None = None, bank: Bank | None = None) -> tuple[Bank, Assembled]:
    """Solve one form (see the module docstring); nothing is written."""
    bank = bank or load_bank(session, target)
    rng = random.Random(seed) if seed is not None else None
    return bank, solve(bank, Slots.of(blueprint), target, rng=rng)


def assemble_form(session: Session, *, code: str, blueprint: Blueprint, target: AssemblyTarget,
                  name: str = "", seed: int | None = None) -> Form:
    """Assemble a fixed form and store it published (for an exam's list of forms)."""
    bank, found = assemble(session, blueprint, target, seed=seed)
    return _store(session, bank, found, code=code, blueprint=blueprint, name=name)


def _store(session: Session, bank: Bank, found: Assembled, *, code: str,
           blueprint: Blueprint, name: str = "", loft_key: str | None = None) -> Form:
    versions = bank_versions(session, bank, found.scored)
    pretest = bank_versions(session, bank, found.pretest)
    return build_form(session, code=code, blueprint=blueprint, versions=versions,
                      pretest=pretest, name=name, kind=LOFT if loft_key else "fixed",
                      loft_key=loft_key)


def loft_form_code(loft_key: str, digest: str) -> str:
    return f"{loft_key[:44]}-LOFT-{digest[:12]}"


def used_item_sets(session: Session, loft_key: str) -> set[str]:
    """Digests of the item sets already used by ``loft_key``'s forms."""
    return set(session.scalars(select(Form.item_set_digest).where(Form.loft_key == loft_key)))


def assemble_unique(session: Session, bank: Bank, slots: Slots, target: AssemblyTarget, *,
                    rng: random.Random, used_digests: set[str], max_tries: int = 25
                    ) -> tuple[Assembled, str]:
    """A form whose item set no form in ``used_digests`` has: a form that repeats one is
    solved again with that set forbidden."""
    forbidden: list[tuple[int, ...]] = []
    for _ in range(max_tries):
        found = solve(bank, slots, target, rng=rng, used=forbidden)
        digest = item_set_digest(found.version_ids(bank))
        if digest not in used_digests:
            return found, digest
        forbidden.append((*found.scored, *found.pretest))
    raise InfeasibleAssembly(f"uniqueness: {max_tries} assemblies in a row repeated forms "
                             "already used; the bank is too small for more unique forms",
                             constraint="uniqueness")


def assemble_loft_form(session: Session, *, loft_key: str, blueprint: Blueprint,
                       target: AssemblyTarget, seed: int, bank: Bank | None = None) -> Form:
    """A one-candidate form for the linear-on-the-fly exam ``loft_key``, unique among its
    forms (the unique index on (loft_key, item_set_digest) holds even against a racing
    assembly: the loser tries again)."""
    from sqlalchemy.exc import IntegrityError

    bank = bank or load_bank(session, target)
    rng = random.Random(seed)
    slots = Slots.of(blueprint)
    used = used_item_sets(session, loft_key)
    for _ in range(5):
        found, digest = assemble_unique(session, bank, slots, target, rng=rng,
                                        used_digests=used)
        savepoint = session.begin_nested()
        try:
            form = _store(session, bank, found, code=loft_form_code(loft_key, digest),
                          blueprint=blueprint, loft_key=loft_key)
        except (IntegrityError, FormError) as exc:
            # the same items as a form stored meanwhile (its code is made of the digest)
            savepoint.rollback()
            if isinstance(exc, FormError) and exc.extra.get("field") != "code":
                raise
            used.add(digest)
            continue
        savepoint.commit()
        return form
    raise InfeasibleAssembly("uniqueness: concurrent assemblies kept producing the same forms",
                             constraint="uniqueness")
