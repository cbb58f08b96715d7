"""Group commit (``assessment.delivery.groupcommit``): saves arriving together share one SQLite
transaction, each answered only after the COMMIT that holds it; a failing save falls back
alone, a failing group as a whole, and nothing is answered that is not committed, even when
the process is killed mid-group."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Column, ForeignKey, Integer, MetaData, Table, insert, select, text

from assessment.database import make_engine
from assessment.delivery.groupcommit import GroupCommitter

META = MetaData()
PARENTS = Table("parents", META, Column("id", Integer, primary_key=True))
ROWS = Table("rows", META, Column("id", Integer, primary_key=True),
             Column("parent", Integer, ForeignKey("parents.id")))


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'gc.db'}", immediate=True)
    META.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(PARENTS).values(id=1))
    yield engine
    engine.dispose()


def _stored(engine) -> set[int]:
    with engine.connect() as conn:
        return set(conn.scalars(select(ROWS.c.id)))


def _store(row_id: int, parent: int = 1):
    def work(conn):
        conn.execute(insert(ROWS).values(id=row_id, parent=parent))
        return row_id
    return work


def _grouped(committer: GroupCommitter, works: list, first=None,
             here: frozenset[int] = frozenset(),
             callers: dict[int, int] | None = None) -> dict[int, object]:
    """Run ``works`` from threads of their own, all in one group: a first save holds the
    transaction before until every one of them is queued (so the next group takes them all).
    The works whose index is in ``here`` go through ``run_here``; ``callers``, when given, is
    filled with each work's calling thread."""
    results: dict[int, object] = {}
    queued = threading.Event()

    def hold(conn):
        assert queued.wait(10), "the other saves never queued"
        return first(conn) if first else "first"

    def run(i, work):
        if callers is not None:
            callers[i] = threading.get_ident()
        try:
            results[i] = (committer.run_here if i in here else committer.run)(work)
        except Exception as exc:  # noqa: BLE001 - the test looks at what was raised
            results[i] = exc

    holder = threading.Thread(target=run, args=(-1, hold))
    holder.start()
    while not committer._leading:
        time.sleep(0.001)
    threads = [threading.Thread(target=run, args=(i, w)) for i, w in enumerate(works)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while len(committer._queue) < len(works) and time.monotonic() < deadline:
        time.sleep(0.001)
    queued.set()
    for t in (holder, *threads):
        t.join(10)
    return results


def test_saves_arriving_together_commit_in_one_transaction(engine):
    committer = GroupCommitter(engine)
    commits = []
    from sqlalchemy import event

    event.listen(engine, "commit", lambda conn: commits.append(1))
    sent: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *rest: sent.append(statement))
    results = _grouped(committer, [_store(i) for i in range(1, 11)], first=_store(1000))
    assert [results[i] for i in range(10)] == list(range(1, 11))
    assert _stored(engine) == {*range(1, 11), 1000}
    # the first save alone, then the ten queued behind it together
    assert committer.groups == 2 and committer.grouped == 10 and len(commits) == 2
    # each save of a group as it is: no savepoint around it, when none declines or fails
    assert not [q for q in sent if "SAVEPOINT" in q.upper()], sent
    assert committer.redone == 0


def test_one_failing_or_declined_save_leaves_the_others_stored(engine):
    committer = GroupCommitter(engine)

    def broken(conn):
        conn.execute(insert(ROWS).values(id=100))
        conn.execute(text("INSERT INTO no_such_table VALUES (1)"))  # a database error

    def declined(conn):  # the hot path said no (None): what it wrote must go
        conn.execute(insert(ROWS).values(id=200))

    def bug(conn):
        conn.execute(insert(ROWS).values(id=300))
        raise KeyError("a bug in the work")

    results = _grouped(committer, [_store(1), broken, _store(2), declined, bug, _store(3)])
    assert results[0] == 1 and results[2] == 2 and results[5] == 3
    assert results[1] is None and results[3] is None  # both go to Flask's own path
    assert isinstance(results[4], KeyError)  # raised in the request's own thread
    assert _stored(engine) == {1, 2, 3}
    assert committer.fell_back == 1
    # the group ran once as it is, then, once a save had declined, each in a savepoint
    assert committer.redone == 1


def test_a_group_run_again_runs_a_view_work_again_on_its_thread_and_stores_it_once(engine):
    """A ``run_here`` work (a view's writes) that ran before a plain save declined: the group's
    transaction is undone and run again, and the view's work with it, on its caller's thread
    again; every stored work is stored once, and answered from the run that was committed."""
    committer = GroupCommitter(engine)
    runs: dict[int, list[int]] = {}

    def view(row_id):
        def work(conn):
            runs.setdefault(row_id, []).append(threading.get_ident())
            if len(runs[row_id]) > 1:  # the leader waits for its turn to end, the second too
                time.sleep(0.3)
            conn.execute(insert(ROWS).values(id=row_id, parent=1))
            return (row_id, len(runs[row_id]))
        return work

    def declined(conn):
        conn.execute(insert(ROWS).values(id=200))

    callers: dict[int, int] = {}
    results = _grouped(committer, [_store(2), view(1), declined, view(3), _store(4)],
                       here=frozenset({1, 3}), callers=callers)
    # the first run stopped at the declined save: the view before it ran twice, the one
    # after it once; each answered from its last run
    assert results[1] == (1, 2) and results[3] == (3, 1)
    assert results[0] == 2 and results[4] == 4 and results[2] is None
    assert runs[1] == [callers[1], callers[1]] and runs[3] == [callers[3]]
    assert _stored(engine) == {1, 2, 3, 4}
    assert committer.redone == 1


def test_a_failing_commit_acknowledges_nothing_of_its_group(engine):
    """The group's COMMIT fails (a deferred foreign key, checked at COMMIT as a full disk or
    an I/O error would fail it): no save of the group is answered, none is stored; each goes
    to the per-save path."""
    committer = GroupCommitter(engine)

    def dangling(conn):
        conn.exec_driver_sql("PRAGMA defer_foreign_keys=ON")
        conn.execute(insert(ROWS).values(id=50, parent=999))  # refused only at COMMIT
        return 50

    results = _grouped(committer, [_store(1), dangling, _store(2)])
    assert [results[i] for i in range(3)] == [None, None, None]
    assert _stored(engine) == set()
    assert committer.fell_back == 3
    # and the committer goes on: the next save commits
    assert committer.run(_store(7)) == 7 and _stored(engine) == {7}


def test_an_unexpected_failure_of_the_commit_answers_no_save(engine):
    """Whatever fails between the saves and the end of the COMMIT (here an exception that is
    not a database error, raised as the COMMIT starts), no save of the group gets an answer:
    answers are handed out only after the COMMIT returned."""
    from sqlalchemy import event

    committer = GroupCommitter(engine)
    armed = []

    def explode(conn):
        if armed:
            raise RuntimeError("the commit went wrong")

    event.listen(engine, "commit", explode)

    def first(conn):
        armed.append(1)  # from now on, COMMITs fail: the group's below
        conn.execute(insert(ROWS).values(id=1000))
        return 1000

    results = _grouped(committer, [_store(1), _store(2)], first=first)
    # the first save (alone) raised in its own thread; of the group, the thread that ran the
    # COMMIT raised too, the other got None (the full path): neither is acknowledged
    assert isinstance(results[-1], RuntimeError)
    assert {type(results[0]), type(results[1])} <= {type(None), RuntimeError}
    event.remove(engine, "commit", explode)
    assert _stored(engine) == set()


def test_work_run_here_runs_on_its_own_thread_in_the_shared_transaction(engine):
    """``run_here``'s work (a Flask view's writes) runs on the thread that called it, in the
    group's one transaction with the others, which run on the leader's thread; a bug in one
    is raised in its own thread and leaves the rest of the group stored."""
    from sqlalchemy import event

    committer = GroupCommitter(engine)
    commits, ran_on = [], {}
    event.listen(engine, "commit", lambda conn: commits.append(1))

    def store(row_id):
        def work(conn):
            ran_on[row_id] = threading.get_ident()
            conn.execute(insert(ROWS).values(id=row_id, parent=1))
            return row_id
        return work

    def bug(conn):
        ran_on[300] = threading.get_ident()
        conn.execute(insert(ROWS).values(id=300))
        raise KeyError("a bug in the view")

    callers: dict[int, int] = {}
    results = _grouped(committer, [store(1), store(2), store(3), bug, store(4)],
                       first=store(1000), here=frozenset({1, 3, 4}), callers=callers)
    assert [results[i] for i in (0, 1, 2, 4)] == [1, 2, 3, 4]
    assert isinstance(results[3], KeyError)  # raised in its caller's thread
    assert _stored(engine) == {1, 2, 3, 4, 1000}
    assert committer.groups == 2 and len(commits) == 2  # the holder alone, then the five
    # run: both on the thread that led the group (whichever of the five took the lead)
    assert ran_on[1] == ran_on[3] and ran_on[1] in callers.values()
    # run_here: each on its caller's thread, whoever led
    assert (ran_on[2], ran_on[300], ran_on[4]) == (callers[1], callers[3], callers[4])


CHILD = textwrap.dedent("""
    import sys, threading, itertools
    from sqlalchemy import insert
    from assessment.database import make_engine
    from assessment.delivery.groupcommit import GroupCommitter
    from tests.delivery.test_group_commit import ROWS

    engine = make_engine(sys.argv[1], immediate=True)
    committer = GroupCommitter(engine)
    ids = itertools.count(1)
    out = threading.Lock()

    def work(row_id):
        def run(conn):
            conn.execute(insert(ROWS).values(id=row_id, parent=1))
            return row_id
        return run

    def writer():
        while True:
            row_id = next(ids)
            if committer.run(work(row_id)) == row_id:
                with out:  # acknowledged: printed only after the COMMIT that holds it
                    sys.stdout.write(f"{row_id}\\n")
                    sys.stdout.flush()

    for _ in range(8):
        threading.Thread(target=writer, daemon=True).start()
    threading.Event().wait()
""")


def test_nothing_acknowledged_is_lost_when_the_process_is_killed_mid_group(engine, tmp_path):
    """A process of 8 threads saving through one committer, killed with SIGKILL while groups
    commit: every save it acknowledged is in the database afterwards."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(engine.url)], env=env,
                             stdout=subprocess.PIPE, text=True)
    acked: list[int] = []
    deadline = time.monotonic() + 30
    while len(acked) < 200 and time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            break
        acked.append(int(line))
    os.kill(child.pid, signal.SIGKILL)
    rest, _ = child.communicate(timeout=10)
    acked += [int(x) for x in rest.split()]  # acknowledged before the kill, still buffered
    assert len(acked) >= 200, "the child acknowledged too few saves"
    stored = _stored(engine)
    assert set(acked) <= stored, f"acknowledged but lost: {sorted(set(acked) - stored)[:10]}"
