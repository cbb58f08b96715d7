"""Where proctoring meets the exam runner: the one module, beside the views, that imports
``assessment``; of delivery, only what it publishes: its read API
(``assessment.delivery.reads``) and its clock controls (``assessment.delivery.control``),
never its rows or services.

- :func:`identity_gate` is a runner *start gate*: a proctored exam starts only once the session
  is admitted; until then the candidate is sent to the identity check.
- :func:`runner_extras` is a runner *state contributor*: the heartbeat carries the session's
  state, its policy for the page (full screen, snapshot interval) and the proctor's messages.
- The receivers of ``attempt_started`` and ``result_finalized`` tie the session to the attempt
  and hold the result for review; the receiver of ``attempt_proctoring`` answers with
  :func:`proctoring.sessions.attempt_summary` (what the record shows, for a badge's evidence).
  :func:`connect_receivers` connects them; every process calls it through
  ``microcred.packages.connect_receivers``.
- :class:`DeliveryControl` (delivery's) carries the proctor's pause, resume, extend and
  terminate to delivery's clock.
- :func:`live_sessions` assembles the console's rows in a fixed number of queries.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any, NamedTuple

from sqlalchemy import Row, case, func, select
from sqlalchemy.orm import Session

from assessment.delivery import reads as delivery_reads
from assessment.delivery.control import DeliveryControl
from assessment.exams import Exam
from assessment.retakes import retake_policy_of, wait_refusal
from assessment.users import User
from microcred import signals
from microcred.db import utcnow
from microcred.environment import heartbeat_seconds
from microcred.errors import Conflict
from microcred.web import HeartbeatPart, app_database
from microcred.words import plural
from proctoring import hook_outbox, liveness
from proctoring.actions import allowed, messages
from proctoring.assignments import exam_ids_for, exam_ids_query
from proctoring.flags import (
    SEVERITY_ORDER,
    History,
    Span,
    camera_silences,
    missing_snapshot_limit_s,
    points,
    risk_score,
    running_spans,
    silence_flag,
    worst,
)
from proctoring.models import (
    FaceCheck,
    Flag,
    IdentityCheck,
    ProctorMessage,
    ProctorSession,
    Snapshot,
    Transition,
)
from proctoring.policy import PolicyError, ProctoringPolicy, parse_policy, policy_of_exam
from proctoring.review import on_finalized
from proctoring.sessions import (
    attempt_summary,
    create_session,
    info,
    open_session,
    session_for_attempt,
    transition,
)
from proctoring.states import ACTIVE, LABELS, RUNNING, State
from proctoring.verifiers import finding

#: The proctor's clock controls (``proctoring.actions.AttemptControl``): delivery's.
CONTROL = DeliveryControl()
def connection_lost_after_s() -> float:
    """A page not heard from for this long shows as disconnected on the console: two and a half
    heartbeats (``MICROCRED_HEARTBEAT_SECONDS``, 30 s by default: 75 s; their sign of life is
    written every few seconds, proctoring.liveness)."""
    return 2.5 * heartbeat_seconds()
#: Finished sessions stay on the console this long, so the proctor sees them end.
RECENTLY_ENDED_S = 15 * 60


def exam_policy(exam: Exam) -> ProctoringPolicy | None:
    try:
        return policy_of_exam(exam.policy)
    except PolicyError as exc:
        raise Conflict(f"exam {exam.code} has a malformed proctoring policy: {exc}") from None


# ---------------------------------------------------------------- the start gate


def identity_gate(session: Session, user: User, exam: Exam, *, url_for: Any = None) -> str | None:
    """None when the candidate may start (not proctored, or admitted); else where to go."""
    pol = exam_policy(exam)
    if pol is None:
        return None
    ps = open_session(session, user.id, exam.id)
    if ps is None:
        _refuse_while_waiting(session, user, exam)
        ps = create_session(session, candidate_id=user.id, exam_id=exam.id, policy=pol)
    if ps.state == State.ADMITTED:
        return None
    if url_for is None:
        from flask import url_for
    return url_for("proctoring.identity_page", session_id=ps.id)


def _refuse_while_waiting(session: Session, user: User, exam: Exam) -> None:
    """A session terminated before its attempt started (e.g. at the identity check) counts as a
    terminated attempt for the exam's retake wait; delivery enforces the wait after attempts."""
    rules = retake_policy_of(exam.policy)
    if not rules.wait_hours:
        return
    ended = session.scalar(select(ProctorSession.state_changed_at).where(
        ProctorSession.candidate_id == user.id, ProctorSession.exam_id == exam.id,
        ProctorSession.state == State.TERMINATED.value, ProctorSession.attempt_id.is_(None))
        .order_by(ProctorSession.id.desc()).limit(1))
    if ended is not None and utcnow() < rules.retake_from(ended):
        retake_from = rules.retake_from(ended)
        raise Conflict(wait_refusal(retake_from), retake_from=retake_from.isoformat())


# ---------------------------------------------------------------- signals from delivery


def connect_receivers() -> None:
    """Proctoring's receivers (called by ``microcred.packages.connect_receivers``)."""
    signals.attempt_started.connect(_on_attempt_started, weak=False)
    signals.result_finalized.connect(_on_result_finalized, weak=False)
    signals.attempt_proctoring.connect(_on_attempt_proctoring, weak=False)


def _on_attempt_started(sender: Any, *, session: Session, attempt_id: int, candidate_id: int,
                        exam_id: int) -> None:
    exam = session.get(Exam, exam_id)
    pol = exam_policy(exam)
    if pol is None:
        return
    ps = open_session(session, candidate_id, exam_id)
    if ps is None and not pol.identity:
        ps = create_session(session, candidate_id=candidate_id, exam_id=exam_id, policy=pol)
    if ps is None or ps.state != State.ADMITTED:
        raise Conflict("this exam is proctored: the identity check must admit you before it starts",
                       state=ps.state if ps else None)
    ps.attempt_id = attempt_id
    session.flush()
    transition(session, ps, State.IN_PROGRESS, by=None, reason="the attempt started",
               data={"attempt_id": attempt_id})
    # after the start commits (hook_outbox): a slow or failing plugin neither holds the
    # start's locks nor undoes it
    hook_outbox.announce(session, "microcred_session_started", info(ps))


def _on_result_finalized(sender: Any, *, session: Session, attempt_id: int, exam_id: int,
                         result_id: int, reason: str) -> str | None:
    ps = session_for_attempt(session, attempt_id, lock=True)
    if ps is None:
        exam = session.get(Exam, exam_id)
        if exam is not None and exam_policy(exam) is not None and reason != "terminated":
            return "the exam is proctored but this attempt has no proctoring session"
        return None
    return on_finalized(session, ps, reason=reason)


def _on_attempt_proctoring(sender: Any, *, session: Session, attempt_id: int,
                           **_: Any) -> dict[str, Any] | None:
    return attempt_summary(session, attempt_id)


# ---------------------------------------------------------------- the candidate's runner


def runner_extras(session: Session, attempt_id: int) -> dict[str, Any]:
    """The runner state's ``extras["proctoring"]`` for the runner script."""
    ps = session_for_attempt(session, attempt_id)
    if ps is None:
        return {}
    return _runner_extras(session, ps.id, ps.state, ps.policy,
                          messages(session, ps), _termination_reason(session, ps))


def _runner_extras(session: Session, session_id: int, state: str, raw_policy: dict[str, Any],
                   sent: list[Any], termination_reason: str | None) -> dict[str, Any]:
    from flask import url_for

    pol = _policy(raw_policy)
    return {"proctoring": {
        "session_id": session_id,
        "state": state,
        "status": LABELS[State(state)],
        "fullscreen": pol.fullscreen,
        "snapshot_interval_s": pol.snapshot_interval_s,
        "events_url": url_for("proctoring.api_events", session_id=session_id),
        "snapshots_url": url_for("proctoring.api_snapshots", session_id=session_id),
        "messages": [{"id": m.id, "text": m.text, "at": m.at.isoformat()} for m in sent],
        # the proctor's reason, for the candidate, once the session is terminated (else None)
        "termination_reason": termination_reason,
    }}


_POLICIES: dict[str, ProctoringPolicy] = {}


def _policy(raw: dict[str, Any]) -> ProctoringPolicy:
    """A session's stored policy, parsed (kept per process: a handful of distinct policies)."""
    key = json.dumps(raw, sort_keys=True)
    parsed = _POLICIES.get(key)
    if parsed is None:
        parsed = parse_policy(raw)
        assert parsed is not None, "a proctored session always has a policy"
        if len(_POLICIES) < 1000:
            _POLICIES[key] = parsed
    return parsed


def heartbeat_part() -> HeartbeatPart:
    """The heartbeat's proctoring extras, read in the heartbeat's own statement: the session
    (joined by its attempt) and whether the proctor has sent messages; the messages (a second
    query) only when there are some, the termination reason only once terminated. The
    heartbeat is the page's sign of life, noted for the console's connection column
    (:mod:`proctoring.liveness`): the runner sends no separate ping."""
    newest_message = (select(func.max(ProctorMessage.id))
                      .where(ProctorMessage.session_id == ProctorSession.id)
                      .correlate(ProctorSession).scalar_subquery())

    def join(attempt_id: Any) -> tuple[Any, Any]:
        return ProctorSession, ProctorSession.attempt_id == attempt_id

    def columns() -> list[Any]:
        return [ProctorSession.id.label("ps_id"), ProctorSession.state.label("ps_state"),
                ProctorSession.policy.label("ps_policy"),
                newest_message.label("ps_newest_message")]

    def extras(session: Session, row: Row, now: dt.datetime) -> dict[str, Any]:
        if row.ps_id is None:
            return {}
        liveness.seen(app_database(), row.ps_id, now)
        sent = [] if row.ps_newest_message is None else list(reversed(session.scalars(
            select(ProctorMessage).where(ProctorMessage.session_id == row.ps_id)
            .order_by(ProctorMessage.id.desc()).limit(20)).all()))
        reason = None
        if row.ps_state == State.TERMINATED:
            reason = session.scalar(select(Transition.reason).where(
                Transition.session_id == row.ps_id,
                Transition.to_state == State.TERMINATED.value)
                .order_by(Transition.id.desc()).limit(1))
        return _runner_extras(session, row.ps_id, row.ps_state, row.ps_policy, sent, reason)

    return HeartbeatPart(join=join, columns=columns, extras=extras)


def _termination_reason(session: Session, ps: ProctorSession) -> str | None:
    if ps.state != State.TERMINATED:
        return None
    return session.scalar(select(Transition.reason).where(
        Transition.session_id == ps.id, Transition.to_state == State.TERMINATED.value)
        .order_by(Transition.id.desc()).limit(1))


def time_extensions(session: Session, ps: ProctorSession) -> list[dict[str, Any]]:
    """The attempt's time extensions as session timeline items (delivery's record, read
    through its read API), each with the deadline it set."""
    if ps.attempt_id is None:
        return []
    items = []
    for ev in delivery_reads.extensions(session, ps.attempt_id):
        deadline = ev.deadline
        minutes = ev.seconds / 60
        amount = (plural(int(minutes), "minute") if minutes == int(minutes)
                  else plural(ev.seconds, "second"))
        items.append({"at": ev.at, "kind": "time", "by": ev.by_user_id,
                      "text": f"time extended by {amount}, new deadline "
                              f"{deadline.strftime('%H:%M:%S')} UTC"
                              + (f": {ev.reason}" if ev.reason else "")})
    return items


# ---------------------------------------------------------------- the console's rows
#
# The console polls every 3 s with up to a few hundred sessions on screen, so this reads plain
# columns and lets the database aggregate (flags, answers): one row per session and table,
# never one per flag or save, and no ORM objects (thousands of them per poll made Python's
# garbage collector pause polls for 100+ ms at 200 sessions; see docs/proctoring.md).

_SESSION_COLS = (ProctorSession.id, ProctorSession.candidate_id, ProctorSession.exam_id,
                 ProctorSession.attempt_id, ProctorSession.state, ProctorSession.risk_score,
                 ProctorSession.last_seen_at, ProctorSession.policy,
                 ProctorSession.state_changed_at)
#: flags.severity_rank in SQL, so the database finds each session's worst flag.
_SEVERITY_RANK = case(*[(Flag.severity == s, i) for i, s in enumerate(SEVERITY_ORDER)], else_=-1)


def _on_console(now: dt.datetime) -> Any:
    """Which sessions the console shows: the live ones, and those that ended in the last
    :data:`RECENTLY_ENDED_S` seconds."""
    recent = now - dt.timedelta(seconds=RECENTLY_ENDED_S)
    return (ProctorSession.state.in_([s.value for s in ACTIVE])
            | (ProctorSession.state_changed_at >= recent))


def _visible_sessions(session: Session, viewer: User, now: dt.datetime,
                      only: list[int] | None = None) -> list[Row]:
    exam_ids = exam_ids_for(session, viewer)
    if exam_ids is not None and not exam_ids:
        return []
    q = select(*_SESSION_COLS).where(_on_console(now))
    if exam_ids is not None:
        q = q.where(ProctorSession.exam_id.in_(exam_ids))
    if only is not None:
        q = q.where(ProctorSession.id.in_(only))
    return list(session.execute(q.order_by(ProctorSession.id)))


def console_marks(session: Session, viewer: User, now: dt.datetime | None = None) -> dict[int, bytes]:
    """Per session the viewer's console shows, its *mark* (``proctoring.console_feed``): a
    32-bit digest of what moves whenever something its row shows is written. One statement,
    the viewer's exams and the attempts joined in, reading only columns of each candidate's
    own rows:

    - the session's ``state`` and ``state_changed_at`` (actions, outcome, finished), its
      ``risk_score``, and ``console_version``, which every new flag, snapshot, identity check
      and transition moves (``proctoring.models._count_console_changes``);
    - its connection: "not yet", "online", or since when it is lost (heartbeats move
      ``last_seen_at`` every few seconds; only a change of what the column says counts, and
      online turning to lost, which the clock alone does, is seen here at each poll);
    - its attempt's marks (``assessment.delivery.reads.progress_marks``: saves, moves, the
      stored clock, the end).

    A session's name, email and exam code are not in it (changed on a live exam, they show at
    the next full snapshot: a new page, or a cursor older than ``console_feed.MAX_AGE_S``)."""
    now = now or utcnow()
    attempts, on_attempt, attempt_cols = delivery_reads.progress_marks(ProctorSession.attempt_id)
    q = (select(ProctorSession.id, ProctorSession.state, ProctorSession.state_changed_at,
                ProctorSession.risk_score, ProctorSession.console_version,
                ProctorSession.attempt_id, ProctorSession.last_seen_at, *attempt_cols)
         .outerjoin(attempts, on_attempt).where(_on_console(now)))
    scope = exam_ids_query(viewer)
    if scope is not None:
        q = q.where(ProctorSession.exam_id.in_(scope))
    lost_after = connection_lost_after_s()
    out = {}
    for r in session.execute(q):
        seen = r.last_seen_at
        connection = ("not yet" if seen is None else
                      "online" if (now - seen).total_seconds() <= lost_after else seen)
        key = (r.state, r.state_changed_at, r.risk_score, r.console_version, r.attempt_id,
               connection, r.a_last_seq, r.a_position, r.a_deadline_at, r.a_paused_since,
               r.a_extension_seconds, r.a_status)
        out[r.id] = hashlib.blake2b(repr(key).encode(), digest_size=4).digest()
    return out


def _flag_summaries(session: Session, ids: list[int]) -> dict[int, dict[str, Any]]:
    """Per session: how many flags, the worst severity, the newest flag (two queries)."""
    agg = session.execute(
        select(Flag.session_id, func.count(), func.max(_SEVERITY_RANK), func.max(Flag.id))
        .where(Flag.session_id.in_(ids)).group_by(Flag.session_id)).all()
    if not agg:
        return {}
    latest = dict(session.execute(select(Flag.id, Flag.message)
                                  .where(Flag.id.in_([r[3] for r in agg]))).all())
    return {sid: {"count": n, "worst": SEVERITY_ORDER[rank] if rank >= 0 else None,
                  "latest": latest.get(last), "latest_id": last}
            for sid, n, rank, last in agg}


def _camera(ps: Row, pol: ProctoringPolicy | None, last: Row | None,
            spans: list[Span], now: dt.datetime) -> dict[str, Any] | None:
    """How long the camera of a running session has been silent, in exam time, and the flag
    that silence raises once past the limit (computed, nothing written: the page's pings and
    the sweeper store it, ``events.record_camera_silences``)."""
    if pol is None or not pol.snapshot_interval_s or State(ps.state) not in RUNNING or not spans:
        return None
    history = History(events=[], snapshots=[last] if last is not None else [], now=now,
                      running=spans)
    gap = camera_silences(pol, history)[-1]
    paused = State(ps.state) == State.PAUSED
    return {"silent_s": int(gap.seconds), "interval_s": pol.snapshot_interval_s,
            # silence grows with wall time while the exam runs: its start (epoch s) lets a page
            # shown deltas count on; none while paused (the silence stands still)
            "silent_from_s": None if paused else round(now.timestamp() - gap.seconds),
            "limit_s": missing_snapshot_limit_s(pol), "flag": silence_flag(pol, gap),
            "flagged": False}


def live_sessions(session: Session, viewer: User, now: dt.datetime | None = None,
                  only: list[int] | None = None) -> list[dict[str, Any]]:
    """One row per session the viewer may watch, for the console: a fixed number of queries
    (13, one more when a camera is silent past its limit; the viewer's sign-in check aside;
    ``tests/proctoring/test_query_budgets.py`` pins it), each returning at most a row or a
    few per session, whatever the number of sessions, events, flags or saves.

    Live sessions (``ACTIVE``) carry the clock, connection and camera; a session that ended in
    the last :data:`RECENTLY_ENDED_S` seconds is ``finished``: its outcome and when it ended,
    and no clock or connection (nobody is expected to be there any more). ``only``: just these
    sessions (those a delta poll rebuilds), if still on the viewer's console."""
    now = now or utcnow()
    sessions = _visible_sessions(session, viewer, now, only)
    if not sessions:
        return []
    ids = [ps.id for ps in sessions]
    live = [ps for ps in sessions if State(ps.state) in ACTIVE]
    attempt_ids = [ps.attempt_id for ps in live if ps.attempt_id]
    outcomes = _outcome_reasons(session, [ps.id for ps in sessions if State(ps.state) not in ACTIVE])
    users = {u.id: u for u in session.execute(select(User.id, User.display_name, User.email)
                                              .where(User.id.in_({ps.candidate_id for ps in sessions})))}
    exams = dict(session.execute(select(Exam.id, Exam.code).where(
        Exam.id.in_({ps.exam_id for ps in sessions}))).all())
    # answers, position and clock from delivery's read API (three queries for all attempts)
    progress = delivery_reads.progress(session, attempt_ids, now)
    flags = _flag_summaries(session, ids)
    last_snap_ids = select(func.max(Snapshot.id)).where(Snapshot.session_id.in_(ids)) \
        .group_by(Snapshot.session_id)
    # with its face check's state: a frame whose faces are still being counted
    # (proctoring.face_checks) is not one that could not be analysed
    snaps = {s.session_id: s for s in session.execute(
        select(Snapshot.session_id, Snapshot.id, Snapshot.image_id, Snapshot.faces,
               Snapshot.seq, Snapshot.server_at, FaceCheck.state.label("check"))
        .outerjoin(FaceCheck, FaceCheck.snapshot_id == Snapshot.id)
        .where(Snapshot.id.in_(last_snap_ids)))}
    pending = [ps.id for ps in sessions if ps.state == State.IDENTITY_PENDING]
    failing = {}
    if pending:
        for c in session.execute(select(IdentityCheck.session_id, IdentityCheck.verifier,
                                        IdentityCheck.reason).where(
                IdentityCheck.session_id.in_(pending),
                IdentityCheck.outcome.in_(["failed", "error"]),
                IdentityCheck.by_user_id.is_(None)).order_by(IdentityCheck.id)):
            failing[c.session_id] = c
    running = [ps.id for ps in sessions if State(ps.state) in RUNNING]
    spans: dict[int, list[Row]] = {}
    if running:
        for t in session.execute(select(Transition.session_id, Transition.to_state, Transition.at)
                                 .where(Transition.session_id.in_(running),
                                        (Transition.to_state == State.IN_PROGRESS.value)
                                        | (Transition.from_state == State.IN_PROGRESS.value))
                                 .order_by(Transition.id)):
            spans.setdefault(t.session_id, []).append(t)
    policies: dict[Any, ProctoringPolicy | None] = {}
    rows = []
    for ps in sessions:
        cand = users.get(ps.candidate_id)
        p = progress.get(ps.attempt_id) if ps.attempt_id else None
        finished = State(ps.state) not in ACTIVE
        row: dict[str, Any] = {
            "id": ps.id,
            "candidate": cand.display_name if cand else f"#{ps.candidate_id}",
            "candidate_email": cand.email if cand else "",
            "exam": exams.get(ps.exam_id, f"#{ps.exam_id}"),
            "state": ps.state,
            "state_label": LABELS[State(ps.state)],
            "identity": _identity_label(ps, failing.get(ps.id)),
            "risk": ps.risk_score,
            "attempt_id": ps.attempt_id,
            "finished": finished,
            "actions": list(allowed(ps.state)),
        }
        row["flags"] = flags.get(ps.id) or {"count": 0, "worst": None, "latest": None,
                                            "latest_id": None}
        if finished:
            row.update(ended_at=ps.state_changed_at.isoformat(), outcome=outcomes.get(ps.id, ""),
                       connection=None, last_seen_s=None, snapshot=None, camera=None)
            rows.append(row)
            continue
        if p is not None:
            row.update(answered=p.answered, items=p.items, position=p.position + 1,
                       remaining_s=int(p.remaining_s), paused=p.paused,
                       # the instant the clock runs out (epoch s), so a page shown deltas counts
                       # down itself; none while paused or once the time is up
                       ends_at_s=(round(now.timestamp() + p.remaining_s)
                                  if not p.paused and p.remaining_s > 0 else None))
        seen = ps.last_seen_at
        row["last_seen_s"] = int((now - seen).total_seconds()) if seen else None
        row["last_seen_at_s"] = int(seen.timestamp()) if seen else None
        row["connection"] = ("not yet" if seen is None else
                             "online" if (now - seen).total_seconds() <= connection_lost_after_s()
                             else "lost")
        snap = snaps.get(ps.id)
        row["snapshot"] = ({"id": snap.id, "image_id": snap.image_id, "faces": snap.faces,
                            "counting": snap.check in ("pending", "running"),
                            "age_s": int((now - snap.server_at).total_seconds())} if snap else None)
        key = json.dumps(ps.policy, sort_keys=True)
        if key not in policies:
            policies[key] = parse_policy(ps.policy)
        row["camera"] = _camera(ps, policies[key], snap, running_spans(spans.get(ps.id, [])), now)
        rows.append(row)
    _show_silence_flags(session, rows)
    return rows


def _outcome_reasons(session: Session, ids: list[int]) -> dict[int, str]:
    """Per finished session, the reason of its last transition (why it ended): one query."""
    if not ids:
        return {}
    last = select(func.max(Transition.id)).where(Transition.session_id.in_(ids)) \
        .group_by(Transition.session_id)
    return dict(session.execute(select(Transition.session_id, Transition.reason)
                                .where(Transition.id.in_(last))).all())


def _show_silence_flags(session: Session, rows: list[dict[str, Any]]) -> None:
    """Cameras silent past the limit are flagged on the console at once: a flag already stored
    shows as stored; one not stored yet (the pings or the sweeper store it) is shown in the
    row's flags and risk as it will be stored. A query only when there are such sessions; the
    console's GET writes nothing."""
    late = {r["id"]: r for r in rows if r["camera"] and r["camera"]["flag"] is not None}
    if late:
        stored: dict[int, list[Row]] = {}
        for f in session.execute(select(Flag.session_id, Flag.rule, Flag.key, Flag.points)
                                 .where(Flag.session_id.in_(late))):
            stored.setdefault(f.session_id, []).append(f)
        for sid, row in late.items():
            due = row["camera"]["flag"]
            have = stored.get(sid, [])
            if not any((f.rule, f.key) == (due.rule, due.key) for f in have):
                fl = row["flags"]
                row["flags"] = {"count": fl["count"] + 1, "worst": worst([fl["worst"], due.severity]),
                                "latest": due.message, "latest_id": fl["latest_id"]}
                row["risk"] = risk_score([*have, _Due(due.rule, points(due.severity))])
            row["camera"]["flagged"] = True
    for r in rows:
        if r["camera"]:
            del r["camera"]["flag"]


class _Due(NamedTuple):
    rule: str
    points: int


def _identity_label(ps: Row, failing: Row | None) -> str:
    state = State(ps.state)
    if state == State.CREATED:
        return "not submitted"
    if state == State.IDENTITY_PENDING:
        return f"to check ({finding(failing.verifier, failing.reason)})" if failing else "to check"
    if state == State.IDENTITY_REJECTED:
        return "rejected"
    if state == State.TERMINATED and ps.attempt_id is None:
        return "not admitted"
    return "admitted"
