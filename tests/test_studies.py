"""Standard-setting studies through the Flask test client, on SQLite and PostgreSQL: the study
flow checked against published and hand-worked numbers, who may see and post what, and bad input.

Sources of the numbers:

- Angoff agreement: Shrout & Fleiss (1979, Psychological Bulletin 86, 420-428), Table 2, 6 targets
  rated by 4 judges on a 1-10 scale, with the ICCs published in their Table 4 (ICC(2,1) = .29,
  ICC(2,k) = .62, ICC(3,1) = .71). Divided by 10 the ratings are Angoff probabilities of 4
  panelists for 6 items; an ICC does not change when every rating is divided by the same number,
  so the study's agreement statistics must reproduce the published ones. The cut is the mean of the
  panelist sums (Angoff, 1971; Cizek & Bunch, 2007, ch. 6): judges' sums 4.6, 1.5, 2.6, 4.0, mean
  3.175, SD (n - 1) sqrt(5.8475 / 3) = 1.39613, SE = SD / sqrt(4) = 0.69806 (Hambleton &
  Pitoniak, 2006), worked by hand below.
"""
from __future__ import annotations

import csv
import html as html_text
import io
import re

import numpy as np
import pytest
from sqlalchemy import func, select

from assessment.psych.studies import StudyRating, StudyRound
from assessment.psych.study_results import study_recommendation
from assessment.users import User
from itembank.parameters import ParameterValues, supersede_parameters
from psychometrics import ItemParameters, theta_for_raw
from tests.sittings import sit

# Shrout & Fleiss (1979), Table 2: rows are targets (items), columns judges (panelists).
SHROUT_FLEISS = np.array([
    [9, 2, 5, 8],
    [6, 1, 3, 2],
    [8, 4, 6, 8],
    [7, 1, 2, 6],
    [10, 5, 6, 9],
    [6, 2, 4, 7],
])
ANGOFF = SHROUT_FLEISS.T / 10  # panelists x items probabilities

# 20 candidates' raw scores on the 6-item reference form: pass rate at a cut of 3.175 (a raw
# score of 4 or more) is 11 / 20 = .55, at 4.0 the same, at 5 (score 5 or 6) 5 / 20 = .25.
RAW_SCORES = [1, 1, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 5, 5, 5, 6, 6]


def _score_rows(raw_scores, n_items=6):
    return [[1] * r + [0] * (n_items - r) for r in raw_scores]


@pytest.fixture
def exam(db, build_exam):
    exam = build_exam(db, code="SS", n_per_domain=(3, 3))
    sit(db, exam, _score_rows(RAW_SCORES))
    return exam


def _token(client):
    page = client.get("/psych/panel/", follow_redirects=True).get_data(as_text=True)
    if 'name="csrf-token"' not in page:
        page = client.get("/signin", follow_redirects=True).get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


def _post(client, url, data=None, **kw):
    return client.post(url, data={**(data or {}), "csrf_token": _token(client)}, **kw)


def _client(app, signin, user):
    c = app.test_client()
    signin(c, user)
    return c


@pytest.fixture
def facilitator(app, make_user, signin):
    user = make_user("psychometrician")
    return user, _client(app, signin, user)


def _create(fac_client, exam, method="angoff", **extra):
    resp = _post(fac_client, "/psych/studies", {
        "title": f"{method} study", "method": method,
        "reference": f"{exam.code}|{exam.forms[0].form.code}", **extra})
    assert resp.status_code == 303, resp.get_data(as_text=True)[:2000]
    return int(resp.headers["Location"].rsplit("/", 1)[1])


def _seat(fac_client, study_id, users):
    for u in users:
        resp = _post(fac_client, f"/psych/studies/{study_id}/panelists", {"email": u.email})
        assert resp.status_code == 303, resp.get_data(as_text=True)[:500]


def _versions(exam):
    return [fi.item_version for fi in exam.forms[0].form.items]


def _rate(client, study_id, round_number, versions, values):
    data = {"round": str(round_number)}
    data.update({f"rating-{v.id}": str(x) for v, x in zip(versions, values)})
    return _post(client, f"/psych/panel/{study_id}", data)


def _text(resp) -> str:
    return html_text.unescape(resp.get_data(as_text=True))


def _count(db, model, *where):
    db.commit()
    return db.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def angoff_panel(app, db, exam, facilitator, make_user, signin):
    """An Angoff study with 4 panelists (role panelist) seated and round 1 open."""
    _, fac = facilitator
    panelists = [make_user("panelist") for _ in range(4)]
    study_id = _create(fac, exam)
    _seat(fac, study_id, panelists)
    assert _post(fac, f"/psych/studies/{study_id}/rounds").status_code == 303
    clients = [_client(app, signin, p) for p in panelists]
    return study_id, panelists, clients


def test_angoff_round_reproduces_shrout_fleiss_agreement_and_the_hand_worked_cut(
        db, exam, facilitator, angoff_panel):
    _, fac = facilitator
    study_id, panelists, clients = angoff_panel
    versions = _versions(exam)
    # the form's reference items are calibrated: 2PL, a = 1, b spread (for the theta cut)
    b = [-1.0, -0.5, 0.0, 0.3, 0.8, 1.2]
    supersede_parameters(db, [ParameterValues(v.id, "2pl", 1.0, bj) for v, bj in
                              zip(versions, b)], source="test")
    db.commit()
    for client, row in zip(clients, ANGOFF):
        resp = _rate(client, study_id, 1, versions, row)
        assert resp.status_code == 303, resp.get_data(as_text=True)[:2000]
    assert _post(fac, f"/psych/studies/{study_id}/rounds/close").status_code == 303

    rec = study_recommendation(db, study_id)
    assert rec["method"] == "angoff" and rec["round"] == 1 and rec["n_judges"] == 4
    assert rec["raw_cut"] == pytest.approx(3.175)
    assert rec["raw_se"] == pytest.approx(np.sqrt(5.8475 / 3) / 2)
    assert rec["percent"] == pytest.approx(100 * 3.175 / 6)
    assert rec["pass_rate"] == pytest.approx(11 / 20)
    # the theta cut is where the reference form's test characteristic curve reaches 3.175
    params = ItemParameters("2pl", [1.0] * 6, b)
    assert rec["theta_cut"] == pytest.approx(float(theta_for_raw(params, 3.175)[0]), abs=1e-9)
    assert rec["theta_se"] > 0

    page = fac.get(f"/psych/studies/{study_id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    rounds = re.search(r'<table class="table" id="rounds">(.*?)</table>', html, re.DOTALL).group(1)
    # published ICC(2,1) = .29 and ICC(2,k) = .62 (Shrout & Fleiss, 1979, Table 4)
    assert ">0.290<" in rounds and ">0.620<" in rounds
    assert "3.17" in rounds or "3.18" in rounds
    assert "1.396" in rounds  # SD of the panelist cuts
    assert "55.0%" in rounds
    assert 'alt="Scores on SS-F1 and the recommended cut. 20 candidates' in html_text.unescape(html)
    propose = re.search(r'href="(/psych/exams/SS/cuts\?theta=[^"]+)"', html).group(1)
    assert propose.endswith(f"&amp;study={study_id}")
    assert f"theta={rec['theta_cut']:.4f}" in propose
    adoption = fac.get(html_text.unescape(propose))  # the cuts page shows where it came from
    assert adoption.status_code == 200 and "angoff study" in _text(adoption)
    # every panelist's cut is the facilitator's to see (sums 4.6, 1.5, 2.6, 4.0)
    cuts = re.search(r'id="panelist-cuts">(.*?)</table>', html, re.DOTALL).group(1)
    for name, cut in zip((p.display_name for p in panelists), ("4.600", "1.500", "2.600", "4.000")):
        assert re.search(rf"{re.escape(name)}</th><td class=\"num\">{cut}<", cuts), name


def test_a_second_round_supersedes_without_editing_and_closed_rounds_never_change(
        db, exam, facilitator, angoff_panel):
    _, fac = facilitator
    study_id, panelists, clients = angoff_panel
    versions = _versions(exam)
    for client, row in zip(clients, ANGOFF):
        _rate(client, study_id, 1, versions, row)
    # a change while the round is open is a new row superseding the old one
    assert _rate(clients[1], study_id, 1, versions[:1], [0.3]).status_code == 303
    assert _count(db, StudyRating) == 25
    changed = db.scalars(select(StudyRating).where(StudyRating.supersedes_id.is_not(None))).all()
    assert len(changed) == 1 and changed[0].value == 0.3
    # saving the same ratings again adds nothing
    _rate(clients[0], study_id, 1, versions, ANGOFF[0])
    assert _count(db, StudyRating) == 25
    _post(fac, f"/psych/studies/{study_id}/rounds/close")
    late = _rate(clients[0], study_id, 1, versions[:1], [0.5])
    assert late.status_code == 409
    assert "ratings of a closed round never change" in late.get_data(as_text=True)
    assert _count(db, StudyRating) == 25
    # round 2, after round 1's results (cut, impact, item feedback) were shown to the panel
    assert _post(fac, f"/psych/studies/{study_id}/rounds/1/release").status_code == 303
    assert _post(fac, f"/psych/studies/{study_id}/rounds").status_code == 303
    for client, row in zip(clients, ANGOFF):
        assert _rate(client, study_id, 2, versions, row).status_code == 303
    assert _post(fac, f"/psych/studies/{study_id}/rounds/close").status_code == 303
    db.commit()
    rec = study_recommendation(db, study_id)
    assert rec["round"] == 2 and rec["raw_cut"] == pytest.approx(3.175)
    assert _count(db, StudyRound) == 2
    # the study's record: every row, the superseded one marked, for the facilitator to keep
    export = fac.get(f"/psych/studies/{study_id}/judgments.csv")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(export.get_data(as_text=True))))
    assert len(rows) == 25 + 24
    superseded = [r for r in rows if r["standing"] == "no"]
    assert len(superseded) == 1 and superseded[0]["round"] == "1"
    assert superseded[0]["panelist_email"] == panelists[1].email
    assert next(r for r in rows if r["supersedes_row"])["value"] == "0.3"
    assert clients[0].get(f"/psych/studies/{study_id}/judgments.csv").status_code == 403


def test_a_panelist_sees_only_their_studies_and_no_one_elses_ratings_until_released(
        app, db, exam, facilitator, angoff_panel, make_user, signin):
    _, fac = facilitator
    study_id, panelists, clients = angoff_panel
    versions = _versions(exam)
    other_study = _create(fac, exam, title="Another panel")
    me, them = clients[0], clients[1]
    # the workspace, the bank, delivery, administration and other studies are closed to them
    for url in ["/psych/", f"/psych/exams/{exam.code}/items", f"/psych/exams/{exam.code}/report",
                "/psych/studies", f"/psych/studies/{study_id}", f"/psych/studies/{study_id}/booklet",
                f"/psych/studies/{study_id}/recommendation.json", f"/psych/panel/{other_study}",
                "/bank/items", "/admin/", "/exams"]:
        assert me.get(url).status_code == 403, url
    listing = me.get("/psych/panel/").get_data(as_text=True)
    assert f"/psych/panel/{study_id}" in listing and f"/psych/panel/{other_study}" not in listing
    assert me.get("/").headers["Location"].endswith("/psych/panel/")
    # posting to a study they do not sit on is refused before anything is read
    refused = _rate(me, other_study, 1, versions, ANGOFF[0])
    assert refused.status_code == 403
    assert _post(me, f"/psych/studies/{study_id}/rounds/close").status_code == 403
    assert _count(db, StudyRating) == 0
    # a candidate has no panel at all
    candidate = _client(app, signin, make_user("candidate"))
    assert candidate.get("/psych/panel/").status_code == 403
    assert candidate.get(f"/psych/panel/{study_id}").status_code == 403

    _rate(them, study_id, 1, versions, [0.97, 0.13, 0.83, 0.11, 0.59, 0.23])
    _rate(me, study_id, 1, versions, ANGOFF[0])
    page = me.get(f"/psych/panel/{study_id}").get_data(as_text=True)
    # my screen shows the items with their keys, my own ratings, and nothing of theirs
    assert "Key:" in page and 'value="0.9"' in page
    # (times carry microseconds, which may hold "0.13": they are not ratings)
    shown = re.sub(r"<time[^>]*>.*?</time>", "", page)
    for mark in ("0.97", "0.13", "0.83", panelists[1].display_name, "Panel cut"):
        assert mark not in shown, mark
    _post(fac, f"/psych/studies/{study_id}/rounds/close")
    assert "Panel cut" not in me.get(f"/psych/panel/{study_id}").get_data(as_text=True)
    _post(fac, f"/psych/studies/{study_id}/rounds/1/release")
    released = me.get(f"/psych/panel/{study_id}").get_data(as_text=True)
    assert "Panel cut" in released and "Impact" in released
    assert panelists[1].display_name not in released and "0.97" not in released


def test_bad_ratings_name_the_field_and_store_nothing(db, exam, facilitator, angoff_panel):
    study_id, _panelists, clients = angoff_panel
    versions = _versions(exam)
    me = clients[0]
    resp = _rate(me, study_id, 1, versions, [0.5, 1.5, 0.5, 0.5, 0.5, 0.5])
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert f"{versions[1].item.code}: the probability 1.5 is outside [0, 1]" in html
    assert re.search(rf'id="rating-{versions[1].id}"[^>]*aria-invalid="true"', html)
    assert 'value="1.5"' in html  # what was typed comes back to be corrected
    for bad, words in (("-0.1", "outside [0, 1]"), ("lots", "is not a number"),
                       ("nan", "outside [0, 1]")):
        resp = _rate(me, study_id, 1, versions[:1], [bad])
        assert resp.status_code == 422 and words in resp.get_data(as_text=True), bad
    stranger = _post(me, f"/psych/panel/{study_id}", {"round": "1", "rating-999999": "0.5"})
    assert stranger.status_code == 422
    assert "rating-999999: item version 999999 is not on the reference form" in \
        stranger.get_data(as_text=True)
    no_round = _rate(me, study_id, 7, versions, ANGOFF[0])
    assert no_round.status_code == 422 and "has no round '7'" in _text(no_round)
    assert _count(db, StudyRating) == 0


def test_creating_and_seating_refuse_bad_input_by_field(db, exam, facilitator, make_user):
    _, fac = facilitator
    reference = f"{exam.code}|{exam.forms[0].form.code}"
    for data, words in (
        ({"title": "", "method": "angoff", "reference": reference}, "title: give the study"),
        ({"title": "x", "method": "guess", "reference": reference}, "method: 'guess' is not"),
        ({"title": "x", "method": "bookmark", "reference": reference, "rp": "1.5"},
         "rp: the response probability must lie strictly between 0 and 1"),
        ({"title": "x", "method": "angoff", "reference": f"{exam.code}|NOPE"},
         "reference_form: exam SS has no form 'NOPE'"),
    ):
        resp = _post(fac, "/psych/studies", data)
        assert resp.status_code == 422 and words in _text(resp), words
    study_id = _create(fac, exam)
    # the exam's workspace pages lead to its studies, with the exam's form chosen for a new one
    items = fac.get(f"/psych/exams/{exam.code}/items").get_data(as_text=True)
    assert f'href="/psych/studies?exam={exam.code}"' in items
    listing = _text(fac.get(f"/psych/studies?exam={exam.code}"))
    assert f"/psych/studies/{study_id}" in listing
    assert f'value="{exam.code}|{exam.forms[0].form.code}" selected' in listing
    candidate = make_user("candidate")
    for email, words in ((candidate.email, "candidates may not sit on a panel"),
                         ("nobody@example.org", "there is no account")):
        resp = _post(fac, f"/psych/studies/{study_id}/panelists", {"email": email})
        assert resp.status_code == 422 and words in _text(resp)
    empty = _post(fac, f"/psych/studies/{study_id}/rounds")
    assert empty.status_code == 409 and "invite at least one panelist" in empty.get_data(as_text=True)
    assert db.scalar(select(func.count()).select_from(User).where(User.role == "panelist")) == 0


def test_a_removed_panelist_loses_the_study_and_their_ratings_count_no_more(
        db, exam, facilitator, angoff_panel):
    """Four panelists rate round 1 (sums 4.6, 1.5, 2.6, 4.0: cut 3.175); the facilitator removes
    the second (reason recorded): their 6 rating rows stay, the cut becomes the mean of the other
    three sums, (4.6 + 2.6 + 4.0) / 3 = 3.7333, SE = SD(4.6, 2.6, 4.0) / sqrt(3), and they get 403."""
    fac_user, fac = facilitator
    study_id, panelists, clients = angoff_panel
    versions = _versions(exam)
    for client, row in zip(clients, ANGOFF):
        assert _rate(client, study_id, 1, versions, row).status_code == 303
    gone = panelists[1]
    url = f"/psych/studies/{study_id}/panelists/{gone.id}/remove"
    # only the facilitator removes, with a reason, a panelist who is seated
    assert _post(clients[0], url, {"reason": "x"}).status_code == 403
    no_reason = _post(fac, url, {"reason": "   "})
    assert no_reason.status_code == 422 and "reason: say why the panelist is removed" in _text(
        no_reason)
    stranger = _post(fac, f"/psych/studies/{study_id}/panelists/999999/remove", {"reason": "x"})
    assert stranger.status_code == 422 and "panelist: user 999999 is not on the panel" in _text(
        stranger)
    too_long = _post(fac, url, {"reason": "x" * 501})
    assert too_long.status_code == 422 and "reason: at most 500 characters" in _text(too_long)

    resp = _post(fac, url, {"reason": "Declared a conflict of interest after round 1"})
    assert resp.status_code == 303, _text(resp)[:1000]
    from assessment.psych.studies import PanelistRemoval

    db.commit()
    (removal,) = db.scalars(select(PanelistRemoval)).all()
    assert (removal.study_id, removal.user_id, removal.removed_by_id) == (study_id, gone.id,
                                                                          fac_user.id)
    assert removal.reason == "Declared a conflict of interest after round 1"
    assert removal.removed_at is not None
    # nothing was deleted: their ratings rows are all still there
    assert _count(db, StudyRating, StudyRating.panelist_id == gone.id) == len(versions)
    assert _count(db, StudyRating) == 4 * len(versions)

    _post(fac, f"/psych/studies/{study_id}/rounds/close")
    db.commit()  # a fresh read: the app has written
    rec = study_recommendation(db, study_id)
    db.commit()
    kept = np.array([4.6, 2.6, 4.0])
    assert rec["n_judges"] == 3
    assert rec["raw_cut"] == pytest.approx(kept.mean())
    assert rec["raw_se"] == pytest.approx(kept.std(ddof=1) / np.sqrt(3))
    page = _text(fac.get(f"/psych/studies/{study_id}"))
    assert "Declared a conflict of interest after round 1" in page
    assert 'id="removed-panelists"' in page and "3 panelists" in page

    # the removed panelist no longer sees or posts to the study
    me = clients[1]
    assert me.get(f"/psych/panel/{study_id}").status_code == 403
    assert _rate(me, study_id, 1, versions, ANGOFF[1]).status_code == 403
    assert f"/psych/panel/{study_id}" not in me.get("/psych/panel/").get_data(as_text=True)
    # the others still do
    assert clients[0].get(f"/psych/panel/{study_id}").status_code == 200
    # removed once; not removed again, not seated again
    again = _post(fac, url, {"reason": "again"})
    assert again.status_code == 409 and "removed from the panel already" in _text(again)
    reseat = _post(fac, f"/psych/studies/{study_id}/panelists", {"email": gone.email})
    assert reseat.status_code == 409 and "is not seated again" in _text(reseat)
