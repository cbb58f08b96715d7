"""Query budgets of the psychometrician's workspace (issue 10, item 7): every page loads what it
shows in the view, so the number of SQL statements a page sends is fixed, whatever the number of
items (or runs) of the exam. The old templates loaded each estimate's item version and item, each
form's items and each run's decisions one row at a time."""
from __future__ import annotations

import math
import random

import pytest

from assessment.psych.calibration import calibrate_exam
from assessment.psych.runs import approve_run, record_run
from microcred.querycount import count_queries as count_statements
from tests.conftest import build_exam
from tests.sittings import sit

#: Statements per page, the same on both databases (``microcred.querycount`` leaves BEGIN and
#: the like out), including loading the signed-in user. Lower them when a page gets cheaper; a page that needs
#: more must say why here.
#: The run page: +1 for the linking constants recorded with its approvals (issue 14).
BUDGETS = {"items": 7, "run": 10, "calibrate": 10, "runs": 5}

#: A small exam and one several times larger, with more calibration runs.
SIZES = {"SMALL": ((2, 2), 1), "LARGE": ((9, 7), 3)}
CANDIDATES = 40


def _scores(n_items: int, rng: random.Random) -> list[list[int]]:
    """0/1 scores of CANDIDATES candidates by a 2PL-like rule, so that a calibration has
    something to fit."""
    difficulties = [rng.uniform(-1, 1) for _ in range(n_items)]
    out = []
    for _ in range(CANDIDATES):
        theta = rng.gauss(0, 1)
        out.append([int(rng.random() < 1 / (1 + math.exp(b - theta))) for b in difficulties])
    return out


@pytest.fixture
def exams(db, make_user):
    """Exam code -> (number of item versions, id of its newest, approved run), for each size."""
    rng = random.Random(10)
    approver = make_user("psychometrician")
    out = {}
    for code, (n_per_domain, n_runs) in SIZES.items():
        exam = build_exam(db, code=code, n_per_domain=n_per_domain)
        sit(db, exam, _scores(sum(n_per_domain), rng), who=f"{code.lower()}-sitter")
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
