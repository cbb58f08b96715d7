"""SQLite writers of every process queue on one file lock beside the database
(``assessment.database._serialise_writers``), so the next writer wakes as soon as the lock is
free instead of sleeping in SQLite's busy handler."""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import textwrap

import pytest
from sqlalchemy import text

from assessment.database import WRITERS_LOCK, make_engine


def _lockable_elsewhere(lock_file) -> bool:
    """Can another process take the file lock right now?"""
    probe = textwrap.dedent(f"""
        import fcntl, os, sys
        fd = os.open({str(lock_file)!r}, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            sys.exit(1)
        sys.exit(0)
    """)
    return subprocess.run([sys.executable, "-c", probe], check=False, timeout=30).returncode == 0


def test_a_write_transaction_holds_the_file_lock_until_its_connection_is_returned(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = make_engine(url, immediate=True)
    lock_file = tmp_path / ("db.sqlite" + WRITERS_LOCK)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    assert lock_file.exists()
    assert _lockable_elsewhere(lock_file)  # nothing open: free
    with engine.connect() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))  # begins: takes the locks
        assert not _lockable_elsewhere(lock_file)
        conn.commit()
    assert _lockable_elsewhere(lock_file)  # back in the pool: given back
    # nested begins of one thread (a savepoint's connection, a second session) take it once
    with engine.connect() as a, engine.connect() as b:
        a.execute(text("INSERT INTO t VALUES (2)"))
        assert not _lockable_elsewhere(lock_file)
        a.commit()
        b.execute(text("INSERT INTO t VALUES (3)"))
        assert not _lockable_elsewhere(lock_file)
        b.commit()
    assert _lockable_elsewhere(lock_file)
    # a read-only engine takes neither
    reader = make_engine(url)
    with reader.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 3
        assert _lockable_elsewhere(lock_file)
    engine.dispose()
    reader.dispose()


def test_writers_in_several_processes_all_commit(tmp_path):
    """Four processes of eight threads write at once: every transaction commits, none waits
    out the busy timeout or fails with "database is locked"."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = make_engine(url, immediate=True)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (worker INTEGER, n INTEGER)"))
    engine.dispose()
    writer = textwrap.dedent(f"""
        import sys, threading
        from sqlalchemy import text
        from assessment.database import make_engine
        engine = make_engine({url!r}, immediate=True)
        def run(t):
            for n in range(25):
                with engine.begin() as conn:
                    conn.execute(text("INSERT INTO t VALUES (:w, :n)"), {{"w": int(sys.argv[1]) * 8 + t, "n": n}})
        threads = [threading.Thread(target=run, args=(t,)) for t in range(8)]
        [t.start() for t in threads]
        [t.join() for t in threads]
    """)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    procs = [subprocess.Popen([sys.executable, "-c", writer, str(w)], env=env,
                              stderr=subprocess.PIPE) for w in range(4)]
    for p in procs:
        _out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()[-2000:]
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 4 * 8 * 25
        assert conn.execute(text("SELECT count(DISTINCT worker) FROM t")).scalar() == 32
    engine.dispose()


def test_a_forked_child_takes_the_lock_on_its_own_open_file(tmp_path):
    """A flock belongs to the open file: a worker forked by gunicorn's master must open its
    own, or the parent's descriptor would share the child's lock and both would "hold" it."""
    if not hasattr(os, "fork") or not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs fork and /proc")
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = make_engine(url, immediate=True)
    lock_file = tmp_path / ("db.sqlite" + WRITERS_LOCK)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))  # this process opens the lock file
    inherited = [int(fd) for fd in os.listdir("/proc/self/fd")
                 if os.path.realpath(f"/proc/self/fd/{fd}") == str(lock_file.resolve())]
    assert len(inherited) == 1
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: hold a write transaction until the parent has looked
        try:
            with engine.connect() as conn:
                conn.execute(text("INSERT INTO t VALUES (1)"))
                os.write(ready_w, b"1")
                os.read(done_r, 1)
                conn.commit()
        finally:
            os._exit(0)
    try:
        assert os.read(ready_r, 1) == b"1"
        # the descriptor this process opened before the fork cannot take it: the child's is
        # another open file
        with pytest.raises(BlockingIOError):
            fcntl.flock(inherited[0], fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.write(done_w, b"1")
        os.waitpid(pid, 0)
    assert _lockable_elsewhere(lock_file)
    engine.dispose()
