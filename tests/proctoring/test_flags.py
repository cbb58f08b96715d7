"""Flag rules on event histories, and the risk score."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from proctoring.flags import History, evaluate, risk_score
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
                       ({"max_focus_losses": -1}, "max_focus_losses")):
        with pytest.raises(PolicyError, match=field):
            parse_policy(bad)
