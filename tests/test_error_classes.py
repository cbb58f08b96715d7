"""One base for domain errors (issue 10, item 4).

Every error a package raises for a request it cannot honour derives from
:class:`microcred.errors.DomainError`, so the app's one handler turns it into a 4xx with its
message. The numeric library imports nothing of ours: its input errors derive from
:class:`psychometrics.errors.PsychometricsError`, which the edges (its CLI, the workspace) catch
by name, so a genuine bug (a bare ``ValueError`` from numpy) is never shown as a user message.
"""
from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

from microcred.errors import DomainError
from psychometrics.errors import PsychometricsError

ROOT = Path(__file__).resolve().parent.parent

#: Exceptions that are not a user's doing, each with why: they must reach the log, not a page.
NOT_DOMAIN = {
    "assessment.config.ConfigError": "the operator's environment is wrong; the process stops",
    "assessment.demo_program.DemoError": "the demo seeding command failed",
    "microcred.db.ImmutableRowError": "code tried to edit an append-only row: a bug",
    "microcred.jobs.JobError": "the job queue is unreachable or a job name is not registered: "
                               "infrastructure, caught where a job is queued",
    "microcred.packages.RegistryError": "the installed packages are wired wrongly",
    "microcred.web.ApiError": "the HTTP edge's own response, not a domain condition",
    "microcred.writer.RefusedMessage": "a message to the node's writer that would build a "
                                       "class it does not carry: refused inside the node, "
                                       "never a user's request",
    "proctoring.images.ProctoringKeyError": "the operator's image key is wrong or was changed",
}


def _modules(package: str):
    pkg = importlib.import_module(package)
    yield pkg
    for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}."):
        if ".migrations" in info.name or info.name.endswith((".wsgi", ".__main__")):
            continue  # alembic scripts and entry points (which start something) define none
        yield importlib.import_module(info.name)


def _error_classes(package: str) -> dict[str, type]:
    found = {}
    for module in _modules(package):
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (cls.__module__ == module.__name__ and issubclass(cls, Exception)
                    and not issubclass(cls, Warning)):
                found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return found


@pytest.mark.parametrize("package", ["assessment", "credentials", "itembank", "microcred",
                                     "proctoring"])
def test_every_domain_error_derives_from_the_one_base(package):
    classes = _error_classes(package)
    assert classes, f"{package} defines no exceptions? the walk is broken"
    strays = sorted(name for name, cls in classes.items()
                    if name not in NOT_DOMAIN and not issubclass(cls, DomainError))
    assert strays == [], f"domain errors outside DomainError: {strays}"
    assert not any(issubclass(classes[n], DomainError) for n in NOT_DOMAIN if n in classes)


def test_named_errors_are_domain_errors():
    """The ones the review named, so the walk above cannot pass by missing them."""
    from assessment.exams import ExamError
    from assessment.psych.errors import AnalysisError
    from assessment.psych.views import UnknownExam
    from assessment.users import UserError
    from credentials.errors import CredentialError
    from itembank.types import ItemDefinitionError

    for cls in (UserError, ExamError, AnalysisError, ItemDefinitionError, UnknownExam,
                CredentialError):
        assert issubclass(cls, DomainError), cls
        assert 400 <= cls.status < 500 and cls.code != DomainError.code, cls


def test_psychometrics_errors_derive_from_its_own_base():
    classes = _error_classes("psychometrics")
    assert "psychometrics.errors.ResponseDataError" in classes
    assert all(issubclass(cls, PsychometricsError) for cls in classes.values()), classes
    assert not issubclass(PsychometricsError, DomainError)  # the library imports nothing of ours


def test_psychometrics_raises_no_bare_value_error():
    """Input validation raises PsychometricsError; a bare ValueError would be caught nowhere
    (the edges catch PsychometricsError by name) rather than shown as if it were the user's."""
    bare = []
    for path in sorted((ROOT / "psychometrics").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and node.exc is not None:
                target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if isinstance(target, ast.Name) and target.id == "ValueError":
                    bare.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert bare == []


def test_edges_catch_psychometrics_errors_by_name():
    """The CLI and the workspace catch PsychometricsError, never ValueError around a library
    call: a numpy bug must surface as a bug."""
    offenders = []
    for path in (ROOT / "psychometrics" / "cli.py", *(ROOT / "assessment" / "psych").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ExceptHandler) and node.type is not None:
                names = {n.id for n in ast.walk(node.type) if isinstance(n, ast.Name)}
                if "PsychometricsError" in names and "ValueError" in names:
                    offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []
