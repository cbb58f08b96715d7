"""Blueprints, enemies, exposure, forms and automated assembly (issue 11): blueprint validation
names the bad field; assembly always meets the blueprint, never places enemies together and
respects the exposure ceiling (property tests over random banks); its information at the cut is
the optimum found by brute force on a tiny bank; infeasible constraints are named; LOFT forms
are unique; pooled forms are claimed once each even by concurrent claimers (SQLite and
PostgreSQL)."""
from __future__ import annotations

import itertools
import random
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from itembank.assembly import (
    AssemblyError,
    AssemblyTarget,
    Bank,
    InfeasibleAssembly,
    Slots,
    assemble_form,
    assemble_loft_form,
    solve,
)
from itembank.authoring import create_item, publish_version
from itembank.blueprints import (
    BlueprintError,
    check_domains,
    largest_remainder,
    save_blueprint,
)
from itembank.enemies import add_enemy, enemies_of, remove_enemy
from itembank.exposure import exposure_counts, record_delivery
from itembank.forms import (
    FormError,
    add_to_form,
    coverage,
    create_draft_form,
    form_placements,
    publish_form,
    remove_from_form,
    unscored_versions,
)
from itembank.information import information_by_version
from itembank.models import Form, FormItem, Item, ItemVersion
from itembank.parameters import ParameterValues, supersede_parameters
from itembank.pool import claim_form, fill_pool, pool_status
from microcred.db import ImmutableRowError
from psychometrics.irt.information import item_information
from psychometrics.irt.models import ItemParameters

#: the database-independent tests run on SQLite only; pool claims and LOFT starts run on both
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

# ------------------------------------------------------------------ blueprints


@SQLITE_ONLY
def test_blueprint_by_counts_derives_weights_and_by_weights_derives_counts(db):
    bp = save_blueprint(db, code="BP-C", name="Counts", domains=[
        {"code": "A", "name": "Alpha", "items_on_form": 6},
        {"code": "A.1", "name": "Alpha one", "items_on_form": 2, "parent_code": "A"},
        {"code": "B", "name": "Beta", "items_on_form": 4, "pretest_items": 2}])
    assert [(d.code, d.items_on_form, round(d.weight, 3), d.parent_code, d.pretest_items)
            for d in bp.domains] == [("A", 6, 0.6, None, 0), ("A.1", 2, 0.2, "A", 0),
                                     ("B", 4, 0.4, None, 2)]
    # weights as percentages; 40 items split 33.3/33.3/33.4 -> 13/13/14 (largest remainder)
    bp2 = save_blueprint(db, code="BP-W", name="Weights", total_items=40, domains=[
        {"code": "X", "name": "X", "weight": 33.3}, {"code": "Y", "name": "Y", "weight": 33.3},
        {"code": "Z", "name": "Z", "weight": 33.4}])
    assert [d.items_on_form for d in bp2.domains] == [13, 13, 14]
    assert sum(d.weight for d in bp2.domains) == pytest.approx(1.0)
    # Hamilton's method, the textbook case: quotas 4.5/3.3/2.2 of 10 -> 5/3/2
    assert largest_remainder([0.45, 0.33, 0.22], 10) == [5, 3, 2]


@pytest.mark.parametrize(("domains", "extra", "field", "message"), [
    ([], {}, "domains", "at least one domain"),
    ([{"code": "A", "name": "A", "items_on_form": 2}, {"code": "A", "name": "B",
                                                       "items_on_form": 1}],
     {}, "domains[1].code", "domain code A is used twice"),
    ([{"code": "A", "name": "A", "weight": 0.5}, {"code": "B", "name": "B", "weight": 0.4}],
     {"total_items": 10}, "domains", r"sum to 0.9; they must sum to 1 \(or to 100"),
    ([{"code": "A", "name": "A", "items_on_form": 2},
      {"code": "A1", "name": "A1", "items_on_form": 3, "parent_code": "A"}],
     {}, "domains[1].items_on_form", "subdomains of A ask for 3 items; the domain has 2"),
    ([{"code": "A", "name": "A", "items_on_form": 2},
      {"code": "A1", "name": "A1", "items_on_form": 1, "parent_code": "Q"}],
     {}, "domains[1].parent_code", "'Q' is not a top-level domain"),
    ([{"code": "A", "name": "", "items_on_form": 2}], {}, "domains[0].name", "needs a name"),
    ([{"code": "A", "name": "A", "items_on_form": -1}], {}, "domains[0].items_on_form",
     "whole number from 0"),
    ([{"code": "A", "name": "A"}], {}, "domains[0].items_on_form", "needs an item count"),
    ([{"code": "A b", "name": "A", "items_on_form": 1}], {}, "domains[0].code", "letters"),
    ([{"code": "A", "name": "A", "items_on_form": 0}], {}, "domains", "sum to 0"),
])
def test_blueprint_validation_names_the_field(domains, extra, field, message):
    with pytest.raises(BlueprintError, match=message) as caught:
        check_domains(domains, **extra)
    assert caught.value.field == field


@SQLITE_ONLY
def test_a_refused_blueprint_writes_nothing(db):
    with pytest.raises(BlueprintError, match="domain code A is used twice"):
        save_blueprint(db, code="BP-BAD", name="Bad", domains=[
            {"code": "A", "name": "A", "items_on_form": 1},
            {"code": "A", "name": "A again", "items_on_form": 1}])
    with pytest.raises(BlueprintError, match="the blueprint needs a name"):
        save_blueprint(db, code="BP-BAD", name=" ", domains=[
            {"code": "A", "name": "A", "items_on_form": 1}])
    from itembank.models import Blueprint
    assert db.scalar(select(Blueprint).where(Blueprint.code == "BP-BAD")) is None


@SQLITE_ONLY
def test_blueprint_codes_are_unique_and_an_edit_replaces_the_domains(db):
    bp = save_blueprint(db, code="BP-1", name="One", domains=[
        {"code": "A", "name": "A", "items_on_form": 1}])
    with pytest.raises(BlueprintError, match="code BP-1 already exists"):
        save_blueprint(db, code="BP-1", name="Again", domains=[
            {"code": "A", "name": "A", "items_on_form": 1}])
    save_blueprint(db, code="BP-1", name="One, revised", blueprint=bp, domains=[
        {"code": "A", "name": "A", "items_on_form": 2}, {"code": "B", "name": "B",
                                                         "items_on_form": 1}])
    db.commit()
    assert [(d.code, d.items_on_form) for d in bp.domains] == [("A", 2), ("B", 1)]


# ------------------------------------------------------------------ a small real bank

OPTIONS = {"options": [{"id": x, "text": f"Option {x}"} for x in "ABCD"]}


def _item(db, code, domain, *, a=1.0, b=0.0, publish=True, meta=None):
    v = create_item(db, code=code, item_type_name="single_choice", domain_code=domain,
                    stem=f"{code}?", interaction=OPTIONS, key={"correct": ["A"]},
                    meta=meta)
    if publish:
        publish_version(db, v)
        if a is not None:
            supersede_parameters(db, [ParameterValues(v.id, "2pl", a, b)], source="test")
    return v


def _blueprint(db, code="BP", counts=(("A", 2), ("B", 1))):
    return save_blueprint(db, code=code, name=code, domains=[
        {"code": c, "name": f"Domain {c}", "items_on_form": n} for c, n in counts])


@SQLITE_ONLY
def test_enemies_are_symmetric_and_refused_on_one_form(db):
    bp = _blueprint(db)
    a1, a2, b1 = _item(db, "E-A1", "A"), _item(db, "E-A2", "A"), _item(db, "E-B1", "B")
    add_enemy(db, b1.item, a1.item, reason="A1 gives away B1's answer")
    add_enemy(db, a1.item, b1.item)  # the same pair, asked the other way: no second row
    assert enemies_of(db, a1.item_id) == [b1.item_id]
    assert enemies_of(db, b1.item_id) == [a1.item_id]
    form = create_draft_form(db, code="F-ENEMY", blueprint=bp)
    add_to_form(db, form, a1)
    add_to_form(db, form, a2)
    with pytest.raises(FormError, match="items E-A1 and E-B1 are enemies"):
        add_to_form(db, form, b1)
    assert remove_enemy(db, a1.item, b1.item) is True
    add_to_form(db, form, b1)
    publish_form(db, form)
    db.commit()
    assert [fi.position for fi in form.items] == [0, 1, 2]


@SQLITE_ONLY
def test_the_form_builder_tracks_coverage_and_publishes_only_a_complete_form(db):
    bp = _blueprint(db)
    a1, a2, b1 = _item(db, "FB-A1", "A"), _item(db, "FB-A2", "A"), _item(db, "FB-B1", "B")
    draft = _item(db, "FB-D", "A", publish=False)
    form = create_draft_form(db, code="F-BUILD", blueprint=bp)
    add_to_form(db, form, b1)
    add_to_form(db, form, a1)
    assert [(c.code, c.required, c.placed) for c in coverage(bp, form_placements(db, form))] \
        == [("A", 2, 1), ("B", 1, 1)]
    with pytest.raises(FormError, match="domain A needs 2 scored items, has 1"):
        publish_form(db, form)
    with pytest.raises(FormError, match="version 1 is draft"):
        add_to_form(db, form, draft)
    with pytest.raises(FormError, match="FB-A1 appears twice"):
        add_to_form(db, form, a1)
    add_to_form(db, form, a2)
    remove_from_form(db, form, b1.id)
    assert [v.id for v, _ in form_placements(db, form)] == [a1.id, a2.id]
    add_to_form(db, form, b1)
    publish_form(db, form)
    db.commit()
    # published: blueprint domain order, and the items are fixed
    assert [v.id for v, _ in form_placements(db, form)] == [a1.id, a2.id, b1.id]
    with pytest.raises(FormError, match="is published"):
        remove_from_form(db, form, a1.id)
    row = db.scalar(select(FormItem).where(FormItem.form_id == form.id).limit(1))
    db.delete(row)
    with pytest.raises(ImmutableRowError):
        db.flush()
    db.rollback()


@SQLITE_ONLY
def test_exposure_counts_deliveries_and_unclaimed_pooled_forms(db):
    bp = _blueprint(db, counts=(("A", 1),))
    v1, v2 = _item(db, "X-1", "A", b=0.0), _item(db, "X-2", "A", b=2.5)
    form = assemble_form(db, code="F-X", blueprint=bp, target=AssemblyTarget(cut_theta=0.0))
    assert [fi.item_version_id for fi in form.items] == [v1.id]
    record_delivery(db, form.id)
    record_delivery(db, form.id)
    db.flush()
    assert exposure_counts(db) == {v1.id: 2}
    # an exposure ceiling of 2 bars X-1: the next form takes X-2
    again = assemble_form(db, code="F-X2", blueprint=bp,
                          target=AssemblyTarget(cut_theta=0.0, exposure_ceiling=2))
    assert [fi.item_version_id for fi in again.items] == [v2.id]
    record_delivery(db, again.id)
    db.flush()
    with pytest.raises(InfeasibleAssembly, match=r"domain A needs 1 items, 0 eligible .*"
                                                 r"under the exposure ceiling of 1"):
        assemble_form(db, code="F-X3", blueprint=bp,
                      target=AssemblyTarget(cut_theta=0.0, exposure_ceiling=1))


@SQLITE_ONLY
def test_infeasible_constraints_are_named(db):
    bp = _blueprint(db, counts=(("A", 2), ("B", 1)))
    a1, a2 = _item(db, "N-A1", "A"), _item(db, "N-A2", "A")
    _item(db, "N-A3", "A", a=None)  # published, no parameters: not eligible for a scored slot
    b1 = _item(db, "N-B1", "B")
    target = AssemblyTarget(cut_theta=0.0)
    bp3 = _blueprint(db, code="BP3", counts=(("A", 3), ("B", 1)))
    with pytest.raises(InfeasibleAssembly, match=r"domain A needs 3 items, 2 eligible") as e:
        assemble_form(db, code="F-N", blueprint=bp3, target=target)
    assert e.value.extra["constraint"] == "domain A"
    add_enemy(db, a1.item, b1.item)
    add_enemy(db, a2.item, b1.item)
    with pytest.raises(InfeasibleAssembly, match="enemy items: no form meets the blueprint"):
        assemble_form(db, code="F-N", blueprint=bp, target=target)
    remove_enemy(db, a1.item, b1.item)
    remove_enemy(db, a2.item, b1.item)
    # a target curve out of reach: three 2PL items (a = 1) give at most 0.75 at theta 0
    curve = AssemblyTarget.from_dict({"target": {"thetas": [0.0], "information": [5.0],
                                                 "tolerance": 0.5}})
    with pytest.raises(InfeasibleAssembly, match="cannot be matched within the tolerance of "
                                                 "0.5: the closest form misses it by 4.250"):
        assemble_form(db, code="F-N", blueprint=bp, target=curve)
    db.rollback()


def test_assembly_target_validation_names_the_field():
    with pytest.raises(AssemblyError, match="assembly.cut_theta must be a number") as e:
        AssemblyTarget.from_dict({"cut_theta": "high"})
    assert e.value.extra["field"] == "assembly.cut_theta"
    with pytest.raises(AssemblyError, match="unknown field 'cut'"):
        AssemblyTarget.from_dict({"cut": 1})
    with pytest.raises(AssemblyError, match="exposure_ceiling must be a whole number"):
        AssemblyTarget.from_dict({"exposure_ceiling": 0})
    with pytest.raises(AssemblyError, match="same length"):
        AssemblyTarget.from_dict({"target": {"thetas": [0, 1], "information": [1],
                                             "tolerance": 1}})
    assert AssemblyTarget.from_dict({"cut_theta": 0.5, "exposure_ceiling": 3}).as_dict() == {
        "cut_theta": 0.5, "exposure_ceiling": 3}


def test_information_matches_the_2pl_formula():
    # Lord (1980), eq. 5-9 for the 2PL: I(theta) = a^2 P (1 - P); at theta = b, a^2 / 4
    class Row:
        item_version_id, model, a, b, c, thresholds = 7, "2pl", 1.6, 0.5, 0.0, None
    info = information_by_version([Row()], [0.5, 1.5])[7]
    p = 1 / (1 + np.exp(-1.6 * (1.5 - 0.5)))
    assert info == pytest.approx([1.6**2 / 4, 1.6**2 * p * (1 - p)], rel=1e-6)


# ------------------------------------------------------------------ the program, in memory


def _bank(n, domains, rng, *, thetas=(0.0,), enemy_pairs=0, exposure_max=0, pretest=0,
          subdomains=False):
    a = rng.uniform(0.5, 2.0, n)
    b = rng.normal(0, 1, n)
    info = item_information(ItemParameters("2pl", a, b), np.asarray(thetas)).reshape(n, -1)
    dom = [domains[i % len(domains)] for i in range(n)]
    pre = np.zeros(n, dtype=bool)
    pre[:pretest] = True
    pairs = set()
    while len(pairs) < enemy_pairs:
        i, j = sorted(rng.choice(n, 2, replace=False).tolist())
        pairs.add((i, j))
    return Bank(version_ids=np.arange(1, n + 1), item_ids=np.arange(1, n + 1),
                codes=[f"I{i}" for i in range(n)], domains=dom,
                subdomains=[f"{d}.s" if subdomains and i % 3 == 0 else None
                            for i, d in enumerate(dom)],
                operational=~pre, pretest=pre, info=info, thetas=tuple(thetas),
                exposure=rng.integers(0, exposure_max + 1, n), enemies=sorted(pairs))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(8, 60), n_domains=st.integers(1, 3),
       per_domain=st.integers(1, 4), enemies=st.integers(0, 25), ceiling=st.integers(1, 4),
       pretest=st.integers(0, 6), randomness=st.sampled_from([0.0, 0.3]),
       subdomains=st.booleans())
def test_assembly_always_meets_its_constraints(seed, n, n_domains, per_domain, enemies,
                                               ceiling, pretest, randomness, subdomains):
    rng = np.random.default_rng(seed)
    codes = [f"D{k}" for k in range(n_domains)]
    bank = _bank(n, codes, rng, enemy_pairs=enemies, exposure_max=4, pretest=pretest,
                 subdomains=subdomains)
    slots = Slots(domains=tuple((c, per_domain) for c in codes),
                  subdomains=tuple((c, f"{c}.s", 1) for c in codes) if subdomains else (),
                  pretest=((codes[0], 1),) if pretest else ())
    target = AssemblyTarget(cut_theta=0.0, exposure_ceiling=ceiling, randomness=randomness)
    try:
        found = solve(bank, slots, target, rng=random.Random(seed))
    except InfeasibleAssembly as exc:
        assert exc.extra["constraint"]
        return
    picked = set(found.scored) | set(found.pretest)
    for c in codes:
        assert sum(bank.domains[i] == c for i in found.scored) == per_domain
        if subdomains:
            assert sum(bank.subdomains[i] == f"{c}.s" for i in found.scored) == 1
    assert all(bank.operational[i] for i in found.scored)
    assert all(bank.pretest[i] for i in found.pretest)
    assert len(found.pretest) == (1 if pretest else 0)
    assert all(bank.exposure[i] < ceiling for i in picked)
    assert not any(a in picked and b in picked for a, b in bank.enemies)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), enemies=st.integers(0, 6), cut=st.floats(-2, 2))
def test_information_at_the_cut_is_the_brute_force_optimum(seed, enemies, cut):
    rng = np.random.default_rng(seed)
    bank = _bank(12, ["A", "B"], rng, thetas=(cut,), enemy_pairs=enemies)
    slots = Slots(domains=(("A", 3), ("B", 2)), subdomains=(), pretest=())
    best = None
    a_rows = [i for i in range(12) if bank.domains[i] == "A"]
    b_rows = [i for i in range(12) if bank.domains[i] == "B"]
    for pick in itertools.product(itertools.combinations(a_rows, 3),
                                  itertools.combinations(b_rows, 2)):
        chosen = set(pick[0]) | set(pick[1])
        if any(a in chosen and b in chosen for a, b in bank.enemies):
            continue
        total = bank.info[list(chosen), 0].sum()
        best = total if best is None else max(best, total)
    target = AssemblyTarget(cut_theta=cut)
    if best is None:
        with pytest.raises(InfeasibleAssembly):
            solve(bank, slots, target)
        return
    found = solve(bank, slots, target)
    assert found.information[0] == pytest.approx(best, rel=1e-6)


def test_a_target_curve_is_matched_within_its_tolerance():
    rng = np.random.default_rng(11)
    thetas = (-1.0, 0.0, 1.0)
    bank = _bank(120, ["A", "B"], rng, thetas=thetas)
    slots = Slots(domains=(("A", 6), ("B", 4)), subdomains=(), pretest=())
    target = AssemblyTarget(thetas=thetas, information=(3.0, 4.0, 3.0), tolerance=0.25)
    found = solve(bank, slots, target)
    assert all(abs(g - w) <= 0.25 + 1e-6 for g, w in zip(found.information, (3.0, 4.0, 3.0)))


# ------------------------------------------------------------------ LOFT and the pool


def _loft_bank(db, n_per_domain=6):
    bp = _blueprint(db, code="BP-LOFT", counts=(("A", 2), ("B", 2)))
    rng = random.Random(5)
    for d in "AB":
        for k in range(n_per_domain):
            _item(db, f"L-{d}{k}", d, a=rng.uniform(0.8, 1.6), b=rng.gauss(0, 1))
    db.commit()
    return bp


def test_loft_forms_are_unique_and_the_pool_is_claimed_once_each(db):
    bp = _loft_bank(db)
    target = AssemblyTarget(cut_theta=0.0, randomness=0.0)  # even with no randomness
    forms = [assemble_loft_form(db, loft_key="EX-L", blueprint=bp, target=target, seed=k)
             for k in range(6)]
    sets = {frozenset(fi.item_version_id for fi in f.items) for f in forms}
    assert len(sets) == 6
    assert all(f.kind == "loft" and f.is_published for f in forms)
    made = fill_pool(db, pool="EX-L", blueprint=bp, target=target, size=4, seed=1)
    db.commit()
    all_sets = {frozenset(fi.item_version_id for fi in db.get(Form, fid).items)
                for fid in made} | sets
    assert len(all_sets) == 10  # pooled forms are unique against the earlier ones too
    assert pool_status(db, "EX-L").waiting == 4
    claimed = [claim_form(db, "EX-L") for _ in range(5)]
    db.commit()
    assert sorted(claimed[:4]) == sorted(made) and claimed[4] is None
    assert pool_status(db, "EX-L").claimed == 4


def test_concurrent_claims_never_take_one_form_twice(database, db):
    bp = _loft_bank(db, n_per_domain=8)
    made = fill_pool(db, pool="EX-C", blueprint=bp, target=AssemblyTarget(randomness=0.3),
                     size=24, seed=3)
    db.commit()
    got: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(6)

    def claimer() -> None:
        barrier.wait()
        while True:
            with database.session() as s:
                form_id = claim_form(s, "EX-C")
                s.commit()
            if form_id is None:
                return
            with lock:
                got.append(form_id)

    threads = [threading.Thread(target=claimer) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == sorted(made)  # every form once, none twice


@SQLITE_ONLY
def test_pretest_slots_ride_along_unscored(db):
    import itembank.forms as forms_module

    bp = save_blueprint(db, code="BP-PRE", name="Pretest", domains=[
        {"code": "A", "name": "A", "items_on_form": 2, "pretest_items": 1}])
    for k in range(3):
        _item(db, f"P-A{k}", "A")
    newbie = _item(db, "P-NEW", "A", a=None, publish=False)
    # a pretest version (the review workflow's status; set here directly)
    statuses = forms_module.PRETEST_STATUSES
    db.execute(ItemVersion.__table__.update().where(ItemVersion.id == newbie.id)
               .values(status=statuses[0]))
    db.expire_all()
    form = assemble_form(db, code="F-PRE", blueprint=bp, target=AssemblyTarget())
    db.commit()
    assert unscored_versions(db, form.id) == {newbie.id}
    assert sum(fi.scored for fi in form.items) == 2


@SQLITE_ONLY
def test_item_of_unknown_form_code_refused(db):
    bp = _blueprint(db)
    create_draft_form(db, code="F-DUP", blueprint=bp)
    with pytest.raises(FormError, match="code F-DUP already exists"):
        create_draft_form(db, code="F-DUP", blueprint=bp)
    assert db.scalar(select(Item).limit(1)) is None
