"""Faults (issue 15, goal 8), each with 0 acknowledged saves lost: a save the candidate saw
acknowledged is in the database as sent, whatever broke meanwhile; a save that was not
acknowledged is sent again by the runner (here: ``Candidate.save`` retries the same ``seq``).

One PostgreSQL server of the test's own (initdb into a temporary folder, another port; never the
machine's) serves every test here; each test breaks something of its own:

- PostgreSQL restarted mid-exam (fast shutdown, then started again);
- a network partition between the node and PostgreSQL (a TCP relay the test cuts, then heals);
- a gunicorn worker killed with SIGKILL (the master starts another);
- the whole server stopped (SIGTERM) and started again, then killed (SIGKILL) and started again;
- Redis down is in ``test_scale_out.py`` (sign-in and saves go on through the database).

SQLite's disk full is ``test_sqlite_disk_full.py``.
"""
from __future__ import annotations

import os
import signal
import time

import pytest

from tests.scale.cluster import Candidate, Node, Postgres, TcpProxy, prepare

pytestmark = [pytest.mark.postgres, pytest.mark.faults]


@pytest.fixture(scope="module")
def own_pg(tmp_path_factory):
    pg = Postgres(tmp_path_factory.mktemp("pg"))
    try:
        pg.init()
        prepare(pg.url, n_candidates=4)
        yield pg
    finally:
        pg.remove()


@pytest.fixture
def run(tmp_path):
    """Starts nodes and candidates; stops them, printing their logs when the test failed."""
    started: list = []

    class Run:
        def node(self, url: str, **kw) -> Node:
            node = Node(f"n{len(started)}", tmp_path, url, None, **kw)
            started.append(node)
            node.start()
            return node

        def candidate(self, base_url: str, email: str) -> Candidate:
            c = Candidate(base_url, email)
            started.append(c)
            c.sign_in()
            c.start()
            return c

    try:
        yield Run()
    finally:
        for thing in reversed(started):
            if isinstance(thing, Node):
                print(f"--- {thing.log.name}\n{thing.tail()}")
                thing.stop()
            else:
                thing.close()


def _assert_nothing_lost(who: Candidate, url: str) -> None:
    assert who.acked, "nothing was acknowledged"
    assert who.lost(url) == {}, f"acknowledged saves lost: {who.lost(url)}"


def test_postgres_restarted_mid_exam(own_pg, run):
    node = run.node(own_pg.url)
    alice = run.candidate(node.base_url, "scale-candidate-0@example.org")
    for _ in range(5):
        alice.save()
    own_pg.stop()  # fast shutdown: every connection of the node's pool is cut
    failures = len(alice.failures)
    # The restart happens while a save waits for its acknowledgement.
    import threading

    restarter = threading.Timer(1.5, own_pg.start)
    restarter.start()
    try:
        alice.save()
    finally:
        restarter.join()
    assert len(alice.failures) > failures, "the save was acknowledged with the database down"
    for _ in range(5):
        alice.save()
    alice.submit()
    _assert_nothing_lost(alice, own_pg.url)


def test_network_partition_between_node_and_database(own_pg, run):
    proxy = TcpProxy(own_pg.port)
    try:
        url = own_pg.url.replace(f":{own_pg.port}/", f":{proxy.port}/")
        node = run.node(url)
        bob = run.candidate(node.base_url, "scale-candidate-1@example.org")
        for _ in range(5):
            bob.save()
        proxy.cut()
        failures = len(bob.failures)
        import threading

        healer = threading.Timer(2.0, proxy.heal)
        healer.start()
        try:
            bob.save()  # refused (not acknowledged) while cut, acknowledged once healed
        finally:
            healer.join()
        assert len(bob.failures) > failures, "a save was acknowledged across a partition"
        for _ in range(5):
            bob.save()
        bob.submit()
    finally:
        proxy.close()
    _assert_nothing_lost(bob, own_pg.url)


def test_worker_killed_and_server_restarted(own_pg, run):
    node = run.node(own_pg.url, workers=2)
    carol = run.candidate(node.base_url, "scale-candidate-2@example.org")
    for _ in range(5):
        carol.save()
    # A gunicorn worker dies at once; the master forks another, saves go on.
    workers = node.worker_pids()
    assert workers, "no gunicorn worker found"
    for pid in workers[:1]:
        os.kill(pid, signal.SIGKILL)
    for _ in range(6):
        carol.save()
    # The whole server stopped gracefully and started again (same port, same cookie).
    node.stop()
    node.start()
    for _ in range(3):
        carol.save()
    # And killed outright (master and workers at once), then started again.
    node.kill()
    time.sleep(0.2)
    node.start()
    for _ in range(3):
        carol.save()
    carol.submit()
    _assert_nothing_lost(carol, own_pg.url)
