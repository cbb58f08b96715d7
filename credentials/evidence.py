"""The ``Evidence`` of an exam credential (OB 3.0 §B.1.11): the pass, and how the exam was
proctored as the proctoring record shows it.

A signed credential is never edited, so it must claim only what was recorded. Proctoring's
facts come from proctoring itself: the released result carries what it answered
(:attr:`microcred.records.ReleasedResult.proctoring`, ``proctoring.sessions.attempt_summary``),
never the exam's policy (what was intended) nor proctoring's tables. Not proctored (no
proctoring session, or proctoring not installed): no proctoring claim at all.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from credentials.openbadge import EvidenceInfo
from microcred.records import ScoreScale

#: How an automated identity verifier is named in the evidence
AUTOMATED = {"face_count": "automated face check"}


def _day(iso: str) -> str:
    return iso[:10]


def proctoring_narrative(summary: dict[str, Any] | None,
                         name_of: Callable[[int], str | None]) -> str:
    """Sentences stating what the proctoring record shows; empty when there is no record."""
    if summary is None:
        return ""
    sentences: list[str] = []
    identity = summary.get("identity")
    if identity:
        automated = [AUTOMATED.get(v, f"{v} check") for v in identity["verifiers"]
                     if v != "proctor"]
        by_id = identity.get("admitted_by_id")
        name = name_of(by_id) if by_id is not None else None
        if by_id is not None:
            sentences.append(
                f"Identity admitted by the proctor {name or 'on duty'} on "
                f"{_day(identity['admitted_at'])}"
                + (f", after the {' and '.join(automated)} passed" if automated else "") + ".")
        else:
            sentences.append(f"Identity photos passed the {' and '.join(automated)} on "
                             f"{_day(identity['admitted_at'])}; no proctor reviewed them.")
    snapshots = summary.get("snapshots") or 0
    if snapshots:
        sentences.append(f"Proctored by camera: {snapshots} snapshot"
                         f"{'s' if snapshots != 1 else ''} recorded during the exam.")
    else:
        sentences.append("Taken in a proctoring session; no camera snapshots were recorded.")
    review = summary.get("review")
    if review and review.get("verdict") == "cleared":
        sentences.append(f"A proctoring review cleared the session on {_day(review['at'])}.")
    return " ".join(sentences)


def score_sentence(passed_on: str, score: float, scale: ScoreScale) -> str:
    """How the pass is stated: a scale score on its scale with its passing score, or, for an
    exam without an adopted cut, the percent of items right and the pass mark. Never a
    percent called a scaled score."""
    if scale.kind == "scale":
        return (f"Passed on {passed_on} with a scale score of {score:g} on a scale of "
                f"{scale.lower:g} to {scale.upper:g} (passing score {scale.passing:g}).")
    return (f"Passed on {passed_on} with {score:g}% of the items right "
            f"(pass mark {scale.passing:g}%).")


def exam_evidence(*, exam_title: str, exam_code: str, program_name: str | None,
                  passed_on: str, score: float, scale: ScoreScale,
                  proctored: bool, proctoring: dict[str, Any] | None,
                  name_of: Callable[[int], str | None]) -> EvidenceInfo:
    how = proctoring_narrative(proctoring, name_of)
    return EvidenceInfo(
        name=exam_title,
        description=f"Exam {exam_code}" + (f", {program_name}" if program_name else ""),
        narrative=score_sentence(passed_on, score, scale) + (f" {how}" if how else ""),
        genre="Proctored exam" if proctored else "Exam",
    )
