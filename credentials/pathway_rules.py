"""Editing pathway rules: parsing the editor's text, validating (unknown components, elective
counts, cycles in nesting), saving a new rule row, and the preview of who would qualify.

The editor's text: required components as a comma-separated list (``A, B, training:SAFETY``);
elective groups one per line, ``2 of C, D, E, F``. Every error names the field and, for
electives, the line.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy.orm import Session

from credentials.errors import CredentialError
from credentials.models import Achievement, PathwayRule
from credentials.pathways import (
    Catalog,
    Elective,
    PathwayProgress,
    Ref,
    Rule,
    evaluate,
    holders,
    holdings_of,
    progress_of_rule,
)
from microcred.records import records

ELECTIVE_LINE = re.compile(r"^\s*(\d+)\s+of\s+(.+)$", re.IGNORECASE)
#: a rule names at most this many components (a bigger one is a paste gone wrong)
MAX_COMPONENTS = 200


class RuleError(CredentialError):
    """A rule cannot be saved as written; ``field`` names the editor's field."""

    status, code = 422, "invalid_rule"


def _refs(text: str, field: str, where: str = "") -> list[Ref]:
    refs = [Ref.parse(part) for part in text.split(",") if part.strip()]
    for r in refs:
        if not r.code:
            raise RuleError(f"{where}an empty training code after 'training:'", field=field)
    return refs


def parse(required_text: str, electives_text: str) -> Rule:
    """The editor's two fields as a :class:`Rule` (not yet checked against the catalog)."""
    required = _refs(required_text or "", "required")
    groups = []
    for number, line in enumerate((electives_text or "").splitlines(), start=1):
        if not line.strip():
            continue
        m = ELECTIVE_LINE.match(line)
        if m is None:
            raise RuleError(f"electives line {number}: write it as '2 of C, D, E' "
                            f"(got {line.strip()[:80]!r})", field="electives")
        options = _refs(m.group(2), "electives", f"electives line {number}: ")
        groups.append(Elective(int(m.group(1)), tuple(options)))
    return Rule(tuple(required), tuple(groups))


def _path_to(catalog: Catalog, start: str, target: str) -> list[str] | None:
    """Achievement codes from ``start`` down to ``target`` through stack rules, if any."""
    stack = [(start, [start])]
    seen = set()
    while stack:
        code, path = stack.pop()
        if code == target:
            return path
        if code in seen:
            continue
        seen.add(code)
        a = catalog.achievements.get(code)
        rule = catalog.stack_rules.get(a.id) if a else None
        for r in rule.refs() if rule else []:
            if r.kind == "credential":
                stack.append((r.code, [*path, r.code]))
    return None


def validate(catalog: Catalog, rule: Rule, *, achievement: Achievement | None = None,
             exam_id: int | None = None) -> None:
    """Refuse a rule that cannot mean anything: unknown components, a component named twice,
    an elective count outside 1..options, a stack that contains itself, an empty stack rule."""
    if achievement is not None and rule.empty:
        raise RuleError("a stack needs at least one component", field="required")
    refs = rule.refs()
    if len(refs) > MAX_COMPONENTS:
        raise RuleError(f"a rule names at most {MAX_COMPONENTS} components, not {len(refs)}",
                        field="required")
    unknown_a = [r.code for r in refs if r.kind == "credential"
                 and r.code not in catalog.achievements]
    unknown_t = [r.code for r in refs if r.kind == "training" and r.code not in catalog.trainings]
    if unknown_a or unknown_t:
        parts = []
        if unknown_a:
            parts.append("unknown credential " + ", ".join(unknown_a))
        if unknown_t:
            parts.append("unknown training " + ", ".join(unknown_t))
        field = "required" if any(r.code in unknown_a + unknown_t for r in rule.required) \
            else "electives"
        raise RuleError("; ".join(parts) + " (use an achievement code, or training:<code>)",
                        field=field)
    seen: set[Ref] = set()
    for r in refs:
        if r in seen:
            raise RuleError(f"{r} is named twice: name each component once", field="electives")
        seen.add(r)
    for number, g in enumerate(rule.electives, start=1):
        if not 1 <= g.choose <= len(g.options):
            raise RuleError(f"electives line {number}: choose between 1 and {len(g.options)} "
                            f"of its {len(g.options)} option(s), not {g.choose}",
                            field="electives")
    if achievement is not None:
        if achievement.exam_id is not None:
            raise RuleError(f"{achievement.code} is earned by passing an exam; give the exam "
                            "prerequisites instead", field="required")
        for r in refs:
            if r.kind != "credential":
                continue
            loop = _path_to(catalog, r.code, achievement.code)
            if loop is not None:
                raise RuleError("a stack cannot contain itself: "
                                + " → ".join([achievement.code, *loop]), field="required")
    if exam_id is not None and catalog.exams.get(exam_id) is None:
        raise RuleError(f"there is no exam {exam_id}", field="exam")


def save(session: Session, rule: Rule, *, achievement: Achievement | None = None,
         exam_id: int | None = None, by_user_id: int | None = None) -> PathwayRule:
    """Validate and store ``rule`` as the new rule of the stack or the exam."""
    if (achievement is None) == (exam_id is None):
        raise RuleError("a rule belongs to one stack or one exam", field="subject")
    catalog = Catalog.load(session)
    validate(catalog, rule, achievement=achievement, exam_id=exam_id)
    required, electives = rule.as_data()
    row = PathwayRule(achievement_id=achievement.id if achievement else None, exam_id=exam_id,
                      required=required, electives=electives, created_by_id=by_user_id)
    session.add(row)
    if achievement is not None:
        # the N-of-M columns older readers show: the rule's achievements and its count
        achievement.is_stack = True
        achievement.stack_components = [r.code for r in rule.refs() if r.kind == "credential"]
        achievement.stack_required = len(rule.required) + sum(g.choose for g in rule.electives)
        # the criteria new credentials carry say what the rule now asks, unless an admin
        # wrote their own (the generated ones start "Earn ")
        if achievement.criteria.startswith("Earn ") or \
                achievement.criteria == "Pass the proctored exam.":
            achievement.criteria = f"Earn {rule.describe(catalog)}."
    session.flush()
    return row


@dataclass(frozen=True)
class PreviewRow:
    holder_id: int
    name: str
    email: str
    progress: PathwayProgress


def preview(session: Session, rule: Rule, *, achievement: Achievement | None = None,
            exam_id: int | None = None, now: dt.datetime | None = None,
            ) -> tuple[list[PreviewRow], list[PreviewRow]]:
    """Who would qualify under ``rule`` now, and who would be one component short, among
    everyone who holds a credential or a training; the rule is validated first."""
    catalog = Catalog.load(session)
    validate(catalog, rule, achievement=achievement, exam_id=exam_id)
    ids = holders(session)
    held = holdings_of(session, ids, now)
    people = records().people(session, set(ids))
    qualify, close = [], []
    for h in ids:
        if achievement is not None:
            p = evaluate(session, h, achievement, catalog=catalog, held=held[h], rule=rule)
        else:
            p = progress_of_rule(catalog, held[h], rule)
        person = people.get(h)
        row = PreviewRow(h, person.display_name if person else f"user {h}",
                         person.email if person else "", p)
        if p.complete:
            qualify.append(row)
        elif p.still_needed == 1:
            close.append(row)
    key = lambda r: (r.name.lower(), r.holder_id)
    return sorted(qualify, key=key), sorted(close, key=key)
