"""axe-core on every page, as each role sees it (issue 9, finding 28).

The demo program is loaded, a candidate has earned a badge, has an exam in progress and has an
identity check waiting, so every kind of page has something on it. Then, for the public and for
each role, the test signs in and walks the site the way a person would: from the start page along
every same-site link (one page per route shape), running axe-core (bundled with the
``axe-playwright-python`` package, so nothing is fetched at test time) on each page. Serious and
critical violations fail the test, listed per page. The same walk checks that nothing marked
``hidden`` is drawn (the identity page once showed two empty image boxes). The runner's other
states (review, the submit dialog, the paused overlay) are checked in place.
"""
from __future__ import annotations

import re
from collections import deque
from urllib.parse import urljoin, urlsplit

import pytest

pytestmark = [pytest.mark.browser,
              pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]

FAILING_IMPACTS = {"serious", "critical"}
#: links to files, not pages; and the ones that change state or leave the session
SKIP_PATH = re.compile(r"\.(json|jwt|png|svg|pdf|csv|ico|txt)(\?|$)|^/static/|^/signout|^/api/")
MAX_PAGES_PER_ROLE = 40


def _shape(path: str) -> str:
    """One page per route shape: /badges/<id>, /attempts/<n>, /psych/exams/<code>/items."""
    path = re.sub(r"/[0-9a-f]{8}-[0-9a-f-]{27,}", "/{uuid}", path)
    path = re.sub(r"/\d+(?=/|$)", "/{n}", path)
    path = re.sub(r"/bank/items/(?!new(?:$|\?))[^/?]+", "/bank/items/{code}", path)
    return re.sub(r"/(exams|achievements|forms|blueprints)/[^/]+", r"/\1/{code}", path)


@pytest.fixture
def site(app, db, build_exam):
    """The demo, plus: a badge earned on exam AXE, an attempt in progress on exam AXE-RUN, an
    identity check waiting on the demo's proctored exam. Returns sign-ins and extra start URLs."""
    from types import SimpleNamespace

    from sqlalchemy import select

    from assessment.delivery import service
    from assessment.demo_program import load_demo
    from assessment.users import User
    from credentials import issuance
    from credentials.config import current
    from credentials.models import Credential
    from proctoring.wiring import identity_gate

    with app.app_context():  # the demo's issuer key is made under the app's instance folder
        creds = {role: (email, password) for role, email, password in load_demo(db, history=40)}
        db.commit()
    candidate = db.scalar(select(User).where(User.email == creds["candidate"][0]))
    earned = build_exam(db, code="AXE")
    running = build_exam(db, code="AXE-RUN")
    with app.app_context():
        issuance.create_achievement(db, current(), code="AXE-1", name="Accessible Badge",
                                    description="Passed the AXE exam.", exam_id=earned.id)
        db.commit()
        attempt = service.start_attempt(db, candidate, earned, grace_seconds=5)
        state = service.runner_state(db, attempt, grace_seconds=5)
        service.save_responses(db, attempt, [
            service.SaveRequest(n, it["id"], ["A", "C"] if it["type"] == "multiple_response"
                                else "B", n == 1)
            for n, it in enumerate(state["items"], start=1)], grace_seconds=5)
        service.submit_attempt(db, attempt, grace_seconds=5)
        db.commit()
        in_progress = service.start_attempt(db, candidate, running, grace_seconds=5)
        db.commit()
        identity = identity_gate(db, candidate, _demo_exam(db), url_for=_identity_url)
        db.commit()
    from itembank.forms import add_to_form, create_draft_form

    draft = create_draft_form(db, code="AXE-DRAFT", blueprint=earned.blueprint)
    add_to_form(db, draft, earned.forms[0].form.items[0].item_version)
    db.commit()
    credential = db.scalar(select(Credential))
    assert credential is not None, "the pass on AXE earned a badge"
    renewals = _renewals(app, db, candidate, credential)
    creds["panelist"], study_pages = _study(db, creds)
    admin = db.scalar(select(User).where(User.email == creds["admin"][0]))
    pending_import = _pending_import(db, admin)
    bank = _bank_items(db, creds)
    # the cut adoption page with a proposal shown (its tables and the adopt form)
    demo_code = _demo_exam(db).code
    bank["psychometrician"] += [f"/psych/exams/{demo_code}/cuts?theta=0.5",
                                f"/psych/exams/{demo_code}/cuts/rescore"]
    bank["psychometrician"] += _runs_pages(db, _demo_exam(db), creds)
    return SimpleNamespace(
        creds=creds,
        extra={
            "anonymous": [f"/badges/{credential.public_id}", "/achievements/AXE-1",
                          *renewals],
            "candidate": [f"/attempts/{attempt.id}/result", f"/attempts/{in_progress.id}",
                          identity, "/wallet", "/pathways"],
            "admin": ["/bank/forms/AXE-DRAFT", "/admin/exams/new", "/admin/credentials",
                      "/admin/pathways", "/admin/pathways/program",
                      "/admin/pathways/stacks/CCF-PATH", f"/admin/pathways/exams/{running.id}",
                      pending_import, "/psych/attributes?email=past.candidate.0000%40demo.microcred.test"],
            **bank,
            "psychometrician": bank["psychometrician"] + study_pages["psychometrician"],
            "panelist": study_pages["panelist"],
        },
        runner=f"/attempts/{in_progress.id}",
        attempt_id=in_progress.id,
    )


def _renewals(app, db, candidate, credential) -> list[str]:
    """A certification the candidate holds that requires CE (its renewals page has a cycle
    table), a public page of their badge, and their reminder unsubscribe page."""
    from credentials import ce, issuance, recert, reminders, sharing
    from credentials.config import current

    with app.app_context():
        cfg = current()
        cert = issuance.create_achievement(db, cfg, code="AXE-CERT", name="Accessible Cert",
                                           description="Certified.", validity_days=60)
        ce.set_requirement(db, cert, total=2000, cycle_months=24, minimums={"ethics": 300})
        recert.set_policy(db, cert, window_days=90, grace_days=30, expiry_reminder_days=[30],
                          cycle_reminder_days=[30])
        issuance.issue(db, cfg, achievement=cert, holder=candidate, kind="exam", evidence=[])
        share = sharing.create(db, candidate.id, [credential.public_id], show_ce=True)
        db.commit()
        return [f"/holders/{share.token}",
                f"/reminders/unsubscribe/{reminders.unsubscribe_token(cfg, candidate.id)}"]
def _runs_pages(db, exam, creds) -> list[str]:
    """A finished run compared with the bank (drift table, linking constants, the approval's
    scale choice) and a queued report PDF's page (its progress)."""
    from sqlalchemy import select

    from assessment.psych.calibration import exam_item_versions
    from assessment.psych.report_pdfs import ReportPdf
    from assessment.psych.runs import CalibrationEstimate, CalibrationRun
    from assessment.users import User
    from itembank.parameters import ParameterValues, supersede_parameters

    versions = exam_item_versions(db, exam)
    supersede_parameters(db, [ParameterValues(item_version_id=v.id, model="2pl", a=1.0 + j / 20,
                                              b=-1.0 + j / 8, standard_errors={"a": 0.1, "b": 0.1})
                              for j, v in enumerate(versions)], source="axe")
    run = CalibrationRun(exam_id=exam.id, model="2pl", converged=True, iterations=10,
                         status="proposed", job_state="finished", fit_summary={
                             "exam": exam.code, "engine": "axe", "n_persons": 40,
                             "n_items": len(versions), "forms": [], "fit_forms": [],
                             "fit_notes": [], "recovery": [], "max_change": None, "aic": None,
                             "bic": None, "n_params": None, "latent_mean": 0.0,
                             "latent_sd": 1.0, "seconds": None})
    db.add(run)
    db.flush()
    for j, v in enumerate(versions):
        db.add(CalibrationEstimate(run_id=run.id, item_version_id=v.id, position=j,
                                   n_responses=40, a=(1.0 + j / 20) * 1.1,
                                   b=(-1.0 + j / 8 - 0.2) / 1.1 + (0.8 if j == 2 else 0.0),
                                   c=0.0, standard_errors={"a": 0.1, "b": 0.1}, status="ok"))
    user = db.scalar(select(User).where(User.email == creds["psychometrician"][0]))
    pdf = ReportPdf(exam_id=exam.id, scope={}, scope_key="axe", requested_by_id=user.id,
                    state="queued", progress={"stage": "waiting for a job worker"})
    db.add(pdf)
    db.commit()
    return [f"/psych/runs/{run.id}", f"/psych/runs/{run.id}/compare", f"/psych/report-pdfs/{pdf.id}"]


def _bank_items(db, creds) -> dict[str, list[str]]:
    """A draft (its editor, with the live preview) for the item author, an item in review (the
    review forms) and an approved item (the re-key form) for the psychometrician."""
    from sqlalchemy import select

    from assessment.users import User
    from itembank import workflow
    from itembank.models import APPROVED, Item, ItemVersion

    author = db.scalar(select(User).where(User.email == creds["item_author"][0]))
    fields = {"item_type_name": "single_choice", "domain_code": "D1", "stem": "Which?",
              "interaction": {"options": [{"id": "A", "text": "a"}, {"id": "B", "text": "b"}]},
              "key": {"correct": ["A"]}}
    workflow.create_draft(db, author, code="AXE-D1", **fields)
    workflow.submit_for_review(db, author, workflow.create_draft(db, author, code="AXE-R1",
                                                                 **fields))
    approved = db.scalar(select(Item.code).join(ItemVersion).where(
        ItemVersion.status == APPROVED).order_by(Item.code).limit(1))
    db.commit()
    return {"item_author": ["/bank/items/AXE-D1"],
            "psychometrician": ["/bank/items/AXE-R1", f"/bank/items/{approved}?version=1",
                                # the program report by a group (the item-analysis
                                # report's DIF fields are on its page, walked from the exam)
                                "/psych/program?group=region", "/psych/attributes"]}


def _study(db, creds) -> tuple[tuple[str, str], dict[str, list[str]]]:
    """An Angoff study of the demo exam in its second round, with round 1 rated, closed and
    released, and a panelist seated: the facilitator's page and the panelist's screen both
    show everything they can. Returns the panelist's sign-in and the pages to start from."""
    from sqlalchemy import select

    from assessment.psych import studies as ss
    from assessment.users import User, create_user
    from tests.conftest import PASSWORD

    exam = _demo_exam(db)
    facilitator = db.scalar(select(User).where(User.email == creds["psychometrician"][0]))
    panelist = create_user(db, email="panelist@example.org", password=PASSWORD,
                           role="panelist", display_name="Pat Panelist")
    study = ss.create_study(db, exam=exam, title="Angoff panel", method="angoff",
                            reference_form_code=exam.forms[0].form.code, facilitator=facilitator)
    ss.invite_panelist(db, study, panelist.email, by=facilitator)
    ss.open_round(db, study, by=facilitator)
    ss.record_ratings(db, study, panelist, 1,
                      {str(i.version.id): "0.6" for i in ss.study_items(db, study)})
    ss.close_round(db, study, by=facilitator)
    ss.release_round(db, study, 1, by=facilitator)
    ss.open_round(db, study, by=facilitator)
    db.commit()
    return (panelist.email, PASSWORD), {
        "psychometrician": [f"/psych/studies/{study.id}"],
        "panelist": [f"/psych/panel/{study.id}"]}


def _pending_import(db, admin) -> str:
    """The QTI import's report page of an upload waiting for its commit (a real package of
    1EdTech's examples, so the report has imported and refused items)."""
    from itembank.qti import uploads
    from itembank.qti.package import read_package
    from tests.itembank.qti.test_qti_real_packages import DATA, _zip

    data = _zip(DATA / "qtiv3-bbqs")
    report = read_package(data, "BBQsTest.zip").report
    row = uploads.hold(db, admin.id, "BBQsTest.zip", data, report.as_dict())
    db.commit()
    return f"/bank/import/{row.key}"


def _demo_exam(db):
    from sqlalchemy import select

    from assessment.exams import Exam

    return db.scalar(select(Exam).where(Exam.code.not_in(["AXE", "AXE-RUN"])))


def _identity_url(endpoint: str, **values) -> str:
    assert endpoint == "proctoring.identity_page"
    return f"/proctoring/identity/{values['session_id']}"


def _signin(page, base: str, email: str, password: str) -> None:
    page.goto(base + "/signin")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "/signin" not in page.url, f"could not sign in as {email}"


def _audit(page, where: str) -> list[str]:
    """Serious and critical axe violations on the page as it is now, and drawn hidden elements."""
    from axe_playwright_python.sync_playwright import Axe

    found = []
    results = Axe().run(page).response
    for v in results["violations"]:
        if v["impact"] in FAILING_IMPACTS:
            targets = "; ".join(" ".join(n["target"]) for n in v["nodes"][:5])
            found.append(f"{where}: {v['id']} ({v['impact']}): {v['help']} -> {targets}")
    drawn = page.evaluate("""() => [...document.querySelectorAll('[hidden]')]
        .filter((el) => el.getClientRects().length > 0).map((el) => el.outerHTML.slice(0, 100))""")
    found += [f"{where}: drawn although hidden: {html}" for html in drawn]
    return found


def _walk(page, base: str, starts: list[str],
          seen_shapes: set[str]) -> tuple[list[str], list[str]]:
    """Breadth-first along same-site links from ``starts``, skipping route shapes audited
    already (by another role too: only the header differs); (pages audited, problems)."""
    queue = deque(starts)
    audited: list[str] = []
    problems: list[str] = []
    while queue and len(audited) < MAX_PAGES_PER_ROLE:
        path = queue.popleft()
        shape = _shape(path)
        if shape in seen_shapes or SKIP_PATH.search(path):
            continue
        seen_shapes.add(shape)
        response = page.goto(base + path)
        if response is None or response.status >= 400 or \
                "text/html" not in response.headers.get("content-type", ""):
            if response is not None and response.status >= 500:
                problems.append(f"{path}: HTTP {response.status}")
            continue
        page.wait_for_load_state("load")
        page.wait_for_timeout(200)  # the page's modules have run
        audited.append(path)
        problems += _audit(page, path)
        for href in page.eval_on_selector_all("a[href]:not([download])",
                                              "(as) => as.map((a) => a.getAttribute('href'))"):
            url = urlsplit(urljoin(base + path, href))
            if f"{url.scheme}://{url.netloc}" == base and url.path:
                queue.append(url.path + (f"?{url.query}" if url.query else ""))
    return audited, problems


ROLES = ["anonymous", "candidate", "proctor", "psychometrician", "admin", "item_author",
         "panelist"]


def test_axe_finds_nothing_serious_on_any_page_for_any_role(browser, live_server, site, db):
    """One walk per role (one site to set up: the demo takes seconds to load), then the
    runner's states that no link reaches: review, the submit dialog, the paused overlay."""
    base = live_server.url
    problems: list[str] = []
    seen: set[str] = set()
    walked: list[str] = []
    for role in ROLES:
        seen.discard("/")  # each role's start page, with that role's header
        # the bank's pages differ by role (what each may do to an item), not only the header
        seen -= {shape for shape in seen if shape.startswith("/bank/")}
        context = browser.new_context(permissions=["camera"])
        try:
            page = context.new_page()
            page.set_default_timeout(15_000)
            if role != "anonymous":
                _signin(page, base, *site.creds[role])
            starts = ["/", "/signin", "/verify"] if role == "anonymous" else ["/"]
            audited, found = _walk(page, base, starts + site.extra.get(role, []), seen)
            assert len(audited) >= 2, f"only {audited} were reached as {role}"
            walked += audited
            problems += [f"as {role}: {p}" for p in found]
        finally:
            context.close()
    assert {"/bank/import", "/bank/export", site.extra["admin"][2]} <= set(walked)
    assert {"/pathways", "/admin/pathways", "/admin/pathways/program",
            "/admin/pathways/stacks/CCF-PATH"} <= set(walked), "the pathway pages were walked"
    problems += _runner_states(browser, base, site, db)
    assert not problems, "\n".join(problems)


def _runner_states(browser, base: str, site, db) -> list[str]:
    from playwright.sync_api import expect

    from assessment.delivery import service

    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        _signin(page, base, *site.creds["candidate"])
        page.goto(base + site.runner)
        expect(page.locator("#timer")).to_have_text(re.compile(r"\d+:\d\d"))
        problems = _audit(page, "runner, question")
        page.get_by_role("button", name="Review answers").click()
        problems += _audit(page, "runner, review")
        page.get_by_role("button", name="Submit the exam").click()
        expect(page.get_by_role("dialog")).to_be_visible()
        problems += _audit(page, "runner, submit dialog")
        page.keyboard.press("Escape")
        db.commit()  # end the test's read transaction before writing beside the app
        service.pause_attempt(db, service.get_attempt(db, site.attempt_id), by_user_id=None)
        db.commit()
        expect(page.locator("#paused-overlay")).to_be_visible(timeout=8000)
        problems += _audit(page, "runner, paused")
        return problems
    finally:
        context.close()


def test_axe_cut_pages_with_their_tables_filled(browser, live_server, db, make_user):
    """The cut pages as a psychometrician meets them with data: a proposal on two calibrated
    forms with delivered results (raw cuts, decision consistency, the adopt form), the
    rescoring preview with flips, and the candidate's result with a scale score."""
    from assessment.psych.cuts import adopt, parse_cut
    from tests.conftest import PASSWORD
    from tests.cut_exam import KB_FORM_X, THETA_25_ON_X, build_kb_exam, deliver, form_of, simulate
    from tests.test_cut_scoring import _sit

    exam = build_kb_exam(db)
    people = [make_user("candidate").id for _ in range(2)]
    deliver(db, exam, form_of(db, exam, "X"), people * 10, simulate(KB_FORM_X, 20, 3))
    db.commit()
    psych = make_user("psychometrician")
    adopt(db, exam, parse_cut({"theta": f"{THETA_25_ON_X:.6f}"}), by=psych, reason="panel")
    db.commit()
    attempt, _ = _sit(db, make_user, exam, "X", 30)
    candidate = db.get(type(psych), attempt.candidate_id)
    base = live_server.url
    problems: list[str] = []
    for user, paths in ((psych, ["/psych/exams/KB/cuts?theta=0.8", "/psych/exams/KB/cuts",
                                 "/psych/exams/KB/cuts/rescore"]),
                        (candidate, [f"/attempts/{attempt.id}/result", "/exams",
                                     "/exams/KB"])):
        context = browser.new_context()
        try:
            page = context.new_page()
            page.set_default_timeout(30_000)
            _signin(page, base, user.email, PASSWORD)
            for path in paths:
                response = page.goto(base + path)
                assert response.status == 200, path
                problems += _audit(page, path)
        finally:
            context.close()
    assert not problems, "\n".join(problems)
