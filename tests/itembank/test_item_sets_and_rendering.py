"""Item sets (a stimulus shared by items kept together on forms and in shuffled attempts), and
one rendering of each interaction for every place an item is shown."""
from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from itembank.authoring import create_blueprint, create_form, create_item, publish_version
from itembank.rendering import item_parts, render_item
from itembank.stimuli import (
    StimulusError,
    create_stimulus,
    new_stimulus_version,
    revise_stimulus,
    shuffle_keeping_sets,
)
from itembank.types import item_type, public_payload

OPTIONS = {"options": [{"id": x, "text": f"Option {x}"} for x in "ABCD"]}


def _item(db, code, stimulus=None):
    v = create_item(db, code=code, item_type_name="single_choice", domain_code="A",
                    stem=f"{code}?", interaction=OPTIONS, key={"correct": ["B"]},
                    stimulus_id=stimulus.id if stimulus else None)
    return publish_version(db, v)


def test_a_form_keeps_an_item_sets_members_together(db):
    case = create_stimulus(db, code="CASE", kind="case", title="A case", content="<p>Notes</p>")
    a, s1, b, s2 = _item(db, "A"), _item(db, "S1", case), _item(db, "B"), _item(db, "S2", case)
    bp = create_blueprint(db, code="BP", name="bp", domains=[
        {"code": "A", "name": "A", "weight": 1.0, "items_on_form": 4}])
    form = create_form(db, code="F-OK", blueprint=bp, versions=[a, s1, b, s2])
    assert [fi.item_version.item.code for fi in form.items] == ["A", "S1", "S2", "B"]
    # the stimulus is frozen once a published item uses it; a change is a new version
    with pytest.raises(StimulusError, match="make a new version"):
        revise_stimulus(db, case, content="<p>Changed</p>")
    second = new_stimulus_version(db, case)
    assert (second.code, second.version, second.content) == ("CASE", 2, "<p>Notes</p>")
    assert revise_stimulus(db, second, content="<p>Changed</p>").content == "<p>Changed</p>"
    payload = public_payload(s1)
    assert payload["stimulus"] == {"id": case.id, "kind": "case", "title": "A case",
                                   "content": "<p>Notes</p>"}
    assert "stimulus" not in public_payload(a)


def _check_adjacent(stimuli: list) -> None:
    """Each set's members are one run: a stimulus seen before reappears only right after."""
    seen, previous = set(), None
    for sid in stimuli:
        assert sid is None or sid == previous or sid not in seen, stimuli
        seen.add(sid)
        previous = sid


@settings(max_examples=80, deadline=None)
@given(sets=st.lists(st.integers(0, 3), min_size=1, max_size=14), seed=st.integers(0, 2**32))
def test_a_shuffle_moves_each_set_as_one_block(sets, seed):
    # item i belongs to set sets[i] (0: no set); the base order keeps sets together
    base = [i for i, _ in sorted(enumerate(sets), key=lambda p: (p[1] == 0, p[1], p[0]))]
    stimulus_of = {i: (sets[i] or None) for i in base}
    shuffled = shuffle_keeping_sets(base, stimulus_of, random.Random(seed))
    assert sorted(shuffled) == sorted(base)
    _check_adjacent([stimulus_of[i] for i in shuffled])
    for sid in set(sets) - {0}:  # members keep their form order
        members = [i for i in shuffled if stimulus_of[i] == sid]
        assert members == [i for i in base if stimulus_of[i] == sid]


def test_an_attempt_shows_the_stimulus_beside_each_member(db, make_user):
    from assessment.delivery import service
    from assessment.exams import create_exam

    case = create_stimulus(db, code="CASE2", kind="passage", title="Passage", content="<p>P</p>")
    versions = [_item(db, "X1"), _item(db, "M1", case), _item(db, "M2", case), _item(db, "X2"),
                _item(db, "X3")]
    bp = create_blueprint(db, code="BP2", name="bp", domains=[
        {"code": "A", "name": "A", "weight": 1.0, "items_on_form": 5}])
    form = create_form(db, code="F2", blueprint=bp, versions=versions)
    exam = create_exam(db, code="SET-EXAM", title="Sets", blueprint=bp, forms=[form],
                       time_limit_seconds=600, pass_percent=50, instructions=["Go."],
                       agreement="I will work alone.", policy={})
    db.commit()
    for seed in range(12):
        attempt = service.start_attempt(db, make_user("candidate"), exam,
                                        grace_seconds=5, seed=seed)
        state = service.runner_state(db, attempt, grace_seconds=5)
        members = [it for it in state["items"] if "stimulus" in it]
        numbers = [it["number"] for it in members]
        assert len(members) == 2 and numbers[1] == numbers[0] + 1
        assert all(it["stimulus"]["shared_by"] == numbers for it in members)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_one_template_per_interaction_everywhere_and_no_key_in_it(app):
    from tests.itembank.test_item_types import DEFS, version

    with app.test_request_context():
        for kind in DEFS:
            v = version(kind)
            t = item_type(kind)
            payload = public_payload(v, t.shuffle_targets(v))
            payload["number"] = 3
            parts = item_parts(payload, prefix="q9")
            whole = str(render_item(payload, prefix="q9"))
            # the runner's parts are the preview's, the review's and the analysis page's
            assert parts["interaction"].strip() in whole and parts["stem"] in whole, kind
            assert f'data-item-type="{kind}"' in whole
            assert "THE-RATIONALE" not in whole
            for secret in ("Hypertension", "I1[0-6]", "12.5", "coords", "t2&#34;", "regions"):
                assert secret not in whole, (kind, secret)
            # every control has a label (the browser test runs axe on each in the runner)
            assert re.search(r"question 3", whole, re.IGNORECASE), kind
            disabled = str(render_item(payload, prefix="r1", disabled=True))
            assert "disabled" in disabled and 'id="q9' not in disabled
