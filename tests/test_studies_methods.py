"""Standard-setting studies of the other methods, end to end through the pages: Hofstee and Beuk
(with their chart), Bookmark (ordered item booklet at RP67), contrasting groups and borderline
regression from candidate classifications (form and CSV upload with per-line errors).

Each cut is worked by hand in the comments, following the methods as Cizek & Bunch (2007,
"Standard Setting") describe them: Hofstee (1983) and Beuk (1984), ch. 14; Bookmark (Mitzel,
Lewis, Patz & Green, 2001), ch. 10; contrasting groups (Livingston & Zieky, 1982), ch. 8;
borderline regression (Kramer et al., 2003). SQLite only: the Angoff flow in
tests/test_studies.py runs on both databases; these check the methods' wiring and numbers.
"""
from __future__ import annotations

import io
import math
import re

import numpy as np
import pytest
from sqlalchemy import func, select

from assessment.psych.studies import StudyClassification
from assessment.psych.study_results import study_recommendation
from itembank.parameters import ParameterValues, supersede_parameters
from psychometrics import (
    ItemParameters,
    PsychometricsError,
    beuk_cut,
    contrasting_groups_cut_se,
    hofstee_cut,
)
from psychometrics.equating import raw_for_theta
from tests.sittings import sit
from tests.test_studies import _client, _create, _post, _seat, _text, _versions

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

# 20 candidates' raw scores on a 10-item form
SCORES = [2, 3, 4, 4, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 8, 8, 8, 9, 9, 10]


def _rows(raw_scores, n_items=10):
    return [[1] * r + [0] * (n_items - r) for r in raw_scores]


@pytest.fixture
def ten_items(db, build_exam):
    return build_exam(db, code="SS10", n_per_domain=(5, 5))


@pytest.fixture
def fac(app, make_user, signin):
    return _client(app, signin, make_user("psychometrician"))


def _panel(app, fac, make_user, signin, study_id, n):
    users = [make_user("panelist") for _ in range(n)]
    _seat(fac, study_id, users)
    assert _post(fac, f"/psych/studies/{study_id}/rounds").status_code == 303
    return [_client(app, signin, u) for u in users]


def _judge(client, study_id, values, round_number=1):
    return _post(client, f"/psych/panel/{study_id}",
                 {"round": str(round_number), **{k: str(v) for k, v in values.items()}})


def test_hofstee_and_beuk_studies_cut_where_the_line_meets_the_observed_curve(
        app, db, ten_items, fac, make_user, signin):
    sit(db, ten_items, _rows(SCORES))
    # Hofstee: fail rates P(X < c) at c = 5, 6, 7 are 4/20 = .20, 7/20 = .35, 11/20 = .55.
    # Panel means (as percent of 10 points): c_min 50% -> 5, c_max 80% -> 8, f_min 10%,
    # f_max 40%: the line .40 - .10 (c - 5) meets the curve .20 + .15 (c - 5) at c = 5.8.
    hofstee = _create(fac, ten_items, method="hofstee")
    clients = _panel(app, fac, make_user, signin, hofstee, 2)
    for client, (c_min, f_max) in zip(clients, ((40, 30), (60, 50))):
        resp = _judge(client, hofstee, {"c_min": c_min, "c_max": 80, "f_min": 10, "f_max": f_max})
        assert resp.status_code == 303, _text(resp)[:1500]
    bad = _judge(clients[0], hofstee, {"c_min": 70, "c_max": 60, "f_min": 10, "f_max": 30})
    assert bad.status_code == 422 and "c_max: the highest acceptable cut must be above" in _text(bad)
    bad = _judge(clients[0], hofstee, {"c_min": 40, "c_max": 80, "f_min": 10, "f_max": 130})
    assert bad.status_code == 422 and "f_max: a percentage lies in 0..100, got 130" in _text(bad)
    _post(fac, f"/psych/studies/{hofstee}/rounds/close")
    db.commit()
    rec = study_recommendation(db, hofstee)
    db.commit()  # end the read: the app writes next
    assert rec["raw_cut"] == pytest.approx(5.8)
    assert rec["pass_rate"] == pytest.approx(13 / 20)  # scores of 6 or more
    # SE over panelists by the bootstrap. With two panelists A and B its replicates are A twice
    # (p = 1/4), B twice (1/4) or one of each (1/2: the panel's own cut 5.8), so the ideal
    # bootstrap SE is the SD of that three-point distribution; 1000 replicates come close.
    alone = [hofstee_cut(SCORES, c_min / 10, 8, 0.1, f_max / 100).cut
             for c_min, f_max in ((40, 30), (60, 50))]
    values, weights = np.array(alone + [5.8]), np.array([0.25, 0.25, 0.5])
    ideal = math.sqrt(weights @ (values - weights @ values) ** 2)
    assert ideal > 0.1 and rec["raw_se"] == pytest.approx(ideal, rel=0.06)
    page = _text(fac.get(f"/psych/studies/{hofstee}"))
    assert 'alt="Hofstee compromise.' in page and "meets the curve at a cut of 5.80" in page
    assert f"5.80 (SE {rec['raw_se']:.2f})" in re.sub(r"<[^>]+>", "", page)
    assert "bootstrap over panelists (1000 replicates, seed 14)" in page

    # Beuk: panel cuts 50, 60, 70% (5, 6, 7 points; SD 1) and pass rates 70, 60, 80% (SD .10):
    # slope .10. The pass rate P(X >= c) falls from .80 at 5 to .65 at 6; the line through
    # (6, .70) is .60 + .10 (c - 5) there, so .80 - .15 (c - 5) = .60 + .10 (c - 5): c = 5.8.
    beuk = _create(fac, ten_items, method="beuk")
    clients = _panel(app, fac, make_user, signin, beuk, 3)
    for client, (cut, rate) in zip(clients, ((50, 70), (60, 60), (70, 80))):
        assert _judge(client, beuk, {"cut": cut, "pass_rate": rate}).status_code == 303
    _post(fac, f"/psych/studies/{beuk}/rounds/close")
    db.commit()
    rec = study_recommendation(db, beuk)
    assert rec["raw_cut"] == pytest.approx(5.8) and rec["method"] == "beuk"
    # the ideal bootstrap over 3 panelists: all 27 draws, equally likely; the 3 drawing one
    # panelist thrice have no slope and are left out, as the engine leaves them out
    panel = np.array([[5, 0.7], [6, 0.6], [7, 0.8]])
    cuts = []
    for draw in np.ndindex(3, 3, 3):
        try:
            cuts.append(beuk_cut(SCORES, panel[list(draw), 0], panel[list(draw), 1]).cut)
        except PsychometricsError:
            pass
    assert len(cuts) == 24
    assert rec["raw_se"] == pytest.approx(np.std(cuts), rel=0.06)
    page = _text(fac.get(f"/psych/studies/{beuk}"))
    assert 'alt="Beuk compromise.' in page


def test_bookmark_study_orders_the_booklet_at_rp67_and_takes_the_median_page(
        app, db, ten_items, fac, make_user, signin):
    sit(db, ten_items, _rows(SCORES))
    versions = _versions(ten_items)
    b = np.linspace(-2.0, 2.5, 10)  # a = 1: the booklet keeps form order
    supersede_parameters(db, [ParameterValues(v.id, "2pl", 1.0, float(bj))
                              for v, bj in zip(versions, b)], source="test")
    db.commit()
    study = _create(fac, ten_items, method="bookmark")  # RP .67 by default
    clients = _panel(app, fac, make_user, signin, study, 3)
    booklet = _text(fac.get(f"/psych/studies/{study}/booklet"))
    # RP67 location of a 2PL item: b + ln(.67 / .33) / a = b + 0.708185
    shift = math.log(0.67 / 0.33)
    assert f"{b[0] + shift:.3f}" in booklet and f"{b[9] + shift:.3f}" in booklet
    panel_page = _text(clients[0].get(f"/psych/panel/{study}"))
    assert "Page 10:" in panel_page and "Key:" in panel_page
    for bad in ("0", "11", "2.5"):
        resp = _judge(clients[0], study, {"page": bad})
        assert resp.status_code == 422 and "page: the bookmark goes on a page of the booklet, 1 to 10" \
            in _text(resp), bad
    for client, page in zip(clients, (3, 4, 4)):
        assert _judge(client, study, {"page": page}).status_code == 303
    _post(fac, f"/psych/studies/{study}/rounds/close")
    db.commit()
    rec = study_recommendation(db, study)
    # cuts loc(3), loc(4), loc(4): median loc(4) = b[3] + shift; SD = 0.5 * SD(0, 1, 1);
    # the median's SE is sqrt(pi / 2) SD / sqrt(3)
    assert rec["theta_cut"] == pytest.approx(b[3] + shift)
    sd = 0.5 * np.std([0, 1, 1], ddof=1)
    assert rec["theta_se"] == pytest.approx(math.sqrt(math.pi / 2) * sd / math.sqrt(3))
    params = ItemParameters("2pl", [1.0] * 10, b)
    assert rec["raw_cut"] == pytest.approx(float(raw_for_theta(params, [b[3] + shift])[0]))


def _classified(db):
    db.commit()
    return db.scalar(select(func.count()).select_from(StudyClassification))


def _upload(client, study_id, text):
    return _post(client, f"/psych/studies/{study_id}/classifications",
                 {"file": (io.BytesIO(text.encode()), "classes.csv")},
                 content_type="multipart/form-data")


def test_contrasting_groups_from_a_csv_with_every_bad_line_listed(app, db, ten_items, fac):
    # unqualified 3 4 4 5 5 6 6 7, qualified 5 6 6 7 7 8 8 9. Misclassified at cut c
    # (#unqualified >= c + #qualified < c): c=5: 5 + 0; c=6: 3 + 1; c=7: 1 + 3; c=8: 0 + 5.
    # The minimum (4) runs over 6..7: the cut is its midpoint 6.5 (Livingston & Zieky, 1982).
    unqualified, qualified = [3, 4, 4, 5, 5, 6, 6, 7], [5, 6, 6, 7, 7, 8, 8, 9]
    sit(db, ten_items, _rows(unqualified + qualified))
    study = _create(fac, ten_items, method="contrasting_groups")
    bad = _upload(fac, study, "candidate_email,rating\nsitter0@example.org,0\n"
                              "nobody@example.org,1\nsitter1@example.org,2\nsitter0@example.org,0\n")
    text = _text(bad)
    assert bad.status_code == 422
    for line in ("line 3: 'nobody@example.org' has no counted result on form SS10-F1",
                 "line 4: rating '2' is not a whole number in 0..1",
                 "line 5: the same candidate as line 2"):
        assert line in text, line
    assert _classified(db) == 0
    no_header = _upload(fac, study, "email;class\nx;1\n")
    assert no_header.status_code == 422 and "line 1: the header must name 'rating'" in _text(no_header)
    csv = "candidate_email,rating\n" + "".join(
        f"sitter{i}@example.org,{0 if i < 8 else 1}\n" for i in range(16))
    assert _upload(fac, study, csv).status_code == 303
    assert _classified(db) == 16
    rec = study_recommendation(db, study)
    assert rec["raw_cut"] == pytest.approx(6.5) and rec["n_judges"] == 16
    assert rec["pass_rate"] == pytest.approx(6 / 16)  # scores of 7 or more: 7, 7, 7, 8, 8, 9
    # SE: the engine's bootstrap over the classified candidates, which the workspace only calls
    engine = contrasting_groups_cut_se(unqualified + qualified, [0] * 8 + [1] * 8)
    assert rec["raw_se"] == pytest.approx(engine.se) and engine.se > 0
    page = _text(fac.get(f"/psych/studies/{study}"))
    assert "16 of 16 counted results on SS10-F1 are classified" in page
    assert f"6.50 (SE {engine.se:.2f})" in re.sub(r"<[^>]+>", "", page)
    assert "bootstrap over the classified candidates (1000 replicates, seed 14)" in page


def test_borderline_regression_from_single_entries(app, db, ten_items, fac):
    # ratings 0 0 1 1 1 2 2 2 3 3 against scores 1 2 3 4 5 5 6 7 9 10: mean rating 1.5, mean
    # score 5.2, Sxy = 27.0, Sxx = 10.5 (by hand): slope 2.5714; at the borderline rating 1 the
    # cut is 5.2 + 2.5714 (1 - 1.5) = 3.9143.
    scores = [1, 2, 3, 4, 5, 5, 6, 7, 9, 10]
    ratings = [0, 0, 1, 1, 1, 2, 2, 2, 3, 3]
    sit(db, ten_items, _rows(scores))
    study = _create(fac, ten_items, method="borderline_regression", borderline="1")
    page = fac.get(f"/psych/studies/{study}").get_data(as_text=True)
    attempts = [int(a) for a in re.findall(r'<option value="(\d+)">', page)]
    assert len(attempts) == 10
    for attempt, rating in zip(sorted(attempts), ratings):
        resp = _post(fac, f"/psych/studies/{study}/classifications",
                     {"attempt_id": str(attempt), "rating": str(rating)})
        assert resp.status_code == 303, _text(resp)[:500]
    bad = _post(fac, f"/psych/studies/{study}/classifications",
                {"attempt_id": str(attempts[0]), "rating": "7"})
    assert bad.status_code == 422 and "rating '7' is not a whole number in 0..3" in _text(bad)
    rec = study_recommendation(db, study)
    assert rec["raw_cut"] == pytest.approx(5.2 + 27.0 / 10.5 * (1 - 1.5))
    # SE of the fitted score at rating 1 (Draper & Smith, 1998): residual SD s (n - 2) times
    # sqrt(1/n + (1 - 1.5)^2 / Sxx), Sxx = 10.5
    x, r = np.array(scores, float), np.array(ratings, float)
    resid = x - (5.2 + 27.0 / 10.5 * (r - 1.5))
    s = math.sqrt((resid ** 2).sum() / 8)
    assert rec["raw_se"] == pytest.approx(s * math.sqrt(1 / 10 + 0.25 / 10.5))
    assert "least-squares SE of the fitted score" in _text(fac.get(f"/psych/studies/{study}"))
    # re-entering a rating adds a superseding row only when it changes
    _post(fac, f"/psych/studies/{study}/classifications",
          {"attempt_id": str(min(attempts)), "rating": "0"})
    assert _classified(db) == 10


def test_panelists_classify_candidates_on_their_own_screen(app, db, ten_items, fac, make_user,
                                                           signin):
    # the same 16 candidates as the CSV test: classified 0 (first 8) and 1 (last 8) the cut is 6.5
    unqualified, qualified = [3, 4, 4, 5, 5, 6, 6, 7], [5, 6, 6, 7, 7, 8, 8, 9]
    sit(db, ten_items, _rows(unqualified + qualified))
    study = _create(fac, ten_items, method="contrasting_groups")
    other = _create(fac, ten_items, method="contrasting_groups")
    ann, bob = make_user("panelist"), make_user("panelist")
    _seat(fac, study, [ann, bob])
    a, b = _client(app, signin, ann), _client(app, signin, bob)
    page = a.get(f"/psych/panel/{study}").get_data(as_text=True)
    attempts = {int(n): email for n, email in re.findall(
        r'<label for="class-(\d+)">([^<]+) \(attempt \d+\)</label>', page)}
    assert len(attempts) == 16
    # each candidate's choice is a labelled select; the scores are not shown to the panel
    for n in attempts:
        assert re.search(rf'<select id="class-{n}" name="class-{n}"', page)
    assert "Raw score" not in page and "1: Qualified" in page and "not classified" in page
    by_email = {e: n for n, e in attempts.items()}
    data = {f"class-{by_email[f'sitter{i}@example.org']}": str(0 if i < 8 else 1)
            for i in range(16)}

    # bad input names the field and stores nothing
    first = by_email["sitter0@example.org"]
    bad = _post(a, f"/psych/panel/{study}", {**data, f"class-{first}": "5"})
    assert bad.status_code == 422
    assert f"attempt {first}: the classification '5' is not a whole number in 0..1" in _text(bad)
    assert re.search(rf'id="class-{first}"[^>]*aria-invalid="true"', bad.get_data(as_text=True))
    stranger = _post(a, f"/psych/panel/{study}", {"class-999999": "1"})
    assert stranger.status_code == 422
    assert "class-999999: attempt 999999 is not a counted attempt on form SS10-F1" in _text(
        stranger)
    assert _classified(db) == 0
    # only for their own study
    assert _post(a, f"/psych/panel/{other}", data).status_code == 403
    assert a.get(f"/psych/panel/{other}").status_code == 403
    assert _classified(db) == 0

    assert _post(a, f"/psych/panel/{study}", data).status_code == 303
    assert _classified(db) == 16
    again = _post(a, f"/psych/panel/{study}", data, follow_redirects=True)
    assert "Nothing changed: your classifications were already saved." in _text(again)
    assert _classified(db) == 16  # append-only: unchanged values add no row
    rows = db.scalars(select(StudyClassification)).all()
    assert {(r.entered_by_id, r.source) for r in rows} == {(ann.id, "panel")}
    rec = study_recommendation(db, study)
    db.commit()
    assert rec["raw_cut"] == pytest.approx(6.5) and rec["n_judges"] == 16
    # a change is a new row that supersedes; the screen shows the panelist's own standing value
    assert _post(a, f"/psych/panel/{study}", {f"class-{first}": "1"}).status_code == 303
    assert _classified(db) == 17
    mine = a.get(f"/psych/panel/{study}").get_data(as_text=True)
    assert re.search(rf'<select id="class-{first}"[^>]*>\s*<option value="">not classified'
                     r'</option>\s*<option value="0">0: Not qualified</option><option value="1"'
                     r' selected>', mine)
    # the other panelist sees none of it
    theirs = b.get(f"/psych/panel/{study}").get_data(as_text=True)
    assert "16 candidates with a counted result on SS10-F1; 0 classified by you" in theirs
    facilitator_page = _text(fac.get(f"/psych/studies/{study}"))
    assert re.search(rf"<td class=\"num\">1</td><td>{re.escape(ann.display_name)}</td>",
                     facilitator_page)  # the "Entered by" column

    # removing the panelist takes their classifications out of the result (rows kept)
    assert _post(fac, f"/psych/studies/{study}/panelists/{ann.id}/remove",
                 {"reason": "classified candidates they had coached"}).status_code == 303
    assert _classified(db) == 17
    rec = study_recommendation(db, study)
    db.commit()
    assert rec["raw_cut"] is None and rec["n_judges"] == 0
    assert a.get(f"/psych/panel/{study}").status_code == 403
    assert _post(a, f"/psych/panel/{study}", data).status_code == 403
