"""One scoring function per item type; responses of the wrong shape are refused."""
import pytest

from itembank.models import ItemVersion
from itembank.types import ItemDefinitionError, ResponseShapeError, item_type


def _v(kind, key, method="all_or_nothing"):
    return ItemVersion(item_type=kind, stem="s", max_score=1.0, scoring={"method": method},
                       interaction={"options": [{"id": x, "text": x} for x in "ABCD"]},
                       key={"correct": key})


def test_single_choice_scores_the_key_only():
    v = _v("single_choice", ["C"])
    t = item_type("single_choice")
    assert t.score(v, "C") == 1.0
    assert t.score(v, "A") == 0.0
    assert t.score(v, None) == 0.0


def test_multiple_response_all_or_nothing():
    v = _v("multiple_response", ["A", "C"])
    t = item_type("multiple_response")
    assert t.score(v, ["A", "C"]) == 1.0
    assert t.score(v, ["A"]) == 0.0
    assert t.score(v, ["A", "B", "C"]) == 0.0


def test_multiple_response_partial_credit_counts_each_option():
    v = _v("multiple_response", ["A", "C"], method="partial")
    t = item_type("multiple_response")
    assert t.score(v, ["A", "C"]) == 1.0
    assert t.score(v, ["A"]) == 0.75  # A right, B right (omitted), C wrong (omitted), D right
    assert t.score(v, ["B", "D"]) == 0.0


@pytest.mark.parametrize("kind,value,message", [
    ("single_choice", ["A"], "one option id"),
    ("single_choice", "Z", "not one of this item's options"),
    ("single_choice", 3, "one option id"),
    ("multiple_response", "A", "list of option ids"),
    ("multiple_response", ["A", "A"], "selected twice"),
    ("multiple_response", ["A", "Q"], "not among"),
])
def test_wrong_shapes_are_refused(kind, value, message):
    v = _v(kind, ["A", "C"] if kind == "multiple_response" else ["A"])
    with pytest.raises(ResponseShapeError, match=message):
        item_type(kind).normalize(v, value)


def test_public_payload_never_contains_the_key():
    v = _v("single_choice", ["C"])
    v.rationale = "secret rationale"
    payload = item_type("single_choice").public(v, ["D", "C", "B", "A"])
    assert [o["id"] for o in payload["options"]] == ["D", "C", "B", "A"]
    text = repr(payload)
    assert "correct" not in text and "secret rationale" not in text and "scoring" not in text


def test_bad_definitions_are_refused():
    with pytest.raises(ItemDefinitionError, match="exactly one key"):
        item_type("single_choice").validate_definition(
            {"options": [{"id": "A", "text": "a"}, {"id": "B", "text": "b"}]}, {"correct": ["A", "B"]}, {})
    with pytest.raises(ItemDefinitionError, match="unknown options"):
        item_type("single_choice").validate_definition(
            {"options": [{"id": "A", "text": "a"}, {"id": "B", "text": "b"}]}, {"correct": ["Z"]}, {})
    with pytest.raises(ItemDefinitionError, match="unknown item type"):
        item_type("essay")
