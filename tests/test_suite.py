"""The suite's and the Makefile's own behaviour: with PostgreSQL down, its half of the suite
skips with one short reason, said once in the summary (not a three-line driver error per test);
`make run` installs no test tools and no transitional editable mode, `make test` does install
the test tools. (A clean clone's `make run` was also tried by hand: see the commit log.)"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_postgresql_down_is_one_line_in_the_summary():
    env = {**os.environ, "MICROCRED_TEST_POSTGRES_URL":
           "postgresql+psycopg://postgres:secret@127.0.0.1:9/nowhere"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "postgresql",
         "tests/test_migrations.py"],  # a few tests with a PostgreSQL half
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    counts = re.search(r"(\d+) skipped", out)
    assert counts and int(counts.group(1)) >= 2 and " passed" not in out, out
    skipped = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    assert len(skipped) == 1, out
    assert skipped[0].startswith("SKIPPED [") and "tests/conftest.py: PostgreSQL at " in skipped[0]
    assert "did not answer (Connection refused)" in skipped[0]
    assert "secret" not in out  # the password is not printed
    assert "Is the server running" not in out and "sqlalche.me" not in out


def _make_dry_run(tmp_path: Path, target: str) -> str:
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    proc = subprocess.run(["make", "-n", target], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_make_run_installs_to_serve_and_make_test_to_test(tmp_path: Path):
    run = _make_dry_run(tmp_path, "run")
    installs = [line for line in run.splitlines() if "pip install" in line and "-e" in line]
    assert installs == [".venv/bin/pip install -q -e ."], run
    assert "microcred serve" in run and "compat" not in run
    test = _make_dry_run(tmp_path, "test")
    assert ".venv/bin/pip install -q -e '.[test]'" in test and "compat" not in test
