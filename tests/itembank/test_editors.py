"""The item editor's per-type fields: a posted form becomes (interaction, key, scoring) or every
problem under its own form field; a stored item fills the form back; each partial renders with
a label for every control."""
from __future__ import annotations

import re

import pytest
from werkzeug.datastructures import MultiDict

from itembank.editors import EditorErrors, fields_to_item, form_field, item_to_fields
from itembank.types import ITEM_TYPES, item_type
from tests.itembank.test_item_types import DEFS


def _form(values: dict) -> MultiDict:
    form = MultiDict()
    for name, value in values.items():
        for v in value if isinstance(value, list) else [value]:
            if v is True:
                v = "on"
            if v is not False and v is not None:  # 0 is a value (0 == False)
                form.add(name, str(v))
    return form


@pytest.mark.parametrize("kind", sorted(DEFS))
def test_a_stored_item_fills_the_form_and_reads_back_the_same(kind):
    interaction, key, scoring = DEFS[kind]
    once = fields_to_item(kind, _form(item_to_fields(kind, interaction, key, scoring)))
    twice = fields_to_item(kind, _form(item_to_fields(kind, *once)))
    assert once == twice
    item_type(kind).validate_definition(*once)


def test_a_form_as_an_author_fills_it():
    form = MultiDict([("option-0", "E11.9"), ("option-1", ""), ("option-2", "E11.65"),
                      ("option-3", "E10.9"), ("correct", "2"), ("method", "all_or_nothing")])
    assert fields_to_item("single_choice", form) == (
        {"options": [{"id": "A", "text": "E11.9"}, {"id": "B", "text": "E11.65"},
                     {"id": "C", "text": "E10.9"}]}, {"correct": ["B"]}, {})
    interaction, key, scoring = fields_to_item("ordering", MultiDict(
        [("step-0", "Register"), ("step-1", "Document"), ("step-2", "Code"), ("method", "pairwise")]))
    assert key == {"order": ["A", "B", "C"]} and scoring == {"method": "pairwise"}
    assert [o["text"] for o in interaction["options"]] == ["Document", "Code", "Register"]
    interaction, key, _ = fields_to_item("inline_choice", MultiDict(
        [("sentence", "<p>Code [[1]] first.</p>"), ("gap-1", "manifestation\n* etiology\n")]))
    assert interaction["gaps"] == [{"id": "1", "options": [{"id": "1-A", "text": "manifestation"},
                                                          {"id": "1-B", "text": "etiology"}]}]
    assert key == {"correct": {"1": "1-B"}}
    interaction, key, _ = fields_to_item("hotspot", MultiDict(
        [("image_src", "/media/" + "a" * 64), ("image_alt", "A chart"), ("image_width", "400"),
         ("image_height", "300"), ("regions", "rect 10 10 50 40\n\ncircle 200,150, 20")]))
    assert key["regions"][1] == {"id": "r2", "shape": "circle", "coords": [200.0, 150.0, 20.0]}


def test_mapped_scoring_reads_weights_and_bounds_and_fills_back():
    form = MultiDict([("option-0", "H"), ("option-1", "He"), ("option-2", "O"),
                      ("option-3", "Cl"), ("correct", "0"), ("correct", "2"),
                      ("method", "mapped"), ("option-0-points", "1"), ("option-2-points", "1"),
                      ("option-3-points", "-1"), ("map_default", "-2"), ("map_lower", "0"),
                      ("map_upper", "2")])
    interaction, key, scoring = fields_to_item("multiple_response", form)
    assert scoring == {"method": "mapped", "map": {"A": 1.0, "C": 1.0, "D": -1.0},
                       "default": -2.0, "lower": 0.0, "upper": 2.0}
    assert fields_to_item("multiple_response",
                          _form(item_to_fields("multiple_response", interaction, key,
                                               scoring))) == (interaction, key, scoring)
    match = MultiDict([("source-0", "Capulet"), ("source-0-match", "0"), ("source-1", "Prospero"),
                       ("source-1-match", "1"), ("target-0", "Romeo and Juliet"),
                       ("target-1", "The Tempest"), ("method", "mapped"),
                       ("pair_points", "1 1 1\n2 2 0.5\n\n1 2 -0.25")])
    interaction, key, scoring = fields_to_item("matching", match)
    assert scoring == {"method": "mapped", "map": {"s1": {"t1": 1.0, "t2": -0.25},
                                                   "s2": {"t2": 0.5}}, "default": 0}
    assert fields_to_item("matching", _form(item_to_fields("matching", interaction, key,
                                                           scoring))) == (interaction, key, scoring)


@pytest.mark.parametrize("kind,fields,errors", [
    ("multiple_response", {"option-0": "a", "option-1": "b", "correct": ["0", "1"],
                           "method": "mapped", "option-1-points": "many", "map_upper": "x"},
     {"option-1-points", "map_upper"}),
    ("multiple_response", {"option-0": "a", "option-1": "b", "correct": ["0", "1"],
                           "method": "mapped"}, {"_item"}),
    ("multiple_response", {"option-0": "a", "option-1": "b", "correct": ["0", "1"],
                           "method": "mapped", "option-0-points": "1", "map_lower": "3",
                           "map_upper": "1"}, {"map_lower"}),
    ("matching", {"source-0": "a", "source-0-match": "0", "target-0": "x", "target-1": "y",
                  "method": "mapped", "pair_points": "1 7 1"}, {"pair_points"}),
    ("single_choice", {"option-0": "Only one"}, {"option-0", "correct"}),
    ("true_false", {}, {"correct"}),
    ("text_entry", {"answer-0": "(a+)+", "answer-0-match": "pattern"}, {"answer-0"}),
    ("text_entry", {"answer-0": "x", "answer-0-credit": "lots", "max_length": "-3"},
     {"answer-0-credit", "max_length"}),
    ("numeric_entry", {"value": "twelve", "tolerance": "-1"}, {"value", "tolerance"}),
    ("matching", {"source-0": "25", "target-0": "E/M", "target-1": "Bilateral",
                  "source-0-match": "7"}, {"source-0-match"}),
    ("inline_choice", {"sentence": "No gaps here."}, {"sentence"}),
    ("inline_choice", {"sentence": "A [[1]] b", "gap-1": "x\ny"}, {"gap-1"}),
    ("hotspot", {"image_alt": "x", "regions": "square 1 2 3"}, {"image_src", "regions"}),
    ("hotspot", {"image_src": "/media/" + "a" * 64, "image_alt": " ", "image_width": "10",
                 "image_height": "10", "regions": "rect 0 0 5 5"}, {"image_alt"}),
])
def test_every_problem_is_named_by_its_form_field(kind, fields, errors):
    with pytest.raises(EditorErrors) as err:
        fields_to_item(kind, MultiDict(fields))
    assert set(err.value.errors) == errors, err.value.errors


def test_definition_error_paths_map_to_form_fields():
    assert form_field("key.answers[2].credit") == "answer-2-credit"
    assert form_field("interaction.options[1].text") == "option-1"
    assert form_field("interaction.image.alt") == "image_alt"
    assert form_field("scoring.tolerance") == "tolerance"
    assert form_field(None) == "_item"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_each_editor_partial_labels_every_control(app):
    from flask import render_template

    with app.test_request_context():
        for kind in ITEM_TYPES:
            values = item_to_fields(kind, *DEFS[kind])
            html = render_template(f"items/editors/{kind}.html", values=values,
                                   errors={"_item": "Check the item."})
            ids = re.findall(r'<(?:input|select|textarea)(?![^>]*type="hidden")[^>]*\sid="([^"]+)"', html)
            assert ids, kind
            for control in ids:
                assert f'for="{control}"' in html, (kind, control)
            assert "Check the item." in html
        html = render_template("items/editors/text_entry.html", values={"answer-0": "x"},
                               errors={"answer-0": "too long"})
        assert 'aria-describedby="f-answer-0-error" aria-invalid="true"' in html
        assert '<p class="field-error" id="f-answer-0-error">too long</p>' in html


@pytest.mark.parametrize("kind", sorted(DEFS))
def test_the_rekey_form_reads_every_types_key_and_never_its_content(kind):
    """The item page's re-key form posts the type's editor fields: the key and scoring come from
    them; the content fields are the published version's whatever is posted."""
    from types import SimpleNamespace

    from itembank.screens import rekey_from_fields

    interaction, key, scoring = DEFS[kind]
    version = SimpleNamespace(item_type=kind, interaction=interaction, key=key, scoring=scoring)
    posted = item_to_fields(kind, interaction, key, scoring)
    tampered = {k: ("changed" if re.fullmatch(r"option-\d+|source-\d+|target-\d+|unit", k)
                    else v) for k, v in posted.items()}
    new_key, new_scoring = rekey_from_fields(version, _form(tampered))
    # unchanged fields give the published key back, under the published ids
    # (a text entry's answers gain the default match, "exact", spelled out)
    _, read_key, want_scoring = fields_to_item(kind, _form(posted))
    assert (new_key, new_scoring) == (read_key if kind == "text_entry" else key, want_scoring)
    item_type(kind).validate_definition(interaction, new_key, new_scoring)


def test_an_ordering_rekey_maps_reordered_steps_to_the_published_ones():
    from types import SimpleNamespace

    from itembank.screens import rekey_from_fields

    interaction, key, scoring = DEFS["ordering"]
    version = SimpleNamespace(item_type="ordering", interaction=interaction, key=key,
                              scoring=scoring)
    posted = item_to_fields("ordering", interaction, key, scoring)
    steps = [posted[f"step-{n}"] for n in range(len(key["order"]))]
    swapped = {**posted, "step-0": steps[1], "step-1": steps[0]}
    new_key, _ = rekey_from_fields(version, _form(swapped))
    assert new_key["order"] == [key["order"][1], key["order"][0], *key["order"][2:]]
    with pytest.raises(EditorErrors) as err:
        rekey_from_fields(version, _form({**posted, "step-0": "a step nobody wrote"}))
    assert "step-0" in err.value.errors
