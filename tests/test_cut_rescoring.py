"""Released results change only through a recorded cut rescoring (issue 14, results): the
preview lists every decision that flips and what happens to its badge; applying it supersedes
the results with new rows, issues the badge of a new pass and revokes the badge of a new fail,
each exactly once.

The numbers (Kolen & Brennan, 2014, ch. 6; POLYEQUATE): theta 0.540889 is raw 21 on Form X and
true score 22.09259 on Form Y, so the cut's raw cuts are 21 (X) and 23 (Y). Before it the pass
mark was 60 % (22 of 36): 21 right on X fails then and passes now; 22 right on Y passes then and
fails now.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select

from assessment.delivery import reads
from assessment.delivery.models import CutRescoring, Result, ResultRelease
from assessment.delivery.rescore import (
    CutRescoreRefused,
    apply_cut_rescoring,
    preview_cut_rescoring,
)
from assessment.psych.cuts import adopt, parse_cut
from credentials.config import current
from credentials.issuance import create_achievement
from credentials.models import Credential, StatusEvent
from tests.cut_exam import build_kb_exam
from tests.psychometrics.test_equating import KB_X_THETA
from tests.test_cut_scoring import _sit

THETA_21_ON_X = KB_X_THETA[21 - 7]


@pytest.fixture
def sat(db, make_user):
    return _sat(db, make_user, badge=True)


def _sat(db, make_user, *, badge: bool):
    exam = build_kb_exam(db, pass_percent=60)
    if badge:  # (the issuer key is this process's: the app's pages cannot sign with it)
        create_achievement(db, current(), code="KB-BADGE", name="KB badge",
                           description="Passed.", exam_id=exam.id)
    db.commit()
    taken = {key: _sit(db, make_user, exam, form, n)
             for key, (form, n) in {"x21": ("X", 21), "y22": ("Y", 22), "x30": ("X", 30),
                                    "y10": ("Y", 10)}.items()}
    psych = make_user("psychometrician")
    adopt(db, exam, parse_cut({"theta": f"{THETA_21_ON_X:.6f}", "scoring": "number_correct"}),
          by=psych, reason="Bookmark study")
    db.commit()
    return exam, psych, taken


def _credentials(db, attempt_id):
    ids = list(db.scalars(select(Result.id).where(Result.attempt_id == attempt_id)))
    return list(db.scalars(select(Credential).where(Credential.result_id.in_(ids))))


def test_preview_lists_the_flips_and_their_badges(db, sat):
    exam, _, taken = sat
    assert [taken[k][1].passed for k in ("x21", "y22", "x30", "y10")] == [False, True, True,
                                                                           False]
    assert len(_credentials(db, taken["y22"][0].id)) == 1  # issued when it was released
    preview = preview_cut_rescoring(db, exam)
    assert len(preview.changes) == 4  # every result is judged again (scale scores)
    flips = {c.attempt_id: c for c in preview.flips}
    x21, y22 = flips[taken["x21"][0].id], flips[taken["y22"][0].id]
    assert set(flips) == {taken["x21"][0].id, taken["y22"][0].id}
    assert (x21.direction, x21.new.raw_cut, x21.badge_action) == ("fail -> pass", 21, "issue")
    assert (y22.direction, y22.new.raw_cut, y22.badge_action) == ("pass -> fail", 23, "revoke")
    assert y22.credentials == tuple(c.id for c in _credentials(db, taken["y22"][0].id))
    # nothing is written by a preview
    assert db.scalar(select(CutRescoring.id)) is None
    assert db.scalar(select(Result.id).where(Result.cut_rescoring_id.is_not(None))) is None


def test_applying_issues_and_revokes_exactly_once(db, sat):
    exam, psych, taken = sat
    olds = {k: (t[1].id, t[1].passed, t[1].percent) for k, t in taken.items()}
    preview = preview_cut_rescoring(db, exam)
    row = apply_cut_rescoring(db, exam, by=psych, reason="cut adopted 2026-11",
                              digest=preview.digest)
    db.commit()
    assert row.rescored == 4 and len(row.flips) == 2
    for key, (old_id, passed, percent) in olds.items():
        attempt = taken[key][0]
        new = db.scalar(select(Result).where(Result.attempt_id == attempt.id)
                        .order_by(Result.id.desc()))
        assert new.id != old_id and new.supersedes_id == old_id
        assert new.cut_rescoring_id == row.id and new.scoring_rule == "number_correct"
        old = db.get(Result, old_id)
        assert (old.passed, old.percent, old.scoring_rule) == (passed, percent, "percent")
        assert db.scalar(select(ResultRelease.status).where(
            ResultRelease.result_id == new.id)) == "released"
        assert (new.scale_score >= 350) is new.passed
    x21 = _credentials(db, taken["x21"][0].id)
    assert len(x21) == 1 and x21[0].result_id != olds["x21"][0]  # issued on the new result
    [y22] = _credentials(db, taken["y22"][0].id)
    revokes = list(db.scalars(select(StatusEvent).where(StatusEvent.credential_id == y22.id,
                                                        StatusEvent.action == "revoke")))
    assert len(revokes) == 1 and "rescored under cut" in revokes[0].reason
    assert "cut adopted 2026-11" in revokes[0].reason
    # a badge job still queued for the old pass owes nothing now; a pass that stays a pass
    # keeps what it earned
    assert reads.released_result(db, olds["y22"][0]) is None
    assert reads.released_result(db, olds["x30"][0]) is not None
    # once: a second application has nothing left to do
    with pytest.raises(CutRescoreRefused, match="nothing to rescore"):
        apply_cut_rescoring(db, exam, by=psych, reason="again",
                            digest=preview_cut_rescoring(db, exam).digest)
    db.rollback()
    assert len(_credentials(db, taken["x21"][0].id)) == 1
    assert db.scalar(select(StatusEvent.id).where(StatusEvent.credential_id == y22.id,
                                                  StatusEvent.action == "revoke")
                     .offset(1)) is None


def test_a_stale_preview_or_no_reason_is_refused(db, sat, make_user):
    exam, psych, _ = sat
    preview = preview_cut_rescoring(db, exam)
    with pytest.raises(CutRescoreRefused, match="say why"):
        apply_cut_rescoring(db, exam, by=psych, reason=" ", digest=preview.digest)
    db.rollback()
    _sit(db, make_user, exam, "X", 5)  # finalized after the cut: scored by it, not listed
    _sit_before = preview_cut_rescoring(db, exam).digest
    assert _sit_before == preview.digest
    with pytest.raises(CutRescoreRefused, match="review the preview again"):
        apply_cut_rescoring(db, exam, by=psych, reason="r", digest="0" * 32)
    db.rollback()
    assert db.scalar(select(CutRescoring.id)) is None


def test_rescoring_pages(db, make_user, client, signin, csrf_token):
    exam, psych, _ = _sat(db, make_user, badge=False)
    signin(client, psych)
    page = client.get("/psych/exams/KB/cuts/rescore").get_data(as_text=True)
    assert "4 standing results not scored by this cut; 2 decisions flip." in page
    assert "fail -&gt; pass" in page and "pass -&gt; fail" in page
    assert "no active achievement is linked to this exam" in page
    digest = preview_cut_rescoring(db, exam).digest
    db.rollback()
    refused = client.post("/psych/exams/KB/cuts/rescore",
                          data={"csrf_token": csrf_token(client), "digest": digest, "reason": ""})
    assert refused.status_code == 409 and "say why" in refused.get_data(as_text=True)
    done = client.post("/psych/exams/KB/cuts/rescore", data={
        "csrf_token": csrf_token(client), "digest": digest, "reason": "new standard"})
    assert done.status_code == 303, done.get_data(as_text=True)[-3000:]
    page = client.get("/psych/exams/KB/cuts/rescore").get_data(as_text=True)
    assert "nothing to rescore" in page and "new standard" in page
