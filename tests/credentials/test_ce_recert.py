"""Continuing-education cycles and recertification on the real database (SQLite and
PostgreSQL): cycle arithmetic at category and date boundaries (UTC), renewal through CE and
by the recertification exam before and after expiry, and the lapsed list."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from credentials import ce, issuance, recert, revocation
from credentials.models import Credential
from credentials.resolution import DatabaseResolver
from credentials.verify import verify

UTC = dt.UTC


def at(*args: int, tz: dt.tzinfo = UTC) -> dt.datetime:
    return dt.datetime(*args, tzinfo=tz)


def _achievement(db, cfg, code, **kw):
    return issuance.create_achievement(db, cfg, code=code, name=f"Badge {code}",
                                       description="Can do the thing.", **kw)


def _give(db, cfg, achievement, holder, when, **kw):
    return issuance.issue(db, cfg, achievement=achievement, holder=holder, kind="exam",
                          evidence=[], now=when, **kw)


@pytest.fixture
def program(db, cred_cfg):
    """A certification requiring 20 hours in 24 months, at least 3 in each of ethics, practice
    and safety; three CE micro-credentials carrying 3 hours each in one category, and a big one
    carrying 11 hours of practice."""
    cert = _achievement(db, cred_cfg, "CERT", validity_days=730)
    ce.set_requirement(db, cert, total=ce.parse_amount("20", "total"), cycle_months=24,
                       minimums={"ethics": 300, "practice": 300, "safety": 300})
    carriers = {}
    for code, category, amount in (("ETH", "ethics", "3"), ("PRA", "practice", "3"),
                                   ("SAF", "safety", "2.99"), ("BIG", "practice", "11")):
        a = _achievement(db, cred_cfg, code)
        ce.set_credits(db, a, {category: ce.parse_amount(amount, "amount")})
        carriers[code] = a
    db.commit()
    return cert, carriers


def test_amounts_and_month_arithmetic():
    assert ce.parse_amount("2.5", "x") == 250 and ce.show(250) == "2.5" and ce.show(300) == "3"
    for bad in ("0", "-1", "1.005", "abc", "nan", "20000"):
        with pytest.raises(ce.CeError):
            ce.parse_amount(bad, "amount")
    # a day the target month lacks is its last day (28 Feb 2026; 29 Feb in the leap year 2028)
    assert ce.add_months(dt.date(2026, 1, 31), 1) == dt.date(2026, 2, 28)
    assert ce.add_months(dt.date(2027, 11, 30), 3) == dt.date(2028, 2, 29)
    assert ce.add_months(dt.date(2026, 12, 15), 1) == dt.date(2027, 1, 15)
    # 24 months from 31 Jan 2026 (15:00 UTC) runs through 30 Jan 2028 inclusive
    assert ce.cycle_dates(at(2026, 1, 31, 15), 24) == (dt.date(2026, 1, 31), dt.date(2028, 1, 30))
    # a start late in the evening in UTC-5 is the next day in UTC
    assert ce.cycle_dates(at(2026, 1, 30, 20, tz=dt.timezone(dt.timedelta(hours=-5))), 1) == (
        dt.date(2026, 1, 31), dt.date(2026, 2, 27))


def test_cycle_counts_the_last_day_and_not_the_day_after(db, cred_cfg, make_user, program):
    cert, c = program
    ada = make_user("candidate")
    held = _give(db, cred_cfg, cert, ada, at(2026, 1, 31, 15))
    # before the first day: no; the first day at midnight UTC: yes (the day counts whole)
    _give(db, cred_cfg, c["ETH"], ada, at(2026, 1, 30, 23, 59, 59))
    _give(db, cred_cfg, c["ETH"], ada, at(2026, 1, 31, 0, 0, 0))
    # the last day's last second (UTC): yes; given as 00:30 in UTC+1, it is still the 30th
    _give(db, cred_cfg, c["PRA"], ada, at(2028, 1, 30, 23, 59, 59))
    _give(db, cred_cfg, c["SAF"], ada, at(2028, 1, 31, 0, 30, tz=dt.timezone(dt.timedelta(hours=1))))
    # the day after: no
    _give(db, cred_cfg, c["BIG"], ada, at(2028, 1, 31, 0, 0, 0))
    db.commit()

    [cycle] = ce.cycles(db, ada.id)
    assert cycle.certification.id == held.id
    assert (cycle.first_day, cycle.last_day) == (dt.date(2026, 1, 31), dt.date(2028, 1, 30))
    assert cycle.ends_at == at(2028, 1, 31)
    by = {p.category: (p.earned, p.minimum, p.missing) for p in cycle.categories}
    # ethics 3 of 3; practice 3 of 3; safety 2.99 of 3: one hundredth short
    assert by == {"ethics": (300, 300, 0), "practice": (300, 300, 0), "safety": (299, 300, 1)}
    assert cycle.earned == 899 and cycle.missing_total == 2000 - 899
    assert not cycle.complete
    assert cycle.missing() == ["0.01 hours of safety", "11.01 hours in all"]
    assert cycle.days_left(at(2028, 1, 30, 12)) == 0


def test_revoked_credit_does_not_count_and_a_full_cycle_completes(db, cred_cfg, make_user,
                                                                  program):
    cert, c = program
    bob = make_user("candidate")
    _give(db, cred_cfg, cert, bob, at(2026, 3, 1))
    for code in ("ETH", "PRA", "SAF", "SAF", "BIG"):
        _give(db, cred_cfg, c[code], bob, at(2026, 6, 1))
    extra = _give(db, cred_cfg, c["ETH"], bob, at(2026, 7, 1))
    db.commit()
    [cycle] = ce.cycles(db, bob.id)
    # 3 + 3 + 2.99 + 2.99 + 11 + 3 = 25.98 >= 20, every category at least 3
    assert cycle.earned == 2598 and cycle.complete and cycle.missing() == []
    revocation.revoke(db, cred_cfg, extra, reason="awarded in error", by_user_id=None)
    db.commit()
    [cycle] = ce.cycles(db, bob.id)
    assert cycle.earned == 2298 and cycle.complete


def test_configuration_errors_name_the_field(db, cred_cfg, program):
    cert, c = program
    with pytest.raises(ce.CeError, match="more than the total"):
        ce.set_requirement(db, cert, total=500, cycle_months=12, minimums={"a": 300, "b": 300})
    with pytest.raises(ce.CeError, match="cycle_months"):
        ce.set_requirement(db, cert, total=500, cycle_months=0, minimums={})
    with pytest.raises(ce.CeError, match="requires CE"):
        ce.set_credits(db, cert, {"ethics": 100})
    with pytest.raises(ce.CeError, match="category"):
        ce.set_credits(db, c["ETH"], {"": 100})


def test_renewal_through_ce_before_and_after_expiry_and_the_lapsed_list(
        db, cred_cfg, make_user, program):
    cert, c = program
    recert.set_policy(db, cert, window_days=90, grace_days=30, expiry_reminder_days=[30],
                      cycle_reminder_days=[30])
    early, late, gone = (make_user("candidate") for _ in range(3))
    start = at(2026, 1, 10, 9)
    expires = start + dt.timedelta(days=730)
    creds = {}
    for person in (early, late, gone):
        creds[person.id] = _give(db, cred_cfg, cert, person, start)
        for code in ("ETH", "PRA", "BIG", "SAF", "SAF"):
            _give(db, cred_cfg, c[code], person, at(2026, 5, 1))
    db.commit()
    assert creds[early.id].valid_until == expires

    before_window = expires - dt.timedelta(days=91)
    assert recert.standing(db, creds[early.id], before_window).state == "current"
    with pytest.raises(recert.RecertificationError, match="window opens"):
        recert.renew_through_ce(db, cred_cfg, creds[early.id], now=before_window)

    # before expiry, in the window
    in_window = expires - dt.timedelta(days=10)
    new_early = recert.renew_through_ce(db, cred_cfg, creds[early.id], now=in_window)
    db.commit()
    assert new_early.supersedes_id == creds[early.id].id and new_early.kind == "recertification"
    evidence = new_early.json["evidence"]
    assert evidence[-1]["id"] == creds[early.id].json["id"]
    assert sum(e.get("genre") == "Continuing education" for e in evidence) == 5
    assert verify(new_early.document, DatabaseResolver(db, cred_cfg), now=in_window).verified
    assert recert.standing(db, creds[early.id], in_window).state == "renewed"
    with pytest.raises(recert.RecertificationError, match="already renewed"):
        recert.renew_through_ce(db, cred_cfg, creds[early.id], now=in_window)

    # after expiry, within the grace: the old one no longer verifies, renewal still allowed
    in_grace = expires + dt.timedelta(days=5)
    assert verify(creds[late.id].document, DatabaseResolver(db, cred_cfg),
                  now=in_grace).status == "expired"
    assert recert.standing(db, creds[late.id], in_grace).state == "grace"
    new_late = recert.renew_through_ce(db, cred_cfg, creds[late.id], now=in_grace)
    db.commit()
    assert new_late.supersedes_id == creds[late.id].id
    assert new_late.valid_until == in_grace.replace(microsecond=0) + dt.timedelta(days=730)

    # past the grace: lapsed, refused, and listed in its quarter
    after = expires + dt.timedelta(days=31)
    with pytest.raises(recert.RecertificationError, match="lapsed"):
        recert.renew_through_ce(db, cred_cfg, creds[gone.id], now=after)
    lapsed = recert.lapsed(db, now=after)
    assert [s.credential.holder_id for s in lapsed] == [gone.id]
    q_start, q_end = recert.quarter_of(lapsed[0].grace_ends)
    assert [s.credential.id for s in recert.lapsed(db, start=q_start, end=q_end, now=after)] == [
        creds[gone.id].id]
    assert recert.lapsed(db, start=q_end, now=after) == []


def test_renewal_through_ce_is_refused_while_the_cycle_misses_credit(db, cred_cfg, make_user,
                                                                     program):
    cert, c = program
    eve = make_user("candidate")
    held = _give(db, cred_cfg, cert, eve, at(2026, 1, 10))
    _give(db, cred_cfg, c["BIG"], eve, at(2026, 2, 1))
    db.commit()
    with pytest.raises(recert.RecertificationError, match="3 hours of ethics"):
        recert.renew_through_ce(db, cred_cfg, held, now=held.valid_until - dt.timedelta(days=1))


def test_recertification_exam_renews_after_expiry(db, cred_cfg, make_user, build_exam,
                                                  take_exam, clock):
    """The recertification exam, passed after the credential expired (within the grace),
    renews it: the new credential supersedes the old and names it as evidence."""
    exam, recert_exam = build_exam(db, code="RX1"), build_exam(db, code="RX1R")
    a = issuance.create_achievement(db, cred_cfg, code="RX", name="RX", description="d",
                                    exam_id=exam.id, recertification_exam_id=recert_exam.id,
                                    validity_days=30)
    recert.set_policy(db, a, window_days=10, grace_days=60, expiry_reminder_days=[],
                      cycle_reminder_days=[])
    db.commit()
    cand = make_user("candidate")
    take_exam(db, cand, exam)
    old = db.scalar(select(Credential))
    clock.set(old.valid_until + dt.timedelta(days=3))
    assert recert.standing(db, old).state == "grace"
    take_exam(db, cand, recert_exam)
    new = db.scalar(select(Credential).where(Credential.id != old.id))
    assert new.supersedes_id == old.id and new.kind == "recertification"
    assert any(e.get("id") == old.json["id"] for e in new.json["evidence"])
    assert recert.standing(db, old).state == "renewed"
    assert recert.lapsed(db, now=old.valid_until + dt.timedelta(days=40)) == []
