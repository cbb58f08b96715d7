"""Reminder emails through a real SMTP server (aiosmtpd on 127.0.0.1), each sent once even when
the job runs twice, with a working unsubscribe; bulk verification of valid, tampered and revoked
credentials; the public holder page opt-in and out; the holder's and program's pages."""
from __future__ import annotations

import copy
import datetime as dt
import email
import email.policy
import json
import re
import socket
import threading
from io import BytesIO

import pytest
from sqlalchemy import select

from credentials import ce, issuance, recert, reminders, revocation
from credentials.config import current
from credentials.renewal_models import HolderShare, Reminder

UTC = dt.UTC


class Inbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        with self.lock:
            self.messages.append(msg)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server(monkeypatch):
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("MICROCRED_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("MICROCRED_SMTP_PORT", str(port))
    monkeypatch.setenv("MICROCRED_SMTP_FROM", "Microcred Board <board@example.org>")
    try:
        yield inbox
    finally:
        controller.stop()


def _setup(db, cfg, make_user):
    cert = issuance.create_achievement(db, cfg, code="RCERT", name="Radiation Safety",
                                       description="d", validity_days=365)
    ce.set_requirement(db, cert, total=1000, cycle_months=2, minimums={"ethics": 300})
    recert.set_policy(db, cert, window_days=60, grace_days=0, expiry_reminder_days=[30, 7],
                      cycle_reminder_days=[14])
    ada = make_user("candidate", email="ada@example.org", name="Ada Lovelace")
    bob = make_user("candidate", email="bob@example.org", name="Bob Babbage")
    start = dt.datetime(2026, 1, 5, 9, tzinfo=UTC)
    creds = {p.id: issuance.issue(db, cfg, achievement=cert, holder=p, kind="exam", evidence=[],
                                  now=start) for p in (ada, bob)}
    db.commit()
    return cert, ada, bob, creds, start


def test_reminders_are_sent_once_each_over_smtp_and_unsubscribe_works(
        app, db, client, make_user, smtp_server, clock):
    with app.app_context():
        cfg = current()
        _cert, ada, bob, creds, _start = _setup(db, cfg, make_user)
        reminders.SmtpSettings.from_environment()

        # the CE cycle (5 Jan to 4 Mar 2026) is 14 days from its end on 19 Feb: one reminder
        # each, however often the job runs
        clock.set(dt.datetime(2026, 2, 20, 8, tzinfo=UTC))
        for _ in range(2):
            reminders.reminders_job(db)
        assert len(smtp_server.messages) == 2
        assert {m["To"].addresses[0].addr_spec for m in smtp_server.messages} == {
            "ada@example.org", "bob@example.org"}
        msg = next(m for m in smtp_server.messages if "ada@" in m["To"])
        assert msg["Subject"] == ("Your Radiation Safety continuing-education cycle ends on "
                                  "2026-03-04")
        body = msg.get_content()
        assert "Still missing: 3 hours of ethics, 10 hours in all." in body
        unsubscribe_url = re.search(r"Unsubscribe from these reminders: (\S+)", body).group(1)
        assert msg["List-Unsubscribe"] == f"<{unsubscribe_url}>"
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        rows = db.scalars(select(Reminder).order_by(Reminder.id)).all()
        assert [(r.kind, r.point_days, r.state) for r in rows] == [("ce_cycle", 14, "sent")] * 2

        # a second worker that finds the row already claimed sends nothing
        assert reminders._claim(db, rows[0].id) is False

        # Ada unsubscribes through the link: a GET only asks, the POST (the page's button, or
        # a mail client's one-click POST, with no session or CSRF token) unsubscribes
        path = unsubscribe_url.split("://", 1)[1].split("/", 1)[1]
        page = client.get("/" + path)
        assert page.status_code == 200 and b"Unsubscribe" in page.data
        assert not reminders.opted_out(db, ada.id)
        done = client.post("/" + path, data={"List-Unsubscribe": "One-Click"})
        assert done.status_code == 200 and b"You are unsubscribed" in done.data
        db.rollback()  # end the test session's read snapshot
        assert reminders.opted_out(db, ada.id)
        # a token altered by one character, or naming nobody, is refused and changes nothing
        # (not the last character: base64's last one carries padding bits too)
        bad = path[:-5] + ("A" if path[-5] != "A" else "B") + path[-4:]
        assert client.post("/" + bad).status_code == 400
        forged = reminders.unsubscribe_token(cfg, 999_999)
        assert client.post(f"/reminders/unsubscribe/{forged}").status_code == 400

        # 30 days before expiry (5 Jan 2027): Bob is reminded, Ada (unsubscribed) is not
        expiry = creds[ada.id].valid_until
        clock.set(expiry - dt.timedelta(days=29))
        for _ in range(2):
            reminders.reminders_job(db)
        assert len(smtp_server.messages) == 3
        last = smtp_server.messages[-1]
        assert "bob@example.org" in last["To"]
        assert last["Subject"] == "Your Radiation Safety credential expires on 2027-01-05"
        states = {(r.holder_id, r.kind, r.point_days): r.state
                  for r in db.scalars(select(Reminder))}
        assert states[(ada.id, "expiry", 30)] == "skipped"
        assert states[(bob.id, "expiry", 30)] == "sent"

        # the 7-day point, after a pause of the job: one reminder, the nearest point only
        clock.set(expiry - dt.timedelta(days=2))
        reminders.reminders_job(db)
        reminders.reminders_job(db)
        assert len(smtp_server.messages) == 4
        assert db.scalar(select(Reminder).where(Reminder.holder_id == bob.id,
                                                Reminder.point_days == 7)).state == "sent"


def test_an_smtp_failure_is_retried_then_sent_once(app, db, client, make_user, smtp_server,
                                                   signin):
    with app.app_context():
        cfg = current()
        _setup(db, cfg, make_user)
    now = dt.datetime(2026, 2, 20, 8, tzinfo=UTC)
    reminders.plan(db, now)
    down = reminders.SmtpSettings(host="127.0.0.1", port=1, timeout=2)  # nothing listens on 1
    assert reminders.send_due(db, cfg, down, now) == {
        "sent": 0, "skipped": 0, "retry": 2, "failed": 0}
    rows = db.scalars(select(Reminder)).all()
    assert {r.state for r in rows} == {"pending"} and all("ConnectionRefused" in r.error
                                                          for r in rows)
    # the program's page shows them, with the reason
    signin(client, make_user("admin"))
    page = client.get("/admin/renewals").get_data(as_text=True)
    assert "will be tried again" in page and "ConnectionRefused" in page
    db.rollback()
    up = reminders.SmtpSettings.from_environment()
    assert reminders.send_due(db, cfg, up, now)["sent"] == 2
    assert reminders.send_due(db, cfg, up, now)["sent"] == 0
    assert len(smtp_server.messages) == 2


def test_smtp_settings_refuse_nonsense(monkeypatch):
    monkeypatch.setenv("MICROCRED_SMTP_SECURITY", "tls-please")
    with pytest.raises(Exception, match="none, starttls or ssl"):
        reminders.SmtpSettings.from_environment()


# --- bulk verification ------------------------------------------------------------------------

def test_bulk_verification_of_valid_tampered_and_revoked(app, db, client, make_user):
    with app.app_context():
        cfg = current()
        a = issuance.create_achievement(db, cfg, code="BV", name="Bulk Badge", description="d",
                                        validity_days=365)
        people = [make_user("candidate") for _ in range(3)]
        good, bad, gone = (issuance.issue(db, cfg, achievement=a, holder=p, kind="exam",
                                          evidence=[]) for p in people)
        revocation.revoke(db, cfg, gone, reason="cheating found on review", by_user_id=None)
        db.commit()
        tampered = copy.deepcopy(bad.json)
        tampered["credentialSubject"]["achievement"]["name"] = "Bulk Grandmaster"
        base = cfg.base_url
    resp = client.post("/verify/bulk", data={
        "csrf_token": _token(client),
        "files": [(BytesIO(good.document.encode()), "good.json"),
                  (BytesIO(json.dumps(tampered).encode()), "tampered.json")],
        "links": f"{base}/badges/{gone.public_id}\nnot a link",
    }, content_type="multipart/form-data")
    assert resp.status_code == 200, resp.data[:400]
    html = resp.get_data(as_text=True)
    assert "1 of 4 verified" in html
    sections = html.split('class="bulk-source"')[1:]
    assert [s.split("<", 1)[0].lstrip(">") for s in sections] == [
        "good.json", "tampered.json", f"{base}/badges/{gone.public_id}", "not a link"]
    assert 'step step-ok" data-step="proof"' in sections[0] and ">Verified<" in sections[0]
    assert 'step step-fail" data-step="proof"' in sections[1]
    assert 'step step-ok" data-step="proof"' in sections[2]
    assert 'step step-fail" data-step="status"' in sections[2]
    assert "revoked: cheating found on review" in sections[2]
    assert "This is not a link" in sections[3]
    # nothing given, or too many: a clear error, nothing verified
    empty = client.post("/verify/bulk", data={"csrf_token": _token(client), "links": ""})
    assert empty.status_code == 422 and b"Choose one or more files" in empty.data
    many = client.post("/verify/bulk", data={"csrf_token": _token(client),
                                             "links": "\n".join(["https://x.test/b"] * 21)})
    assert many.status_code == 422 and b"At most 20 credentials at once" in many.data


def _token(client) -> str:
    """The CSRF token of the client's session, from a page's meta tag."""
    page = client.get("/verify/bulk").get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


# --- the public holder page -------------------------------------------------------------------

def test_public_holder_page_is_opt_in_shows_only_what_was_chosen_and_can_be_ended(
        app, db, client, make_user, signin):
    with app.app_context():
        cfg = current()
        shown = issuance.create_achievement(db, cfg, code="SHOW", name="Shown Badge",
                                            description="d")
        hidden = issuance.create_achievement(db, cfg, code="HIDE", name="Private Badge",
                                             description="d")
        ada = make_user("candidate", name="Ada Lovelace")
        eve = make_user("candidate", name="Eve")
        mine = issuance.issue(db, cfg, achievement=shown, holder=ada, kind="exam", evidence=[])
        issuance.issue(db, cfg, achievement=hidden, holder=ada, kind="exam", evidence=[])
        theirs = issuance.issue(db, cfg, achievement=shown, holder=eve, kind="exam", evidence=[])
        db.commit()
    assert db.scalar(select(HolderShare.id)) is None  # nothing public by default
    signin(client, ada)
    # another holder's credential cannot be shared
    refused = client.post("/wallet/share", data={"csrf_token": _token(client),
                                                 "credentials": [theirs.public_id]})
    assert refused.status_code == 302 and db.scalar(select(HolderShare.id)) is None
    client.post("/wallet/share", data={"csrf_token": _token(client), "action": "create",
                                       "credentials": [mine.public_id]})
    db.rollback()
    share = db.scalar(select(HolderShare))
    assert len(share.token) >= 40
    anonymous = app.test_client()
    page = anonymous.get(f"/holders/{share.token}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Shown Badge" in text and "Private Badge" not in text and "Ada Lovelace" in text
    assert anonymous.get(f"/holders/{share.token[:-2]}").status_code == 404
    client.post("/wallet/share", data={"csrf_token": _token(client), "action": "end",
                                       "share": share.id})
    assert anonymous.get(f"/holders/{share.token}").status_code == 404


# --- the holder's and the program's pages -----------------------------------------------------

def test_holder_renewals_page_and_program_report(app, db, client, make_user, signin):
    with app.app_context():
        cfg = current()
        _cert, ada, _bob, _creds, start = _setup(db, cfg, make_user)
        eth = issuance.create_achievement(db, cfg, code="ETH1", name="Ethics 1", description="d")
        ce.set_credits(db, eth, {"ethics": 300})
        issuance.issue(db, cfg, achievement=eth, holder=ada, kind="exam", evidence=[],
                       now=start + dt.timedelta(days=3))
        db.commit()
    signin(client, ada)
    page = client.get("/wallet/renewals").get_data(as_text=True)
    assert "Radiation Safety" in page and "2026-01-05 to 2026-03-04" in page
    assert "Still missing: 7 hours in all." in page
    # the pathway page shows the same CE progress, counted by the same module
    pathways_page = client.get("/pathways").get_data(as_text=True)
    ce_section = pathways_page[pathways_page.index('id="ce-heading"'):]
    assert "Radiation Safety" in ce_section and "2026-01-05 to 2026-03-04" in ce_section
    assert "Still missing: 7 hours in all." in ce_section
    assert "<td>3</td><td>at least 3</td>" in ce_section  # ethics: 3 of at least 3 hours
    admin = make_user("admin")
    staff = app.test_client()
    signin(staff, admin)
    report = staff.get("/admin/renewals").get_data(as_text=True)
    assert "Ada Lovelace" in report and "Bob Babbage" in report
    csv_text = staff.get("/admin/renewals?format=csv").get_data(as_text=True)
    assert csv_text.splitlines()[0].startswith("holder,email,achievement")
    assert "Ada Lovelace,ada@example.org,RCERT" in csv_text
    # the admin form names a bad field
    resp = staff.post("/admin/achievements/RCERT/renewal", data={
        "csrf_token": _token(staff), "form": "requirement", "total": "5", "cycle_months": "12",
        "minimums": "ethics 3"}, follow_redirects=True)
    assert "write category: amount" in resp.get_data(as_text=True)
    # a preview of a proposed cycle: who would stand where, counted by the one CE module, and
    # nothing saved (Ada's 3 ethics hours meet 3 in all; Bob has none)
    resp = staff.post("/admin/achievements/RCERT/renewal", data={
        "csrf_token": _token(staff), "form": "requirement", "action": "preview", "total": "3",
        "cycle_months": "2", "minimums": "ethics: 3", "unit": "hours"})
    text = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "(not saved)" in text
    assert "1 of 2 current holder(s) would have completed their cycle." in text
    table = text[text.index('id="ce-preview"'):]
    assert table.index("Bob Babbage") < table.index("Ada Lovelace")  # incomplete ones first
    assert "missing 3 hours of ethics" in table
    with app.app_context():
        assert ce.requirement(db, _cert.id).total == 1000  # unchanged


# --- the learner record -----------------------------------------------------------------------

def test_clr_associations_follow_the_pathway_rules(db, cred_cfg, make_user, build_exam):
    """An exam's prerequisite (a pathway rule on the exam) ``precedes`` what the exam earns; a
    revoked credential stays out of the record; the record verifies in Microcred."""
    from credentials import clr, pathway_rules
    from credentials.pathways import Ref, Rule
    from credentials.resolution import DatabaseResolver
    from credentials.schema import check
    from credentials.verify import verify
    from microcred.records import records

    exam = build_exam(db, code="ADV-EXAM")
    basic = issuance.create_achievement(db, cred_cfg, code="BASIC", name="Basic",
                                        description="d")
    adv = issuance.create_achievement(db, cred_cfg, code="ADV", name="Advanced",
                                      description="d", exam_id=exam.id)
    pathway_rules.save(db, Rule(required=(Ref("credential", "BASIC"),)), exam_id=exam.id)
    holder = make_user("candidate")
    first = issuance.issue(db, cred_cfg, achievement=basic, holder=holder, kind="exam",
                           evidence=[])
    second = issuance.issue(db, cred_cfg, achievement=adv, holder=holder, kind="exam",
                            evidence=[])
    db.commit()
    doc = clr.export(db, cred_cfg, records().person(db, holder.id))
    assert doc["credentialSubject"]["association"] == [{
        "type": "Association", "associationType": "precedes",
        "sourceId": first.json["credentialSubject"]["achievement"]["id"],
        "targetId": second.json["credentialSubject"]["achievement"]["id"]}]
    assert check(doc) and verify(doc, DatabaseResolver(db, cred_cfg)).verified
    revocation.revoke(db, cred_cfg, first, reason="issued in error", by_user_id=None)
    db.commit()
    doc = clr.export(db, cred_cfg, records().person(db, holder.id))
    assert [c["id"] for c in doc["credentialSubject"]["verifiableCredential"]] == [
        second.json["id"]]
    assert "association" not in doc["credentialSubject"]
    nobody = make_user("candidate")
    with pytest.raises(Exception, match="nothing to export"):
        clr.export(db, cred_cfg, records().person(db, nobody.id))
