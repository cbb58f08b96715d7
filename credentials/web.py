"""Credentials' views: public badge pages and downloads (JSON, JWT, baked PNG/SVG, PDF), the
verify page and API, status lists, issuer profiles and did:web documents, the candidate's
wallet, and the admin pages (status changes, expiring list, achievements).

``init_app(app)`` registers the blueprint, exempts the stateless verify API from CSRF and adds the
nav links (the ``result_released`` receiver is connected by ``microcred.packages``).
"""
from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlencode

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select

from credentials import artwork, baking, issuance, issuers, revocation, stacks
from credentials.config import current
from credentials.issuance import MAX_VALIDITY_DAYS
from credentials.models import Achievement, Credential, Issuance, Issuer
from credentials.resolution import DatabaseResolver
from credentials.verify import MAX_INPUT_BYTES, verify
from microcred.db import utcnow
from microcred.inputs import form_id, whole_number
from microcred.pdf import html_to_pdf
from microcred.records import Person, records
from microcred.web import ApiError, body_limit, db_session, form_page, role_required, runner_wiring

bp = Blueprint("credentials", __name__)
JSONLD = "application/ld+json"
MANAGERS = ("admin",)


def init_app(app: Flask) -> None:
    from credentials import (
        pathway_views,  # its pages join this blueprint
        renewal_web,  # its views join this blueprint before it registers
    )

    app.register_blueprint(bp)
    csrf = app.extensions.get("csrf")
    if csrf is not None:
        csrf.exempt(api_verify)
        # a mail client's one-click unsubscribe (RFC 8058) posts with no session; the signed
        # token in the address is the proof
        csrf.exempt(renewal_web.unsubscribe)
    with app.app_context():
        pathway_views.init_app(app)
        wiring = runner_wiring()
        wiring.nav_links.append(("candidate", "credentials.wallet", "My badges"))
        wiring.nav_links.append(("candidate", "credentials.holder_renewals", "Renewals"))
        wiring.nav_links.append(("admin", "credentials.admin_credentials", "Credentials"))
        wiring.nav_links.append(("admin", "credentials.admin_renewals", "Renewals"))
        wiring.nav_links.append(("*", "credentials.verify_page", "Verify a badge"))
        wiring.result_links.append(badge_links)


def badge_links(session: Any, result_id: int) -> list[tuple[str, str]]:
    """The public pages of the badges a result earned, for the candidate's result page."""
    rows = session.scalars(select(Credential).where(Credential.result_id == result_id)
                           .order_by(Credential.id))
    return [(f"View your badge: {c.achievement.name}",
             url_for("credentials.badge", public_id=c.public_id)) for c in rows]


# --- helpers ------------------------------------------------------------------------------------

def _credential(public_id: str) -> Credential:
    row = db_session().scalar(select(Credential).where(Credential.public_id == public_id))
    if row is None:
        abort(404)
    return row


def _holder(credential: Credential) -> Person | None:
    return records().person(db_session(), credential.holder_id)


def _baked_png(credential: Credential) -> bytes:
    a = credential.achievement
    issuer = db_session().get(Issuer, a.issuer_id)
    return baking.bake_png(artwork.render_png(a.name, a.code, issuer.name), credential.document)


def _baked_svg(credential: Credential) -> bytes:
    a = credential.achievement
    issuer = db_session().get(Issuer, a.issuer_id)
    return baking.bake_svg(artwork.render_svg(a.name, a.code, issuer.name), credential.document)


def _download(data: bytes | str, mimetype: str, filename: str) -> Response:
    resp = Response(data, mimetype=mimetype)
    resp.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return resp


def _linkedin_url(credential: Credential, page_url: str, issuer_name: str) -> str:
    params = {
        "startTask": "CERTIFICATION_NAME",
        "name": credential.achievement.name,
        "organizationName": issuer_name,
        "issueYear": credential.valid_from.year,
        "issueMonth": credential.valid_from.month,
        "certUrl": page_url,
        "certId": credential.public_id,
    }
    if credential.valid_until:
        params.update(expirationYear=credential.valid_until.year,
                      expirationMonth=credential.valid_until.month)
    return "https://www.linkedin.com/profile/add?" + urlencode(params)


def _badge_context(credential: Credential) -> dict[str, Any]:
    session, cfg = db_session(), current()
    doc = credential.json
    state = revocation.status_of(session, credential)
    now = utcnow()
    if state.label != "active":
        status = state.label
    elif credential.valid_until and credential.valid_until <= now:
        status = "expired"
    else:
        status = "valid"
    holder = _holder(credential)
    holder_name = issuance.shown_name(holder.display_name,
                                      issuance.holder_choice(session, holder.id)) \
        if holder is not None else None
    renewed_by = session.scalar(select(Credential).where(
        Credential.supersedes_id == credential.id))
    page_url = cfg.url(url_for("credentials.badge", public_id=credential.public_id))
    return {
        "credential": credential,
        "doc": doc,
        "achievement": doc["credentialSubject"]["achievement"],
        "issuer": doc["issuer"],
        "holder_name": holder_name,
        "status": status,
        "state": state,
        "renewed_by": renewed_by,
        "page_url": page_url,
        "image_url": cfg.url(url_for("credentials.badge_png", public_id=credential.public_id)),
        "linkedin_url": _linkedin_url(credential, page_url, doc["issuer"].get("name", "")),
        "results": doc["credentialSubject"].get("result", []),
        # one proof or a list of them (credentials issued before carried one object)
        "proofs": doc["proof"] if isinstance(doc.get("proof"), list) else [doc.get("proof", {})],
    }


# --- public badge pages -----------------------------------------------------------------------

@bp.get("/badges/<public_id>")
def badge(public_id: str) -> str:
    return render_template("credentials/badge.html", **_badge_context(_credential(public_id)))


@bp.get("/badges/<public_id>/credential.json")
def badge_json(public_id: str) -> Response:
    cred = _credential(public_id)
    return _download(cred.document, JSONLD, f"{cred.achievement.code}-{public_id}.json")


@bp.get("/badges/<public_id>/credential.jwt")
def badge_jwt(public_id: str) -> Response:
    cred = _credential(public_id)
    token = issuance.as_jwt(db_session(), current(), cred)
    return _download(token, "application/vc+jwt", f"{cred.achievement.code}-{public_id}.jwt")


@bp.get("/badges/<public_id>/badge.png")
def badge_png(public_id: str) -> Response:
    cred = _credential(public_id)
    return _download(_baked_png(cred), "image/png", f"{cred.achievement.code}-{public_id}.png")


@bp.get("/badges/<public_id>/badge.svg")
def badge_svg(public_id: str) -> Response:
    cred = _credential(public_id)
    return _download(_baked_svg(cred), "image/svg+xml",
                     f"{cred.achievement.code}-{public_id}.svg")


@bp.get("/badges/<public_id>/certificate.pdf")
def badge_pdf(public_id: str) -> Response:
    cred = _credential(public_id)
    context = _badge_context(cred)
    a = cred.achievement
    png = artwork.render_png(a.name, a.code, context["issuer"].get("name", ""))
    context["image_data"] = "data:image/png;base64," + base64.b64encode(png).decode()
    html = render_template("credentials/certificate.html", **context)
    pdf = html_to_pdf(html, base_url=request.host_url)
    return _download(pdf, "application/pdf", f"{a.code}-{public_id}.pdf")


@bp.get("/achievements/<code>")
def achievement_page(code: str) -> str:
    session = db_session()
    a = session.scalar(select(Achievement).where(Achievement.code == code))
    if a is None:
        abort(404)
    info = issuance.achievement_info(session, current(), a).document()
    return render_template("credentials/achievement.html", achievement=a, info=info)


@bp.get("/achievements/<code>/image.png")
def achievement_png(code: str) -> Response:
    a = db_session().scalar(select(Achievement).where(Achievement.code == code))
    if a is None:
        abort(404)
    return Response(artwork.render_png(a.name, a.code, a.issuer.name), mimetype="image/png")


@bp.get("/achievements/<code>/image.svg")
def achievement_svg(code: str) -> Response:
    a = db_session().scalar(select(Achievement).where(Achievement.code == code))
    if a is None:
        abort(404)
    return Response(artwork.render_svg(a.name, a.code, a.issuer.name), mimetype="image/svg+xml")


# --- verification -----------------------------------------------------------------------------

#: A credential to verify may be a baked image from any issuer, up to the verifier's own input
#: limit: the app-wide 64 KB body cap would refuse most real badge images before it was read.
VERIFY_BODY_BYTES = MAX_INPUT_BYTES + 64 * 1024

def _read_submission() -> bytes | str | None:
    upload = request.files.get("file")
    if upload and upload.filename:
        return upload.read()
    text = request.form.get("credential", "").strip()
    if text:
        return text
    public_id = request.values.get("badge")
    if public_id:
        return _credential(public_id).document
    return None


@bp.route("/verify", methods=["GET", "POST"])
@body_limit(VERIFY_BODY_BYTES)
def verify_page() -> str:
    report = None
    data = _read_submission() if request.method == "POST" or request.args.get("badge") else None
    if data is not None:
        report = verify(data, DatabaseResolver(db_session(), current()))
    elif request.method == "POST":
        flash("Choose a file, paste a credential or a JWT.", "error")
    return render_template("credentials/verify.html", report=report)


@bp.post("/api/credentials/verify")
@body_limit(VERIFY_BODY_BYTES)
def api_verify() -> Response:
    """Verify a credential (JSON body), a JWT (text body) or a baked image (multipart ``file``
    or raw bytes); returns the step-by-step report."""
    data = _read_submission() if request.files or request.form else request.get_data()
    if not data:
        raise ApiError(400, "empty", "send a credential JSON, a JWT or a baked PNG/SVG")
    report = verify(data, DatabaseResolver(db_session(), current()))
    return Response(json.dumps(report.to_dict()), mimetype="application/json")


# --- status lists, issuers, DIDs --------------------------------------------------------------

@bp.get("/status/<int:list_id>/<purpose>")
def status_list(list_id: int, purpose: str) -> Response:
    session = db_session()
    doc = revocation.published_list(session, current(), list_id, purpose)
    if doc is None:
        abort(404)
    resp = Response(json.dumps(doc), mimetype=JSONLD)
    resp.headers["Cache-Control"] = f"public, max-age={revocation.TTL_MS // 1000}"
    return resp


def _issuer_profile(issuer: Issuer) -> dict[str, Any]:
    session, cfg = db_session(), current()
    key = issuers.current_key(session, issuer)
    doc = issuers.issuer_info(cfg, issuer, key).profile()
    return {"@context": ["https://www.w3.org/ns/credentials/v2",
                         "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"], **doc}


@bp.get("/issuers/<slug>")
def issuer_profile(slug: str) -> Response:
    issuer = db_session().scalar(select(Issuer).where(Issuer.slug == slug))
    if issuer is None:
        abort(404)
    return Response(json.dumps(_issuer_profile(issuer)), mimetype=JSONLD)


def _did_response(issuer: Issuer | None) -> Response:
    if issuer is None or not current().did_web:
        abort(404)
    doc = issuers.did_web_document(db_session(), current(), issuer)
    return Response(json.dumps(doc), mimetype="application/did+json")


@bp.get("/.well-known/did.json")
def did_default() -> Response:
    return _did_response(db_session().scalar(select(Issuer).where(Issuer.is_default.is_(True))))


@bp.get("/issuers/<slug>/did.json")
def did_issuer(slug: str) -> Response:
    return _did_response(db_session().scalar(select(Issuer).where(Issuer.slug == slug)))


# --- the candidate's wallet -------------------------------------------------------------------

@bp.route("/wallet", methods=["GET", "POST"])
@form_page()
@role_required("candidate")
def wallet() -> Any:
    session = db_session()
    if request.method == "POST":
        issuance.set_holder_choice(session, current_user.id,
                                   name_display=request.form.get("name_display", "full"),
                                   did=request.form.get("did"))
        session.commit()
        flash("Saved. New badges will use these choices.", "success")
        return redirect(url_for("credentials.wallet"))
    creds = session.scalars(select(Credential).where(Credential.holder_id == current_user.id)
                            .order_by(Credential.id.desc())).all()
    rows = [(c, revocation.status_of(session, c).label, stacks.is_current(session, c))
            for c in creds]
    return render_template("credentials/wallet.html", rows=rows,
                           progress=stacks.progress(session, current_user.id),
                           choice=issuance.holder_choice(session, current_user.id))


# --- administration ---------------------------------------------------------------------------

def _holders(credentials: list[Credential]) -> dict[int, Person]:
    """Holder id -> the person, so admin tables name people rather than ids."""
    return records().people(db_session(), {c.holder_id for c in credentials})


@bp.get("/admin/credentials")
@role_required(*MANAGERS)
def admin_credentials() -> str:
    session = db_session()
    days = whole_number(request.args.get("days"), "days", low=1, high=MAX_VALIDITY_DAYS,
                        default=60)
    creds = session.scalars(select(Credential).order_by(Credential.id.desc()).limit(200)).all()
    rows = [(c, revocation.status_of(session, c)) for c in creds]
    expiring = issuance.expiring(session, within_days=days)
    # badges owed and not issued yet: queued, or failed with the reason (huey retries them,
    # the sweeper queues them again)
    owed = session.scalars(select(Issuance).where(Issuance.state.in_(("pending", "failed")))
                           .order_by(Issuance.state, Issuance.id).limit(200)).all()
    return render_template("credentials/admin.html", rows=rows, days=days, expiring=expiring,
                           owed=owed, holders=_holders([*creds, *expiring, *owed]))


def _confirm_revoke(cred: Credential, reason: str, *, problem: str | None = None,
                    status: int = 200) -> tuple[str, int]:
    """The page that asks before a revocation, which no one can undo (it works without JS)."""
    holder = _holders([cred]).get(cred.holder_id)
    return render_template("credentials/confirm_revoke.html", credential=cred, holder=holder,
                           reason=reason, problem=problem), status


@bp.post("/admin/credentials/<public_id>/status")
@form_page("credentials.admin_credentials")
@role_required(*MANAGERS)
def admin_status(public_id: str) -> Any:
    session, cfg = db_session(), current()
    cred = _credential(public_id)
    action = request.form.get("action")
    change = {"revoke": revocation.revoke, "suspend": revocation.suspend,
              "restore": revocation.restore}.get(action)
    if change is None:
        abort(400)
    reason = request.form.get("reason", "").strip()
    if action == "revoke" and request.form.get("confirmed") != "yes":
        return _confirm_revoke(cred, reason)
    if action == "revoke" and not reason:
        return _confirm_revoke(cred, reason, status=422, problem=(
            "Give the reason for revoking: it is recorded with the revocation."))
    change(session, cfg, cred, reason=reason, by_user_id=current_user.id)
    session.commit()
    flash(f"Credential {public_id}: {action} recorded.", "success")
    return redirect(url_for("credentials.admin_credentials"))


@bp.post("/admin/credentials/<public_id>/recertify")
@form_page("credentials.admin_credentials")
@role_required(*MANAGERS)
def admin_recertify(public_id: str) -> Any:
    session, cfg = db_session(), current()
    new = issuance.recertify_with_evidence(
        session, cfg, credential=_credential(public_id),
        narrative=request.form.get("narrative", ""), by_user_id=current_user.id,
        evidence_url=request.form.get("evidence_url") or None)
    session.commit()
    flash("Renewed: a new credential was issued and linked to the old one.", "success")
    return redirect(url_for("credentials.badge", public_id=new.public_id))


@bp.route("/admin/achievements", methods=["GET", "POST"])
@form_page()
@role_required(*MANAGERS)
def admin_achievements() -> Any:
    session, cfg = db_session(), current()
    if request.method == "POST":
        f = request.form
        components = [c.strip() for c in f.get("components", "").split(",") if c.strip()]
        issuance.create_achievement(
            session, cfg, code=f.get("code", "").strip(), name=f.get("name", "").strip(),
            description=f.get("description", "").strip(),
            criteria=f.get("criteria", "").strip() or None,
            exam_id=form_id("exam_id"),
            recertification_exam_id=form_id("recertification_exam_id"),
            validity_days=whole_number(f.get("validity_days"), "validity_days", low=1,
                                       high=MAX_VALIDITY_DAYS),
            stack_components=components or None,
            stack_required=whole_number(f.get("stack_required"), "stack_required", low=1,
                                        high=len(components) or 1))
        session.commit()
        flash("Achievement created.", "success")
        return redirect(url_for("credentials.admin_achievements"))
    exams = records().exams(session)
    return render_template(
        "credentials/achievements.html",
        achievements=session.scalars(select(Achievement).order_by(Achievement.code)).all(),
        exams=exams, exams_by_id={e.id: e for e in exams})


@bp.route("/admin/achievements/<code>", methods=["GET", "POST"])
@form_page()
@role_required(*MANAGERS)
def admin_achievement(code: str) -> Any:
    """One achievement: the released passes that hold no badge of it yet (passes released
    before it existed), and the button that issues them."""
    from credentials.backfill import BATCH, issue_missing, missing_badges

    session, cfg = db_session(), current()
    achievement = session.scalar(select(Achievement).where(Achievement.code == code))
    if achievement is None:
        abort(404)
    if request.method == "POST":
        issued = issue_missing(session, cfg, achievement, limit=BATCH)
        session.commit()
        flash(f"Issued {len(issued)} credential(s)." if issued
              else "Nothing to issue: every released pass already holds this badge.",
              "success")
        return redirect(url_for("credentials.admin_achievement", code=code))
    return render_template("credentials/admin_achievement.html", achievement=achievement,
                           passes=missing_badges(session, achievement), batch=BATCH)
