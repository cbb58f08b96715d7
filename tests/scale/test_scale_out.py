"""Scale-out (issue 15, goal 5): two stateless ``microcred serve`` nodes behind Debian's HAProxy,
on PostgreSQL (a fresh database on the machine's server) and Redis (a server of the test's own).

A candidate's requests alternate between the nodes mid-exam (round robin, no stickiness: the
session cookie is signed with the shared key and read by either node; the attempt lives in the
database). Then one node is killed with SIGKILL mid-exam, master and workers at once: the exam
goes on through the other node, and every save the candidate saw acknowledged is in the
database as sent. Redis is stopped too, before the end: a second candidate still signs in (the
sign-in throttle falls back to the database) and the exam still submits.
"""
from __future__ import annotations

import itertools

import pytest

from tests.conftest import _create_pg_database, _drop_pg_database, _require_postgres
from tests.scale.cluster import Candidate, HAProxy, Node, Redis, prepare, require_binary

pytestmark = [pytest.mark.postgres, pytest.mark.faults]


@pytest.fixture
def pg_url():
    _require_postgres()
    url, name = _create_pg_database()
    yield url
    _drop_pg_database(name)


def test_two_nodes_behind_haproxy_survive_a_node_killed_mid_exam(pg_url, tmp_path):
    require_binary("haproxy", "Debian's haproxy package: `make haproxy`")
    emails = prepare(pg_url, n_candidates=2)
    redis = Redis(tmp_path)
    redis.start()
    nodes = [Node(name, tmp_path, pg_url, redis.url) for name in ("node1", "node2")]
    lb = HAProxy(tmp_path, nodes)
    candidates: list[Candidate] = []
    try:
        for node in nodes:
            node.start(wait=False)
        for node in nodes:
            node.wait_healthy()
        lb.start()

        alice = Candidate(lb.base_url, emails[0])
        candidates.append(alice)
        alice.sign_in()
        alice.start()
        # Mid-exam, each request goes to the next node: the session and the attempt are shared.
        before = len(alice.served_by)
        for _ in range(12):
            alice.save()
            alice.heartbeat()
        mid = alice.served_by[before:]
        assert set(mid) == {"node1", "node2"}, mid
        switches = sum(a != b for a, b in itertools.pairwise(mid))
        assert switches >= len(mid) // 2, f"round robin expected, got {mid}"

        # node1 dies at once (master, workers, sweeper, job worker): no graceful anything.
        nodes[0].kill()
        for _ in range(10):
            alice.save()
        assert alice.served_by[-5:] == ["node2"] * 5, alice.served_by[-10:]

        # Redis goes away: sign-in (throttle counters) and saves carry on through the database.
        redis.stop()
        bob = Candidate(lb.base_url, emails[1])
        candidates.append(bob)
        bob.sign_in()
        bob.start()
        for _ in range(3):
            alice.save()
            bob.save()
        alice.submit()
        bob.submit()

        for who in (alice, bob):
            assert who.acked, "nothing was acknowledged"
            assert who.lost(pg_url) == {}, f"acknowledged saves lost: {who.lost(pg_url)}"
    except BaseException:
        for proc in (*nodes, lb, redis):
            print(f"--- {proc.log.name}\n{proc.tail()}")
        raise
    finally:
        for c in candidates:
            c.close()
        lb.stop()
        for node in nodes:
            node.stop()
        redis.stop()
