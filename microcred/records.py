"""What a package reads of records another package owns: plain data, through one interface.

Credentials issue a badge for a released pass, name its holder and align the achievement to its
exam: people, exams and results are ``assessment``'s records. Credentials never import
``assessment`` for them:

- ``result_released`` carries a :class:`ReleasedResult`, everything its receivers need about
  the result (who, which exam, the score, when, and whether proctoring proctored it);
- anything else is read through :func:`records`: the :class:`Records` that the one package
  declaring ``Package.records`` provides (``assessment.records``), found through the package
  registry, so it needs no wiring call.

The types are frozen dataclasses of plain values: a reader cannot write through them, and
cannot lazy-load another package's rows from them.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Person:
    id: int
    display_name: str
    email: str


@dataclass(frozen=True)
class ExamDomain:
    """A content domain of the exam's blueprint (what an achievement aligns to)."""

    code: str
    name: str
    description: str


@dataclass(frozen=True)
class ScoreScale:
    """The scale a score is reported on: a pass needs at least ``passing``. An exam with an
    adopted cut reports scale scores (e.g. 100..500, passing 350); one without reports the
    percent of its items right (0..100, passing at its pass percent)."""

    lower: float
    upper: float
    passing: float
    #: ``scale`` (a scale score from the adopted cut) or ``percent`` (percent correct)
    kind: str = "scale"

    @classmethod
    def percent(cls, pass_percent: float) -> ScoreScale:
        return cls(0.0, 100.0, float(pass_percent), "percent")


@dataclass(frozen=True)
class ExamInfo:
    id: int
    code: str
    title: str
    program_name: str
    pass_percent: float
    domains: tuple[ExamDomain, ...]
    #: the scale of the exam's current cut (None: no cut adopted, the percent scale)
    scale: ScoreScale | None = None

    @property
    def reported_scale(self) -> ScoreScale:
        return self.scale or ScoreScale.percent(self.pass_percent)


@dataclass(frozen=True)
class ReleasedPass:
    """A pass whose result is released now (its newest release row says so): a row of the list
    an admin issues missing badges from."""

    result_id: int
    attempt_id: int
    candidate_id: int
    candidate_name: str
    percent: float
    finalized_at: dt.datetime
    #: the scale score under the exam's adopted cut (None: judged by the pass percent)
    scale_score: float | None = None


@dataclass(frozen=True)
class ReleasedResult:
    """A released result, as ``result_released`` carries it to its receivers."""

    result_id: int
    attempt_id: int
    candidate: Person
    exam: ExamInfo
    percent: float
    pass_percent: float
    passed: bool
    #: when the result was scored (the day a badge says the exam was passed)
    scored_at: dt.datetime
    #: when the release decision that stands was made
    released_at: dt.datetime
    #: what proctoring recorded about the attempt (``proctoring.sessions.attempt_summary``),
    #: answered by proctoring itself through ``signals.attempt_proctoring``; None: none
    proctoring: dict[str, Any] | None
    #: the scale score the result reports under its cut, and that cut's scale (None: the
    #: result was judged by the percent rule, and reports its percent)
    scale_score: float | None = None
    scale: ScoreScale | None = None
    #: how the decision was made: ``percent``, ``irt`` or ``number_correct``
    scoring_rule: str = "percent"

    @property
    def reported_score(self) -> float:
        """The score a badge states: the scale score, or the percent without a cut."""
        return self.scale_score if self.scale_score is not None else self.percent

    @property
    def reported_scale(self) -> ScoreScale:
        if self.scale_score is not None and self.scale is not None:
            return self.scale
        return ScoreScale.percent(self.pass_percent)

    @property
    def proctored(self) -> bool:
        """Whether the attempt was proctored, as proctoring's own policy decided: proctoring
        opens a session for every attempt its policy proctors (identity check, camera or
        review: any of them) and refuses to start one without it, and answers for exactly
        those. No other package re-reads the policy to guess."""
        return self.proctoring is not None


class Records(Protocol):
    """The reads other packages make of people, exams and results (``assessment.records``)."""

    def person(self, session: Session, user_id: int) -> Person | None: ...

    def people(self, session: Session, ids: set[int]) -> dict[int, Person]: ...

    def people_by_email(self, session: Session, emails: set[str]) -> dict[str, Person]:
        """Lower-cased email -> the person (a training completion names its holder so)."""
        ...

    def exam(self, session: Session, exam_id: int) -> ExamInfo | None: ...

    def exams(self, session: Session) -> list[ExamInfo]: ...

    def released_passes(self, session: Session, exam_id: int) -> list[ReleasedPass]: ...

    def released_result(self, session: Session, result_id: int) -> ReleasedResult | None: ...


def records() -> Records:
    """The one registered package's :class:`Records` (its ``Package.records``)."""
    from microcred.packages import RegistryError, hook, packages

    providers = [p for p in packages() if p.records]
    if len(providers) != 1:
        raise RegistryError(f"exactly one package must provide records (Package.records); "
                            f"found {[p.name for p in providers] or 'none'}")
    return hook(providers[0].records)
