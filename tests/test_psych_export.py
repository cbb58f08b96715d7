"""The item analysis export carries the numbers the page shows (issue 9, finding 24): the pooled
score distribution counts every result, and each item has its option statistics and its
alpha-if-deleted on each form it is on, checked here against direct numpy computations on the
demo's simulated history."""
from __future__ import annotations

import re

import numpy as np
import pytest
from sqlalchemy import select

from assessment.demo_program import load_demo
from assessment.exams import Exam
from assessment.users import User
from itembank.models import ItemVersion
from tests.sittings import scored_items


@pytest.fixture
def demo(client, db, signin):
    creds = {role: (email, pw) for role, email, pw in load_demo(db, history=200)}
    db.commit()
    email, password = creds["psychometrician"]
    signin(client, db.scalar(select(User).where(User.email == email)), password)
    return db.scalar(select(Exam))


def _label(response, item_type: str = "single_choice", score: float = 0.0) -> str:
    if response is None or response in ([], "", {}):
        return "(omitted)"
    if item_type not in {"single_choice", "multiple_response", "true_false"}:
        return "(full credit)" if score >= 1 else "(other answer)"  # (every demo item scores 0/1)
    return "+".join(sorted(response)) if isinstance(response, list) else str(response)


def _alpha(x: np.ndarray) -> float:
    k = x.shape[1]
    return k / (k - 1) * (1 - x.var(axis=0, ddof=1).sum() / x.sum(axis=1).var(ddof=1))


def test_export_has_the_result_count_options_and_alpha_if_deleted(client, demo, db):
    exam = demo
    rows = scored_items(db, exam)
    people = sorted({r.result_id for r in rows})
    codes = sorted({r.code for r in rows})
    x = np.full((len(people), len(codes)), np.nan)
    chosen = np.full(x.shape, None, dtype=object)
    form_of = {}
    for r in rows:
        i, j = people.index(r.result_id), codes.index(r.code)
        x[i, j], chosen[i, j] = r.score, _label(r.response, r.item_type, r.score)
        form_of[i] = r.form
    # (items of other types than choices are analysed by credit: their "key" is full credit)
    keys = {v.item.code: _label(v.key["correct"], v.item_type, 1.0) if "correct" in v.key
            else "(full credit)" for v in db.scalars(select(ItemVersion))}

    index = client.get("/psych/").get_data(as_text=True)
    doc = client.get(f"/psych/exams/{exam.code}/items.json").json
    page = client.get(f"/psych/exams/{exam.code}/items").get_data(as_text=True)

    # the pooled distribution counts every result, as the overview and the page say
    totals = np.nansum(x, axis=1)
    dist = doc["score_distribution"]
    assert dist["n"] == len(people) == doc["n_persons"] == 200
    assert re.search(r'<td class="num">200</td>', index)
    assert dist["mean"] == pytest.approx(totals.mean(), rel=1e-12)
    assert dist["sd"] == pytest.approx(totals.std(ddof=1), rel=1e-12)
    pooled = re.search(r'<th scope="row">All forms pooled</th>(.*?)</tr>', page, re.DOTALL).group(1)
    assert '<td class="num">200</td>' in pooled
    assert f'{totals.mean():.2f}' in pooled and f'{totals.std(ddof=1):.2f}' in pooled

    by_code = {item["id"]: item for item in doc["items"]}
    forms = sorted(set(form_of.values()))
    assert forms == ["CCF-FORM-A", "CCF-FORM-B"]
    for j, code in enumerate(codes):
        item = by_code[code]
        # alpha-if-deleted: on each form the item is on, alpha of that form's block without it
        expected = {}
        for form in forms:
            block = x[[i for i in range(len(people)) if form_of[i] == form]]
            cols = np.flatnonzero(~np.isnan(block).any(axis=0))
            if j in cols:
                expected[form] = _alpha(block[:, [c for c in cols if c != j]])
        assert expected, code
        assert set(item["alpha_if_deleted"]) == set(expected), code
        for form, value in expected.items():
            assert item["alpha_if_deleted"][form] == pytest.approx(value, rel=1e-12), (code, form)
            assert f"{form}: {value:.3f}" in page

        # options: proportions and point-biserials with the score on the other items seen
        seen = ~np.isnan(x[:, j])
        labels = chosen[seen, j]
        rest = totals[seen] - x[seen, j]
        options = {o["option"]: o for o in item["options"]}
        assert set(options) == set(labels) | {keys[code]}, code
        assert [o for o, s in options.items() if s["is_key"]] == [keys[code]]
        assert sum(o["proportion"] for o in options.values()) == pytest.approx(1.0)
        for label, stats in options.items():
            hit = (labels == label).astype(float)
            assert stats["proportion"] == pytest.approx(hit.mean(), rel=1e-12), (code, label)
            if hit.std() > 0:
                r = np.corrcoef(hit, rest)[0, 1]
                assert stats["point_biserial"] == pytest.approx(r, rel=1e-9), (code, label)
            assert stats["flagged"] == (not stats["is_key"] and (stats["point_biserial"] or 0) > 0)
        assert ("distractor_attracts_high_scorers" in item["flags"]) == any(
            o["flagged"] for o in options.values())
    assert 'class="table psych-options"' in page and "(key)" in page
