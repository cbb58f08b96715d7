"""Structural checks for the demo exam content in ``assessment/demo/clinical_coding.json``.

Pure data tests: they read the JSON file and need nothing from the application.
"""
from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path

import pytest

CONTENT = Path(__file__).resolve().parents[1] / "assessment/demo/clinical_coding.json"

MIN_ITEMS = {"DX": 19, "PX": 17, "CMP": 12}
FORM_LENGTH = 20
TYPES = {"single_choice", "multiple_response"}
DIFFICULTIES = {"easy", "medium", "hard"}
NUMBER_WORDS = {"TWO": 2, "THREE": 3, "FOUR": 4}
SELECT_RE = re.compile(r"\bSelect (TWO|THREE|FOUR)\b")
BANNED = re.compile(r"\b(all|none) of the (above|following)\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def content() -> dict:
    with CONTENT.open(encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def items(content: dict) -> list[dict]:
    return content["items"]


@pytest.fixture(scope="module")
def domains(content: dict) -> dict[str, dict]:
    return {d["code"]: d for d in content["blueprint"]["domains"]}


def test_top_level_shape(content: dict) -> None:
    assert set(content) == {"program", "blueprint", "exam", "items", "stimuli", "interaction_items"}
    program = content["program"]
    assert program["code"] == "CCF"
    assert program["name"] == "Clinical Coding Fundamentals"
    assert program["description"].strip()
    assert content["blueprint"]["code"] and content["blueprint"]["name"]


def test_exam_settings(content: dict) -> None:
    exam = content["exam"]
    assert exam["code"] and exam["title"]
    assert exam["time_limit_minutes"] == 30
    assert exam["pass_percent"] == 70
    assert isinstance(exam["instructions"], list) and len(exam["instructions"]) >= 3
    assert all(isinstance(p, str) and p.strip() for p in exam["instructions"])
    assert isinstance(exam["agreement"], str) and exam["agreement"].strip()


def test_domains_are_well_formed(content: dict, domains: dict[str, dict]) -> None:
    codes = [d["code"] for d in content["blueprint"]["domains"]]
    assert len(codes) == len(set(codes)), "domain codes must be unique"
    assert set(codes) == set(MIN_ITEMS)
    for d in domains.values():
        assert d["name"].strip() and d["description"].strip()
        assert 0 < d["weight"] < 1
        assert isinstance(d["items_on_form"], int) and d["items_on_form"] > 0


def test_weights_sum_to_one(domains: dict[str, dict]) -> None:
    assert math.isclose(sum(d["weight"] for d in domains.values()), 1.0, abs_tol=1e-9)


def test_items_on_form_sum_to_form_length(domains: dict[str, dict]) -> None:
    assert sum(d["items_on_form"] for d in domains.values()) == FORM_LENGTH


def test_item_codes_unique_and_match_domain(items: list[dict]) -> None:
    codes = [it["code"] for it in items]
    dupes = [c for c, n in Counter(codes).items() if n > 1]
    assert not dupes, f"duplicate item codes: {dupes}"
    for it in items:
        assert re.fullmatch(rf"CCF-{it['domain']}-\d{{3}}", it["code"]), it["code"]


def test_every_item_domain_exists(items: list[dict], domains: dict[str, dict]) -> None:
    unknown = {it["code"]: it["domain"] for it in items if it["domain"] not in domains}
    assert not unknown, f"items with unknown domains: {unknown}"


def test_domain_counts_meet_minimums_and_fill_form(
    items: list[dict], domains: dict[str, dict]
) -> None:
    counts = Counter(it["domain"] for it in items)
    for code, minimum in MIN_ITEMS.items():
        assert counts[code] >= minimum, f"{code}: {counts[code]} items, need {minimum}"
        assert counts[code] >= domains[code]["items_on_form"], f"{code} cannot fill its form slots"


def test_item_fields(items: list[dict]) -> None:
    required = {"code", "domain", "type", "stem", "options", "key", "rationale", "difficulty", "references"}
    for it in items:
        assert required <= set(it), f"{it.get('code')}: missing {required - set(it)}"
        assert it["type"] in TYPES, it["code"]
        assert it["difficulty"] in DIFFICULTIES, it["code"]
        for field in ("stem", "rationale", "references"):
            assert isinstance(it[field], str) and it[field].strip(), f"{it['code']}: empty {field}"


def test_options_have_unique_ids_and_texts(items: list[dict]) -> None:
    for it in items:
        ids = [o["id"] for o in it["options"]]
        assert len(ids) == len(set(ids)), f"{it['code']}: duplicate option ids"
        texts = [" ".join(o["text"].split()).casefold() for o in it["options"]]
        assert all(texts), f"{it['code']}: empty option text"
        assert len(texts) == len(set(texts)), f"{it['code']}: duplicate option texts"


def test_keys_exist_among_options(items: list[dict]) -> None:
    for it in items:
        ids = {o["id"] for o in it["options"]}
        assert it["key"], f"{it['code']}: no key"
        assert len(it["key"]) == len(set(it["key"])), f"{it['code']}: key repeats an option"
        assert set(it["key"]) <= ids, f"{it['code']}: key {it['key']} not among {sorted(ids)}"


def test_single_choice_items(items: list[dict]) -> None:
    for it in (i for i in items if i["type"] == "single_choice"):
        assert len(it["options"]) == 4, f"{it['code']}: single choice needs 4 options"
        assert len(it["key"]) == 1, f"{it['code']}: single choice needs exactly one key"
        assert not SELECT_RE.search(it["stem"]), f"{it['code']}: single choice asks for several"


def test_multiple_response_items(items: list[dict]) -> None:
    for it in (i for i in items if i["type"] == "multiple_response"):
        assert 4 <= len(it["options"]) <= 6, f"{it['code']}: needs 4-6 options"
        assert 2 <= len(it["key"]) <= 3, f"{it['code']}: needs 2-3 keys"
        assert len(it["key"]) < len(it["options"]), f"{it['code']}: every option is keyed"
        found = SELECT_RE.findall(it["stem"])
        assert found, f"{it['code']}: stem must say how many to select (e.g. 'Select TWO.')"
        assert {NUMBER_WORDS[w] for w in found} == {len(it["key"])}, (
            f"{it['code']}: stem asks for {found} but the key has {len(it['key'])} options"
        )
        # the number is data on the item, not only words in the stem: the runner and the
        # server enforce it (issue 9, finding 22)
        assert it.get("select") == NUMBER_WORDS[found[0]], (
            f"{it['code']}: stem says 'Select {found[0]}' but select is {it.get('select')!r}"
        )


def test_no_all_or_none_of_the_above(items: list[dict]) -> None:
    for it in items:
        for text in [it["stem"]] + [o["text"] for o in it["options"]]:
            assert not BANNED.search(text), f"{it['code']}: uses '{BANNED.search(text).group(0)}'"


def test_type_mix_and_single_choice_key_spread(items: list[dict]) -> None:
    types = Counter(it["type"] for it in items)
    share = types["single_choice"] / len(items)
    assert 0.6 <= share <= 0.8, f"single choice share {share:.0%} is far from about 70%"
    keys = Counter(it["key"][0] for it in items if it["type"] == "single_choice")
    singles = types["single_choice"]
    for letter in "ABCD":
        assert keys[letter] >= 0.15 * singles, f"key {letter} used only {keys[letter]} times: {dict(keys)}"


def test_interaction_items_show_every_other_type_and_an_item_set(content: dict) -> None:
    """``interaction_items``: one item (at least) of every type beyond the choices, each valid
    for its type, all scored 0/1 (the workspace analyses dichotomous items), and an item set of
    two or more items sharing one of the ``stimuli``."""
    from itembank.types import ITEM_TYPES, item_type

    extra = content["interaction_items"]
    stimuli = {s["code"] for s in content["stimuli"]}
    assert set(ITEM_TYPES) - TYPES <= {it["type"] for it in extra}
    for it in extra:
        assert it["domain"] in {d["code"] for d in content["blueprint"]["domains"]}, it["code"]
        assert it["difficulty"] in DIFFICULTIES and it["rationale"].strip(), it["code"]
        assert it.get("scoring", {}).get("method", "all_or_nothing") == "all_or_nothing"
        interaction = dict(it["interaction"])
        if it.get("image"):  # drawn and stored by the demo loader
            interaction["image"] = {"src": "/media/" + "0" * 64, "alt": "x", "width": 600,
                                    "height": 400}
        item_type(it["type"]).validate_definition(interaction, it["key"], it.get("scoring", {}))
    members = Counter(it["stimulus"] for it in extra if it.get("stimulus"))
    assert members and set(members) <= stimuli and max(members.values()) >= 2
