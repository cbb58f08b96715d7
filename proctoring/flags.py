"""Rules that turn integrity events and snapshots into flags, and flags into a risk score.

Rules are pure: the event rules are steps over a small running state (:class:`EventState`, the
events in the page's order, by ``seq``), so a batch is judged from that state and the events
that arrived, never the session's whole history; :func:`evaluate` steps them from an empty state
over a whole history and gives the same flags. Each flag has a ``(rule, key)`` that is stored
once (a unique constraint), so judging an event again finds nothing new.

Risk score: the sum of the flags' severity points, each rule counting at most
:data:`MAX_COUNTED_PER_RULE` of its flags, so one noisy rule cannot drown the others.

Two rules depend on the time of evaluation, not only on what the page sent: a full-screen exit
that has not ended, and a camera that has gone silent (:func:`snapshots_missing`). The page
may send nothing at all (closed, crashed, script blocked), so the latter is also evaluated on
the page's pings and by the sweeper (:func:`proctoring.events.record_camera_silence`,
``microcred proctoring sweep``), and at submission; the console's poll shows it as soon as it
is due (:func:`silence_flag`) and writes nothing.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from proctoring.hooks import FlagSpec
from proctoring.policy import ProctoringPolicy
from proctoring.states import State

SEVERITY_POINTS = {"info": 0, "low": 1, "medium": 3, "high": 6}
SEVERITY_ORDER = ("info", "low", "medium", "high")
MAX_COUNTED_PER_RULE = 3

#: every kind the candidate's page may report
EVENT_KINDS = frozenset({
    "tab_hidden", "tab_visible", "window_blur", "window_focus",
    "fullscreen_exit", "fullscreen_enter", "copy", "cut", "paste", "right_click", "print",
    "offline", "online", "camera_unavailable", "camera_available", "snapshot_failed",
})
FOCUS_LOST = frozenset({"tab_hidden", "window_blur"})
FOCUS_BACK = frozenset({"tab_visible", "window_focus"})
RIGHT_CLICKS_TOLERATED = 5
#: the rule of :func:`snapshots_missing` (its threshold is the policy's
#: ``missing_snapshot_intervals`` x ``snapshot_interval_s``)
MISSING_SNAPSHOT_RULE = "snapshot_missing"


class EventLike(Protocol):
    kind: str
    seq: int
    server_at: dt.datetime
    client_at: dt.datetime | None


class SnapshotLike(Protocol):
    seq: int
    faces: int | None
    server_at: dt.datetime


class TransitionLike(Protocol):
    to_state: str
    at: dt.datetime


class FlagLike(Protocol):
    rule: str
    severity: str
    points: int


Span = tuple[dt.datetime, dt.datetime | None]


@dataclass(frozen=True)
class History:
    """What the rules look at: a session's events and snapshots, the time of evaluation, and the
    spans it spent in progress (:func:`running_spans`; empty: the rules that need them, i.e.
    the camera's silence, say nothing).

    ``since``: the snapshot that came before ``snapshots`` (None: ``snapshots`` are every one
    since the exam started). Incremental evaluation passes the newest stored snapshot and only
    what arrived, so the camera's gaps before it are not measured again."""

    events: Sequence[EventLike]
    snapshots: Sequence[SnapshotLike]
    now: dt.datetime
    running: Sequence[Span] = ()
    since: SnapshotLike | None = None


def running_spans(transitions: Iterable[TransitionLike]) -> list[Span]:
    """The spans a session spent ``in_progress`` (paused time excluded), from its transitions
    in the order they happened; the last span's end is None while it lasts."""
    spans: list[Span] = []
    start: dt.datetime | None = None
    for t in transitions:
        if t.to_state == State.IN_PROGRESS:
            if start is None:
                start = t.at
        elif start is not None:
            spans.append((start, t.at))
            start = None
    if start is not None:
        spans.append((start, None))
    return spans


Rule = Callable[[ProctoringPolicy, History], Iterable[FlagSpec]]


def _ordered(events: Iterable[EventLike]) -> list[EventLike]:
    return sorted(events, key=lambda e: e.seq)


def _elapsed(start: EventLike, end: EventLike | None, now: dt.datetime) -> float:
    """Seconds between two events of the page: by the page's clock when both carry it (their
    difference is sound even if the clock is off), else by arrival here."""
    if end is None:
        return (now - start.server_at).total_seconds()
    if start.client_at and end.client_at:
        return max(0.0, (end.client_at - start.client_at).total_seconds())
    return max(0.0, (end.server_at - start.server_at).total_seconds())


@dataclass(frozen=True)
class Mark:
    """An event a rule waits to see end: a full-screen exit, an offline spell."""

    seq: int
    server_at: dt.datetime
    client_at: dt.datetime | None

    def as_json(self) -> list:
        return [self.seq, self.server_at.isoformat(),
                self.client_at.isoformat() if self.client_at else None]

    @classmethod
    def from_json(cls, raw: list | None) -> Mark | None:
        if not raw:
            return None
        seq, server_at, client_at = raw
        return cls(int(seq), dt.datetime.fromisoformat(server_at),
                   dt.datetime.fromisoformat(client_at) if client_at else None)


@dataclass
class EventState:
    """What the event rules remember of the events up to ``seq`` (the page's order): enough to
    judge the next events without reading the earlier ones again. Kept on the session row
    (``ProctorSession.rule_state``), so a batch costs the same at event 10 as at event 10,000.

    Every event rule is a step over this state (:meth:`advance`); :func:`evaluate` runs the
    same steps from an empty state over a whole history, so the two can never disagree."""

    seq: int = 0
    focus_lost: bool = False
    focus_episodes: int = 0
    right_clicks: int = 0
    fullscreen_exit: Mark | None = None
    offline_start: Mark | None = None

    def as_json(self) -> dict:
        return {"seq": self.seq, "focus_lost": self.focus_lost,
                "focus_episodes": self.focus_episodes, "right_clicks": self.right_clicks,
                "fullscreen_exit": self.fullscreen_exit.as_json() if self.fullscreen_exit else None,
                "offline_start": self.offline_start.as_json() if self.offline_start else None}

    @classmethod
    def from_json(cls, raw: dict | None) -> EventState | None:
        """The stored state; None when there is none (a session from before it was kept)."""
        if not raw:
            return None
        return cls(seq=int(raw["seq"]), focus_lost=bool(raw["focus_lost"]),
                   focus_episodes=int(raw["focus_episodes"]),
                   right_clicks=int(raw["right_clicks"]),
                   fullscreen_exit=Mark.from_json(raw.get("fullscreen_exit")),
                   offline_start=Mark.from_json(raw.get("offline_start")))

    def advance(self, policy: ProctoringPolicy, events: Iterable[EventLike],
                now: dt.datetime) -> list[FlagSpec]:
        """Take ``events`` (all after ``seq``) in the page's order; the flags they raise, and
        those due by ``now`` (a full-screen exit not ended). With no events: only the latter,
        and the state is unchanged."""
        found: list[FlagSpec] = []
        for e in _ordered(events):
            found += self._step(policy, e)
            self.seq = max(self.seq, e.seq)
        if policy.fullscreen and self.fullscreen_exit is not None:
            found += _fullscreen_flag(policy, self.fullscreen_exit, None, now)
        return found

    def _step(self, policy: ProctoringPolicy, e: EventLike) -> list[FlagSpec]:
        out: list[FlagSpec] = []
        kind = e.kind
        if kind in FOCUS_LOST and not self.focus_lost:
            self.focus_lost, self.focus_episodes = True, self.focus_episodes + 1
            out += _focus_flags(policy, self.focus_episodes)
        elif kind in FOCUS_BACK:
            self.focus_lost = False
        if kind == "fullscreen_exit" and self.fullscreen_exit is None:
            self.fullscreen_exit = Mark(e.seq, e.server_at, e.client_at)
        elif kind == "fullscreen_enter" and self.fullscreen_exit is not None:
            if policy.fullscreen:
                out += _fullscreen_flag(policy, self.fullscreen_exit, e, e.server_at)
            self.fullscreen_exit = None
        if kind == "offline" and self.offline_start is None:
            self.offline_start = Mark(e.seq, e.server_at, e.client_at)
        elif kind == "online" and self.offline_start is not None:
            seconds = _elapsed(self.offline_start, e, e.server_at)
            if seconds > policy.offline_grace_s:
                out.append(FlagSpec("offline", f"e{self.offline_start.seq}", "low",
                                    f"offline for {seconds:.0f} s "
                                    f"(allowed: {policy.offline_grace_s} s)"))
            self.offline_start = None
        if kind == "right_click":
            self.right_clicks += 1
            if self.right_clicks == RIGHT_CLICKS_TOLERATED + 1:
                out.append(FlagSpec("right_click", "many", "low",
                                    f"opened the context menu {_times(self.right_clicks)}"))
        if kind == "paste":
            out.append(FlagSpec("paste", f"e{e.seq}", "medium", "pasted into the exam page"))
        elif kind in ("copy", "cut"):
            out.append(FlagSpec("copy", f"e{e.seq}", "low", f"{kind} from the exam page"))
        elif kind == "print":
            out.append(FlagSpec("print", f"e{e.seq}", "high", "tried to print the exam page"))
        elif kind == "camera_unavailable":
            out.append(FlagSpec("camera_unavailable", f"e{e.seq}", "high",
                                "the camera was unavailable or blocked"))
        return out


def _focus_flags(policy: ProctoringPolicy, episodes: int) -> list[FlagSpec]:
    """Leaving the exam (tab hidden or window blurred) more than ``max_focus_losses`` times, and
    far more. A tab switch fires both events: one episode lasts until focus comes back. Raised
    when the count crosses each limit."""
    limit = policy.max_focus_losses
    out = []
    if episodes == limit + 1:
        out.append(FlagSpec("focus_loss", "over", "medium",
                            f"left the exam window {_times(episodes)} (allowed: {limit})"))
    if episodes == max(3 * limit, limit + 5) + 1:
        out.append(FlagSpec("focus_loss", "far_over", "high",
                            f"left the exam window {_times(episodes)}, far more than the "
                            f"{limit} allowed"))
    return out


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


def _fullscreen_flag(policy: ProctoringPolicy, exit_event: Mark, end: EventLike | None,
                     now: dt.datetime) -> list[FlagSpec]:
    """Out of full screen for longer than ``fullscreen_grace_s`` (when the policy requires it);
    ``end`` None: not back yet, counted up to ``now``."""
    seconds = _elapsed(exit_event, end, now)
    if seconds <= policy.fullscreen_grace_s:
        return []
    still = " and has not returned" if end is None else ""
    return [FlagSpec("fullscreen_left", f"exit-{exit_event.seq}", "medium",
                     f"left full screen for {seconds:.0f} s{still} "
                     f"(allowed: {policy.fullscreen_grace_s} s)")]


def snapshot_faces(policy: ProctoringPolicy, h: History) -> Iterable[FlagSpec]:
    for s in sorted(h.snapshots, key=lambda s: s.seq):
        if s.faces == 0:
            yield FlagSpec("no_face", f"s{s.seq}", "medium", "no face in a camera snapshot")
        elif s.faces is not None and s.faces > 1:
            yield FlagSpec("multiple_faces", f"s{s.seq}", "high",
                           f"{s.faces} faces in a camera snapshot")


@dataclass(frozen=True)
class CameraSilence:
    """A stretch of exam time without a snapshot arriving here."""

    #: the snapshot it follows; None: no snapshot since the exam started
    after_seq: int | None
    #: seconds in progress (pauses excluded) from that snapshot (or the start) to the next one,
    #: or to the end of the exam, or to now while it lasts
    seconds: float
    ongoing: bool

    @property
    def key(self) -> str:
        return "start" if self.after_seq is None else f"after-s{self.after_seq}"


def _running_between(spans: Sequence[Span], start: dt.datetime, end: dt.datetime) -> float:
    total = 0.0
    for s, e in spans:
        lo, hi = max(s, start), min(e or end, end)
        if hi > lo:
            total += (hi - lo).total_seconds()
    return total


def camera_silences(policy: ProctoringPolicy, h: History) -> list[CameraSilence]:
    """Every gap between snapshots, by their arrival here (a frame queued offline and sent
    late does not fill the gap it was taken in: the proctor did not see it then), measured in
    exam time. The last one runs to the end of the exam, or to ``h.now`` while it lasts.
    Empty when the policy takes no snapshots or the exam has not started."""
    if not policy.snapshot_interval_s or not h.running:
        return []
    running = list(h.running)
    ongoing = running[-1][1] is None
    end = h.now if ongoing else max(h.now, running[-1][1])
    out = []
    start, after = running[0][0], None
    if h.since is not None:
        start, after = max(start, h.since.server_at), h.since.seq
    for snap in sorted(h.snapshots, key=lambda s: (s.server_at, s.seq)):
        out.append(CameraSilence(after, _running_between(running, start, snap.server_at), False))
        start, after = max(start, snap.server_at), snap.seq
    out.append(CameraSilence(after, _running_between(running, start, end), ongoing))
    return out


def missing_snapshot_limit_s(policy: ProctoringPolicy) -> int:
    """Exam time without a snapshot after which :func:`snapshots_missing` flags (0: never)."""
    return policy.snapshot_interval_s * policy.missing_snapshot_intervals


def snapshots_missing(policy: ProctoringPolicy, h: History) -> Iterable[FlagSpec]:
    """No camera snapshot arrived for more than ``missing_snapshot_intervals`` snapshot
    intervals of exam time (policy; default 3): camera off or covered, page closed, script
    blocked, or a long network outage. One flag per silent stretch, raised as soon as it is
    too long (it need not end first)."""
    for gap in camera_silences(policy, h):
        flag = silence_flag(policy, gap)
        if flag is not None:
            yield flag


def silence_flag(policy: ProctoringPolicy, gap: CameraSilence) -> FlagSpec | None:
    """The flag one silent stretch raises, None while it is within the limit (the console
    shows it as soon as it is due, before the pings or the sweep store it)."""
    if gap.seconds <= missing_snapshot_limit_s(policy):
        return None
    since = ("since the exam started" if gap.after_seq is None
             else f"after snapshot {gap.after_seq}")
    still = ", and still none" if gap.ongoing else ""
    return FlagSpec(MISSING_SNAPSHOT_RULE, gap.key, "medium",
                    f"no camera snapshot received for {gap.seconds:.0f} s {since}{still} "
                    f"(one expected every {policy.snapshot_interval_s} s)")


#: the rules over snapshots; the event rules are the steps of :class:`EventState`
SNAPSHOT_RULES: tuple[Rule, ...] = (snapshot_faces, snapshots_missing)


def evaluate(policy: ProctoringPolicy, history: History) -> list[FlagSpec]:
    """Every flag the rules raise on this history (already-stored ones included): the event
    rules stepped from an empty state over every event, then the snapshot rules."""
    return (EventState().advance(policy, history.events, history.now)
            + [flag for rule in SNAPSHOT_RULES for flag in rule(policy, history)])


def points(severity: str) -> int:
    if severity not in SEVERITY_POINTS:
        raise ValueError(f"unknown severity {severity!r}; use one of {', '.join(SEVERITY_ORDER)}")
    return SEVERITY_POINTS[severity]


def risk_score(flags: Iterable[FlagLike]) -> int:
    by_rule: dict[str, list[int]] = {}
    for f in flags:
        by_rule.setdefault(f.rule, []).append(f.points)
    return sum(sum(sorted(p, reverse=True)[:MAX_COUNTED_PER_RULE]) for p in by_rule.values())


def severity_rank(severity: str | None) -> int:
    """Where ``severity`` stands in :data:`SEVERITY_ORDER`; -1 for none or an unknown one."""
    return SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else -1


def worst(severities: Iterable[str | None]) -> str | None:
    """The worst of ``severities`` (None where there is none): the console's one rule, also
    what the database computes for it in ``proctoring.wiring``."""
    rank = max(map(severity_rank, severities), default=-1)
    return SEVERITY_ORDER[rank] if rank >= 0 else None
