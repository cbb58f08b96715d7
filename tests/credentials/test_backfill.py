"""Badges for passes released before their achievement existed (finding 18): listed with a
count on the achievement's admin page, issued by a button there, never twice; on the real
databases."""
from __future__ import annotations

import re

from sqlalchemy import func, select

from credentials import backfill, issuance
from credentials.models import Credential


def _count(db, achievement_id: int) -> int:
    db.rollback()  # see what the app committed
    n = db.scalar(select(func.count()).select_from(Credential)
                  .where(Credential.achievement_id == achievement_id))
    db.rollback()  # and hold no read snapshot that a later write of ours would have to upgrade
    return n


def _passes_before_the_badge(db, make_user, build_exam, take_exam):
    exam = build_exam(db, code="LATE")
    passed = [make_user("candidate", name=f"Early Passer {n}") for n in range(2)]
    failed = make_user("candidate", name="Early Failer")
    gone = make_user("candidate", name="Closed Account")
    for who in passed + [gone]:
        assert take_exam(db, who, exam).passed
    assert not take_exam(db, failed, exam, correct=False).passed
    gone.active = False
    db.commit()
    return exam, passed


def test_issue_missing_badges_once(db, make_user, build_exam, take_exam, cred_cfg):
    exam, passed = _passes_before_the_badge(db, make_user, build_exam, take_exam)
    badge = issuance.create_achievement(db, cred_cfg, code="LATE-1", name="Late badge",
                                        description="Earned before it existed.",
                                        exam_id=exam.id)
    db.commit()
    missing = backfill.missing_badges(db, badge)
    assert sorted(p.candidate_id for p in missing) == sorted(u.id for u in passed)

    first = backfill.issue_missing(db, cred_cfg, badge, limit=1)
    db.commit()
    assert [c.holder_id for c in first] == [missing[0].candidate_id]
    rest = backfill.issue_missing(db, cred_cfg, badge)
    db.commit()
    assert [c.holder_id for c in rest] == [missing[1].candidate_id]
    assert backfill.missing_badges(db, badge) == []
    assert backfill.issue_missing(db, cred_cfg, badge) == []
    assert _count(db, badge.id) == 2
    # a pass released from now on is badged by the receiver, and is not missing either
    late = make_user("candidate", name="Later Passer")
    take_exam(db, late, exam)
    assert _count(db, badge.id) == 3 and backfill.missing_badges(db, badge) == []


def test_the_admin_page_lists_and_issues(app, client, db, make_user, build_exam, take_exam,
                                         signin, csrf_token):
    from credentials.config import current

    exam, _ = _passes_before_the_badge(db, make_user, build_exam, take_exam)
    with app.app_context():  # the app's instance folder holds the issuer's key
        badge = issuance.create_achievement(db, current(), code="LATE-2", name="Late badge",
                                            description="Earned before it existed.",
                                            exam_id=exam.id)
    db.commit()
    url = "/admin/achievements/LATE-2"
    signin(client, make_user("candidate"))
    assert client.get(url).status_code == 403
    assert client.post(url, data={"csrf_token": csrf_token(client)}).status_code == 403
    assert _count(db, badge.id) == 0
    client.post("/signout", data={"csrf_token": csrf_token(client)})

    signin(client, make_user("admin"))
    listing = client.get("/admin/achievements").get_data(as_text=True)
    assert f'href="{url}"' in listing
    page = client.get(url).get_data(as_text=True)
    assert "Released passes without this badge: 2" in page
    assert "Early Passer 0" in page and "Early Passer 1" in page
    assert "Early Failer" not in page and "Closed Account" not in page
    assert re.search(r"<button[^>]*>Issue 2 badges</button>", page)

    done = client.post(url, data={"csrf_token": csrf_token(client)}, follow_redirects=True)
    assert "Issued 2 credential(s)." in done.get_data(as_text=True)
    assert "Released passes without this badge: 0" in done.get_data(as_text=True)
    assert _count(db, badge.id) == 2
    again = client.post(url, data={"csrf_token": csrf_token(client)}, follow_redirects=True)
    assert "Nothing to issue" in again.get_data(as_text=True)
    assert _count(db, badge.id) == 2
    assert client.get("/admin/achievements/NO-SUCH").status_code == 404
    # without the CSRF token nothing is issued
    assert client.post(url).status_code == 400
