"""Finalized results written straight into the database, and read back independently of the
app, for tests of what is computed from them (the psychometrician's workspace)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from assessment.delivery.models import Attempt, ItemScore, Result, ResultRelease
from assessment.users import User
from itembank.models import Form, Item, ItemVersion
from microcred.db import utcnow


def sit(db, exam, scores, *, invalidate=(), who: str = "sitter"):
    """Write finalized attempts of ``exam``'s first form with the given 0/1 ``scores``
    (persons x form items); results in ``invalidate`` get an 'invalidated' release. The sitters
    are inactive candidates ``{who}{i}@example.org``. Returns the form's item versions."""
    form = exam.forms[0].form
    versions = [fi.item_version for fi in form.items]
    now = utcnow()
    for i, person_scores in enumerate(scores):
        user = User(email=f"{who}{i}@example.org", display_name=f"Sitter {i}", role="candidate",
                    password_hash="!", active=False)
        db.add(user)
        db.flush()
        start = now - dt.timedelta(hours=2)
        attempt = Attempt(candidate_id=user.id, exam_id=exam.id, form_id=form.id, status="finalized",
                          seed=i, item_order=[v.id for v in versions], option_orders={},
                          started_at=start, time_limit_seconds=600, agreement_accepted_at=start,
                          finalized_at=start + dt.timedelta(minutes=5), finalize_reason="submitted")
        db.add(attempt)
        db.flush()
        raw = float(sum(person_scores))
        percent = round(100 * raw / len(versions), 2)
        result = Result(attempt_id=attempt.id, raw_score=raw, max_score=float(len(versions)),
                        percent=percent, pass_percent=exam.pass_percent,
                        passed=percent >= exam.pass_percent, answered=len(versions),
                        n_items=len(versions), domain_scores=[], theta=None, theta_se=None)
        db.add(result)
        db.flush()
        for pos, (v, s) in enumerate(zip(versions, person_scores)):
            db.add(ItemScore(result_id=result.id, item_version_id=v.id, position=pos,
                             domain_code=v.domain_code, response=None, score=float(s), max_score=1.0))
        db.add(ResultRelease(result_id=result.id,
                             status="invalidated" if i in invalidate else "released"))
    db.commit()
    return versions


def scored_items(db, exam) -> list:
    """Every item score of ``exam``'s finalized attempts, read here without the app: rows of
    ``result_id, code`` (the item's), ``score, max_score, response, form`` (the form's code),
    ``item_type``."""
    return db.execute(
        select(ItemScore.result_id, Item.code, ItemScore.score, ItemScore.max_score,
               ItemScore.response, Form.code.label("form"), ItemVersion.item_type)
        .join(Result, Result.id == ItemScore.result_id)
        .join(Attempt, Attempt.id == Result.attempt_id)
        .join(Form, Form.id == Attempt.form_id)
        .join(ItemVersion, ItemVersion.id == ItemScore.item_version_id)
        .join(Item, Item.id == ItemVersion.item_id)
        .where(Attempt.exam_id == exam.id, Attempt.status == "finalized")
    ).all()
