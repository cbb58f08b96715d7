"""How many processes a divisible job (a report's charts, its PDF in parts) should use by default.

Worker processes pay for themselves only on CPUs nobody else is using: on the shared 2-core
sandbox at load 14-20, the report PDF rendered in two processes took more wall time than in one
(each extra process costs about a fifth more CPU in imports, a second document and the merge,
and bought no idle core). So the default is one process per idle CPU, at most ``maximum``.

"Idle" is measured over the last tenth of a second from ``/proc/stat`` (Linux), while this
process sleeps: the 1-minute load average, used before, still counted the job's own work of the
seconds before (its statistics, its chart workers), so a report on a quiet machine decided it
had no CPU to spare and rendered its PDF in one process (30 s instead of 20). Where there is no
``/proc/stat``, the load average stands in (this process counted as the one running).
"""
from __future__ import annotations

import math
import os
import time

#: how long the CPUs are watched before deciding (seconds)
SAMPLE_S = 0.1


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs, from ``/proc/stat``; None where there is none."""
    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    values = [int(v) for v in fields[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user time
    return total - idle, total


def busy_cpus() -> float:
    """How many CPUs other work keeps busy now: measured over :data:`SAMPLE_S` while this
    process sleeps; else the 1-minute load average less this process (0 if neither exists)."""
    first = _cpu_times()
    if first is not None:
        time.sleep(SAMPLE_S)
        second = _cpu_times()
        if second is not None and second[1] > first[1]:
            share = (second[0] - first[0]) / (second[1] - first[1])
            return max(0.0, share * (os.cpu_count() or 1))
    try:
        return max(0.0, os.getloadavg()[0] - 1.0)
    except OSError:  # no load average on this platform: assume the CPUs are free
        return 0.0


def default_workers(maximum: int) -> int:
    """One process per idle CPU (CPUs less :func:`busy_cpus`, to the nearest whole), at least
    1, at most the CPUs and ``maximum``."""
    cpus = os.cpu_count() or 1
    idle = math.floor(cpus - busy_cpus() + 0.5)
    return max(1, min(maximum, cpus, idle))
