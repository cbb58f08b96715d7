"""Keeping Python's cyclic garbage collector from pausing a long-running process.

A web worker holds some 250,000 objects it made while starting (modules, the app, the ORM's
mappers, compiled templates), none of them ever garbage. CPython's oldest-generation collection
walks every one of them: measured at 150 ms in one web worker, and 150-360 ms under the
node-capacity bench's 5,000 candidates (``bench/node_capacity.py``), every half-minute or so.
The whole process stops meanwhile, its threads' requests with it, and a thread that holds
SQLite's write lock holds it through the pause, so every writer of every process waits too
(at 5,000 candidates, a run before the freeze answered 259 requests 503, one after it 36).

:func:`settle`, called once a process has started (the web app, the sweeper, the job worker,
the face checker), collects what is garbage of the start and freezes the rest (``gc.freeze``):
a full collection of a worker at rest then takes well under a millisecond, and under 5,000
candidates the oldest generation's took 10-50 ms (what the requests made since). Objects made
later are collected as always.
"""
from __future__ import annotations

import gc


def settle() -> int:
    """Collect the start's garbage, then move every object left out of the collector's reach.
    Returns how many objects are now frozen (for the log and the tests)."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
