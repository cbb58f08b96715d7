"""Pathways: the one evaluator of the rules that earn stacks and clusters and open exams.

A rule (:class:`~credentials.models.PathwayRule`) is data: components every one of which is
needed ("A and B"), plus elective groups ("2 of C, D, E, F"). A component is an achievement
code, or ``training:<code>`` for a training requirement. A component that is itself earned by
a rule (a stack) makes the rule a cluster; a stack counts in a cluster while its credential is
held. A rule attached to an exam is that exam's prerequisites.

What counts, everywhere ("eligible" means the same on every page):

- a credential counts while it is valid *now*: not revoked, not suspended, not expired
  (the holder's newest such credential for the achievement);
- a training counts from its completion until ``Training.validity_days`` later (for ever when
  None).

The public API, used by issuance, the holder's page, the program view, the admin preview and
the exam gate in ``assessment.delivery.eligibility``:

- :func:`evaluate` ``(session, holder_id, achievement, now=None) -> PathwayProgress``
- :func:`eligible_for_exam` ``(session, holder_id, exam_id, now=None) -> ExamGate``
- :func:`holder_pathways` ``(session, holder_id, now=None) -> list[PathwayProgress]``
- :func:`award_completed` ``(session, cfg, holder) -> list[Credential]`` (issues completed stacks)
- :func:`rule_for`, :func:`exam_rule`, :class:`Rule` (``Rule.describe()``), :class:`Catalog`
- :func:`holdings` ``(session, holder_id, now) -> Holdings`` (what one holder holds, loaded once)

Editing rules (parsing, validation, cycles, preview) is :mod:`credentials.pathway_rules`;
trainings and completions :mod:`credentials.trainings`.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from credentials import openbadge
from credentials.config import CredentialConfig
from credentials.models import (
    Achievement,
    Credential,
    PathwayRule,
    StatusEvent,
    Training,
    TrainingCompletion,
)
from microcred.db import utcnow
from microcred.records import ExamInfo, records

TRAINING_PREFIX = "training:"


# --- rules ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Ref:
    """A component of a rule: an achievement (``kind`` "credential") or a training."""

    kind: str
    code: str

    @classmethod
    def parse(cls, text: str) -> Ref:
        text = text.strip()
        if text.lower().startswith(TRAINING_PREFIX):
            return cls("training", text[len(TRAINING_PREFIX):].strip())
        return cls("credential", text)

    def __str__(self) -> str:
        return f"{TRAINING_PREFIX}{self.code}" if self.kind == "training" else self.code


@dataclass(frozen=True)
class Elective:
    choose: int
    options: tuple[Ref, ...]


@dataclass(frozen=True)
class Rule:
    required: tuple[Ref, ...] = ()
    electives: tuple[Elective, ...] = ()

    @classmethod
    def from_row(cls, row: PathwayRule) -> Rule:
        return cls(tuple(Ref.parse(r) for r in row.required or []),
                   tuple(Elective(int(g["choose"]), tuple(Ref.parse(r) for r in g["from"]))
                         for g in row.electives or []))

    @property
    def empty(self) -> bool:
        return not self.required and not self.electives

    def refs(self) -> list[Ref]:
        return [*self.required, *(r for g in self.electives for r in g.options)]

    def as_data(self) -> tuple[list[str], list[dict[str, Any]]]:
        return ([str(r) for r in self.required],
                [{"choose": g.choose, "from": [str(r) for r in g.options]}
                 for g in self.electives])

    def describe(self, catalog: Catalog | None = None) -> str:
        """"A and B, plus 2 of C, D, E, F" (names when a catalog is given)."""
        def name(r: Ref) -> str:
            return catalog.name_of(r) if catalog else str(r)

        parts = []
        if self.required:
            names = [name(r) for r in self.required]
            parts.append(names[0] if len(names) == 1
                         else ", ".join(names[:-1]) + " and " + names[-1])
        for g in self.electives:
            what = ", ".join(name(r) for r in g.options)
            parts.append(f"{g.choose} of {what}" if g.choose < len(g.options)
                         else f"all of {what}")
        if not parts:
            return "nothing"
        return parts[0] + "".join(f", plus {p}" for p in parts[1:])


@dataclass
class Catalog:
    """Achievements, trainings, exams and the rules in force, loaded once per page or job."""

    achievements: dict[str, Achievement]
    trainings: dict[str, Training]
    exams: dict[int, ExamInfo]
    stack_rules: dict[int, Rule]
    exam_rules: dict[int, Rule]

    @classmethod
    def load(cls, session: Session) -> Catalog:
        stack_rules: dict[int, Rule] = {}
        exam_rules: dict[int, Rule] = {}
        for row in session.scalars(select(PathwayRule).order_by(PathwayRule.id)):
            if row.achievement_id is not None:
                stack_rules[row.achievement_id] = Rule.from_row(row)
            elif row.exam_id is not None:
                exam_rules[row.exam_id] = Rule.from_row(row)
        return cls(
            achievements={a.code: a for a in session.scalars(select(Achievement))},
            trainings={t.code: t for t in session.scalars(select(Training))},
            exams={e.id: e for e in records().exams(session)},
            stack_rules={k: v for k, v in stack_rules.items() if not v.empty},
            exam_rules={k: v for k, v in exam_rules.items() if not v.empty},
        )

    def name_of(self, ref: Ref) -> str:
        if ref.kind == "training":
            t = self.trainings.get(ref.code)
            return f"training {t.name}" if t else f"training {ref.code}"
        a = self.achievements.get(ref.code)
        return a.name if a else ref.code

    def pathways(self) -> list[Achievement]:
        """The achievements earned by a rule (stacks and clusters), by name."""
        by_id = {a.id: a for a in self.achievements.values()}
        return sorted((by_id[i] for i in self.stack_rules if i in by_id and by_id[i].active),
                      key=lambda a: (a.name, a.code))

    def is_cluster(self, achievement: Achievement) -> bool:
        rule = self.stack_rules.get(achievement.id)
        return rule is not None and any(
            r.kind == "credential" and r.code in self.achievements
            and self.achievements[r.code].id in self.stack_rules for r in rule.refs())


def rule_for(session: Session, achievement: Achievement) -> Rule | None:
    """The rule in force that earns ``achievement`` (None: not a stack)."""
    row = session.scalar(select(PathwayRule).where(PathwayRule.achievement_id == achievement.id)
                         .order_by(PathwayRule.id.desc()).limit(1))
    rule = Rule.from_row(row) if row is not None else None
    return None if rule is None or rule.empty else rule


def exam_rule(session: Session, exam_id: int) -> Rule | None:
    """The exam's prerequisites in force (None: open to every candidate)."""
    row = session.scalar(select(PathwayRule).where(PathwayRule.exam_id == exam_id)
                         .order_by(PathwayRule.id.desc()).limit(1))
    rule = Rule.from_row(row) if row is not None else None
    return None if rule is None or rule.empty else rule


# --- what a holder holds ----------------------------------------------------------------------

@dataclass(frozen=True)
class Standing:
    """One credential's standing at a moment: valid, expired, revoked or suspended."""

    credential: Credential
    state: str

    @property
    def valid(self) -> bool:
        return self.state == "valid"


@dataclass
class Holdings:
    """What one holder holds at ``now``: per achievement id the standing of their best
    credential (the newest valid one, else the newest), per training id the newest
    completion."""

    holder_id: int
    now: dt.datetime
    credentials: dict[int, Standing] = field(default_factory=dict)
    completions: dict[int, TrainingCompletion] = field(default_factory=dict)


def _states(session: Session, credentials: list[Credential]) -> dict[int, str]:
    """Credential id -> revoked | suspended | active, from the status events (one query)."""
    out = {c.id: "active" for c in credentials}
    if not credentials:
        return out
    events = session.scalars(select(StatusEvent).where(
        StatusEvent.credential_id.in_([c.id for c in credentials])).order_by(StatusEvent.id))
    for e in events:
        if out[e.credential_id] == "revoked":
            continue
        if e.action == "revoke":
            out[e.credential_id] = "revoked"
        elif e.action == "suspend":
            out[e.credential_id] = "suspended"
        elif e.action == "restore":
            out[e.credential_id] = "active"
    return out


def holdings_of(session: Session, holder_ids: list[int],
                now: dt.datetime | None = None) -> dict[int, Holdings]:
    """:class:`Holdings` of many holders in a few queries (the program view, the preview)."""
    now = now or utcnow()
    out = {h: Holdings(h, now) for h in holder_ids}
    if not holder_ids:
        return out
    # the signed document is loaded only when asked for (a stack's evidence names it)
    creds = list(session.scalars(select(Credential).where(Credential.holder_id.in_(holder_ids))
                                 .options(defer(Credential.document))
                                 .order_by(Credential.id.desc())))
    states = _states(session, creds)
    for c in creds:
        state = states[c.id]
        if state == "active":
            state = "expired" if c.valid_until is not None and c.valid_until <= now else "valid"
        held = out[c.holder_id].credentials
        best = held.get(c.achievement_id)
        if best is None or (state == "valid" and not best.valid):
            held[c.achievement_id] = Standing(c, state)
    for done in session.scalars(select(TrainingCompletion).where(
            TrainingCompletion.holder_id.in_(holder_ids),
            TrainingCompletion.completed_at <= now).order_by(TrainingCompletion.completed_at)):
        out[done.holder_id].completions[done.training_id] = done
    return out


def holdings(session: Session, holder_id: int, now: dt.datetime | None = None) -> Holdings:
    return holdings_of(session, [holder_id], now)[holder_id]


def holders(session: Session) -> list[int]:
    """Everyone who holds a credential or completed a training: who a pathway can concern."""
    ids = set(session.scalars(select(Credential.holder_id).distinct()))
    ids |= set(session.scalars(select(TrainingCompletion.holder_id).distinct()))
    return sorted(ids)


# --- progress ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ComponentProgress:
    """One component for one holder. ``state``: valid | expired | revoked | suspended | missing
    (credentials); completed | expired | missing (trainings); unknown (no such thing)."""

    ref: Ref
    name: str
    state: str
    credential: Credential | None = None
    completion: TrainingCompletion | None = None
    #: when what makes it count stops counting (None: never, or not held)
    expires_at: dt.datetime | None = None
    #: the exam that earns it (the next step), when one does
    exam: ExamInfo | None = None
    #: for a stack not held: what it still needs
    stack: PathwayProgress | None = None

    @property
    def met(self) -> bool:
        return self.state in ("valid", "completed")

    @property
    def is_stack(self) -> bool:
        return self.stack is not None or (self.credential is not None
                                          and self.credential.kind == "stack")


@dataclass(frozen=True)
class GroupProgress:
    """Required components (``choose`` None: all of them) or an elective group."""

    choose: int | None
    components: tuple[ComponentProgress, ...]

    @property
    def need(self) -> int:
        return len(self.components) if self.choose is None else self.choose

    @property
    def met_count(self) -> int:
        return sum(1 for c in self.components if c.met)

    @property
    def still_needed(self) -> int:
        return max(0, self.need - self.met_count)

    @property
    def counted(self) -> list[ComponentProgress]:
        """The components that satisfy the group (all met required ones; the first ``choose``
        met electives)."""
        met = [c for c in self.components if c.met]
        return met if self.choose is None else met[:self.choose]


@dataclass(frozen=True)
class PathwayProgress:
    """Where one holder stands on one rule (a stack, a cluster, an exam's prerequisites)."""

    holder_id: int
    rule: Rule
    description: str
    required: GroupProgress
    electives: tuple[GroupProgress, ...]
    #: the stack (None for an exam's prerequisites)
    achievement: Achievement | None = None
    #: the holder's valid credential for the stack, if they hold one
    held: Credential | None = None

    @property
    def groups(self) -> tuple[GroupProgress, ...]:
        return (self.required, *self.electives)

    @property
    def complete(self) -> bool:
        """The rule is met now (whether or not the stack credential was issued yet)."""
        return all(g.still_needed == 0 for g in self.groups)

    @property
    def still_needed(self) -> int:
        """How many more components complete it."""
        return sum(g.still_needed for g in self.groups)

    @property
    def total_needed(self) -> int:
        return sum(g.need for g in self.groups)

    @property
    def counted(self) -> list[ComponentProgress]:
        return [c for g in self.groups for c in g.counted]

    @property
    def started(self) -> bool:
        """The holder has at least one component that counts (they are on this pathway)."""
        return any(c.met for g in self.groups for c in g.components)

    @property
    def expires_at(self) -> dt.datetime | None:
        """When the first counted component stops counting (the rule may then be unmet)."""
        dates = [c.expires_at for c in self.counted if c.expires_at is not None]
        return min(dates) if dates else None

    @property
    def missing(self) -> list[ComponentProgress]:
        """Components not met, in groups that still need some."""
        return [c for g in self.groups if g.still_needed for c in g.components if not c.met]

    @property
    def next_steps(self) -> list[ComponentProgress]:
        """Missing components the holder can act on: an exam to take, a training to complete,
        or, for a stack not held, that stack's own next steps (depth first)."""
        steps: list[ComponentProgress] = []
        for c in self.missing:
            if c.stack is not None:
                steps += c.stack.next_steps
            elif c.state != "unknown":
                steps.append(c)
        seen: set[Ref] = set()
        return [s for s in steps if not (s.ref in seen or seen.add(s.ref))]


def _exam_earning(catalog: Catalog, achievement: Achievement) -> ExamInfo | None:
    if achievement.exam_id is not None:
        return catalog.exams.get(achievement.exam_id)
    return None


def _component(catalog: Catalog, held: Holdings, ref: Ref,
               visiting: frozenset[int]) -> ComponentProgress:
    name = catalog.name_of(ref)
    if ref.kind == "training":
        t = catalog.trainings.get(ref.code)
        if t is None:
            return ComponentProgress(ref, name, "unknown")
        done = held.completions.get(t.id)
        if done is None:
            return ComponentProgress(ref, name, "missing")
        until = done.completed_at + dt.timedelta(days=t.validity_days) \
            if t.validity_days else None
        state = "expired" if until is not None and until <= held.now else "completed"
        return ComponentProgress(ref, name, state, completion=done,
                                 expires_at=until if state == "completed" else None)
    a = catalog.achievements.get(ref.code)
    if a is None:
        return ComponentProgress(ref, name, "unknown")
    standing = held.credentials.get(a.id)
    exam = _exam_earning(catalog, a)
    stack = None
    if (standing is None or not standing.valid) and a.id in catalog.stack_rules \
            and a.id not in visiting:
        stack = progress_of_rule(catalog, held, catalog.stack_rules[a.id], a, visiting | {a.id})
    if standing is None:
        return ComponentProgress(ref, name, "missing", exam=exam, stack=stack)
    return ComponentProgress(
        ref, name, standing.state, credential=standing.credential,
        expires_at=standing.credential.valid_until if standing.valid else None,
        exam=exam, stack=stack)


def progress_of_rule(catalog: Catalog, held: Holdings, rule: Rule,
                     achievement: Achievement | None = None,
                     visiting: frozenset[int] = frozenset()) -> PathwayProgress:
    """Where ``held`` stands on ``rule`` (the stack ``achievement``'s, or an exam's)."""
    def group(choose: int | None, refs: tuple[Ref, ...]) -> GroupProgress:
        return GroupProgress(choose, tuple(_component(catalog, held, r, visiting) for r in refs))

    standing = held.credentials.get(achievement.id) if achievement is not None else None
    return PathwayProgress(
        holder_id=held.holder_id, rule=rule, description=rule.describe(catalog),
        required=group(None, rule.required),
        electives=tuple(group(g.choose, g.options) for g in rule.electives),
        achievement=achievement,
        held=standing.credential if standing is not None and standing.valid else None)


def evaluate(session: Session, holder_id: int, achievement: Achievement, *,
             now: dt.datetime | None = None, catalog: Catalog | None = None,
             held: Holdings | None = None, rule: Rule | None = None) -> PathwayProgress:
    """Where ``holder_id`` stands on the stack ``achievement`` at ``now``. ``rule`` evaluates a
    rule not saved yet (the editor's preview); ``catalog`` and ``held`` reuse what a page
    loaded once."""
    catalog = catalog or Catalog.load(session)
    held = held or holdings(session, holder_id, now)
    rule = rule or catalog.stack_rules.get(achievement.id) or Rule()
    return progress_of_rule(catalog, held, rule, achievement, frozenset({achievement.id}))


def holder_pathways(session: Session, holder_id: int, *, now: dt.datetime | None = None,
                    catalog: Catalog | None = None) -> list[PathwayProgress]:
    """Every active stack and cluster, with where the holder stands on it."""
    catalog = catalog or Catalog.load(session)
    held = holdings(session, holder_id, now)
    return [evaluate(session, holder_id, a, catalog=catalog, held=held)
            for a in catalog.pathways()]


# --- exam prerequisites -----------------------------------------------------------------------

@dataclass(frozen=True)
class ExamGate:
    """May the holder sit the exam, as far as its prerequisites go."""

    exam_id: int
    progress: PathwayProgress | None

    @property
    def open(self) -> bool:
        return self.progress is None or self.progress.complete

    @property
    def next_steps(self) -> list[ComponentProgress]:
        return [] if self.progress is None else self.progress.next_steps

    @property
    def refusal(self) -> str | None:
        """Why the exam is closed to the holder and what to do next, in their words."""
        if self.open:
            return None
        p = self.progress
        steps = []
        for c in p.next_steps:
            if c.ref.kind == "training":
                steps.append(f"complete the {c.name}"
                             + (" again (your completion has expired)"
                                if c.state == "expired" else ""))
            elif c.exam is not None:
                verb = "renew" if c.state == "expired" else "earn"
                steps.append(f"{verb} {c.name} by passing the exam {c.exam.title} "
                             f"({c.exam.code})")
            else:
                steps.append(f"earn {c.name}" + (f" (yours is {c.state})"
                                                 if c.state in ("expired", "revoked",
                                                                "suspended") else ""))
        text = f"This exam is open to holders of {p.description}."
        if steps:
            text += " Next step: " + "; ".join(steps) + "."
        return text


def eligible_for_exam(session: Session, holder_id: int, exam_id: int, *,
                      now: dt.datetime | None = None,
                      catalog: Catalog | None = None) -> ExamGate:
    """The exam's prerequisites for ``holder_id`` at ``now`` (open when it has none)."""
    rule = catalog.exam_rules.get(exam_id) if catalog else exam_rule(session, exam_id)
    if rule is None:
        return ExamGate(exam_id, None)
    catalog = catalog or Catalog.load(session)
    held = holdings(session, holder_id, now)
    return ExamGate(exam_id, progress_of_rule(catalog, held, rule, None, frozenset()))


# --- issuing completed stacks -----------------------------------------------------------------

def _evidence(c: ComponentProgress) -> openbadge.EvidenceInfo:
    if c.completion is not None:
        return openbadge.EvidenceInfo(
            name=c.name, genre="Training",
            narrative=f"Completed {c.name} on {c.completion.completed_at.date().isoformat()}.")
    cred = c.credential
    stack = cred.kind == "stack"
    return openbadge.EvidenceInfo(
        id=cred.json["id"], name=c.name,
        genre="Stack credential" if stack else "Component credential",
        narrative=(f"Completed the stack {c.name} on " if stack else f"Earned {c.name} on ")
        + f"{cred.issued_at.date().isoformat()}.")


def award_completed(session: Session, cfg: CredentialConfig, holder: Any, *,
                    now: dt.datetime | None = None) -> list[Credential]:
    """Issue each stack or cluster the holder has completed and does not hold now. Its
    evidence names the credentials (for a cluster, the stack credentials) and trainings that
    completed it."""
    from credentials.issuance import issue

    catalog = Catalog.load(session)
    issued: list[Credential] = []
    for _ in range(len(catalog.stack_rules) + 1):  # a stack completes the cluster above it
        held = holdings(session, holder.id, now)
        new = []
        for a in catalog.pathways():
            p = evaluate(session, holder.id, a, catalog=catalog, held=held)
            if p.held is not None or not p.complete:
                continue
            new.append(issue(session, cfg, achievement=a, holder=holder, kind="stack",
                             evidence=[_evidence(c) for c in p.counted]))
        if not new:
            break
        issued += new
    return issued
