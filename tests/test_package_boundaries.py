"""Packages keep to their own tables (issue 10, item 2): credentials import nothing of
``assessment`` (they read people, exams and results through ``microcred.records`` and the
``ReleasedResult`` that ``result_released`` carries), and proctoring reads delivery only through
what delivery publishes (its read API and its clock controls), never its rows or services."""
from __future__ import annotations

import ast
from pathlib import Path

from microcred.records import records

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_credentials_import_nothing_of_assessment():
    offenders = {}
    for path in sorted((ROOT / "credentials").rglob("*.py")):
        if "migrations" in path.parts:
            continue
        bad = sorted(m for m in _imports(path) if m == "assessment" or m.startswith("assessment."))
        if bad:
            offenders[str(path.relative_to(ROOT))] = bad
    assert offenders == {}


def test_proctoring_reads_delivery_only_through_what_it_publishes():
    published = {"assessment.delivery.reads", "assessment.delivery.control"}
    for path in sorted((ROOT / "proctoring").rglob("*.py")):
        stray = {m for m in _imports(path) if m.startswith("assessment.delivery.")
                 and ".".join(m.split(".")[:3]) not in published}
        assert stray == set(), (path.name, stray)
    candidate = _imports(ROOT / "proctoring" / "candidate.py")
    assert not any(m.startswith("assessment") for m in candidate), candidate


def test_one_package_provides_the_records():
    from assessment.records import RECORDS

    assert records() is RECORDS
