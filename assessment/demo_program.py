"""The demo program: "Clinical Coding Fundamentals", its users, and a simulated history.

The items come from ``assessment/demo/clinical_coding.json`` and enter the bank the way a
person's do (``itembank.workflow``): the demo item author writes each as a draft and submits it,
the psychometrician signs off the program's review stages and approves it, and each item's
history says so. The program's achievement
(the badge a pass earns) and a stack built on it, created through credentials' services. Two
forms share half their items
(so psychometric screens see linked, sparse data, as with real LOFT or multi-form programs).
The history of past candidates is simulated from a two-parameter logistic model with known item
parameters (kept in each item version's ``meta["simulation"]``), so a calibration of the demo
data can be checked against the truth.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import random
import secrets
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from assessment.delivery.models import Attempt, ItemScore, Result, ResultRelease
from assessment.exams import create_exam
from assessment.users import Role, User, create_user, password_problem
from itembank import workflow
from itembank.authoring import create_blueprint, create_form
from itembank.media import media_url, store_media
from itembank.models import ItemVersion
from itembank.stimuli import create_stimulus
from itembank.types import item_type
from microcred.db import utcnow

CONTENT = Path(__file__).resolve().parent / "demo" / "clinical_coding.json"
DIFFICULTY_B = {"easy": -1.2, "medium": 0.0, "hard": 1.1}
DEMO_USERS = (
    (Role.CANDIDATE, "candidate@demo.microcred.test", "Casey Candidate"),
    (Role.PROCTOR, "proctor@demo.microcred.test", "Parker Proctor"),
    (Role.PSYCHOMETRICIAN, "psychometrician@demo.microcred.test", "Morgan Psychometrician"),
    (Role.ADMIN, "admin@demo.microcred.test", "Alex Admin"),
    (Role.ITEM_AUTHOR, "author@demo.microcred.test", "Avery Author"),
)
#: The demo program's review path: each stage is signed off before an item is approved.
DEMO_REVIEW_STAGES = (("content", "Content review"), ("bias", "Bias and sensitivity review"))
SIMULATION_SEED = 20261125


class DemoError(RuntimeError):
    pass


def load_content(path: Path = CONTENT) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DemoError(f"demo content is missing: {path}") from None


def _demo_password(email: str, name: str) -> str:
    """A fresh random password that passes the same checks as any other (it nearly always
    does at once; a draw that happens to spell a guessable pattern is drawn again)."""
    while True:
        password = secrets.token_urlsafe(12)
        if password_problem(password, (email, name)) is None:
            return password


def load_demo(
    session: Session, *, history: int = 500, if_empty: bool = False, content: dict | None = None
) -> list[tuple[str, str, str]] | None:
    """Load the demo; returns ``(role, email, password)`` for the demo users, with fresh
    random passwords, or None when ``if_empty`` and the database already has users."""
    if if_empty and session.scalar(select(func.count()).select_from(User)):
        return None
    loaded = list(session.scalars(
        select(User.email).where(User.email.in_([email for _, email, _ in DEMO_USERS]))))
    if loaded:
        raise DemoError(
            f"the demo program is already loaded ({', '.join(sorted(loaded))} exist); "
            "`microcred demo --if-empty` skips a database that has users"
        )
    content = content or load_content()
    creds = []
    users: dict[str, User] = {}
    for role, email, name in DEMO_USERS:
        password = _demo_password(email, name)
        users[role.value] = create_user(
            session, email=email, password=password, role=role, display_name=name
        )
        creds.append((role.value, email, password))
    bp_def = content["blueprint"]
    blueprint = create_blueprint(
        session, code=bp_def["code"], name=bp_def["name"], domains=bp_def["domains"]
    )
    rng = random.Random(SIMULATION_SEED)
    versions_by_domain: dict[str, list[ItemVersion]] = {}
    author, reviewer = users[Role.ITEM_AUTHOR.value], users[Role.PSYCHOMETRICIAN.value]
    stages = workflow.set_review_stages(session, users[Role.ADMIN.value], DEMO_REVIEW_STAGES)
    for spec in content["items"]:
        a = round(rng.uniform(0.7, 1.9), 3)
        b = round(DIFFICULTY_B[spec.get("difficulty", "medium")] + rng.gauss(0, 0.35), 3)
        interaction: dict[str, Any] = {"options": spec["options"]}
        if "select" in spec:  # "Select TWO.": the runner and the server hold the candidate to it
            interaction["select"] = spec["select"]
        version = _through_review(
            session, author, reviewer, stages,
            code=spec["code"],
            item_type_name=spec["type"],
            domain_code=spec["domain"],
            stem=spec["stem"],
            interaction=interaction,
            key={"correct": spec["key"]},
            rationale=spec.get("rationale", ""),
            reference=spec.get("references", ""),
            meta={
                "difficulty": spec.get("difficulty"),
                "simulation": {"model": "2pl", "a": a, "b": b},
            },
        )
        versions_by_domain.setdefault(spec["domain"], []).append(version)
    # the other item types and an item set come first in their domains: both forms show them
    reviewing = (author, reviewer, stages)
    for domain, versions in _load_interaction_items(session, content, rng, reviewing).items():
        versions_by_domain[domain] = versions + versions_by_domain.get(domain, [])
    forms = []
    for index, code in enumerate(("CCF-FORM-A", "CCF-FORM-B")):
        chosen: list[ItemVersion] = []
        for dom in blueprint.domains:
            pool = versions_by_domain.get(dom.code, [])
            n = dom.items_on_form
            if len(pool) < n + n // 2:
                raise DemoError(f"domain {dom.code} has {len(pool)} items; the forms need more")
            # Form B keeps the first half of form A's items (the anchor) and adds new ones.
            chosen += pool[:n] if index == 0 else pool[: n // 2] + pool[n : n + n - n // 2]
        forms.append(create_form(session, code=code, blueprint=blueprint, versions=chosen))
    exam_def = content["exam"]
    exam = create_exam(
        session,
        code=exam_def["code"],
        title=exam_def["title"],
        program_name=content["program"]["name"],
        description=content["program"]["description"],
        instructions=exam_def["instructions"],
        agreement=exam_def["agreement"],
        blueprint=blueprint,
        forms=forms,
        time_limit_seconds=int(exam_def["time_limit_minutes"]) * 60,
        pass_percent=float(exam_def["pass_percent"]),
        # (the badge links to the exam through its achievement's exam_id, not the policy)
        policy={
            "proctoring": {"identity": "proctor", "review": "flagged", "fullscreen": False,
                           "snapshot_interval_s": 60},
        },
    )
    _assign_proctor(session, users["proctor"], exam, users["admin"])
    _create_achievements(session, exam, content["program"])
    simulate_history(session, exam=exam, forms=forms, n=history, seed=SIMULATION_SEED)
    session.flush()
    return creds


def _through_review(session: Session, author: User, reviewer: User, stages: list[Any],
                    **fields: Any) -> ItemVersion:
    """An item as a person's goes into the bank: the author writes the draft and submits it,
    the reviewer signs off every review stage and approves it (each step in its history)."""
    version = workflow.create_draft(session, author, **fields)
    workflow.submit_for_review(session, author, version)
    for stage in stages:
        workflow.sign_off(session, reviewer, version, stage.code)
    return workflow.approve(session, reviewer, version)


def _load_interaction_items(session: Session, content: dict[str, Any], rng: random.Random,
                            reviewing: tuple[User, User, list[Any]],
                            ) -> dict[str, list[ItemVersion]]:
    """The demo's items of every other type (``interaction_items``, each with its interaction,
    key and scoring as an author writes them) and the stimuli of its item sets, through the
    same authoring services; a hotspot's picture is drawn here and stored as bank media."""
    stimuli = {s["code"]: create_stimulus(session, code=s["code"], kind=s["kind"],
                                          title=s["title"], content=s["content"])
               for s in content.get("stimuli", [])}
    by_domain: dict[str, list[ItemVersion]] = {}
    for spec in content.get("interaction_items", []):
        a = round(rng.uniform(0.7, 1.9), 3)
        b = round(DIFFICULTY_B[spec.get("difficulty", "medium")] + rng.gauss(0, 0.35), 3)
        interaction = dict(spec["interaction"])
        if spec.get("image") == "claim_form":
            media = store_media(session, _claim_form_png(), filename="claim-form.png")
            interaction["image"] = {"src": media_url(media.sha256), "alt": CLAIM_FORM_ALT,
                                    "width": media.width, "height": media.height}
        stimulus = stimuli[spec["stimulus"]] if spec.get("stimulus") else None
        version = _through_review(
            session, *reviewing, code=spec["code"], item_type_name=spec["type"],
            domain_code=spec["domain"], stem=spec["stem"], interaction=interaction,
            key=spec["key"], scoring=spec.get("scoring"), rationale=spec.get("rationale", ""),
            stimulus_id=stimulus.id if stimulus else None, reference=spec.get("references", ""),
            meta={"difficulty": spec.get("difficulty"),
                  "simulation": {"model": "2pl", "a": a, "b": b}})
        by_domain.setdefault(spec["domain"], []).append(version)
    return by_domain


CLAIM_FORM_ALT = ("A simplified CMS-1500 claim form with labelled boxes, top to bottom: item 2, "
                  "patient's name; item 14, date of current illness, beside item 17, referring "
                  "provider; item 21, diagnosis or nature of illness or injury, with lines A to "
                  "D; the service lines, items 24A date of service, 24D procedures, 24E "
                  "diagnosis pointer and 24F charges; item 33, billing provider.")
CLAIM_FORM_BOXES = (
    ((20, 20, 580, 70), "2. PATIENT'S NAME (Last, First, Middle Initial)"),
    ((20, 80, 290, 140), "14. DATE OF CURRENT ILLNESS"),
    ((300, 80, 580, 140), "17. NAME OF REFERRING PROVIDER"),
    ((20, 150, 580, 220), ("21. DIAGNOSIS OR NATURE OF ILLNESS OR INJURY\n"
                          "A. ________   B. ________   C. ________   D. ________")),
    ((20, 230, 150, 320), "24A. DATE(S)\nOF SERVICE"),
    ((150, 230, 360, 320), "24D. PROCEDURES,\nSERVICES, OR SUPPLIES\n(CPT/HCPCS, MODIFIER)"),
    ((360, 230, 470, 320), "24E. DIAGNOSIS\nPOINTER"),
    ((470, 230, 580, 320), "24F. $ CHARGES"),
    ((20, 330, 580, 380), "33. BILLING PROVIDER INFO & PH #"),
)


def _claim_form_png() -> bytes:
    """The hotspot item's picture: a simplified claim form, drawn (the same bytes every time)."""
    import io

    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (600, 400), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=13)
    for (x1, y1, x2, y2), label in CLAIM_FORM_BOXES:
        draw.rectangle((x1, y1, x2, y2), outline=(176, 32, 32), width=2)
        draw.multiline_text((x1 + 6, y1 + 5), label, fill=(40, 40, 40), font=font, spacing=4)
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=False)
    return out.getvalue()


def _assign_proctor(session: Session, proctor: User, exam: Any, admin: User) -> None:
    try:
        from proctoring.assignments import assign
    except ModuleNotFoundError:
        return
    assign(session, proctor, exam, admin)


def _create_achievements(session: Session, exam: Any, program: dict[str, Any]) -> None:
    """The badge a pass of the demo exam earns, and the stack it completes."""
    from credentials.config import current
    from credentials.issuance import create_achievement

    cfg = current()
    badge = program["achievement"]
    create_achievement(session, cfg, code=program["code"], name=program["name"],
                       description=program["description"], criteria=badge["criteria"],
                       exam_id=exam.id, validity_days=badge.get("validity_days"),
                       tags=badge.get("tags"))
    stack = program["stack"]
    create_achievement(session, cfg, code=stack["code"], name=stack["name"],
                       description=stack["description"], criteria=stack["criteria"],
                       stack_components=stack["components"], stack_required=stack["required"])


def simulate_history(
    session: Session, *, exam: Any, forms: list, n: int, seed: int
) -> None:
    """``n`` past candidates with abilities drawn from N(0, 1), answering under the 2PL with
    each item's simulation parameters. Wrong answers pick a distractor at random."""
    if n <= 0:
        return
    rng = random.Random(seed + 1)
    now = utcnow()
    blueprint_names = {d.code: d.name for d in exam.blueprint.domains}
    form_versions = {
        f.id: [fi.item_version for fi in sorted(f.items, key=lambda fi: fi.position)] for f in forms
    }
    disabled_hash = "!simulated-candidate-cannot-sign-in"
    people = [
        User(
            email=f"past.candidate.{i:04d}@demo.microcred.test",
            display_name=f"Past candidate {i:04d}",
            role=Role.CANDIDATE.value,
            password_hash=disabled_hash,
            active=False,
            created_at=now - dt.timedelta(days=200),
        )
        for i in range(n)
    ]
    session.add_all(people)
    session.flush()
    attempts, results_rows = [], []
    for i, person in enumerate(people):
        form = forms[i % len(forms)]
        versions = form_versions[form.id]
        theta = rng.gauss(0.0, 1.0)
        started = now - dt.timedelta(days=rng.uniform(1, 180), minutes=rng.uniform(0, 600))
        duration = dt.timedelta(minutes=rng.uniform(12, 29))
        order = [v.id for v in versions]
        rng.shuffle(order)
        attempt = Attempt(
            candidate_id=person.id, exam_id=exam.id, form_id=form.id, status="finalized",
            seed=rng.getrandbits(48), item_order=order, option_orders={}, started_at=started,
            time_limit_seconds=exam.time_limit_seconds, time_multiplier=1.0,
            agreement_accepted_at=started, position=len(order) - 1, last_seq=len(order),
            finalized_at=started + duration, finalize_reason="submitted",
        )
        attempts.append((attempt, theta, versions))
    session.add_all([a for a, _, _ in attempts])
    session.flush()
    for attempt, theta, versions in attempts:
        by_id = {v.id: v for v in versions}
        scores, domains = [], {}
        raw = 0.0
        for pos, vid in enumerate(attempt.item_order):
            v = by_id[vid]
            p = _p2pl(theta, v.meta["simulation"]["a"], v.meta["simulation"]["b"])
            correct = rng.random() < p
            response = _simulated_response(v, correct, rng)
            points = item_type(v.item_type).score(v, response)
            raw += points
            d = domains.setdefault(v.domain_code, {"code": v.domain_code,
                                   "name": blueprint_names.get(v.domain_code, v.domain_code),
                                   "score": 0.0, "max": 0.0, "items": 0})
            d["score"] += points
            d["max"] += v.max_score
            d["items"] += 1
            scores.append({"item_version_id": vid, "position": pos, "domain_code": v.domain_code,
                           "response": response, "score": points, "max_score": v.max_score})
        for d in domains.values():
            d["percent"] = round(100 * d["score"] / d["max"], 1)
        maximum = float(len(versions))
        percent = round(100 * raw / maximum, 2)
        result = Result(attempt_id=attempt.id, raw_score=raw, max_score=maximum, percent=percent,
                        pass_percent=exam.pass_percent, passed=percent >= exam.pass_percent,
                        answered=len(versions), n_items=len(versions),
                        domain_scores=list(domains.values()), theta=None, theta_se=None,
                        created_at=attempt.finalized_at)
        results_rows.append((result, scores))
    session.add_all([r for r, _ in results_rows])
    session.flush()
    for result, scores in results_rows:
        session.add_all(ItemScore(result_id=result.id, **s) for s in scores)
        session.add(ResultRelease(result_id=result.id, status="released",
                                  reason="simulated history", at=result.created_at))
    session.flush()
    _simulated_attributes(session, people, seed)


#: The demo's candidate attributes: (name, [(value, share)]); drawn apart from the history's
#: random stream, so the simulated responses are the same with or without them.
DEMO_ATTRIBUTES = (
    ("region", [("north", 0.4), ("south", 0.35), ("east", 0.2), ("islands", 0.05)]),
    ("first language", [("en", 0.7), ("fr", 0.3)]),
)


def _simulated_attributes(session: Session, people: list[User], seed: int) -> None:
    """Region and first language of each simulated candidate (as a program would import them),
    so the program report's groups and the item-analysis report's DIF have something to show."""
    from assessment.candidate_attributes import CandidateAttribute

    rng = random.Random(seed + 2)
    session.add_all(
        CandidateAttribute(candidate_id=person.id, name=name, source="import",
                           value=rng.choices([v for v, _ in values],
                                             [w for _, w in values])[0])
        for person in people for name, values in DEMO_ATTRIBUTES)
    session.flush()


def _p2pl(theta: float, a: float, b: float) -> float:
    return 1.0 / (1.0 + math.exp(-a * (theta - b)))


def _simulated_response(v: ItemVersion, correct: bool, rng: random.Random) -> Any:
    """A keyed response, or a wrong one (for choices, a distractor at random)."""
    return item_type(v.item_type).sample_response(v, correct, rng)
