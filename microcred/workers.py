"""How many processes a divisible job (a report's charts, its PDF in parts) should use by default.

Worker processes pay for themselves only on CPUs nobody else is using: on the shared 2-core
sandbox at load 14-20, the report PDF rendered in two processes took more wall time than in one
(each extra process costs about a fifth more CPU in imports, a second document and the merge,
and bought no idle core). So the default is one process per idle CPU, counted from the 1-minute
load average when the job starts (this process counts as the one running), at most ``maximum``.
"""
from __future__ import annotations

import math
import os


def default_workers(maximum: int) -> int:
    """``1 + idle CPUs`` (idle: CPUs minus the 1-minute load average, to the nearest whole), at
    least 1, at most the CPUs and ``maximum``."""
    cpus = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # no load average on this platform: assume the CPUs are free
        load = 1.0
    idle = math.floor(cpus - load + 0.5)
    return max(1, min(maximum, cpus, 1 + idle))
