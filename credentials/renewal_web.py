"""Views of keeping credentials alive and showing them: the holder's renewals page (CE
progress, recertification window, renew through CE, reminder subscription, CLR export), the
holder's shared pages and the public page itself, the reminder unsubscribe link, bulk
verification, and the admin's renewal settings and program report (CSV).

Registered on the credentials blueprint (``credentials.web.bp``) by ``credentials.web.init_app``.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from credentials import bulk, ce, clr, issuance, recert, reminders, revocation, sharing
from credentials.config import current
from credentials.errors import CredentialError
from credentials.models import Achievement, Credential
from credentials.renewal_models import Reminder
from credentials.resolution import DatabaseResolver
from credentials.web import JSONLD, MANAGERS, bp
from microcred.db import utcnow
from microcred.inputs import form_id, whole_number
from microcred.records import records
from microcred.web import body_limit, db_session, form_page, role_required

# --- the holder --------------------------------------------------------------------------------

def _renewal_rows(session: Any, holder_id: int) -> list[dict[str, Any]]:
    """The holder's newest credential of each achievement that expires or requires CE, with
    its standing, CE cycle and the exam that renews it."""
    now = utcnow()
    cycles = {c.certification.id: c for c in ce.cycles(session, holder_id, now)}
    newest: dict[int, Credential] = {}
    for c in session.scalars(select(Credential).where(Credential.holder_id == holder_id)
                             .order_by(Credential.id.desc())):
        newest.setdefault(c.achievement_id, c)
    rows = []
    for cred in sorted(newest.values(), key=lambda c: c.achievement.name):
        cycle = cycles.get(cred.id)
        if cred.valid_until is None and cycle is None:
            continue
        st = recert.standing(session, cred, now)
        if st.state == "revoked":
            continue
        exam_id = cred.achievement.recertification_exam_id
        exam = records().exam(session, exam_id) if exam_id else None
        rows.append({"credential": cred, "standing": st, "cycle": cycle, "exam": exam,
                     "days_left": cycle.days_left(now) if cycle else None})
    return rows


@bp.route("/wallet/renewals", methods=["GET", "POST"])
@form_page()
@role_required("candidate")
def holder_renewals() -> Any:
    session, cfg = db_session(), current()
    if request.method == "POST":
        action = request.form.get("action")
        if action == "renew":
            cred = session.scalar(select(Credential).where(
                Credential.public_id == request.form.get("credential", ""),
                Credential.holder_id == current_user.id))
            if cred is None:
                abort(404)
            new = recert.renew_through_ce(session, cfg, cred)
            session.commit()
            flash("Renewed through continuing education: your new credential links to the one "
                  "it renews.", "success")
            return redirect(url_for("credentials.badge", public_id=new.public_id))
        if action in ("unsubscribe", "subscribe"):
            reminders.set_opt_out(session, current_user.id, action == "unsubscribe")
            session.commit()
            flash("You will no longer get reminder emails." if action == "unsubscribe"
                  else "You will get reminder emails again.", "success")
            return redirect(url_for("credentials.holder_renewals"))
        abort(400)
    return render_template(
        "credentials/renewals.html", rows=_renewal_rows(session, current_user.id),
        opted_out=reminders.opted_out(session, current_user.id), show=ce.show)


@bp.get("/wallet/clr.json")
@role_required("candidate")
def holder_clr() -> Response:
    """The holder's record as a signed CLR 2.0 ClrCredential (download)."""
    session, cfg = db_session(), current()
    person = records().person(session, current_user.id)
    doc = clr.export(session, cfg, person)
    resp = Response(json.dumps(doc, ensure_ascii=False), mimetype=JSONLD)
    resp.headers["Content-Disposition"] = 'attachment; filename="learner-record-clr.json"'
    return resp


@bp.route("/wallet/share", methods=["GET", "POST"])
@form_page()
@role_required("candidate")
def holder_shares() -> Any:
    session = db_session()
    if request.method == "POST":
        if request.form.get("action") == "end":
            sharing.end(session, current_user.id, form_id("share") or 0)
            session.commit()
            flash("That page is no longer public: its address now shows nothing.", "success")
        else:
            row = sharing.create(session, current_user.id, request.form.getlist("credentials"),
                                 show_ce=request.form.get("show_ce") == "yes")
            session.commit()
            flash("Your page is public at the address below. Anyone with the address can see "
                  "what you chose, until you end it.", "success")
            return redirect(url_for("credentials.holder_shares", _anchor=f"share-{row.id}"))
        return redirect(url_for("credentials.holder_shares"))
    creds = session.scalars(select(Credential).where(Credential.holder_id == current_user.id)
                            .order_by(Credential.id.desc())).all()
    names = {c.public_id: c.achievement.name for c in creds}
    return render_template("credentials/shares.html", credentials=creds, names=names,
                           shares=sharing.active(session, current_user.id),
                           cfg=current())


@bp.get("/holders/<token>")
def holder_public(token: str) -> str:
    session = db_session()
    share = sharing.by_token(session, token)
    if share is None:
        abort(404)
    now = utcnow()
    person = records().person(session, share.user_id)
    name = issuance.shown_name(person.display_name, issuance.holder_choice(session, person.id)) \
        if person else None
    rows = []
    for cred in sharing.shown_credentials(session, share):
        state = revocation.status_of(session, cred).label
        if state == "active":
            state = "expired" if cred.valid_until and cred.valid_until <= now else "valid"
        rows.append((cred, state))
    shown_ids = {c.id for c, _ in rows}
    cycles = [c for c in ce.cycles(session, share.user_id, now)
              if c.certification.id in shown_ids] if share.show_ce else []
    resp = render_template("credentials/holder_public.html", rows=rows, holder_name=name,
                           cycles=cycles, show=ce.show)
    return resp


# --- reminders ---------------------------------------------------------------------------------

@bp.route("/reminders/unsubscribe/<token>", methods=["GET", "POST"])
def unsubscribe(token: str) -> Any:
    """GET asks (mail scanners follow links; they must not unsubscribe anyone); POST
    unsubscribes: the page's button, or a mail client's one-click POST (RFC 8058)."""
    session, cfg = db_session(), current()
    try:
        user_id = reminders.user_of_token(cfg, token)
    except CredentialError as exc:
        return render_template("credentials/unsubscribe.html", problem=exc.message), 400
    if records().person(session, user_id) is None:
        return render_template("credentials/unsubscribe.html",
                               problem="this unsubscribe link is not valid"), 400
    done = False
    if request.method == "POST":
        if not reminders.opted_out(session, user_id):
            reminders.set_opt_out(session, user_id, True)
            session.commit()
        done = True
    return render_template("credentials/unsubscribe.html", problem=None, done=done,
                           token=token)


# --- bulk verification -------------------------------------------------------------------------

@bp.route("/verify/bulk", methods=["GET", "POST"])
@body_limit(bulk.MAX_BODY_BYTES)
def verify_bulk() -> Any:
    checked, problem = None, None
    if request.method == "POST":
        files = [(f.filename or "", f.read()) for f in request.files.getlist("files")
                 if f and f.filename]
        session, cfg = db_session(), current()
        try:
            checked = bulk.verify_many(session, cfg, DatabaseResolver(session, cfg),
                                       files=files, links=bulk.links_of(
                                           request.form.get("links", "")))
        except CredentialError as exc:
            problem = exc.message
    status = 422 if problem else 200
    return render_template("credentials/verify_bulk.html", checked=checked, problem=problem,
                           max_items=bulk.MAX_ITEMS), status


# --- the program -------------------------------------------------------------------------------

def _cell(value: Any) -> str:
    """A CSV cell a spreadsheet shows as text: one that starts like a formula gets a quote."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _days(raw: str, name: str) -> list[int]:
    try:
        return [int(p) for p in raw.replace(",", " ").split()]
    except ValueError:
        raise CredentialError(f"{name}: whole numbers of days, separated by commas",
                              field=name) from None


def _amounts(raw: str, name: str) -> dict[str, int]:
    """``"ethics: 3, practice: 2.5"`` -> {category: hundredths}."""
    out: dict[str, int] = {}
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        if ":" not in part:
            raise CredentialError(f"{name}: write category: amount, e.g. ethics: 3 ({part!r})",
                                  field=name)
        category, amount = (x.strip() for x in part.rsplit(":", 1))
        if category in out:
            raise CredentialError(f"{name}: {category} is given twice", field=name)
        out[category] = ce.parse_amount(amount, f"{name} ({category})")
    return out


@bp.route("/admin/achievements/<code>/renewal", methods=["GET", "POST"])
@form_page()
@role_required(*MANAGERS)
def admin_renewal(code: str) -> Any:
    session = db_session()
    a = session.scalar(select(Achievement).where(Achievement.code == code))
    if a is None:
        abort(404)
    if request.method == "POST":
        f, what = request.form, request.form.get("form")
        if what == "credits":
            ce.set_credits(session, a, _amounts(f.get("credits", ""), "credits"),
                           unit=f.get("unit", "hours"))
        elif what == "requirement":
            fields = {"total": ce.parse_amount(f.get("total"), "total"),
                      "cycle_months": whole_number(f.get("cycle_months"), "cycle_months", low=1,
                                                   high=ce.MAX_CYCLE_MONTHS, default=0),
                      "minimums": _amounts(f.get("minimums", ""), "minimums"),
                      "unit": f.get("unit", "hours")}
            if f.get("action") == "preview":  # who would stand where; nothing is saved
                return _admin_renewal_page(session, a, preview=ce.preview_requirement(
                    session, a, **fields), proposed=f)
            ce.set_requirement(session, a, **fields)
        elif what == "policy":
            recert.set_policy(
                session, a,
                window_days=whole_number(f.get("window_days"), "window_days", low=0,
                                         high=recert.MAX_POLICY_DAYS, default=0),
                grace_days=whole_number(f.get("grace_days"), "grace_days", low=0,
                                        high=recert.MAX_POLICY_DAYS, default=0),
                expiry_reminder_days=_days(f.get("expiry_reminder_days", ""),
                                           "expiry_reminder_days"),
                cycle_reminder_days=_days(f.get("cycle_reminder_days", ""),
                                          "cycle_reminder_days"))
        else:
            abort(400)
        session.commit()
        flash("Saved.", "success")
        return redirect(url_for("credentials.admin_renewal", code=code))
    return _admin_renewal_page(session, a)


def _admin_renewal_page(session: Any, a: Achievement, *, preview: list | None = None,
                        proposed: Any = None) -> str:
    credits = ce.credits_of(session, a.id)
    unit = next((r.unit for r in session.scalars(
        select(ce.CeCredit).where(ce.CeCredit.achievement_id == a.id))), "hours")
    people = (records().people(session, {c.certification.holder_id for c in preview})
              if preview else {})
    return render_template(
        "credentials/admin_renewal.html", achievement=a, credits=credits, credit_unit=unit,
        requirement=ce.requirement(session, a.id), policy=recert.policy(session, a.id),
        show=ce.show, preview=preview, proposed=proposed, people=people, now=utcnow())


def _program_rows(session: Any) -> list[dict[str, Any]]:
    now = utcnow()
    people = {}
    out = []
    for cred in recert.newest_with_expiry(session):
        st = recert.standing(session, cred, now)
        if st.state in ("renewed", "revoked"):
            continue
        cycle = ce.cycle_for(session, cred, now)
        people.setdefault(cred.holder_id, None)
        out.append({"credential": cred, "standing": st, "cycle": cycle})
    persons = records().people(session, set(people))
    for row in out:
        row["holder"] = persons.get(row["credential"].holder_id)
    return sorted(out, key=lambda r: r["standing"].expires)


@bp.get("/admin/renewals")
@role_required(*MANAGERS)
def admin_renewals() -> Any:
    session = db_session()
    now = utcnow()
    start, end = recert.quarter_of(now)
    rows = _program_rows(session)
    lapsed = recert.lapsed(session, start=start, end=end, now=now)
    holders = records().people(session, {s.credential.holder_id for s in lapsed})
    if request.args.get("format") == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["holder", "email", "achievement", "credential", "state", "expires",
                         "ce_cycle_ends", "ce_earned", "ce_required", "ce_missing"])
        for r in rows:
            c, st, cycle, who = r["credential"], r["standing"], r["cycle"], r["holder"]
            writer.writerow([_cell(v) for v in [
                who.display_name if who else "", who.email if who else "", c.achievement.code,
                c.public_id, st.state, st.expires.date().isoformat(),
                cycle.last_day.isoformat() if cycle else "",
                ce.show(cycle.earned) if cycle else "",
                ce.show(cycle.requirement.total) if cycle else "",
                "; ".join(cycle.missing()) if cycle else ""]])
        resp = Response(out.getvalue(), mimetype="text/csv")
        resp.headers["Content-Disposition"] = 'attachment; filename="renewals.csv"'
        return resp
    # reminders that need a person: failed for good, or still trying after an SMTP error, or
    # left "sending" by a worker that died mid-send (never sent twice, so never retried)
    outbox = session.scalars(select(Reminder).where(
        (Reminder.state == "failed") | (Reminder.state == "sending")
        | ((Reminder.state == "pending") & Reminder.error.is_not(None)))
        .order_by(Reminder.due_at).limit(200)).all()
    holders.update(records().people(session, {r.holder_id for r in outbox}))
    return render_template("credentials/admin_renewals.html", rows=rows, lapsed=lapsed,
                           outbox=outbox,
                           lapsed_holders=holders,
                           quarter=(start, (end - dt.timedelta(days=1)).date()), show=ce.show)
