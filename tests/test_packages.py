"""The registry of packages (``microcred.packages``): one list, from the entry-point group
``microcred.packages``, and one idempotent ``connect_receivers()``; importing a module connects
nothing."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

from blinker import NamedSignal

from microcred import signals
from microcred.db import Base
from microcred.packages import GROUP, PYPROJECT, packages

# every signal microcred.signals defines, so a new one is checked too
SIGNALS = tuple(sorted(name for name, value in vars(signals).items()
                       if isinstance(value, NamedSignal)))

PROBE = """
import json
from microcred import signals as registry
SIGNALS = SIGNALS_HERE

def counts():
    return {name: len(getattr(registry, name).receivers) for name in SIGNALS}

# every module that used to connect a receiver when imported (creating the app would connect)
import assessment.app, assessment.cli, assessment.delivery.service
import credentials.issuance, credentials.web, credentials.cli
import proctoring.wiring, proctoring.web, proctoring.cli
imported = counts()
from microcred.packages import connect_receivers
connect_receivers()
once = counts()
connect_receivers()
print(json.dumps({"imported": imported, "once": once, "twice": counts()}))
""".replace("SIGNALS_HERE", repr(SIGNALS))


def test_importing_connects_nothing_and_connect_receivers_wires_each_once(tmp_path: Path):
    assert {"attempt_started", "result_finalized", "result_released"} <= set(SIGNALS)
    env = {**os.environ, "MICROCRED_INSTANCE_DIR": str(tmp_path / "instance"),
           "MICROCRED_DATABASE_URL": f"sqlite:///{tmp_path / 'probe.db'}"}
    proc = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["imported"] == dict.fromkeys(SIGNALS, 0)
    assert seen["once"] == dict.fromkeys(SIGNALS, 1)
    assert seen["twice"] == seen["once"]


def test_the_entry_point_group_is_the_one_list():
    declared = tomllib.loads(PYPROJECT.read_text())["project"]["entry-points"][GROUP]
    names = [p.name for p in packages()]
    assert sorted(names) == sorted(declared)
    assert names[0] == "assessment"  # the foundation first: its migrations, then the others'
    installed = {ep.name: ep.value for ep in entry_points(group=GROUP)}
    if installed:  # an editable install made before the group existed reads pyproject.toml
        assert installed == declared


def test_every_package_hook_and_folder_exists():
    from microcred.packages import hook

    for package in packages():
        for spec in (package.receivers, package.web, package.cli):
            if spec:
                assert callable(hook(spec)), spec
        if package.migrations:
            assert any((package.folder() / package.migrations).glob("*.py")), package.name
    # the registry's models describe every table the migrations build (test_migrations checks
    # them column by column); here: each package with models contributes tables
    from assessment.models import load_all

    tables = set(load_all().metadata.tables)
    assert Base.metadata.tables.keys() == tables
    assert {"users", "attempts", "item_versions", "proctoring_sessions", "credentials"} <= tables
