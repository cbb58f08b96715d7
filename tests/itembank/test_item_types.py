"""Scoring, response shapes and definitions of every item type, with property tests for what must
hold of all of them: a score is in [0, max_score], normalizing twice changes nothing, and the
public payload carries no key material."""
from __future__ import annotations

import json
import random
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from itembank.models import ItemVersion
from itembank.patterns import UnsafePatternError, check_pattern
from itembank.types import (
    ITEM_TYPES,
    ItemDefinitionError,
    ResponseShapeError,
    item_type,
    parse_number,
    point_in_region,
)

OPTS = [{"id": x, "text": f"Option {x}"} for x in "ABCD"]

# One valid definition of each type: (interaction, key, scoring), max_score 2 so that partial
# credit is visible as a fraction of 2.
DEFS: dict[str, tuple[dict, dict, dict]] = {
    "single_choice": ({"options": OPTS}, {"correct": ["C"]}, {}),
    "multiple_response": ({"options": OPTS}, {"correct": ["A", "C"]}, {"method": "partial"}),
    "true_false": ({}, {"correct": "false"}, {}),
    "text_entry": ({"max_length": 40},
                   {"answers": [{"value": "Hypertension", "match": "case_insensitive"},
                                {"value": r"I1[0-6](\.\d{1,2})?", "match": "pattern"},
                                {"value": "Hypertention", "credit": 0.5}]}, {}),
    "numeric_entry": ({"unit": "mg"}, {"value": 12.5},
                      {"tolerance": 0.02, "tolerance_mode": "relative"}),
    "ordering": ({"options": [{"id": x, "text": f"Step {x}"} for x in "CABD"]},
                 {"order": ["A", "B", "C", "D"]}, {"method": "pairwise"}),
    "matching": ({"sources": [{"id": s, "text": f"Code {s}"} for s in ("s1", "s2", "s3")],
                  "targets": [{"id": t, "text": f"Meaning {t}"} for t in ("t1", "t2", "t3", "t4")]},
                 {"pairs": {"s1": "t2", "s2": "t1", "s3": "t4"}}, {"method": "partial"}),
    "inline_choice": ({"sentence": "<p>Code [[g1]] first, then [[g2]].</p>",
                       "gaps": [{"id": "g1", "options": [{"id": "a", "text": "etiology"},
                                                         {"id": "b", "text": "manifestation"}]},
                                {"id": "g2", "options": [{"id": "c", "text": "etiology"},
                                                         {"id": "d", "text": "manifestation"}]}]},
                      {"correct": {"g1": "a", "g2": "d"}}, {"method": "partial"}),
    "hotspot": ({"image": {"src": "/media/" + "a" * 64, "alt": "A body chart", "width": 400,
                           "height": 300}},
                {"regions": [{"id": "r1", "shape": "rect", "coords": [10, 10, 50, 40]},
                             {"id": "r2", "shape": "circle", "coords": [200, 150, 20]},
                             {"id": "r3", "shape": "polygon",
                              "coords": [300, 200, 380, 200, 340, 280]}]}, {}),
}


def version(kind: str, **overrides) -> ItemVersion:
    interaction, key, scoring = DEFS[kind]
    return ItemVersion(item_type=kind, stem="<p>Stem</p>", max_score=2.0,
                       interaction=overrides.get("interaction", interaction),
                       key=overrides.get("key", key), scoring=overrides.get("scoring", scoring),
                       rationale="THE-RATIONALE")


def test_every_type_is_registered_and_its_example_is_valid():
    assert set(DEFS) == set(ITEM_TYPES)
    for kind, (interaction, key, scoring) in DEFS.items():
        item_type(kind).validate_definition(interaction, key, scoring)


@pytest.mark.parametrize("kind", sorted(DEFS))
def test_sample_responses_earn_full_and_no_credit(kind):
    v, t, rng = version(kind), item_type(kind), random.Random(1)
    right = t.sample_response(v, True, rng)
    assert t.score(v, t.normalize(v, right)) == 2.0
    wrong = t.sample_response(v, False, rng)
    assert t.score(v, t.normalize(v, wrong)) < 2.0
    assert t.score(v, None) == 0.0 and not t.is_answered(None)


# ---------------------------------------------------------------- per type


def test_true_false():
    v, t = version("true_false"), item_type("true_false")
    assert t.score(v, "false") == 2.0 and t.score(v, "true") == 0.0
    assert t.normalize(v, False) == "false"
    with pytest.raises(ResponseShapeError, match='"true" or "false"'):
        t.normalize(v, "yes")
    with pytest.raises(ItemDefinitionError, match="key.correct"):
        t.validate_definition({}, {"correct": True}, {})


def test_text_entry_matches_exact_case_insensitive_pattern_and_partial_answers():
    v, t = version("text_entry"), item_type("text_entry")
    assert t.score(v, t.normalize(v, "  hyperTENSION \n")) == 2.0  # case-insensitive, trimmed
    assert t.score(v, "I10") == 2.0 and t.score(v, "I11.9") == 2.0   # the pattern
    assert t.score(v, "I10.123") == 0.0                               # whole answer must match
    assert t.score(v, "I17") == 0.0
    assert t.score(v, "Hypertention") == 1.0                          # half credit, exact case
    assert t.score(v, "hypertention") == 0.0                          # exact means exact
    assert t.normalize(v, "high  blood\tpressure") == "high blood pressure"
    assert t.normalize(v, "   ") is None
    with pytest.raises(ResponseShapeError, match="at most 40"):
        t.normalize(v, "x" * 41)
    with pytest.raises(ResponseShapeError, match="must be text"):
        t.normalize(v, 12)


@pytest.mark.parametrize("pattern,message", [
    ("(a+)+b", "not a group"), ("(a|aa)*", "not a group"), (r"(\w)\1", "backreferences"),
    ("(?=x)x", "lookahead"), ("a*" * 6, "ways to match"), ("x" * 201, "at most 200"),
    ("(", "not a valid regular expression"),
])
def test_unsafe_patterns_are_refused_when_the_key_is_written(pattern, message):
    with pytest.raises(UnsafePatternError, match=message):
        check_pattern(pattern, 200)
    with pytest.raises(ItemDefinitionError, match=message) as err:
        item_type("text_entry").validate_definition(
            {}, {"answers": [{"value": "ok"}, {"value": pattern, "match": "pattern"}]}, {})
    assert err.value.field == "key.answers[1].value"


def test_text_entry_definition_errors_name_the_field():
    t = item_type("text_entry")
    with pytest.raises(ItemDefinitionError, match="full credit"):
        t.validate_definition({}, {"answers": [{"value": "a", "credit": 0.5}]}, {})
    with pytest.raises(ItemDefinitionError) as err:
        t.validate_definition({}, {"answers": [{"value": "a", "match": "fuzzy"}]}, {})
    assert err.value.field == "key.answers[0].match"


@pytest.mark.parametrize("text,expected", [
    ("12.5", "12.5"), ("12,5", "12.5"), ("-0.75", "-0.75"), ("\u22123", "-3"), ("+4", "4"),
    ("1,234,567", "1234567"), ("1,234.5", "1234.5"), ("1.234,5", "1234.5"),
    ("1.234.567", "1234567"), ("1 234", "1234"), ("1\u202f234,5", "1234.5"), ("1'234", "1234"),
    ("2.5e3", "2500"), (".5", "0.5"), ("0,500", "0.5"),
])
def test_numbers_parse_in_the_forms_candidates_write(text, expected):
    assert parse_number(text) == Decimal(expected)


@pytest.mark.parametrize("text,message", [
    ("1,500", "could mean 1500 or 1.5"), ("nan", "not a number"), ("inf", "not a number"),
    ("Infinity", "not a number"), ("1e99999", "not a number"), ("12..5", "not a number"),
    ("1,23,4", "not a number"), ("", "not a number"), ("0x10", "not a number"),
])
def test_ambiguous_and_non_numbers_are_refused(text, message):
    with pytest.raises(ValueError, match=message):
        parse_number(text)


def test_numeric_tolerance_absolute_and_relative():
    v, t = version("numeric_entry"), item_type("numeric_entry")
    # relative 2% of 12.5 = 0.25: [12.25, 12.75] inclusive, compared exactly in decimal
    assert t.score(v, "12.75") == 2.0 and t.score(v, "12,25") == 2.0
    assert t.score(v, "12.76") == 0.0 and t.score(v, "12.2499") == 0.0
    absolute = version("numeric_entry", scoring={"tolerance": 0.1})
    assert t.score(absolute, "12.6") == 2.0 and t.score(absolute, "12.61") == 0.0
    exact = version("numeric_entry", key={"value": 0.3}, scoring={})
    assert t.score(exact, "0.3") == 2.0  # no binary rounding: 0.1 + 0.2 problems do not arise
    with pytest.raises(ResponseShapeError, match="could mean"):
        t.normalize(v, "1,500")
    with pytest.raises(ResponseShapeError, match="not a number"):
        t.normalize(v, "NaN")
    assert t.normalize(v, " 12,5 ") == "12,5" and t.normalize(v, 12.5) == "12.5"
    for bad in ({"value": float("nan")}, {"value": float("inf")}, {"value": "12"}):
        with pytest.raises(ItemDefinitionError, match="finite number"):
            t.validate_definition({}, bad, {})
    with pytest.raises(ItemDefinitionError, match="tolerance"):
        t.validate_definition({}, {"value": 1}, {"tolerance": -1})


def test_ordering_all_or_nothing_pairwise_and_position():
    t = item_type("ordering")
    pairwise = version("ordering")
    assert t.score(pairwise, ["A", "B", "C", "D"]) == 2.0
    assert t.score(pairwise, ["B", "A", "C", "D"]) == pytest.approx(2.0 * 5 / 6)  # 1 of 6 pairs off
    assert t.score(pairwise, ["D", "C", "B", "A"]) == 0.0
    position = version("ordering", scoring={"method": "position"})
    assert t.score(position, ["B", "A", "C", "D"]) == 1.0  # C and D in place: 2 of 4
    strict = version("ordering", scoring={})
    assert t.score(strict, ["B", "A", "C", "D"]) == 0.0
    with pytest.raises(ResponseShapeError, match="every option once"):
        t.normalize(strict, ["A", "B", "C"])
    with pytest.raises(ItemDefinitionError, match="keyed order"):
        t.validate_definition({"options": [{"id": x, "text": x} for x in "AB"]},
                              {"order": ["A", "B"]}, {})


def test_ordering_never_shows_the_key_as_the_starting_order():
    v, t = version("ordering"), item_type("ordering")
    shown = [o["id"] for o in t.public(v, ["A", "B", "C", "D"])["options"]]
    assert shown != ["A", "B", "C", "D"] and sorted(shown) == ["A", "B", "C", "D"]


def test_matching_partial_and_one_to_one():
    v, t = version("matching"), item_type("matching")
    assert t.score(v, {"s1": "t2", "s2": "t1", "s3": "t4"}) == 2.0
    assert t.score(v, {"s1": "t2", "s2": "t3"}) == pytest.approx(2.0 / 3)
    strict = version("matching", scoring={})
    assert t.score(strict, {"s1": "t2", "s2": "t1"}) == 0.0
    with pytest.raises(ResponseShapeError, match="matched twice"):
        t.normalize(v, {"s1": "t1", "s2": "t1"})
    with pytest.raises(ResponseShapeError, match="not one of this item's sources"):
        t.normalize(v, {"s9": "t1"})
    assert t.normalize(v, {"s1": "", "s2": None}) is None  # cleared selects are no answer
    public = t.public(v, ["t4", "s3", "t1", "s1", "s2", "t3", "t2"])
    assert [s["id"] for s in public["sources"]] == ["s3", "s1", "s2"]
    assert [s["id"] for s in public["targets"]] == ["t4", "t1", "t3", "t2"]


# QTI mapResponse (QTI 2.1/3.0 spec, mapResponse and mapping): the sum over the response's
# distinct values of their mapped values (defaultValue for a value with no entry), then
# lowerBound and upperBound; Microcred then keeps the score within [0, max_score].
MR_MAP = {"method": "mapped", "map": {"A": 1.5, "C": 1, "B": -0.5}, "default": -1}


@pytest.mark.parametrize("scoring,response,expected", [
    (MR_MAP, ["A", "C"], 2.0),                          # 2.5, clipped to max_score 2
    (MR_MAP, ["C"], 1.0),
    (MR_MAP, ["A", "B"], 1.0),                          # 1.5 - 0.5
    (MR_MAP, ["A", "D"], 0.5),                          # 1.5 + default -1
    (MR_MAP, ["B", "D"], 0.0),                          # -1.5, never below 0
    (MR_MAP, None, 0.0),                                # nothing selected: 0, as map_response
    ({**MR_MAP, "upper": 1.25}, ["A", "C"], 1.25),      # upper bound
    ({**MR_MAP, "lower": 0.5}, ["B", "D"], 0.5),        # lower bound lifts a negative sum
    ({**MR_MAP, "lower": 3}, ["B"], 2.0),               # a lower bound above max_score: max
    ({**MR_MAP, "upper": -1}, ["A", "C"], 0.0),         # an upper bound below 0: 0
    ({"method": "mapped", "map": {"A": 1}}, ["A", "D"], 1.0),  # default 0 when not given
])
def test_multiple_response_mapped_points(scoring, response, expected):
    v = version("multiple_response", scoring=scoring)
    t = item_type("multiple_response")
    t.validate_definition(v.interaction, v.key, v.scoring)
    assert t.score(v, response) == pytest.approx(expected)


def test_mapped_counts_a_duplicate_selection_once():
    """QTI: "If a container contains multiple instances of the same value then that value is
    counted once only" (mapResponse). The runner refuses duplicates; scoring counts them once."""
    v, t = version("multiple_response", scoring=MR_MAP), item_type("multiple_response")
    assert t.score(v, ["C", "C", "B"]) == pytest.approx(0.5)
    with pytest.raises(ResponseShapeError, match="selected twice"):
        t.normalize(v, ["C", "C"])


def test_matching_mapped_points_per_pair():
    scoring = {"method": "mapped", "map": {"s1": {"t2": 1, "t1": 0.25}, "s2": {"t1": 1}},
               "default": -0.5, "lower": 0.5}
    v, t = version("matching", scoring=scoring), item_type("matching")
    t.validate_definition(v.interaction, v.key, v.scoring)
    assert t.score(v, {"s1": "t2", "s2": "t1", "s3": "t4"}) == pytest.approx(1.5)  # 1+1-.5
    assert t.score(v, {"s1": "t1", "s2": "t3"}) == pytest.approx(0.5)  # -0.25, lower 0.5
    assert t.score(v, {"s1": "t1"}) == pytest.approx(0.5)  # 0.25, lower bound 0.5
    assert t.score(v, {"s1": "t2", "s2": "t1"}) == pytest.approx(2.0)
    assert t.score(v, None) == 0.0


@pytest.mark.parametrize("kind,scoring,field", [
    ("multiple_response", {"method": "mapped"}, "scoring.map"),
    ("multiple_response", {"method": "mapped", "map": {"Z": 1}}, "scoring.map.Z"),
    ("multiple_response", {"method": "mapped", "map": {"A": "1"}}, "scoring.map.A"),
    ("multiple_response", {"method": "mapped", "map": {"A": float("nan")}}, "scoring.map.A"),
    ("multiple_response", {"method": "mapped", "map": {"A": True}}, "scoring.map.A"),
    ("multiple_response", {"method": "mapped", "map": {"A": 1}, "default": "x"},
     "scoring.default"),
    ("multiple_response", {"method": "mapped", "map": {"A": 1}, "upper": float("inf")},
     "scoring.upper"),
    ("multiple_response", {"method": "mapped", "map": {"A": 1}, "lower": 2, "upper": 1},
     "scoring.lower"),
    ("multiple_response", {"method": "mapped", "map": {"A": 1}, "weights": {}},
     "scoring.weights"),
    ("single_choice", {"method": "mapped", "map": {"A": 1}}, "scoring.method"),
    ("matching", {"method": "mapped", "map": {"s1": 1}}, "scoring.map.s1"),
    ("matching", {"method": "mapped", "map": {"s9": {"t1": 1}}}, "scoring.map.s9"),
    ("matching", {"method": "mapped", "map": {"s1": {"t9": 1}}}, "scoring.map.s1.t9"),
    ("matching", {"method": "mapped", "map": {"s1": {"t1": None}}}, "scoring.map.s1.t1"),
])
def test_mapped_definition_errors_name_the_field(kind, scoring, field):
    interaction, key, _ = DEFS[kind]
    with pytest.raises(ItemDefinitionError) as err:
        item_type(kind).validate_definition(interaction, key, scoring)
    assert err.value.field == field, err.value.message


def test_inline_choice_gaps():
    v, t = version("inline_choice"), item_type("inline_choice")
    assert t.score(v, {"g1": "a", "g2": "d"}) == 2.0
    assert t.score(v, {"g1": "a", "g2": "c"}) == 1.0
    with pytest.raises(ResponseShapeError, match="not a choice for gap"):
        t.normalize(v, {"g1": "c"})
    interaction = dict(DEFS["inline_choice"][0], sentence="<p>Only [[g1]].</p>")
    with pytest.raises(ItemDefinitionError, match="mark each gap once"):
        t.validate_definition(interaction, DEFS["inline_choice"][1], {})
    interaction = dict(DEFS["inline_choice"][0], sentence='<p title="[[g1]]">x [[g2]]</p>')
    with pytest.raises(ItemDefinitionError, match="inside an HTML tag"):
        t.validate_definition(interaction, DEFS["inline_choice"][1], {})
    public = t.public(v, ["g1/b", "g2/d", "g1/a", "g2/c"])
    assert [o["id"] for o in public["gaps"][0]["options"]] == ["b", "a"]


@pytest.mark.parametrize("point,inside", [
    ((10, 10), True), ((50, 40), True), ((30, 25), True), ((51, 25), False),   # rect, edges
    ((200, 170), True), ((215, 165), False),                                     # circle
    ((340, 210), True), ((340, 200), True), ((300, 280), False), ((341, 279), False),  # triangle
])
def test_hotspot_point_in_region(point, inside):
    v, t = version("hotspot"), item_type("hotspot")
    assert t.score(v, {"x": point[0], "y": point[1]}) == (2.0 if inside else 0.0)


def test_point_in_a_concave_polygon():
    # an L shape: the notch at (15, 5) is outside
    ell = {"shape": "polygon", "coords": [0, 0, 10, 0, 10, 10, 20, 10, 20, 20, 0, 20]}
    assert point_in_region(5, 5, ell) and point_in_region(15, 15, ell)
    assert not point_in_region(15, 5, ell)


def test_hotspot_refuses_points_outside_and_needs_alt_text():
    v, t = version("hotspot"), item_type("hotspot")
    with pytest.raises(ResponseShapeError, match="outside the image"):
        t.normalize(v, {"x": 401, "y": 3})
    with pytest.raises(ResponseShapeError, match="a point"):
        t.normalize(v, {"x": float("nan"), "y": 3})
    image = dict(DEFS["hotspot"][0]["image"], alt=" ")
    with pytest.raises(ItemDefinitionError, match="alt text") as err:
        t.validate_definition({"image": image}, DEFS["hotspot"][1], {})
    assert err.value.field == "interaction.image.alt"
    with pytest.raises(ItemDefinitionError, match="coords"):
        t.validate_definition(DEFS["hotspot"][0],
                              {"regions": [{"shape": "polygon", "coords": [0, 0, 1, 1]}]}, {})


# ---------------------------------------------------------------- properties of every type

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 500) | st.floats(allow_nan=True)
    | st.sampled_from(["A", "C", "true", "false", "s1", "t2", "g1", "a", "d", "12,5", "I10",
                       "x", "hypertension", "1,500", ""]),
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.sampled_from(["x", "y", "s1", "s2", "s3", "g1", "g2", "zz"]), inner,
                      max_size=4),
    max_leaves=8)


def _examples(kind: str) -> st.SearchStrategy:
    v = version(kind)
    rng = random.Random(0)
    good = [item_type(kind).sample_response(v, ok, rng) for ok in (True, False)]
    return st.sampled_from(good) | json_values


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
@pytest.mark.parametrize("kind", sorted(DEFS))
def test_score_in_range_normalize_idempotent(kind, data):
    v, t = version(kind), item_type(kind)
    value = data.draw(_examples(kind))
    try:
        norm = t.normalize(v, value)
    except ResponseShapeError:
        return
    assert t.normalize(v, norm) == norm
    json.dumps(norm, allow_nan=False)  # storable as JSON
    assert 0.0 <= t.score(v, norm) <= v.max_score
    assert t.is_answered(norm) == (norm is not None)


@pytest.mark.parametrize("kind", sorted(DEFS))
def test_public_payload_never_contains_key_material(kind):
    v, t = version(kind), item_type(kind)
    payload = t.public(v, t.shuffle_targets(v))
    text = json.dumps(payload)
    assert "THE-RATIONALE" not in text
    for name in ("key", "correct", "scoring", "answers", "regions", "pairs", "order",
                 "tolerance", "max_score"):
        assert f'"{name}"' not in text, (kind, name)
    for secret in ("Hypertension", "I1[0-6]", "12.5", "coords"):
        assert secret not in text, (kind, secret)


_points = st.floats(min_value=-5, max_value=5, allow_nan=False).map(lambda x: round(x, 2))


@settings(max_examples=80, deadline=None)
@given(weights=st.dictionaries(st.sampled_from("ABCD"), _points, min_size=1),
       default=_points, lower=st.none() | _points, upper=st.none() | _points,
       chosen=st.lists(st.sampled_from("ABCD"), max_size=6))
def test_mapped_equals_qti_map_response_clipped(weights, default, lower, upper, chosen):
    """The bank's mapped score is the QTI evaluator's mapResponse (itembank.qti.processing, a
    separate implementation) kept within [0, max_score], for any map, default, bounds and
    selection (repeats included)."""
    from itembank.qti.processing import Declaration, map_response

    if lower is not None and upper is not None and lower > upper:
        lower, upper = upper, lower
    scoring = {"method": "mapped", "map": weights, "default": default, "lower": lower,
               "upper": upper}
    v, t = version("multiple_response", scoring=scoring), item_type("multiple_response")
    t.validate_definition(v.interaction, v.key, v.scoring)
    decl = Declaration("RESPONSE", "multiple", "identifier")
    decl.has_mapping, decl.default, decl.lower, decl.upper = True, default, lower, upper
    decl.entries = [(k, w, True) for k, w in weights.items()]
    qti = map_response(decl, chosen or None)
    assert t.score(v, chosen or None) == pytest.approx(min(2.0, max(0.0, qti)))
