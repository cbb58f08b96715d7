"""Standard-setting studies in the workspace: the facilitator's pages (``/psych/studies``) and
the panelist's screens (``/psych/panel``).

The facilitator (a psychometrician or an administrator) creates a study, seats panelists, opens
and closes rounds, releases a closed round's results to the panel, and sees every judgment, the
panel's agreement and the resulting cut. A panelist sees only the studies they sit on, rates on
their own screen, and sees the panel's results only of rounds the facilitator has released,
never another panelist's individual ratings. Anyone else asking for a study's panel screen, or
posting to it, gets a 403.

What a panelist sees of the items: a panel judges items (Angoff) or an ordered booklet of them
(Bookmark) the way the minimally competent candidate would meet them, so the item and its key
are shown inside the study's screens, to the people the facilitator seated (staff and
``panelist`` accounts; never candidates). Nothing else of the bank, no other exam, no statistics
beyond the released impact data.
"""
from __future__ import annotations

import csv
import io
import math

import numpy as np
from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from assessment.exams import Exam, exam_by_code
from assessment.psych import charts
from assessment.psych.studies import (
    CLASSIFICATION_METHODS,
    DEFAULT_RP,
    EXPORT_COLUMNS,
    ITEM_METHODS,
    METHODS,
    PANEL_ROLES,
    Study,
    classification_choices,
    classification_scale,
    close_round,
    close_study,
    create_study,
    export_rows,
    get_study,
    invite_panelist,
    open_round,
    parse_classification_csv,
    progress_counts,
    record_classifications,
    record_judgment,
    record_panel_classifications,
    record_ratings,
    release_round,
    remove_panelist,
    standing_classifications,
    standing_judgments,
    standing_ratings,
    studies_of_exam,
    studies_of_panelist,
    study_items,
)
from assessment.psych.study_results import (
    StudyOutcome,
    observed_fail_curve,
    study_outcome,
    study_recommendation,
)
from assessment.users import User
from itembank.models import FIXED
from microcred.errors import Invalid
from microcred.web import body_limit, db_session, role_required
from psychometrics.cut_scores import round_raw_cut

bp = Blueprint("studies", __name__, url_prefix="/psych")
ROLES = ("psychometrician", "admin")
CSV_LIMIT = 2 * 1024 * 1024


@bp.record_once
def _nav_links(state) -> None:
    wiring = state.app.extensions["microcred.wiring"]
    for role in ROLES:
        wiring.nav_links.append((role, "studies.index", "Standard setting"))
    for role in PANEL_ROLES:
        if role not in ROLES:
            wiring.nav_links.append((role, "studies.panel_index", "My panels"))


def _study(study_id: int) -> Study:
    return get_study(db_session(), study_id)


# ---------------------------------------------------------------- facilitator


def _exam_forms(session) -> list[tuple[Exam, object]]:
    """Every (exam, published fixed form) a study can be set on."""
    out = []
    for exam in session.scalars(select(Exam).order_by(Exam.title)):
        for ef in exam.forms:
            if ef.form.kind == FIXED and ef.form.is_published:
                out.append((exam, ef.form))
    return out


@bp.get("/studies")
@role_required(*ROLES)
def index():
    return _index_page()


def _index_page(problem: str | None = None, form: dict | None = None, status: int = 200):
    """All studies, or one exam's (``?exam=CODE``, from the exam's pages)."""
    session = db_session()
    exam = exam_by_code(session, request.args.get("exam", "")[:64]) if request.args.get(
        "exam") else None
    studies = studies_of_exam(session, exam.id if exam else None)
    form = form or {}
    if exam is not None and "reference" not in form and exam.forms:
        form = {**form, "reference": f"{exam.code}|{exam.forms[0].form.code}"}
    people = _people(session, {s.facilitator_id for s in studies})
    return render_template("psych/studies/index.html", studies=studies, people=people,
                           choices=_exam_forms(session), methods=METHODS, default_rp=DEFAULT_RP,
                           problem=problem, form=form, exam=exam), status


@bp.post("/studies")
@role_required(*ROLES)
def create():
    session = db_session()
    form = request.form.to_dict()
    exam_code, _, form_code = form.get("reference", "").partition("|")
    exam = exam_by_code(session, exam_code)
    try:
        if exam is None:
            raise Invalid(f"reference_form: there is no exam {exam_code[:64]!r}",
                          field="reference_form")
        study = create_study(session, exam=exam, title=form.get("title", ""),
                             method=form.get("method", ""), reference_form_code=form_code,
                             facilitator=current_user, rp=form.get("rp", DEFAULT_RP),
                             borderline=form.get("borderline", 1))
    except Invalid as exc:
        session.rollback()
        return _index_page(problem=exc.message, form=form, status=422)
    session.commit()
    flash(f"Study {study.id} created. Seat the panel, then open round 1.", "info")
    return redirect(url_for("studies.detail", study_id=study.id)), 303


def _people(session, ids) -> dict[int, User]:
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return {u.id: u for u in session.scalars(select(User).where(User.id.in_(ids)))}


@bp.get("/studies/<int:study_id>")
@role_required(*ROLES)
def detail(study_id: int):
    session = db_session()
    study = _study(study_id)
    outcome = study_outcome(session, study)
    progress = {}
    if study.open_round is not None:
        progress = progress_counts(session, study, study.open_round)
    people = {p.user_id: p.user for p in study.panelists}
    people.update(_people(session, {study.facilitator_id}))
    classifications = (standing_classifications(session, study.id, excluded=study.removed_ids())
                       if study.method in CLASSIFICATION_METHODS else {})
    return render_template(
        "psych/studies/study.html", study=study, outcome=outcome, progress=progress,
        people=people, chart=_chart(outcome), impact_chart=_impact_chart(outcome),
        rec=outcome.recommended,
        n_items=len(outcome.items), classifications=classifications,
        scale=classification_scale(study), candidates=_candidate_rows(outcome, classifications),
    )


def _candidate_rows(outcome: StudyOutcome, classifications: dict) -> list[dict]:
    if outcome.study.method not in CLASSIFICATION_METHODS:
        return []
    s = outcome.scores
    return [{"attempt_id": s.attempt_ids[k], "email": s.emails[k], "score": s.scores[k],
             "rating": classifications[rid].rating if rid in classifications else None,
             "entered_by": (classifications[rid].entered_by_id if rid in classifications
                            else None)}
            for k, rid in enumerate(s.result_ids)]


def _impact_chart(outcome: StudyOutcome) -> charts.Chart | None:
    """The reference form's score distribution with the recommended cut (rounded up) marked."""
    rec = outcome.recommended
    if rec is None or rec.raw_cut is None or outcome.scores.n == 0:
        return None
    values, counts = np.unique(np.round(outcome.scores.scores).astype(int), return_counts=True)
    return charts.score_histogram(
        {int(v): int(c) for v, c in zip(values, counts)},
        cut=float(round_raw_cut(rec.raw_cut, "ceil")), max_score=math.ceil(outcome.max_score),
        title=f"Scores on {outcome.study.reference_form.code} and the recommended cut")


def _chart(outcome: StudyOutcome, rnd=None) -> charts.Chart | None:
    """The Hofstee or Beuk picture of a round (the recommended one by default)."""
    study = outcome.study
    if study.method not in ("hofstee", "beuk"):
        return None
    rnd = rnd or outcome.recommended or next(
        (r for r in reversed(outcome.rounds) if r.has_cut), None)
    if rnd is None or "line" not in rnd.details:
        return None
    grid, fails = observed_fail_curve(outcome)
    line = rnd.details["line"]
    if study.method == "hofstee":
        return charts.hofstee_chart(grid, fails, c_min=line["c_min"], c_max=line["c_max"],
                                    f_min=line["f_min"], f_max=line["f_max"], cut=rnd.raw_cut,
                                    max_score=outcome.max_score)
    judgments = standing_judgments(db_session(), [r.id for r in study.rounds
                                                  if r.number == rnd.number])
    top = outcome.max_score
    seated = study.panelist_ids()
    values = [j.values for (_, uid), j in judgments.items() if uid in seated]
    return charts.beuk_chart(
        grid, [1 - f for f in fails], panel_cuts=[v["cut"] * top / 100 for v in values],
        panel_pass_rates=[v["pass_rate"] / 100 for v in values], mean_cut=line["mean_cut"],
        mean_pass_rate=line["mean_pass_rate"], slope=line["slope"], cut=rnd.raw_cut,
        max_score=top)


@bp.get("/studies/<int:study_id>/judgments.csv")
@role_required(*ROLES)
def judgments_csv(study_id: int):
    """Every rating and judgment of the study, superseded ones included, as CSV."""
    study = _study(study_id)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS)
    writer.writeheader()
    for row in export_rows(db_session(), study):
        writer.writerow({k: _csv_safe(v) for k, v in row.items()})
    response = Response(out.getvalue().encode(), mimetype="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="study-{study.id}-judgments.csv"')
    return response


def _csv_safe(value):
    """Names and emails are typed by people: a leading =, +, - or @ would be a formula to a
    spreadsheet (OWASP CSV injection), so such text gets a leading apostrophe."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


@bp.get("/studies/<int:study_id>/recommendation.json")
@role_required(*ROLES)
def recommendation(study_id: int):
    return study_recommendation(db_session(), study_id)


@bp.post("/studies/<int:study_id>/panelists")
@role_required(*ROLES)
def invite(study_id: int):
    session = db_session()
    study = _study(study_id)
    seat = invite_panelist(session, study, request.form.get("email", ""), by=current_user)
    session.commit()
    flash(f"{seat.user.display_name} ({seat.user.email}) is on the panel.", "info")
    return redirect(url_for("studies.detail", study_id=study.id)), 303


@bp.post("/studies/<int:study_id>/panelists/<int:user_id>/remove")
@role_required(*ROLES)
def remove(study_id: int, user_id: int):
    """Remove a seated panelist (with the reason): recorded, their rows kept, their judgments
    counted no more, their access to the study gone."""
    session = db_session()
    study = _study(study_id)
    row = remove_panelist(session, study, user_id, request.form.get("reason", ""),
                          by=current_user)
    session.commit()
    flash(f"{row.user.display_name} ({row.user.email}) is off the panel; their judgments no "
          "longer count.", "info")
    return redirect(url_for("studies.detail", study_id=study.id)), 303


@bp.post("/studies/<int:study_id>/rounds")
@role_required(*ROLES)
def start_round(study_id: int):
    session = db_session()
    rnd = open_round(session, _study(study_id), by=current_user)
    session.commit()
    flash(f"Round {rnd.number} is open: panelists can rate now.", "info")
    return redirect(url_for("studies.detail", study_id=study_id)), 303


@bp.post("/studies/<int:study_id>/rounds/close")
@role_required(*ROLES)
def end_round(study_id: int):
    session = db_session()
    rnd = close_round(session, _study(study_id), by=current_user)
    session.commit()
    flash(f"Round {rnd.number} is closed; its ratings no longer change.", "info")
    return redirect(url_for("studies.detail", study_id=study_id)), 303


@bp.post("/studies/<int:study_id>/rounds/<int:number>/release")
@role_required(*ROLES)
def release(study_id: int, number: int):
    session = db_session()
    release_round(session, _study(study_id), number, by=current_user)
    session.commit()
    flash(f"Round {number}'s results (panel cut, impact, item feedback) are shown to the panel.",
          "info")
    return redirect(url_for("studies.detail", study_id=study_id)), 303


@bp.post("/studies/<int:study_id>/close")
@role_required(*ROLES)
def close(study_id: int):
    session = db_session()
    close_study(session, _study(study_id), by=current_user)
    session.commit()
    flash(f"Study {study_id} is closed.", "info")
    return redirect(url_for("studies.detail", study_id=study_id)), 303


@bp.get("/studies/<int:study_id>/booklet")
@role_required(*ROLES)
def booklet(study_id: int):
    session = db_session()
    study = _study(study_id)
    outcome = study_outcome(session, study, include_open=False)
    return render_template("psych/studies/booklet.html", study=study, outcome=outcome,
                           pages=_booklet_pages(outcome), facilitator=True)


def _booklet_pages(outcome: StudyOutcome) -> list[dict]:
    b = outcome.booklet
    if b is None:
        return []
    return [{"page": k + 1, "item": outcome.items[int(b.item[k])],
             "location": float(b.location[k])} for k in range(b.n_pages)]


def _reference_lookups(outcome: StudyOutcome) -> tuple[dict[str, int], dict[int, int]]:
    s = outcome.scores
    by_email: dict[str, int] = {}
    for email, rid in zip(s.emails, s.result_ids):
        by_email[email.lower()] = rid  # the newest counted result (ids ascend)
    return by_email, dict(zip(s.attempt_ids, s.result_ids))


@bp.post("/studies/<int:study_id>/classifications")
@role_required(*ROLES)
@body_limit(CSV_LIMIT)
def classify(study_id: int):
    """One candidate's classification from the form, or a CSV file of them."""
    session = db_session()
    study = _study(study_id)
    if study.method not in CLASSIFICATION_METHODS:
        raise Invalid(f"a {study.method_name} study does not classify candidates", field="method")
    if not study.is_open:
        raise Invalid(f"study {study.id} is closed; nothing in it changes any more",
                      field="study")
    outcome = study_outcome(session, study)
    by_email, by_attempt = _reference_lookups(outcome)
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise Invalid("file: the CSV must be UTF-8 text", field="file") from None
        rows = parse_classification_csv(study, text, by_email, by_attempt)
        source = "csv"
    else:
        line = (f"attempt_id,rating\n{request.form.get('attempt_id', '').strip()},"
                f"{request.form.get('rating', '').strip()}\n")
        rows = parse_classification_csv(study, line, by_email, by_attempt)
        source = "form"
    added = record_classifications(session, study, rows, by=current_user, source=source)
    session.commit()
    flash(f"{len(rows)} classification(s) read, {added} new or changed.", "info")
    return redirect(url_for("studies.detail", study_id=study.id)), 303


# ---------------------------------------------------------------- panelists


@bp.get("/panel/")
@role_required(*PANEL_ROLES)
def panel_index():
    studies = studies_of_panelist(db_session(), current_user.id)
    return render_template("psych/studies/panel_index.html", studies=studies)


def _seated_study(study_id: int) -> Study:
    """The study, for a panelist seated on it; 403 for anyone else (staff included: the
    facilitator's own pages are elsewhere)."""
    study = db_session().get(Study, study_id)
    if study is None or current_user.id not in study.panelist_ids():
        abort(403)
    return study


@bp.get("/panel/<int:study_id>")
@role_required(*PANEL_ROLES)
def panel(study_id: int):
    return _panel_page(_seated_study(study_id))


def _panel_page(study: Study, *, problem: str | None = None, problem_field: str | None = None,
                typed: dict | None = None, status: int = 200):
    session = db_session()
    outcome = study_outcome(session, study, include_open=False)
    rnd = study.open_round
    round_ids = [r.id for r in study.rounds]
    mine = standing_ratings(session, round_ids, current_user.id)
    my_judgments = standing_judgments(session, round_ids, current_user.id)
    previous = max((r for r in study.rounds if not r.is_open), key=lambda r: r.number,
                   default=None)
    released = [r for r in outcome.rounds if r.released]
    return render_template(
        "psych/studies/panel.html", study=study, outcome=outcome, rnd=rnd, mine=mine,
        to_classify=_panel_candidates(session, study, outcome),
        choices=classification_choices(study),
        my_judgments=my_judgments, previous=previous, released=released,
        items=outcome.items if study.method in ITEM_METHODS else study_items(session, study),
        pages=_booklet_pages(outcome), problem=problem, problem_field=problem_field,
        typed=typed or {}, me=current_user.id, status=status,
    ), status


def _panel_candidates(session, study: Study, outcome: StudyOutcome) -> list[dict]:
    """The counted candidates a panelist classifies, with their own standing classification
    (not the score: the judgment must rest on other evidence; not anyone else's entry)."""
    if study.method not in CLASSIFICATION_METHODS:
        return []
    mine = standing_classifications(session, study.id, entered_by=current_user.id)
    s = outcome.scores
    rows = [{"attempt_id": s.attempt_ids[k], "email": s.emails[k],
             "rating": mine[rid].rating if rid in mine else None}
            for k, rid in enumerate(s.result_ids)]
    return sorted(rows, key=lambda r: (r["email"], r["attempt_id"]))


@bp.post("/panel/<int:study_id>")
@role_required(*PANEL_ROLES)
def rate(study_id: int):
    study = _seated_study(study_id)  # 403 before anything is read from the form
    session = db_session()
    form = request.form.to_dict()
    round_number = form.pop("round", "")
    form.pop("csrf_token", None)
    try:
        if study.method in ITEM_METHODS:
            values = {k.removeprefix("rating-"): v for k, v in form.items()
                      if k.startswith("rating-")}
            added = record_ratings(session, study, current_user, round_number, values)
            message = (f"Saved: {added} rating(s) changed." if added
                       else "Nothing changed: your ratings were already saved.")
        elif study.method in CLASSIFICATION_METHODS:
            values = {k.removeprefix("class-"): v for k, v in form.items()
                      if k.startswith("class-")}
            outcome = study_outcome(session, study, include_open=False)
            _, by_attempt = _reference_lookups(outcome)
            added = record_panel_classifications(session, study, current_user, values,
                                                 by_attempt)
            message = (f"Saved: {added} classification(s) changed." if added
                       else "Nothing changed: your classifications were already saved.")
        else:
            outcome = study_outcome(session, study, include_open=False)
            n_pages = outcome.booklet.n_pages if outcome.booklet is not None else 0
            row = record_judgment(session, study, current_user, round_number, form,
                                  n_pages=n_pages)
            message = "Saved your judgment." if row else "Nothing changed: already saved."
    except Invalid as exc:
        session.rollback()
        return _panel_page(study, problem=exc.message, problem_field=exc.extra.get("field"),
                           typed=form, status=422)
    session.commit()
    flash(message, "info")
    return redirect(url_for("studies.panel", study_id=study.id)), 303
