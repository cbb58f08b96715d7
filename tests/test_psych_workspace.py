"""The psychometrician's workspace through the Flask test client, on SQLite and PostgreSQL:
roles, the exam overview, item analysis against the library, calibration storage and recovery
of the demo's simulated parameters, and bad input."""
from __future__ import annotations

import random
import re

import numpy as np
import pytest
from sqlalchemy import func, select

import psychometrics
from assessment.delivery.models import Attempt, Result
from assessment.demo_program import load_demo
from assessment.exams import Exam
from assessment.psych import calibration as exam_analysis
from assessment.users import User
from itembank.models import Form, ItemParameter, ItemVersion
from itembank.parameters import current_parameters
from psychometrics.ctt import cronbach_alpha
from tests.sittings import scored_items
from tests.sittings import sit as _sit


@pytest.fixture
def demo(request, db):
    """The demo program with its simulated past candidates (500 unless the test parametrizes
    ``demo`` with another number), split over two forms that share half their items."""
    creds = load_demo(db, history=getattr(request, "param", 500))
    db.commit()
    return db.scalar(select(Exam)), {role: (email, password) for role, email, password in creds}


@pytest.fixture
def demo_psychometrician(client, demo, signin, db):
    """The client signed in as the demo's psychometrician; returns the demo exam."""
    exam, creds = demo
    email, password = creds["psychometrician"]
    signin(client, db.scalar(select(User).where(User.email == email)), password)
    return exam


@pytest.fixture
def psychometrician(client, make_user, signin):
    signin(client, make_user("psychometrician"))
    return client


def _count(db, model, *where):
    db.commit()  # end the test session's snapshot: the app wrote in its own session
    return db.scalar(select(func.count()).select_from(model).where(*where))


def _matrix(db, exam):
    """The exam's persons x items 0/1 matrix, built here independently of the app."""
    rows = scored_items(db, exam)
    people = sorted({r.result_id for r in rows})
    codes = sorted({r.code for r in rows})
    x = np.full((len(people), len(codes)), np.nan)
    for r in rows:
        x[people.index(r.result_id), codes.index(r.code)] = r.score / r.max_score
    return x, codes, people


def _row(html, label):
    match = re.search(rf'<th scope="row">{re.escape(label)}</th>(.*?)</tr>', html, re.DOTALL)
    assert match, f"no table row for {label}"
    return match.group(1)


# ---------------------------------------------------------------- roles


def test_only_psychometricians_and_admins_may_enter(client, make_user, signin, demo_exam):
    pages = ["/psych/", f"/psych/exams/{demo_exam.code}/items",
             f"/psych/exams/{demo_exam.code}/items.json", f"/psych/exams/{demo_exam.code}/calibrate"]
    for url in pages:
        anonymous = client.get(url)
        assert anonymous.status_code == 302 and "/signin" in anonymous.headers["Location"], url
    for role in ("candidate", "proctor"):
        with client.application.test_client() as other:
            signin(other, make_user(role))
            for url in pages:
                assert other.get(url).status_code == 403, (role, url)
            token = re.search(r'name="csrf-token" content="([^"]+)"',
                              other.get("/psych/").get_data(as_text=True)).group(1)
            refused = other.post(f"/psych/exams/{demo_exam.code}/calibrate",
                                 data={"model": "2pl", "csrf_token": token})
            assert refused.status_code == 403
    for role in ("psychometrician", "admin"):
        with client.application.test_client() as allowed:
            signin(allowed, make_user(role))
            for url in pages:
                assert allowed.get(url).status_code in (200, 409), (role, url)
            page = allowed.get("/psych/").get_data(as_text=True)
            assert 'href="/psych/">Psychometrics</a>' in page  # the header link
            if role == "psychometrician":  # home sends them to the workspace
                assert allowed.get("/").headers["Location"].endswith("/psych/")


# ---------------------------------------------------------------- bad input


def test_an_exam_without_results_gets_a_message_not_a_crash(psychometrician, csrf_token, demo_exam, db):
    index = psychometrician.get("/psych/").get_data(as_text=True)
    row = _row(index, demo_exam.title)
    assert '<td class="num">0</td>' in row and "n/a" in row
    items = psychometrician.get(f"/psych/exams/{demo_exam.code}/items")
    assert items.status_code == 200
    assert "has no finalized results yet" in items.get_data(as_text=True)
    as_json = psychometrician.get(f"/psych/exams/{demo_exam.code}/items.json")
    assert as_json.status_code == 409 and as_json.json["error"] == "no_data"
    resp = psychometrician.post(f"/psych/exams/{demo_exam.code}/calibrate",
                                data={"model": "2pl", "csrf_token": csrf_token(psychometrician)})
    assert resp.status_code == 422
    assert "has no finalized results yet" in resp.get_data(as_text=True)
    assert _count(db, ItemParameter) == 0


def test_unknown_exam_is_404(psychometrician, csrf_token):
    token = csrf_token(psychometrician)
    for resp in (psychometrician.get("/psych/exams/NOPE/items"),
                 psychometrician.get("/psych/exams/NOPE/calibrate"),
                 psychometrician.post("/psych/exams/NOPE/calibrate", data={"model": "2pl", "csrf_token": token})):
        assert resp.status_code == 404
        assert "no exam with code &#39;NOPE&#39;" in resp.get_data(as_text=True)
    assert psychometrician.get("/psych/exams/NOPE/items.json").json["error"] == "unknown_exam"


def test_bad_model_cycle_count_or_csrf_token_is_refused(psychometrician, csrf_token, demo_exam, db):
    token = csrf_token(psychometrician)
    url = f"/psych/exams/{demo_exam.code}/calibrate"
    assert psychometrician.post(url, data={"model": "2pl"}).status_code == 400  # no CSRF token
    bad_model = psychometrician.post(url, data={"model": "4pl", "csrf_token": token})
    assert bad_model.status_code == 422
    assert "model must be one of rasch, 2pl, 3pl" in bad_model.get_data(as_text=True)
    bad_cycles = psychometrician.post(url, data={"model": "2pl", "max_iter": "lots", "csrf_token": token})
    assert bad_cycles.status_code == 422
    assert "maximum EM cycles must be a whole number" in bad_cycles.get_data(as_text=True)
    assert _count(db, ItemParameter) == 0


def test_constant_items_invalidated_results_and_non_finite_estimates(
    psychometrician, csrf_token, demo_exam, db, monkeypatch
):
    rng = random.Random(7)
    scores = []
    for _ in range(41):
        theta = rng.gauss(0, 1)
        scores.append([1] + [int(rng.random() < 1 / (1 + np.exp(-(theta - b)))) for b in (-1, 0, 0.5, 1)])
    versions = _sit(db, demo_exam, scores, invalidate={40})
    index = psychometrician.get("/psych/").get_data(as_text=True)
    row = _row(index, demo_exam.title)
    assert re.search(r'<td class="num">40</td>.*<td class="num">1</td>', row, re.DOTALL)  # 40 counted, 1 left out

    real = exam_analysis.calibrate

    def with_a_bad_estimate(*args, **kwargs):
        fit = real(*args, **kwargs)
        fit.params.b[1] = np.nan  # as if the estimate of the second item had diverged
        fit.converged = False
        fit.messages.append("EM stopped after 3 iterations; estimates may be inaccurate")
        return fit

    monkeypatch.setattr(exam_analysis, "calibrate", with_a_bad_estimate)
    token = csrf_token(psychometrician)
    resp = psychometrician.post(f"/psych/exams/{demo_exam.code}/calibrate",
                                data={"model": "2pl", "csrf_token": token}, follow_redirects=True)
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "The calibration did not converge" in html
    assert "every presented response is the same" in html  # the library's warning on item 1
    assert "not estimable (constant)" in _row(html, versions[0].item.code)
    assert "non-finite b: not stored" in _row(html, versions[1].item.code)
    assert _count(db, ItemParameter) == 0  # a run is only proposed
    run_url = resp.request.path
    approved = psychometrician.post(f"{run_url}/approve", data={
        "csrf_token": token, "override_not_converged": "yes", "reason": "checking the storage"})
    assert approved.status_code == 303
    db.commit()
    stored = db.scalars(select(ItemParameter)).all()
    assert sorted(p.item_version_id for p in stored) == sorted(v.id for v in versions[2:])
    assert all(np.isfinite([p.a, p.b, p.c]).all() for p in stored)
    assert "NOT converged" in stored[0].source


# ---------------------------------------------------------------- the demo program


@pytest.mark.parametrize("demo", [200], indirect=True)  # a shorter history loads faster
def test_overview_and_item_analysis_match_the_library(client, demo_psychometrician, db):
    psychometrician, demo = client, demo_psychometrician
    x, codes, people = _matrix(db, demo)
    assert x.shape == (200, 31) and np.isnan(x).any()  # two forms: not every item seen by all

    index = _row(psychometrician.get("/psych/").get_data(as_text=True), demo.title)
    percents = db.scalars(select(Result.percent)).all()
    passed = db.scalars(select(Result.passed)).all()
    assert '<td class="num">200</td>' in index
    assert f"{np.mean(percents):.1f}%" in index
    assert f"{100 * np.mean(passed):.1f}%" in index

    expected = psychometrics.item_analysis(x, item_ids=codes).to_dict()
    got = psychometrician.get(f"/psych/exams/{demo.code}/items.json").json
    assert got["n_persons"] == 200
    by_id = {i["id"]: i for i in got["items"]}
    assert sorted(by_id) == codes
    for item in expected["items"]:
        mine = by_id[item["id"]]
        # the workspace adds what the library cannot see in a bare score matrix: the chosen
        # options and each form's alpha-if-deleted (tests/test_psych_export.py checks those)
        added = {"distractor_attracts_high_scorers", "alpha_increases_if_deleted"}
        assert set(mine["flags"]) - added == set(item["flags"]) and mine["n"] == item["n"]
        for key in ("p", "corrected_r", "point_biserial", "biserial", "upper_lower_d"):
            assert (mine[key] is None) == (item[key] is None), (item["id"], key)
            if item[key] is not None:
                assert mine[key] == pytest.approx(item[key], rel=1e-12), (item["id"], key)
    assert got["reliability"]["alpha"] is None  # nobody saw both forms
    form_of = dict(db.execute(select(Result.id, Form.code).join(Attempt, Attempt.id == Result.attempt_id)
                              .join(Form, Form.id == Attempt.form_id)).all())
    assert sorted(f["form"] for f in got["forms"]) == ["CCF-FORM-A", "CCF-FORM-B"]
    for form in got["forms"]:
        block = x[[i for i, r in enumerate(people) if form_of[r] == form["form"]]]
        block = block[:, ~np.isnan(block).any(axis=0)]
        alpha = cronbach_alpha(block)
        assert form["reliability"]["alpha"] == pytest.approx(alpha.alpha, rel=1e-12)
        assert form["reliability"]["ci_low"] == pytest.approx(alpha.ci_low, rel=1e-12)
        assert form["reliability"]["ci_high"] == pytest.approx(alpha.ci_high, rel=1e-12)
        assert form["reliability"]["sem"] == pytest.approx(alpha.sem, rel=1e-12)
        assert form["reliability"]["n_persons"] == 100 and form["reliability"]["n_items"] == 20

    html = psychometrician.get(f"/psych/exams/{demo.code}/items").get_data(as_text=True)
    assert "<caption>" in html and 'scope="col"' in html
    flagged = [i for i in got["items"] if i["flags"]]
    clean = [i for i in got["items"] if not i["flags"]]
    assert flagged and clean
    assert html.index(f'<th scope="row">{flagged[-1]["id"]}</th>') < html.index(f'<th scope="row">{clean[0]["id"]}</th>')
    hard = next(i for i in flagged if "too_hard" in i["flags"])
    row = _row(html, hard["id"])
    assert "Flagged" in row and f'{hard["p"]:.3f}' in row and f'{hard["corrected_r"]:.3f}' in row
    assert "too hard: p below 0.20" in row
    for form in got["forms"]:
        assert f'{form["reliability"]["alpha"]:.3f}' in _row(html, f'Form {form["form"]}')


def test_calibration_stores_new_rows_and_recovers_the_simulated_parameters(
    client, demo_psychometrician, csrf_token, db
):
    psychometrician, demo = client, demo_psychometrician
    url = f"/psych/exams/{demo.code}/calibrate"
    token = csrf_token(psychometrician)
    first = psychometrician.post(url, data={"model": "2pl", "csrf_token": token}, follow_redirects=True)
    assert first.status_code == 200
    html = first.get_data(as_text=True)
    assert "is stored as proposed" in html and "Yes, in" in html
    assert _count(db, ItemParameter) == 0
    approved = psychometrician.post(f"{first.request.path}/approve", data={"csrf_token": token})
    assert approved.status_code == 303
    for label in ("Log-likelihood", "AIC", "BIC", "Simulated b", "S-X2, CCF-FORM-A"):
        assert label in html

    db.commit()  # end the test session's snapshot: the app wrote in its own session
    rows = db.scalars(select(ItemParameter).order_by(ItemParameter.id)).all()
    assert len(rows) == 31 and {r.model for r in rows} == {"2pl"}
    truth = {v.id: v.meta["simulation"] for v in db.scalars(select(ItemVersion))}
    est_b = np.array([r.b for r in rows])
    true_b = np.array([truth[r.item_version_id]["b"] for r in rows])
    est_a = np.array([r.a for r in rows])
    true_a = np.array([truth[r.item_version_id]["a"] for r in rows])
    assert np.corrcoef(est_b, true_b)[0, 1] > 0.9
    assert np.corrcoef(est_a, true_a)[0, 1] > 0.6
    assert all(r.standard_errors["b"] > 0 and r.standard_errors["a"] > 0 for r in rows)
    some = rows[0]
    row = _row(html, db.get(ItemVersion, some.item_version_id).item.code)
    assert f"{some.b:.3f}" in row and f'{truth[some.item_version_id]["b"]:.3f}' in row
    recovery_b = re.search(r'<th scope="row">b</th><td class="num">31</td><td class="num">([0-9.]+)</td>', html)
    assert recovery_b and float(recovery_b.group(1)) > 0.9

    before = [(r.id, r.item_version_id, r.a, r.b, r.c, r.source, r.created_at) for r in rows]
    second = psychometrician.post(url, data={"model": "3pl", "max_iter": "3", "csrf_token": token},
                                  follow_redirects=True)
    assert second.status_code == 200
    assert "The calibration did not converge" in second.get_data(as_text=True)
    db.commit()
    assert _count(db, ItemParameter) == 31  # not converged: proposed, nothing changes
    psychometrician.post(f"{second.request.path}/approve", data={
        "csrf_token": token, "override_not_converged": "yes", "reason": "to test supersession"})
    db.commit()
    all_rows = db.scalars(select(ItemParameter).order_by(ItemParameter.id)).all()
    assert len(all_rows) == 62
    assert [(r.id, r.item_version_id, r.a, r.b, r.c, r.source, r.created_at) for r in all_rows[:31]] == before
    newest = all_rows[31:]
    assert {r.model for r in newest} == {"3pl"} and all("NOT converged" in r.source for r in newest)
    current = current_parameters(db, list(truth))
    assert {p.id for p in current.values()} == {r.id for r in newest}

    page = psychometrician.get(url).get_data(as_text=True)
    run = newest[0].source.split(";")[0]
    assert page.count(run) == 31 and "3pl" in page
