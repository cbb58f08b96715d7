"""Query budgets of the psychometrician's workspace (issue 10, item 7): every page loads what it
shows in the view, so the number of SQL statements a page sends is fixed, whatever the number of
items (or runs) of the exam. The old templates loaded each estimate's item version and item, each
form's items and each run's decisions one row at a time."""
from __future__ import annotations

import datetime as dt
import random

import pytest

from assessment.delivery.models import Attempt, ItemScore, Result, ResultRelease
from assessment.psych.calibration import calibrate_exam
from assessment.psych.runs import approve_run, record_run
from assessment.users import User
from microcred.db import utcnow
from tests.conftest import build_exam
from tests.query_count import count_statements

#: Statements per page, counted on SQLite (PostgreSQL sends one fewer: its BEGIN is implicit),
#: including loading the signed-in user. Lower them when a page gets cheaper; a page that needs
#: more must say why here.
BUDGETS = {"items": 8, "run": 10, "calibrate": 11, "runs": 6}

#: A small exam and one several times larger, with more calibration runs.
SIZES = {"SMALL": ((2, 2), 1), "LARGE": ((9, 7), 3)}
CANDIDATES = 40


def _sit(db, exam, rng: random.Random) -> None:
    """Finalized, released results of CANDIDATES candidates on the exam's form, scored 0/1 by a
    2PL-like rule so that every item varies and a calibration has something to fit."""
    form = exam.forms[0].form
    versions = [fi.item_version for fi in form.items]
    start = utcnow() - dt.timedelta(hours=2)
    for i in range(CANDIDATES):
        user = User(email=f"{exam.code.lower()}-sitter{i}@example.org", display_name=f"Sitter {i}",
                    role="candidate", password_hash="!", active=False)
        db.add(user)
        db.flush()
        attempt = Attempt(candidate_id=user.id, exam_id=exam.id, form_id=form.id,
                          status="finalized", seed=i, item_order=[v.id for v in versions],
                          option_orders={}, started_at=start, time_limit_seconds=600,
                          agreement_accepted_at=start, finalized_at=start + dt.timedelta(minutes=5),
                          finalize_reason="submitted")
        db.add(attempt)
        db.flush()
        theta = rng.gauss(0, 1)
        scores = [int(rng.random() < 1 / (1 + 2.718 ** -(theta - rng.uniform(-1, 1))))
                  for _ in versions]
        raw = float(sum(scores))
        percent = round(100 * raw / len(versions), 2)
        result = Result(attempt_id=attempt.id, raw_score=raw, max_score=float(len(versions)),
                        percent=percent, pass_percent=exam.pass_percent,
                        passed=percent >= exam.pass_percent, answered=len(versions),
                        n_items=len(versions), domain_scores=[], theta=None, theta_se=None)
        db.add(result)
        db.flush()
        for pos, (v, s) in enumerate(zip(versions, scores)):
            db.add(ItemScore(result_id=result.id, item_version_id=v.id, position=pos,
                             domain_code=v.domain_code, response="B" if s else "A",
                             score=float(s), max_score=1.0))
        db.add(ResultRelease(result_id=result.id, status="released"))
    db.commit()


@pytest.fixture
def exams(db, make_user):
    """Exam code -> (number of item versions, id of its newest, approved run), for each size."""
    rng = random.Random(10)
    approver = make_user("psychometrician")
    out = {}
    for code, (n_per_domain, n_runs) in SIZES.items():
        exam = build_exam(db, code=code, n_per_domain=n_per_domain)
        _sit(db, exam, rng)
        for _ in range(n_runs):
            run = record_run(db, calibrate_exam(db, exam, max_iter=50), run_by_id=approver.id,
                             max_iter=50)
            approve_run(db, run, by=approver, reason="query budget", override_not_converged=True)
            db.commit()
        out[code] = (sum(n_per_domain), run.id)
    return out


def _statements(client, url: str) -> list[str]:
    database = client.application.extensions["microcred.database"]
    with count_statements(database.engine, database.write_engine) as sent:
        resp = client.get(url)
    assert resp.status_code == 200, (url, resp.get_data(as_text=True)[:300])
    return list(sent)


def test_each_workspace_page_sends_a_fixed_number_of_statements(client, make_user, signin, exams, db):
    signin(client, make_user("psychometrician"))
    n_items = {code: n for code, (n, _) in exams.items()}
    assert n_items["LARGE"] >= 4 * n_items["SMALL"]
    counted = {}
    for code, (_, run_id) in exams.items():
        pages = {
            "items": f"/psych/exams/{code}/items",
            "run": f"/psych/runs/{run_id}",
            "calibrate": f"/psych/exams/{code}/calibrate",
            "runs": f"/psych/exams/{code}/runs",
        }
        html = client.get(pages["run"]).get_data(as_text=True)
        assert f'<th scope="row">{code}-B2</th>' in html  # the run page lists the items
        counted[code] = {page: _statements(client, url) for page, url in pages.items()}
    for page, budget in BUDGETS.items():
        small, large = len(counted["SMALL"][page]), len(counted["LARGE"][page])
        assert small == large, (
            f"the {page} page sent {small} statements for {n_items['SMALL']} items and {large} for "
            f"{n_items['LARGE']}: something loads row by row\n" + "\n".join(counted["LARGE"][page])
        )
        assert large <= budget, f"the {page} page sent {large} statements; its budget is {budget}"
