"""Every item type in the exam runner, in Chromium, by keyboard only: an item set's stimulus beside
its questions, each interaction answered, autosaved, restored on reload and counted as answered;
axe finds nothing serious on any of them; and the server's scores are the known ones."""
from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import select

from assessment.delivery.models import Attempt, ItemScore, Result
from tests.runner_pages import signin, start

PASSWORD = "correct horse battery staple"
pytestmark = [pytest.mark.browser,
              pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]

OPTS = [{"id": x, "text": f"Option {x}"} for x in "ABCD"]


def _chart_png() -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (400, 300), "white")
    ImageDraw.Draw(img).rectangle((150, 100, 250, 200), outline="black", width=3)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def build_types_exam(db):
    """An exam with one item of every type, two of them an item set, in a fixed order."""
    from assessment.exams import create_exam
    from itembank.authoring import create_blueprint, create_form, create_item, publish_version
    from itembank.media import media_url, store_media
    from itembank.stimuli import create_stimulus

    chart = store_media(db, _chart_png(), filename="chart.png")
    case = create_stimulus(db, code="T-CASE", kind="case", title="Case: dosing",
                           content="<p>A dose of <math><mfrac><mn>25</mn><mn>2</mn></mfrac></math>"
                                   " mg is ordered.</p>")
    specs = [
        ("SET1", "single_choice", "Which option is the dose?", {"options": OPTS},
         {"correct": ["C"]}, {}, case.id),
        ("SET2", "numeric_entry", "How many mg?", {"unit": "mg"}, {"value": 12.5},
         {"tolerance": 0.02, "tolerance_mode": "relative"}, case.id),
        ("TF", "true_false", "The sky is green.", {}, {"correct": "false"}, {}, None),
        ("TXT", "text_entry", "Name the condition.", {"max_length": 40},
         {"answers": [{"value": "Hypertension", "match": "case_insensitive"}]}, {}, None),
        ("ORD", "ordering", "Order the steps.",
         {"options": [{"id": x, "text": f"Step {x}"} for x in "CABD"]},
         {"order": ["A", "B", "C", "D"]}, {"method": "pairwise"}, None),
        ("MAT", "matching", "Match the pairs.",
         {"sources": [{"id": s, "text": f"Source {s}"} for s in ("s1", "s2", "s3")],
          "targets": [{"id": t, "text": f"Target {t}"} for t in ("t1", "t2", "t3", "t4")]},
         {"pairs": {"s1": "t2", "s2": "t1", "s3": "t4"}}, {"method": "partial"}, None),
        ("GAP", "inline_choice", "Complete the sentence.",
         {"sentence": "<p>First [[g1]], then [[g2]].</p>",
          "gaps": [{"id": "g1", "options": [{"id": "a", "text": "alpha"}, {"id": "b", "text": "beta"}]},
                   {"id": "g2", "options": [{"id": "c", "text": "gamma"}, {"id": "d", "text": "delta"}]}]},
         {"correct": {"g1": "a", "g2": "d"}}, {}, None),
        ("HOT", "hotspot", "Mark the square.",
         {"image": {"src": media_url(chart.sha256), "alt": "A square in the middle of a white chart",
                    "width": 400, "height": 300}},
         {"regions": [{"id": "sq", "shape": "rect", "coords": [150, 100, 250, 200]}]}, {}, None),
        ("MR", "multiple_response", "Which two?", {"options": OPTS},
         {"correct": ["A", "C"]}, {"method": "partial"}, None),
    ]
    bp = create_blueprint(db, code="TYPES-BP", name="Types", domains=[
        {"code": "A", "name": "Domain A", "weight": 1.0, "items_on_form": len(specs)}])
    versions = []
    for code, kind, stem, interaction, key, scoring, stimulus in specs:
        v = create_item(db, code=f"TYPES-{code}", item_type_name=kind, domain_code="A", stem=stem,
                        interaction=interaction, key=key, scoring=scoring,
                        rationale="THE-RATIONALE", stimulus_id=stimulus)
        versions.append(publish_version(db, v))
    form = create_form(db, code="TYPES-F1", blueprint=bp, versions=versions)
    exam = create_exam(db, code="TYPES", title="Exam TYPES", blueprint=bp, forms=[form],
                       time_limit_seconds=1800, pass_percent=50,
                       instructions=["Answer every question."], agreement="I will work alone.",
                       policy={}, shuffle_items=False, shuffle_options=False)
    db.commit()
    return exam


def _audit(page, where: str) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    return [f"{where}: {v['id']} ({v['impact']}): {v['help']} -> "
            + "; ".join(" ".join(n["target"]) for n in v["nodes"][:3])
            for v in Axe().run(page).response["violations"] if v["impact"] in {"serious", "critical"}]


def _tab_to(page, selector: str, text: str = "", limit: int = 40) -> None:
    """Press Tab until the focused element matches ``selector`` (and holds ``text``): keyboard
    only, no clicks."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("([s, t]) => document.activeElement.matches(s) && "
                         "document.activeElement.textContent.includes(t)", [selector, text]):
            return
    raise AssertionError(f"Tab never reached {selector}")


def _next(page, n: int) -> None:
    from playwright.sync_api import expect

    _tab_to(page, "#next")
    page.keyboard.press("Enter")
    expect(page.locator("#question-heading")).to_have_text(f"Question {n} of 9")


def test_every_item_type_by_keyboard_restored_scored_and_axe_clean(page, live_server, db,
                                                                   make_user):
    from playwright.sync_api import expect

    exam = build_types_exam(db)
    candidate = make_user("candidate")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and "favicon" not in r.url else None)
    page.set_default_timeout(10_000)
    base = live_server.url
    signin(page, base, candidate.email)
    attempt_id = start(page, base, exam)
    problems: list[str] = []
    heading = page.locator("#question-heading")

    # 1. item set, single choice: the case is beside the question, and says which questions use it
    stimulus = page.get_by_role("region", name="Case: dosing")
    expect(stimulus).to_contain_text("Questions 1, 2 refer to this case.")
    expect(stimulus.locator("math mfrac")).to_have_count(1)  # MathML kept through sanitizing
    problems += _audit(page, "single choice in a set")
    heading.focus()
    _tab_to(page, "input[type=radio]")
    page.keyboard.press("ArrowDown")  # radios: arrows move and select (A -> B)
    page.keyboard.press("ArrowDown")  # B -> C
    expect(page.get_by_role("radio", name="Option C", exact=True)).to_be_checked()

    # 2. item set, numeric entry with a decimal comma; the same case stays beside it
    _next(page, 2)
    expect(stimulus).to_be_visible()
    number = page.get_by_label("Your answer to question 2 (a number, in mg)")
    _tab_to(page, "input[inputmode=decimal]")
    page.keyboard.type("12,5")
    problems += _audit(page, "numeric entry")

    # 3. true/false
    _next(page, 3)
    expect(stimulus).to_be_hidden()
    _tab_to(page, "input[type=radio]")
    page.keyboard.press("ArrowDown")  # True -> False
    expect(page.get_by_role("radio", name="False", exact=True)).to_be_checked()

    # 4. text entry, answered in another case than the key's
    _next(page, 4)
    _tab_to(page, "input[type=text]")
    page.keyboard.type("  hyperTENSION ")
    problems += _audit(page, "text entry")

    # 5. ordering: C A B D -> A B C D with the Move up buttons; each move is announced
    _next(page, 5)
    _tab_to(page, "button[data-move='-1']", "Step A")
    page.keyboard.press("Enter")
    expect(page.locator("#announcer")).to_have_text("Step A moved to position 1 of 4.")
    _tab_to(page, "button[data-move='-1']", "Step B")
    page.keyboard.press("Enter")
    expect(page.locator(".order-text")).to_have_text([f"Step {x}" for x in "ABCD"])
    problems += _audit(page, "ordering")

    # 6. matching: s1 -> t2, s2 -> t1 (right), s3 -> t3 (wrong): 2 of 3 by partial credit; a
    # target taken is disabled in the other lists, so the arrow keys skip t1 and t2 for s3
    _next(page, 6)
    for source, downs in (("s1", 2), ("s2", 1), ("s3", 1)):
        _tab_to(page, f"select[data-slot={source}]")
        for _ in range(downs):
            page.keyboard.press("ArrowDown")
    expect(page.get_by_label("Source s3")).to_have_value("t3")
    expect(page.get_by_label("Source s3").locator("option[disabled]")).to_have_text(
        ["Target t1", "Target t2"])
    problems += _audit(page, "matching")

    # 7. inline choice: two list boxes inside the sentence
    _next(page, 7)
    _tab_to(page, "select[data-slot=g1]")
    page.keyboard.press("ArrowDown")
    _tab_to(page, "select[data-slot=g2]")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("combobox", name="Gap 2 of 2")).to_have_value("d")
    problems += _audit(page, "inline choice")

    # 8. hotspot: the marker starts in the middle; three steps right, then Enter marks it
    _next(page, 8)
    _tab_to(page, ".hotspot-stage")
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    expect(page.locator("[data-point-status]")).to_have_text(
        "Marked at 56% across and 50% down the image.")
    problems += _audit(page, "hotspot")

    # 9. multiple response, partial credit: A only (3 of 4 options judged right)
    _next(page, 9)
    _tab_to(page, "input[type=checkbox]")
    page.keyboard.press("Space")
    expect(page.locator("#save-status")).to_have_text("Saved")
    for n in range(1, 10):
        expect(page.get_by_role("button", name=f"Question {n}, answered")).to_be_visible()

    # a reload restores every answer from the server
    page.reload()
    expect(heading).to_have_text("Question 9 of 9")
    expect(page.get_by_role("checkbox", name="Option A", exact=True)).to_be_checked()
    restored = {
        1: lambda: expect(page.get_by_role("radio", name="Option C", exact=True)).to_be_checked(),
        2: lambda: expect(number).to_have_value("12,5"),
        3: lambda: expect(page.get_by_role("radio", name="False", exact=True)).to_be_checked(),
        4: lambda: expect(page.get_by_label("Your answer to question 4")).to_have_value("hyperTENSION"),
        5: lambda: expect(page.locator(".order-text")).to_have_text([f"Step {x}" for x in "ABCD"]),
        6: lambda: expect(page.get_by_label("Source s1")).to_have_value("t2"),
        7: lambda: expect(page.get_by_role("combobox", name="Gap 1 of 2")).to_have_value("a"),
        8: lambda: expect(page.locator("[data-point-status]")).to_have_text(
            "Marked at 56% across and 50% down the image."),
    }
    for n, check in restored.items():
        page.get_by_role("button", name=re.compile(f"^Question {n}, answered")).click()
        expect(heading).to_have_text(f"Question {n} of 9")
        check()

    page.get_by_role("button", name="Review answers").click()
    expect(page.locator("#review-summary")).to_have_text(
        "9 of 9 answered; 0 not answered; 0 flagged for review.")
    page.get_by_role("button", name="Submit the exam").click()
    page.get_by_role("dialog", name="Submit your exam?").get_by_role("button", name="Submit now").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your result: Exam TYPES")
    assert not problems, "\n".join(problems)
    assert not errors, errors

    db.commit()
    attempt = db.get(Attempt, attempt_id)
    result = db.scalar(select(Result).where(Result.attempt_id == attempt.id))
    scores = {s.position + 1: s for s in db.scalars(select(ItemScore).where(
        ItemScore.result_id == result.id))}
    assert scores[2].response == "12,5" and scores[4].response == "hyperTENSION"
    assert scores[8].response == {"x": 224.0, "y": 150.0}
    expected = {1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 2 / 3, 7: 1, 8: 1, 9: 0.75}
    assert {n: s.score for n, s in scores.items()} == pytest.approx(expected)
    assert result.answered == 9
    assert result.raw_score == pytest.approx(sum(expected.values()))


def test_a_refused_save_shows_beside_the_answer_and_is_not_counted(page, live_server, db,
                                                                   make_user):
    """The server refuses ``1,500`` (1500 or 1.5?): the typed text stays, the question shows why
    (aria-invalid, aria-describedby, announced) and is not answered until a save succeeds."""
    from playwright.sync_api import expect

    from assessment.delivery.models import ResponseSave

    exam = build_types_exam(db)
    candidate = make_user("candidate")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.set_default_timeout(10_000)
    base = live_server.url
    signin(page, base, candidate.email)
    attempt_id = start(page, base, exam)
    page.locator("#question-heading").focus()
    _next(page, 2)
    number = page.get_by_label("Your answer to question 2 (a number, in mg)")
    _tab_to(page, "input[inputmode=decimal]")
    page.keyboard.type("1,500")

    error = page.locator("#answer-error")
    expect(error).to_contain_text("could mean 1500 or 1.5")
    expect(error).to_contain_text("This question has no saved answer.")
    expect(number).to_have_value("1,500")
    expect(number).to_have_attribute("aria-invalid", "true")
    expect(number).to_have_attribute("aria-describedby", re.compile(r"\banswer-error\b"))
    expect(page.locator("#announcer")).to_contain_text("Question 2: your answer was not saved.")
    expect(page.get_by_role("button", name="Question 2, not answered")).to_be_visible()
    expect(number).to_be_focused()  # the candidate keeps typing where they were
    problems = _audit(page, "refused numeric entry")
    # the same on the way back to the question, and in the review
    _next(page, 3)
    page.get_by_role("button", name="Question 2, not answered").click()
    expect(number).to_have_value("1,500")
    expect(error).to_be_visible()
    page.get_by_role("button", name="Review answers").click()
    expect(page.locator("#review-summary")).to_contain_text("0 of 9 answered")
    page.get_by_role("button", name="Question 2, not answered").click()

    # corrected: saved, the error is gone, the question is answered
    number.fill("12,5")
    expect(page.get_by_role("button", name="Question 2, answered")).to_be_visible()
    expect(error).to_have_count(0)
    expect(number).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator("#announcer")).to_have_text("Question 2: your answer is saved.")
    expect(page.locator("#save-status")).to_have_text("Saved")
    assert not problems, "\n".join(problems)
    assert not errors, errors
    db.commit()
    # the server never stored the refused answer; it stored the corrected one
    values = db.scalars(select(ResponseSave.value).where(ResponseSave.attempt_id == attempt_id))
    assert list(values) == ["12,5"]
