"""The suite's own behaviour: with PostgreSQL down, its half of the suite skips with one short
reason, said once in the summary (not a three-line driver error per test)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_postgresql_down_is_one_line_in_the_summary():
    env = {**os.environ, "MICROCRED_TEST_POSTGRES_URL":
           "postgresql+psycopg://postgres:secret@127.0.0.1:9/nowhere"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "postgresql",
         "tests/test_migrations.py"],  # two tests with a PostgreSQL half
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "2 skipped" in out
    skipped = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    assert len(skipped) == 1, out
    assert skipped[0].startswith("SKIPPED [") and "tests/conftest.py: PostgreSQL at " in skipped[0]
    assert "did not answer (Connection refused)" in skipped[0]
    assert "secret" not in out  # the password is not printed
    assert "Is the server running" not in out and "sqlalche.me" not in out
