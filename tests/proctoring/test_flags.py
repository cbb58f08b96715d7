"""Flag rules on event histories, and the risk score."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from proctoring.flags import (
    History,
    camera_silences,
    evaluate,
    risk_score,
    running_spans,
    snapshots_missing,
)
from proctoring.policy import ProctoringPolicy, parse_policy

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


@dataclass
class Ev:
    seq: int
    kind: str
    server_at: dt.datetime
    client_at: dt.datetime | None


@dataclass
class Snap:
    seq: int
    faces: int | None
    server_at: dt.datetime = T0


@dataclass
class F:
    rule: str
    severity: str
    points: int


def events(*spec: tuple[str, float]) -> list[Ev]:
    return [Ev(i + 1, kind, T0 + dt.timedelta(seconds=s), T0 + dt.timedelta(seconds=s))
            for i, (kind, s) in enumerate(spec)]


def rules(found) -> set[tuple[str, str]]:
    return {(f.rule, f.severity) for f in found}


POLICY = ProctoringPolicy(fullscreen=True, max_focus_losses=3, fullscreen_grace_s=10,
                          offline_grace_s=30)


def test_focus_losses_count_episodes_not_events():
    # a tab switch fires blur and hidden together: four switches are four losses, not eight
    ev = events(*[(k, i * 10 + d) for i in range(4) for k, d in
                  (("window_blur", 0), ("tab_hidden", 0.1), ("tab_visible", 2), ("window_focus", 2.1))])
    assert rules(evaluate(POLICY, History(ev, [], T0))) == {("focus_loss", "medium")}
    three = ev[: 3 * 4]
    assert rules(evaluate(POLICY, History(three, [], T0))) == set()


def test_many_focus_losses_are_high():
    ev = events(*[(k, i * 10 + d) for i in range(12) for k, d in (("window_blur", 0), ("window_focus", 1))])
    assert rules(evaluate(POLICY, History(ev, [], T0))) == {("focus_loss", "medium"), ("focus_loss", "high")}


def test_fullscreen_left_longer_than_grace():
    short = events(("fullscreen_exit", 0), ("fullscreen_enter", 5))
    long = events(("fullscreen_exit", 0), ("fullscreen_enter", 25))
    assert evaluate(POLICY, History(short, [], T0)) == []
    assert rules(evaluate(POLICY, History(long, [], T0))) == {("fullscreen_left", "medium")}
    still_out = events(("fullscreen_exit", 0))
    assert evaluate(POLICY, History(still_out, [], T0 + dt.timedelta(seconds=5))) == []
    late = evaluate(POLICY, History(still_out, [], T0 + dt.timedelta(seconds=60)))
    assert rules(late) == {("fullscreen_left", "medium")} and "not returned" in late[0].message


def test_fullscreen_is_ignored_when_the_policy_does_not_require_it():
    pol = ProctoringPolicy(fullscreen=False)
    assert evaluate(pol, History(events(("fullscreen_exit", 0)), [], T0 + dt.timedelta(hours=1))) == []


def test_clipboard_print_camera_offline_right_click():
    ev = events(("copy", 1), ("paste", 2), ("print", 3), ("camera_unavailable", 4),
                ("offline", 10), ("online", 100), *[("right_click", 200 + i) for i in range(6)])
    assert rules(evaluate(POLICY, History(ev, [], T0))) == {
        ("copy", "low"), ("paste", "medium"), ("print", "high"), ("camera_unavailable", "high"),
        ("offline", "low"), ("right_click", "low")}


def test_snapshot_faces():
    found = evaluate(POLICY, History([], [Snap(1, 1), Snap(2, 0), Snap(3, 2), Snap(4, None)], T0))
    assert [(f.rule, f.key) for f in found] == [("no_face", "s2"), ("multiple_faces", "s3")]


def test_rules_are_idempotent_keys():
    ev = events(("paste", 1), ("paste", 2))
    a = evaluate(POLICY, History(ev, [], T0))
    b = evaluate(POLICY, History(ev, [], T0 + dt.timedelta(hours=1)))
    assert [(f.rule, f.key) for f in a] == [(f.rule, f.key) for f in b] == [("paste", "e1"), ("paste", "e2")]


def test_risk_caps_each_rule():
    flags = [F("no_face", "medium", 3)] * 10 + [F("print", "high", 6)]
    assert risk_score(flags) == 3 * 3 + 6
    assert risk_score([]) == 0


def test_policy_parsing_names_the_bad_field():
    import pytest

    from proctoring.policy import PolicyError

    assert parse_policy(None) is None
    assert parse_policy({"enabled": False}) is None
    assert parse_policy({"identity": "automated+proctor"}).identity == ("face_count", "proctor")
    assert parse_policy({"identity": ["face_count", "acme"]}).identity == ("face_count", "acme")
    for bad, field in (({"identity": "retina"}, "identity"), ({"review": "sometimes"}, "review"),
                       ({"fullscreen": "yes"}, "fullscreen"), ({"snapshot_interval_s": 2}, "snapshot_interval_s"),
                       ({"max_focus_losses": -1}, "max_focus_losses"),
                       ({"missing_snapshot_intervals": 0}, "missing_snapshot_intervals")):
        with pytest.raises(PolicyError, match=field):
            parse_policy(bad)


# ---------------------------------------------------------------- a camera gone silent


@dataclass
class Tr:
    to_state: str
    at: dt.datetime


def at(s: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=s)


def snaps(*seconds: float) -> list[Snap]:
    return [Snap(i + 1, 1, at(s)) for i, s in enumerate(seconds)]


CAM = ProctoringPolicy(snapshot_interval_s=30, missing_snapshot_intervals=3)  # limit: 90 s
STARTED = [(T0, None)]


def missing(history: History, policy: ProctoringPolicy = CAM) -> list[tuple[str, str]]:
    return [(f.key, f.severity) for f in snapshots_missing(policy, history)]


def test_running_spans_leave_out_pauses_and_end_at_submission():
    trs = [Tr("identity_pending", at(-60)), Tr("admitted", at(-30)), Tr("in_progress", at(0)),
           Tr("paused", at(100)), Tr("in_progress", at(400)), Tr("submitted", at(1000))]
    assert running_spans(trs) == [(at(0), at(100)), (at(400), at(1000))]
    assert running_spans(trs[:5]) == [(at(0), at(100)), (at(400), None)]
    assert running_spans(trs[:2]) == []


def test_no_snapshot_since_the_start_is_flagged_once_past_the_limit():
    assert missing(History([], [], at(90), STARTED)) == []
    found = list(snapshots_missing(CAM, History([], [], at(95), STARTED)))
    assert [(f.rule, f.key, f.severity) for f in found] == [("snapshot_missing", "start", "medium")]
    assert "no camera snapshot received for 95 s" in found[0].message
    # later evaluations find the same (rule, key): stored once
    assert missing(History([], [], at(900), STARTED)) == [("start", "medium")]


def test_regular_snapshots_raise_nothing():
    regular = snaps(*range(2, 600, 30))
    assert missing(History([], regular, at(610), STARTED)) == []
    # even a limit of one interval (a snapshot arrives late by up to an interval)
    one = ProctoringPolicy(snapshot_interval_s=30, missing_snapshot_intervals=1)
    assert missing(History([], regular, at(600), STARTED), one) == []
    assert missing(History([], regular, at(610), STARTED), one) == [("after-s20", "medium")]


def test_each_silent_stretch_is_its_own_flag():
    # snapshots at 10 and 20 s, none from 20 s to 200 s, then 200 and 230 s, then silence
    history = History([], snaps(10, 20, 200, 230), at(400), STARTED)
    assert missing(history) == [("after-s2", "medium"), ("after-s4", "medium")]
    gaps = camera_silences(CAM, history)
    assert [(g.after_seq, round(g.seconds), g.ongoing) for g in gaps] == [
        (None, 10, False), (1, 10, False), (2, 180, False), (3, 30, False), (4, 170, True)]


def test_paused_time_does_not_count_and_the_exam_end_stops_the_clock():
    spans = [(T0, at(60)), (at(600), at(620))]  # paused from 60 to 600, submitted at 620
    assert missing(History([], [], at(5000), spans)) == []  # 60 + 20 s of exam time
    assert missing(History([], [], at(5000), [(T0, at(60)), (at(600), at(640))])) == [
        ("start", "medium")]  # 60 + 40 s


def test_no_snapshot_rule_without_snapshots_or_before_the_exam():
    off = ProctoringPolicy(snapshot_interval_s=0)
    assert missing(History([], [], at(5000), STARTED), off) == []
    assert missing(History([], [], at(5000), [])) == []
    assert missing(History([], [], at(5000))) == []  # no spans known: the rule says nothing


def test_the_limit_is_configurable_per_exam():
    history = History([], snaps(0), at(200), STARTED)
    assert missing(history, ProctoringPolicy(snapshot_interval_s=30, missing_snapshot_intervals=10)) == []
    assert missing(history, ProctoringPolicy(snapshot_interval_s=60)) == [("after-s1", "medium")]
    assert parse_policy({"snapshot_interval_s": 20}).missing_snapshot_intervals == 3
    assert parse_policy({"missing_snapshot_intervals": 5}).missing_snapshot_intervals == 5


def test_worst_severity_is_one_rule():
    """The console's worst severity (issue 10, item 9): one function over severities, which
    the live rows and the database's aggregate both follow."""
    from proctoring.flags import SEVERITY_ORDER, severity_rank, worst

    assert worst(["low", None, "high", "medium", "bogus"]) == "high"
    assert worst([None, "bogus"]) is None and worst([]) is None
    assert [severity_rank(s) for s in SEVERITY_ORDER] == list(range(len(SEVERITY_ORDER)))
    assert severity_rank(None) == severity_rank("bogus") == -1
