"""microcred.heap: a long-running process's start is frozen out of the collector's walks."""
from __future__ import annotations

import gc
import subprocess
import sys
import weakref

from microcred.heap import settle


class _Node:
    pass


def test_settle_freezes_what_exists_and_collects_what_is_garbage():
    kept = [object() for _ in range(3)]
    cycle = _Node()
    cycle.me = cycle  # garbage only the cyclic collector can free
    gone = weakref.ref(cycle)
    del cycle
    try:
        frozen = settle()
        assert gone() is None  # collected before the freeze, not frozen forever
        assert frozen == gc.get_freeze_count() > 0
        assert not any(o is kept for o in gc.get_objects())  # frozen: no longer walked
        after = [1, [2]]  # made after: collected as always
        assert any(o is after for o in gc.get_objects())
    finally:
        gc.unfreeze()  # the rest of this test process collects as before
    assert any(o is kept for o in gc.get_objects())


def test_the_web_app_settles_once_started(tmp_path):
    """assessment.wsgi (what granian and gunicorn load in each worker) settles after making the
    app: a fresh interpreter that imports it has its start frozen."""
    code = ("import gc, assessment.wsgi; "
            "print(gc.get_freeze_count())")
    env = {"MICROCRED_INSTANCE_PATH": str(tmp_path), "PATH": "/usr/bin:/bin",
           "MICROCRED_DATABASE_URL": f"sqlite:///{tmp_path}/m.db"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120, check=True)
    assert int(out.stdout.strip().splitlines()[-1]) > 50_000, out.stderr[-2000:]
