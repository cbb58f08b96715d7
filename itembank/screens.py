"""The item bank's screens: the item list, the item editor (with live preview and history) and
the review queue. Their routes are on the bank's blueprint (``itembank.web.bp``, registered by
its ``init_app``); :func:`add_nav_links` puts them in the header of the bank's roles.

Views are thin: parse the form (:mod:`itembank.editor`), call ``itembank.workflow`` or
``itembank.rekeys``, render. Only item authors, admins and psychometricians see the bank;
anyone else gets a 403. What the bank shows of delivery's records (responses per item, p and r,
calibration runs) is read through ``assessment``'s readers, as proctoring's views do.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from flask import (
    Flask,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import Select, String, cast, exists, func, or_, select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from itembank import editor, editors, lifecycle, rekeys, rendering, workflow
from itembank.authoring import PublishedVersionError
from itembank.models import (
    DELIVERABLE,
    DRAFT,
    IN_REVIEW,
    PRETEST,
    STATUSES,
    BlueprintDomain,
    Item,
    ItemParameter,
    ItemVersion,
)
from itembank.types import ITEM_TYPES, ItemDefinitionError, public_payload
from itembank.web import bp
from microcred.errors import DomainError
from microcred.web import db_session, role_required

BANK = tuple(sorted(workflow.BANK_ROLES))
ITEMS_PER_PAGE = 50
MAX_SEARCH = 200
#: the statistics flags of the list's filter: what each means
FLAGS = {
    "ready": "Pretest, ready for calibration",
    "calibrated": "Has IRT parameters",
    "uncalibrated": "No IRT parameters yet",
    "too_hard": "Too hard (p below 0.20)",
    "too_easy": "Too easy (p above 0.95)",
}
P_MIN, P_MAX = 0.20, 0.95
#: the flags judged on p need this many responses to mean anything
FLAG_MIN_RESPONSES = 30


def add_nav_links(app: Flask) -> None:
    w = app.extensions["microcred.wiring"]
    for role in BANK:
        w.nav_links.append((role, "itembank.items", "Item bank"))
        w.nav_links.append((role, "itembank.review_queue", "Review queue"))


def _min_responses() -> int:
    return current_app.config["MICROCRED"].pretest_min_responses


class ListRequestError(DomainError):
    status, code = 400, "bad_list_request"


# ---------------------------------------------------------------- the item list


@dataclass(frozen=True)
class ListFilters:
    q: str = ""
    type: str = ""
    domain: str = ""
    status: str = ""
    flag: str = ""
    page: int = 1

    @classmethod
    def from_args(cls, args: Any) -> ListFilters:
        def choice(name: str, allowed: Any) -> str:
            value = args.get(name, "").strip()
            if value and value not in allowed:
                raise ListRequestError(f"{name} must be one of {', '.join(allowed)}; "
                                       f"got {value!r}")
            return value

        q = args.get("q", "").strip()
        if len(q) > MAX_SEARCH:
            raise ListRequestError(f"the search text is {len(q)} characters long; keep it to "
                                   f"{MAX_SEARCH}")
        raw_page = args.get("page", "1")
        if not (raw_page.isascii() and raw_page.isdigit()) or len(raw_page) > 6 \
                or int(raw_page) < 1:
            raise ListRequestError(f"the page number must be a whole number from 1, not "
                                   f"{raw_page!r}")
        domain = args.get("domain", "").strip()
        if len(domain) > 40:
            raise ListRequestError("a domain code has at most 40 characters")
        return cls(q=q, type=choice("type", sorted(ITEM_TYPES)), domain=domain,
                   status=choice("status", STATUSES), flag=choice("flag", list(FLAGS)),
                   page=int(raw_page))

    def args(self, **changes: Any) -> dict[str, Any]:
        values = {"q": self.q, "type": self.type, "domain": self.domain, "status": self.status,
                  "flag": self.flag, "page": self.page, **changes}
        return {k: v for k, v in values.items() if v not in ("", None, 1) or k == "page" and v != 1}


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def newest_versions() -> Select:
    """Each item's newest version id (the list shows an item by its newest version)."""
    return select(func.max(ItemVersion.id)).group_by(ItemVersion.item_id)


def list_query(filters: ListFilters) -> Select:
    """The filtered items as ``(ItemVersion, Item.code)`` rows, by item code."""
    from assessment.delivery.reads import response_stats

    query = (select(ItemVersion, Item.code).join(Item, Item.id == ItemVersion.item_id)
             .where(ItemVersion.id.in_(newest_versions())))
    if filters.type:
        query = query.where(ItemVersion.item_type == filters.type)
    if filters.domain:
        query = query.where(ItemVersion.domain_code == filters.domain)
    if filters.status:
        query = query.where(ItemVersion.status == filters.status)
    if filters.q:
        pattern = _like(filters.q)
        query = query.where(or_(
            func.lower(Item.code).like(pattern, escape="\\"),
            func.lower(ItemVersion.stem).like(pattern, escape="\\"),
            func.lower(cast(ItemVersion.keywords, String)).like(pattern, escape="\\")))
    if filters.flag in ("calibrated", "uncalibrated"):
        has = exists().where(ItemParameter.item_version_id == ItemVersion.id)
        query = query.where(has if filters.flag == "calibrated" else ~has)
    elif filters.flag:
        stats = response_stats().subquery()
        query = query.join(stats, stats.c.item_version_id == ItemVersion.id)
        if filters.flag == "ready":
            query = query.where(ItemVersion.status == PRETEST,
                                stats.c.n >= _min_responses())
        else:
            query = query.where(stats.c.n >= FLAG_MIN_RESPONSES,
                                stats.c.p < P_MIN if filters.flag == "too_hard"
                                else stats.c.p > P_MAX)
    return query


@dataclass(frozen=True)
class ListRow:
    version: ItemVersion
    code: str
    author: str
    n_responses: int
    p: float | None
    calibrated: bool
    ready: bool


def list_page(session: Session, filters: ListFilters) -> tuple[list[ListRow], int]:
    """One page of the list and the number of matching items, in five queries whatever the
    page's length: count, rows, statistics, parameters, authors."""
    from assessment.delivery.reads import response_stats
    from assessment.users import User

    query = list_query(filters)
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = list(session.execute(query.order_by(Item.code)
                                .offset((filters.page - 1) * ITEMS_PER_PAGE)
                                .limit(ITEMS_PER_PAGE)))
    ids = [v.id for v, _ in rows]
    stats = {r.item_version_id: r for r in session.execute(response_stats(ids))} if ids else {}
    calibrated = set(session.scalars(select(ItemParameter.item_version_id).distinct().where(
        ItemParameter.item_version_id.in_(ids)))) if ids else set()
    author_ids = {v.author_id for v, _ in rows if v.author_id}
    names = dict(session.execute(select(User.id, User.display_name)
                                 .where(User.id.in_(author_ids))).all()) if author_ids else {}
    minimum = _min_responses()
    out = []
    for version, code in rows:
        s = stats.get(version.id)
        n = int(s.n) if s else 0
        out.append(ListRow(
            version=version, code=code, author=names.get(version.author_id, ""),
            n_responses=n, p=float(s.p) if s and s.p is not None else None,
            calibrated=version.id in calibrated,
            ready=workflow.ready_for_calibration(version.status, n, minimum)))
    return out, int(total or 0)


@bp.get("/bank/items")
@role_required(*BANK)
def items():
    session = db_session()
    try:
        filters = ListFilters.from_args(request.args)
        rows, total = list_page(session, filters)
        pages = max(1, math.ceil(total / ITEMS_PER_PAGE))
        if filters.page > pages:
            raise ListRequestError(f"there is no page {filters.page}: {total} items make "
                                   f"{pages} page{'s' if pages != 1 else ''}")
    except ListRequestError as exc:
        return render_template("error.html", status=400, message=str(exc)), 400
    return render_template(
        "itembank/items.html", rows=rows, total=total, pages=pages, filters=filters,
        types=sorted(ITEM_TYPES), statuses=STATUSES, flags=FLAGS, label=lifecycle.label,
        domains=_domain_codes(session), per_page=ITEMS_PER_PAGE)


def _domain_codes(session: Session) -> list[str]:
    return sorted(set(session.scalars(select(BlueprintDomain.code).distinct())))


# ---------------------------------------------------------------- the editor


def _actor() -> Any:
    return current_user._get_current_object()


@bp.get("/bank/items/new")
@role_required(*BANK)
def new_item():
    return _editor_page(None, editor.EditorForm.blank(request.args.get("type", "single_choice")))


@bp.post("/bank/items/new")
@role_required(*BANK)
def create_item():
    session = db_session()
    form = editor.EditorForm.from_form(request.form, new=True)
    if form.errors:
        return _editor_page(None, form, status=422)
    try:
        version = workflow.create_draft(session, _actor(), **form.fields(new=True))
    except (ItemDefinitionError, DomainError) as exc:
        session.rollback()
        if isinstance(exc, workflow.BankForbidden):
            raise
        form.add_error(exc)
        return _editor_page(None, form, status=exc.status)
    session.commit()
    code = form.code
    flash(f"Draft {code} saved.", "info")
    return redirect(url_for("itembank.item", code=code, version=version.version))


def _item_and_version(session: Session, code: str, number: int | None) -> tuple[Item, ItemVersion]:
    item = workflow.item_or_error(session, code)
    return item, workflow.version_of(session, item, number)


@bp.get("/bank/items/<code>")
@role_required(*BANK)
def item(code: str):
    session = db_session()
    number = request.args.get("version", type=int)
    item_row, version = _item_and_version(session, code, number)
    return _editor_page(item_row, editor.EditorForm.from_version(item_row, version),
                        version=version)


@bp.post("/bank/items/<code>/versions/<int:number>")
@role_required(*BANK)
def save_draft(code: str, number: int):
    session = db_session()
    item_row, version = _item_and_version(session, code, number)
    form = editor.EditorForm.from_form(request.form, new=False, code=item_row.code)
    if form.errors:
        return _editor_page(item_row, form, version=version, status=422)
    try:
        workflow.edit_draft(session, _actor(), version, **form.fields(new=False))
    except (ItemDefinitionError, PublishedVersionError) as exc:
        session.rollback()
        form.add_error(exc)
        return _editor_page(item_row, form, version=version, status=exc.status)
    session.commit()
    flash(f"Draft {code} version {number} saved.", "info")
    return redirect(url_for("itembank.item", code=code, version=number))


@bp.post("/bank/preview")
@role_required(*BANK)
def form_preview():
    """The item as candidates will see it, from the editor's unsaved form (an HTML fragment
    for the editor's live preview; nothing is stored)."""
    form = editor.EditorForm.from_form(request.form, new=False, code="preview")
    if form.preview_errors():
        return render_template("itembank/_preview_errors.html",
                               errors=form.preview_errors()), 422
    return str(_preview(form.transient_version()))


def _preview(version: ItemVersion) -> Any:
    """The item as candidates see it: the one template per interaction (``itembank.rendering``),
    from its public payload (no key, no rationale)."""
    return rendering.render_item(public_payload(version), prefix="preview", label="this question")


def _editor_page(item_row: Item | None, form: editor.EditorForm, *,
                 version: ItemVersion | None = None, status: int = 200,
                 extra: dict[str, Any] | None = None):
    session = db_session()
    user = current_user
    context: dict[str, Any] = {"item": item_row, "form": form, "version": version,
                               "types": editor.TYPE_LABELS, "levels": editor.COGNITIVE_LEVELS,
                               "domains": _domain_codes(session), "label": lifecycle.label,
                               "may_approve": workflow.may_approve(user),
                               "may_rekey": user.role in workflow.REKEYERS}
    editable = version is None or version.status == DRAFT
    context["editable"] = editable
    preview_item = None
    if version is not None:
        preview_item = _preview(version)
        context.update(_item_context(session, item_row, version))
        context.update(extra or {})
    elif form.complete:
        preview_item = _preview(form.transient_version())
    context["preview_item"] = preview_item
    return render_template("itembank/item.html", **context), status


def _item_context(session: Session, item_row: Item, version: ItemVersion) -> dict[str, Any]:
    from assessment.users import User

    versions = list(session.scalars(select(ItemVersion).where(ItemVersion.item_id == item_row.id)
                                    .order_by(ItemVersion.version.desc())))
    events = workflow.history(session, item_row.id)
    notes = workflow.notes(session, [version.id])
    assigned = workflow.assignments(session, [version.id]).get(version.id, [])
    rekey_rows = rekeys.rekey_history(session, [v.id for v in versions])
    people = {e.actor_id for e in events} | {n.author_id for n in notes} | {
        a.reviewer_id for a in assigned} | {r.by_id for r in rekey_rows} | {version.author_id}
    people.discard(None)
    names = dict(session.execute(select(User.id, User.display_name)
                                 .where(User.id.in_(people))).all()) if people else {}
    reviewers = list(session.execute(
        select(User.id, User.display_name, User.role)
        .where(User.role.in_(list(workflow.BANK_ROLES)), User.active.is_(True))
        .order_by(User.display_name))) if version.status == IN_REVIEW else []
    stages = workflow.review_stages(session)
    standing = workflow.signoffs(session, version)
    view = rekeys.scoring_views(session, [version])[version.id]
    rekey_values = editors.item_to_fields(version.item_type, version.interaction or {},
                                          view.key or {}, view.scoring or {})
    return {
        "versions": versions, "events": events, "notes": notes, "assigned": assigned,
        "names": names, "reviewers": reviewers, "stages": stages, "standing": standing,
        "rekeys": rekey_rows, "rekey_values": rekey_values, "rekey_errors": {},
        "next_statuses": lifecycle.next_statuses(version.status),
        "statistics": _statistics(session, item_row, versions, version),
        "deliverable": version.status in DELIVERABLE,
    }


@dataclass(frozen=True)
class Statistics:
    n: int
    p: float | None
    r: float | None
    ready: bool
    parameters: list[ItemParameter]
    calibrations: list[Any]
    exposure: int | None
    enemies: list[str]


def _statistics(session: Session, item_row: Item, versions: list[ItemVersion],
                version: ItemVersion) -> Statistics:
    """The item's statistics: this version's responses, p and corrected item-total r; the IRT
    parameters of every version (``ItemParameter``) and every calibration run's estimates."""
    from assessment.delivery.reads import item_score_rows
    from assessment.psych.runs import CalibrationEstimate, CalibrationRun

    rows = item_score_rows(session, version.id)
    n = len(rows)
    p = r = None
    if n:
        earned = [s / m if m else 0.0 for s, m, _ in rows]
        p = sum(earned) / n
        r = _corrected_r([s for s, _, _ in rows], [raw - s for s, _, raw in rows])
    ids = [v.id for v in versions]
    parameters = list(session.scalars(select(ItemParameter).where(
        ItemParameter.item_version_id.in_(ids)).order_by(ItemParameter.id.desc())))
    calibrations = list(session.execute(
        select(CalibrationEstimate, CalibrationRun)
        .join(CalibrationRun, CalibrationRun.id == CalibrationEstimate.run_id)
        .where(CalibrationEstimate.item_version_id.in_(ids))
        .order_by(CalibrationRun.id.desc())))
    return Statistics(n=n, p=p, r=r, parameters=parameters, calibrations=calibrations,
                      ready=workflow.ready_for_calibration(version.status, n, _min_responses()),
                      exposure=_exposure(session, version), enemies=_enemies(session, item_row))


def _corrected_r(item: list[float], rest: list[float]) -> float | None:
    """Pearson correlation of the item score with the rest score (total minus the item): the
    corrected item-total correlation (Henrysson, 1963). None without variance."""
    n = len(item)
    if n < 2:
        return None
    mx, my = sum(item) / n, sum(rest) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(item, rest, strict=True))
    sxx = sum((x - mx) ** 2 for x in item)
    syy = sum((y - my) ** 2 for y in rest)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def _exposure(session: Session, version: ItemVersion) -> int | None:
    """How many deliveries the version has had (bank-assembly's exposure store), if present."""
    try:
        from itembank.exposure import exposure_of
    except ImportError:
        return None
    return exposure_of(session, version.id)


def _enemies(session: Session, item_row: Item) -> list[str]:
    """The codes of the item's enemies (bank-assembly's store), if present."""
    try:
        from itembank.enemies import enemies_of
    except ImportError:
        return []
    ids = enemies_of(session, item_row.id)
    return sorted(session.scalars(select(Item.code).where(Item.id.in_(ids)))) if ids else []


# ---------------------------------------------------------------- actions on a version


def _back(code: str, number: int, anchor: str = ""):
    return redirect(url_for("itembank.item", code=code, version=number) + anchor)


@bp.post("/bank/items/<code>/draft")
@role_required(*BANK)
def open_draft(code: str):
    session = db_session()
    item_row = workflow.item_or_error(session, code)
    draft = workflow.open_draft(session, _actor(), item_row)
    session.commit()
    flash(f"Version {draft.version} of {code} is a draft: edit it below.", "info")
    return _back(code, draft.version)


@bp.post("/bank/items/<code>/versions/<int:number>/move")
@role_required(*BANK)
def move(code: str, number: int):
    session = db_session()
    _, version = _item_and_version(session, code, number)
    to_status = request.form.get("to", "")
    note = request.form.get("note", "")
    actor = _actor()
    if to_status == IN_REVIEW:
        workflow.submit_for_review(session, actor, version, note=note)
    elif to_status == DRAFT:
        workflow.request_changes(session, actor, version, note)
    elif to_status in STATUSES:
        workflow.move(session, actor, version, to_status, note=note)
    else:
        raise workflow.ReviewInputError(f"{to_status!r} is not an item status", field="to")
    session.commit()
    flash(f"{code} version {number} is now {lifecycle.label(version.status).lower()}.", "info")
    return _back(code, number)


@bp.post("/bank/items/<code>/versions/<int:number>/comments")
@role_required(*BANK)
def comment(code: str, number: int):
    session = db_session()
    _, version = _item_and_version(session, code, number)
    workflow.comment(session, _actor(), version, request.form.get("body", ""))
    session.commit()
    flash("Comment added.", "info")
    return _back(code, number, "#review")


@bp.post("/bank/items/<code>/versions/<int:number>/signoffs")
@role_required(*BANK)
def sign_off(code: str, number: int):
    session = db_session()
    _, version = _item_and_version(session, code, number)
    workflow.sign_off(session, _actor(), version, request.form.get("stage", ""),
                      verdict=request.form.get("verdict", workflow.PASSED),
                      body=request.form.get("body", ""))
    session.commit()
    flash("Sign-off recorded.", "info")
    return _back(code, number, "#review")


@bp.post("/bank/items/<code>/versions/<int:number>/reviewers")
@role_required(*workflow.APPROVERS)
def assign(code: str, number: int):
    from assessment.users import User

    session = db_session()
    _, version = _item_and_version(session, code, number)
    reviewer_id = request.form.get("reviewer", type=int)
    reviewer = session.get(User, reviewer_id) if reviewer_id else None
    if reviewer is None:
        raise workflow.ReviewInputError("choose a reviewer", field="reviewer")
    workflow.assign_reviewer(session, _actor(), version, reviewer,
                             stage_code=request.form.get("stage", ""))
    session.commit()
    flash(f"{reviewer.display_name} is assigned.", "info")
    return redirect(request.form.get("back") == "queue" and url_for("itembank.review_queue")
                    or url_for("itembank.item", code=code, version=number) + "#review")


@bp.post("/bank/items/<code>/versions/<int:number>/rekeys")
@role_required(*workflow.REKEYERS)
def rekey(code: str, number: int):
    """Re-key from the item page: the key part of the type's editor fields (any type), or drop
    the item. A refused re-key shows the page again with each problem beside its field."""
    session = db_session()
    item_row, version = _item_and_version(session, code, number)
    dropped = request.form.get("dropped") == "on"
    try:
        key = scoring = None
        if not dropped:
            key, scoring = rekey_from_fields(version, request.form)
        outcome = rekeys.rekey(session, _actor(), version, key=key, scoring=scoring,
                               dropped=dropped, reason=request.form.get("reason", ""))
    except (ItemDefinitionError, workflow.ReviewInputError) as exc:
        session.rollback()
        errors = getattr(exc, "errors", None) or {
            _rekey_field(exc): exc.message}
        return _editor_page(item_row, editor.EditorForm.from_version(item_row, version),
                            version=version, status=422,
                            extra={"rekey_values": editor._posted_values(request.form),
                                   "rekey_errors": errors})
    session.commit()
    reports = outcome.reports
    return render_template("itembank/rescored.html", item=item_row, version=version,
                           rekey=outcome.rekey, reports=reports)


def _rekey_field(exc: DomainError) -> str:
    field = exc.extra.get("field")
    if field == "reason":
        return "reason"
    if isinstance(exc, ItemDefinitionError):
        return editors.form_field(field)
    return "_item"


#: the editor fields that are the question's content, not its key or scoring
_CONTENT_FIELD = re.compile(r"(option-\d+|select|fixed_order|max_length|expected_length|unit|"
                            r"source-\d+|target-\d+|reuse_targets|sentence|image_\w+)")


def _field_text(value: Any) -> Any:
    """A stored field value as the form would post it (the readers read text)."""
    if isinstance(value, bool):
        return "on" if value else ""
    if value is None or isinstance(value, (str, list)):
        return value or ""
    return str(value)


def _pair_ids(read: Any, stored: Any, ids: dict[str, str]) -> None:
    if isinstance(read, dict) and isinstance(stored, dict):
        for name, value in read.items():
            if name in stored:
                _pair_ids(value, stored[name], ids)
    elif isinstance(read, list) and isinstance(stored, list):
        for a, b in zip(read, stored, strict=False):
            if isinstance(a, dict) and isinstance(b, dict) and "id" in a and "id" in b:
                ids[str(a["id"])] = b["id"]
            _pair_ids(a, b, ids)


def _renamed(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return ids.get(value, value)
    if isinstance(value, list):
        return [_renamed(v, ids) for v in value]
    if isinstance(value, dict):
        return {ids.get(k, k): _renamed(v, ids) for k, v in value.items()}
    return value


def rekey_from_fields(version: ItemVersion, form: Any) -> tuple[dict, dict]:
    """The new ``(key, scoring)`` of ``version`` from the type's editor fields. A re-key changes
    the key and scoring only: the question's content stays the published version's, so the
    content fields are taken from the version, not the form; an ordering's steps are matched
    back to the published steps by their text (the reader numbers steps by their posted order)."""
    stored = editors.item_to_fields(version.item_type, version.interaction or {},
                                    version.key or {}, version.scoring or {})
    posted = form.items(multi=True) if isinstance(form, MultiDict) else form.items()
    merged = MultiDict([(k, v) for k, v in posted if not _CONTENT_FIELD.fullmatch(k)])
    for name, value in stored.items():
        if _CONTENT_FIELD.fullmatch(name):
            for v in value if isinstance(value, list) else [value]:
                merged.add(name, _field_text(v))
    read, key, scoring = editors.fields_to_item(version.item_type, merged)
    # the readers number options, sources, targets and gap choices by position; the published
    # version may name them otherwise (an import, a program): map by position back to its ids
    ids: dict[str, str] = {}
    _pair_ids(read, version.interaction or {}, ids)
    if ids:
        key = {k: _renamed(v, ids) if k in ("correct", "pairs") else v for k, v in key.items()}
    if version.item_type == "ordering":
        ids = {o["text"]: o["id"] for o in version.interaction.get("options", [])}
        order, errors = [], {}
        for n in range(editors.MAX_ROWS):
            text = (form.get(f"step-{n}") or "").strip()
            if not text:
                continue
            if text not in ids:
                errors[f"step-{n}"] = ("not one of the published steps: a re-key only puts "
                                       "them in another order")
            order.append(ids.get(text))
        if errors:
            raise editors.EditorErrors(errors)
        key = {"order": order}
    return key, scoring


# ---------------------------------------------------------------- the review queue


@bp.get("/bank/review")
@role_required(*BANK)
def review_queue():
    from assessment.delivery.reads import response_stats
    from assessment.users import User

    session = db_session()
    mine = request.args.get("mine") == "1"
    pretest_ids = list(session.scalars(select(ItemVersion.id).where(
        ItemVersion.status == PRETEST)))
    counts = {r.item_version_id: int(r.n) for r in session.execute(
        response_stats(pretest_ids))} if pretest_ids else {}
    entries = workflow.review_queue(session, response_counts=counts,
                                    min_responses=_min_responses(),
                                    reviewer_id=current_user.id if mine else None)
    people = {rid for e in entries for rid in e.reviewer_ids}
    names = dict(session.execute(select(User.id, User.display_name)
                                 .where(User.id.in_(people))).all()) if people else {}
    reviewers = list(session.execute(
        select(User.id, User.display_name, User.role)
        .where(User.role.in_(list(workflow.BANK_ROLES)), User.active.is_(True))
        .order_by(User.display_name)))
    return render_template("itembank/review.html", entries=entries, names=names, mine=mine,
                           reviewers=reviewers, stages=workflow.review_stages(session),
                           may_approve=workflow.may_approve(current_user),
                           may_configure=current_user.role in workflow.STAGE_EDITORS,
                           label=lifecycle.label, min_responses=_min_responses())


@bp.post("/bank/review/stages")
@role_required(*workflow.STAGE_EDITORS)
def set_stages():
    session = db_session()
    stages = []
    for n, line in enumerate(request.form.get("stages", "").splitlines(), start=1):
        if not line.strip():
            continue
        code, sep, name = line.partition(":")
        if not sep:
            raise workflow.ReviewInputError(
                f"line {n}: write each stage as 'code: name', e.g. 'bias: Bias review'",
                field="stages")
        stages.append((code.strip(), name.strip()))
    workflow.set_review_stages(session, _actor(), stages)
    session.commit()
    flash("Review stages saved.", "info")
    return redirect(url_for("itembank.review_queue"))

