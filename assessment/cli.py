"""The ``microcred`` command: set up the database, load the demo, serve, manage users, sweep,
run background jobs (``worker``).

Every registered package (``microcred.packages``) adds its commands through the ``register(group)``
its ``Package.cli`` names, and every command runs with every package's signal receivers
connected: a sweep that finalizes a pass issues its badge as the web does.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import click

from assessment.config import Settings
from microcred.backpressure import SPARE_THREADS, threads_for_limit
from microcred.commands import CommandContext, stop_with_parent
from microcred.heap import settle
from microcred.inputs import is_whole
from microcred.packages import connect_receivers, hook, packages

if TYPE_CHECKING:
    from assessment.database import Database


class _Group(click.Group):
    """Turns a bad ``MICROCRED_*`` setting into a one-line error instead of a traceback."""

    def invoke(self, ctx: click.Context):
        from assessment.config import ConfigError

        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Group, help="Microcred: proctored micro-credential exams.")
@click.pass_context
def main(ctx: click.Context) -> None:
    connect_receivers()
    from assessment.jobs import use_process_queue

    # a job a command's commit asks for (a pass the sweeper released owes its badge) goes to
    # the settings' queue, opened on first use; a worker runs it
    use_process_queue(_command_queue)
    ctx.obj = CommandContext(open_session=_open_session, migrated=_migrated)


def _command_queue():
    from assessment.jobs import build_queue

    settings = Settings.from_env()
    return build_queue(settings, _database(settings).session)


def _open_session():
    return _database(Settings.from_env()).session(write=True)


def _migrated() -> bool:
    from assessment.migrate import pending

    settings = Settings.from_env()  # a bad setting stops the command with its message
    try:
        return not pending(settings.database_url)
    except Exception:  # noqa: BLE001 - no database (yet): not migrated
        return False


def _database(settings: Settings):
    from assessment.database import Database
    from assessment.models import load_all

    load_all()
    return Database(settings.database_url)


def _require_migrated(settings: Settings) -> None:
    from assessment.migrate import pending

    if pending(settings.database_url):
        raise click.ClickException(
            "the database schema is not up to date; run `microcred init` first"
        )


def _migrated_session():
    """A session on the configured database, which must be migrated (else the command's error)."""
    settings = Settings.from_env()
    _require_migrated(settings)
    return _database(settings).session()


def _exam(session, code: str):
    """The exam with ``code``; an unknown code is the command's error."""
    from assessment.exams import exam_by_code

    found = exam_by_code(session, code)
    if found is None:
        raise click.ClickException(f"no exam {code}")
    return found


@main.command()
def init() -> None:
    """Create the database, or migrate it to the newest schema."""
    from assessment.migrate import pending, upgrade

    settings = Settings.from_env()
    if not pending(settings.database_url):
        click.echo(f"database is up to date: {_redact(settings.database_url)}")
        return
    upgrade(settings.database_url)
    click.echo(f"database ready: {_redact(settings.database_url)}")


@main.command()
@click.option("--if-empty", is_flag=True, help="Do nothing when the database already has users.")
@click.option("--history", default=500, show_default=True, help="Simulated past candidates.")
def demo(if_empty: bool, history: int) -> None:
    """Load the demo program "Clinical Coding Fundamentals" and its four demo users."""
    from assessment.demo_program import DemoError, load_demo

    settings = Settings.from_env()
    _require_migrated(settings)
    db = _database(settings)
    with db.session() as session:
        try:
            creds = load_demo(session, history=history, if_empty=if_empty)
        except DemoError as exc:
            session.rollback()
            raise click.ClickException(str(exc)) from None
        session.commit()
    path = settings.instance_dir / "demo-credentials.txt"
    if creds is None:
        click.echo("the database already has users; demo not loaded")
        if path.is_file():  # `make run` shows the sign-ins on every start, from here
            click.echo(f"Demo sign-ins (from {path}):")
            for line in path.read_text().splitlines():
                click.echo("  " + line)
        return
    widths = [max(len(row[i]) for row in creds) for i in range(2)]
    lines = [f"{role:{widths[0]}}  {email:{widths[1]}}  {password}"
             for role, email, password in creds]
    path.write_text("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    click.echo("demo program loaded. Sign in with:")
    for line in lines:
        click.echo("  " + line)
    click.echo(f"(also written to {path})")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=None, type=click.IntRange(min=1),
              help="Default: max(2, cores) for threaded workers; 2 x cores + 1 for one thread "
                   "per worker.")
@click.option("--threads", default=None, type=click.IntRange(min=1),
              help="Threads per worker that run requests (granian: its blocking threads; "
                   "gunicorn: 1 is its sync worker, more its gthread worker). Default: "
                   f"MICROCRED_MAX_IN_FLIGHT + {SPARE_THREADS}, so that the backpressure limit "
                   "acts (docs/scale-out.md).")
@click.option("--server", "server_kind", default="granian", show_default=True,
              envvar="MICROCRED_SERVER", type=click.Choice(["granian", "gunicorn"]),
              help="The HTTP server: granian (HTTP in Rust), or gunicorn (HTTP in Python: "
                   "about 1.5 times the CPU per save and 2.5 times per heartbeat, measured in "
                   "docs/scale-out.md).")
@click.option("--sweep-every", default=30, show_default=True, type=int,
              help="Seconds between sweeps that finalize attempts whose time ran out (0: off).")
@click.option("--job-workers", default=1, show_default=True, type=click.IntRange(0, 64),
              help="Threads of the job worker started beside the server (0: start none, run "
                   "`microcred worker` yourself).")
@click.option("--face-workers", default=1, show_default=True, type=click.IntRange(0, 64),
              help="Threads of the face checker started beside the server, which counts the "
                   "faces in camera snapshots (0: start none, run `microcred proctoring faces` "
                   "yourself; results of proctored exams wait for it).")
@click.option("--writer/--no-writer", "with_writer", default=True, show_default=True,
              help="Start the node's writer beside the web workers: one process that "
                   "commits the runner's frequent writes (saves, camera frames, integrity "
                   "events) together (microcred/writer.py). Without it each web worker writes "
                   "them.")
def serve(host: str, port: int, workers: int | None, threads: int | None, server_kind: str,
          sweep_every: int, job_workers: int, face_workers: int, with_writer: bool) -> None:
    """Serve Microcred with granian (or gunicorn), with the sweeper, a job worker and the face
    checker beside it."""
    from gunicorn.app.base import BaseApplication

    from assessment.config import served_at

    settings = Settings.from_env()
    _require_migrated(settings)
    workers, threads = serve_shape(server_kind, workers, threads, settings.max_in_flight)
    connections = connections_per_worker()
    if settings.max_in_flight and threads <= settings.max_in_flight:
        click.echo(f"note: with {threads} thread(s) per worker the backpressure limit "
                   f"({settings.max_in_flight} API requests in flight per worker) is never "
                   "reached: requests beyond the threads wait in the server, without a 503 "
                   "(see docs/scale-out.md)")
    if not os.environ.get("MICROCRED_PUBLIC_URL"):
        # credential ids, issuer URLs and links name the address served here, not a default
        # port; the workers and the sweeper read it from the environment they inherit
        os.environ["MICROCRED_PUBLIC_URL"] = served_at(host, port)

    class Server(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("accesslog", None)
            self.cfg.set("errorlog", "-")
            self.cfg.set("timeout", 60)
            self.cfg.set("keepalive", KEEPALIVE_SECONDS)
            self.cfg.set("worker_connections", connections)
            self.cfg.set("worker_exit", _close_listeners)
            if "control_socket_disable" in self.cfg.settings:
                # gunicorn's control socket: one path per user by default, which every server
                # of that user on the machine would share (two nodes in the scale-out test),
                # and a thread in the master; Microcred does not use it
                self.cfg.set("control_socket_disable", True)

        def load(self):
            from assessment.wsgi import app

            return app

    # The sweeper is its own process, not a thread of gunicorn's master: a thread that imports
    # or holds a lock while the master forks a worker can leave that worker deadlocked.
    sweeper = None
    if sweep_every > 0:
        sweeper = subprocess.Popen(
            [sys.executable, "-m", "assessment.cli", "sweep", "--every", str(sweep_every)])
    # Background jobs (calibrations) run in a worker process of their own, never in a web worker.
    worker = None
    if job_workers > 0:
        worker = subprocess.Popen(
            [sys.executable, "-m", "assessment.cli", "worker", "--workers", str(job_workers),
             "--exit-with-parent"])
    else:
        click.echo("no job worker started: run `microcred worker` (calibrations wait for one)")
    # Camera snapshots' faces are counted in a process of its own at a lower CPU priority
    # (proctoring.face_checks): about 50 ms of CPU each, off the requests' path.
    faces = None
    if face_workers > 0:
        faces = subprocess.Popen(
            [sys.executable, "-m", "assessment.cli", "proctoring", "faces", "--workers",
             str(face_workers), "--exit-with-parent"])
    else:
        click.echo("no face checker started: run `microcred proctoring faces` (proctored "
                   "results wait for it)")
    # on SQLite the one write lock, on PostgreSQL the web threads' waits for Python's lock
    # between a write's round trips: measured in docs/scale-out.md
    writer, writer_dir = _start_writer() if with_writer else (None, None)
    click.echo(f"serving on http://{host}:{port} with {server_kind}, {workers} workers x "
               f"{threads} threads, up to {connections} connections each"
               + (", and the node's writer" if writer is not None else ""))
    try:
        if server_kind == "granian":
            _granian(host, port, workers, threads, connections)
        else:
            Server().run()
    finally:
        for child in (sweeper, worker, faces, writer):
            if child is None:
                continue
            child.terminate()
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()  # reaped, so no "subprocess is still running" on the way out
        if writer_dir is not None:
            shutil.rmtree(writer_dir, ignore_errors=True)


#: how long ``serve`` waits for its writer's socket before starting the web without waiting
WRITER_START_S = 20.0


#: the prefix of the directories ``serve`` makes for its writer's socket
WRITER_FOLDER_PREFIX = "microcred-writer-"
#: an empty writer directory younger than this may be a starting ``serve``'s: left alone
WRITER_FOLDER_GRACE_S = 120.0


def sweep_writer_folders(parent: str | None = None) -> list[str]:
    """Remove the writer directories a node killed as a whole left in ``parent`` (the temporary
    directory): its own ``serve`` and writer died with -9 (or the machine stopped), so nothing
    removed them. Only this user's; only a directory holding nothing but a socket that refuses
    connections (no writer listens on it), or nothing at all, and unchanged for
    ``WRITER_FOLDER_GRACE_S``. A live writer's, a starting one's and anything holding other
    files are kept. Returns the directories removed."""
    import errno
    import socket
    import stat
    import tempfile

    parent = parent or tempfile.gettempdir()
    removed = []
    try:
        names = os.listdir(parent)
    except OSError:
        return removed
    for name in names:
        folder = os.path.join(parent, name)
        if not name.startswith(WRITER_FOLDER_PREFIX):
            continue
        try:
            info = os.lstat(folder)  # a link is not followed: not a directory here
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
                continue
            inside = os.listdir(folder)
        except OSError:
            continue
        if time.time() - info.st_mtime < WRITER_FOLDER_GRACE_S:
            continue  # perhaps a starting node's (its socket is bound before it listens)
        if inside == ["writer.sock"]:
            path = os.path.join(folder, "writer.sock")
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            probe.settimeout(1.0)
            try:
                probe.connect(path)
            except OSError as exc:
                if exc.errno != errno.ECONNREFUSED:
                    continue  # not known to be dead
            else:
                continue  # a writer answers there
            finally:
                probe.close()
            try:
                os.unlink(path)
            except OSError:
                continue
        elif inside:
            continue
        try:
            os.rmdir(folder)
        except OSError:
            continue
        removed.append(folder)
    return removed


def _start_writer() -> tuple[subprocess.Popen | None, str | None]:
    """Start the node's writer (``microcred writer``) on a socket in a new directory only this
    user can enter, and tell the web workers its path (``MICROCRED_WRITER_SOCKET``, which they
    inherit). Until its socket is there (or if it never comes) the web writes by itself. What
    an earlier node killed as a whole left behind is removed first."""
    import tempfile

    from microcred.writer import SOCKET_ENV

    for stale in sweep_writer_folders():
        click.echo(f"removed {stale}: a writer's directory left by a node that was killed",
                   err=True)
    folder = tempfile.mkdtemp(prefix=WRITER_FOLDER_PREFIX)  # mode 0700
    path = os.path.join(folder, "writer.sock")
    child = subprocess.Popen([sys.executable, "-m", "assessment.cli", "writer", "--socket",
                              path, "--exit-with-parent", "--remove-folder"])
    deadline = time.monotonic() + WRITER_START_S
    while not os.path.exists(path) and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if child.poll() is not None:
        click.echo("the node's writer did not start: the web workers write by themselves",
                   err=True)
        shutil.rmtree(folder, ignore_errors=True)
        return None, None
    os.environ[SOCKET_ENV] = path
    return child, folder


def serve_shape(server_kind: str, workers: int | None, threads: int | None,
                max_in_flight: int) -> tuple[int, int]:
    """Workers and threads per worker ``microcred serve`` runs, the options' defaults filled in.

    Each worker gets more threads than the backpressure limit (``threads_for_limit``): only
    then is a request beyond the limit answered 503 at once by a spare thread. With one thread
    per worker (a sync worker) or as many as the limit, the requests beyond the threads wait in
    the listen backlog or the server's queue, and their latency grows with the load (measured
    in docs/scale-out.md, "Backpressure under the default serve"). Threaded workers are one per
    core (at least two, so one busy or restarting process does not stop the node): a process
    runs Python on one core at a time, and its threads overlap the waits (fsync, the network).
    The same shape for both servers: granian 2 x 32 answered 1,319 saves/s and 2,075
    heartbeats/s at saturation on this 2-core machine, 2 x 8 1,117 and 2,862 (the limit then
    never acts), gunicorn 2 x 32 978 and 1,059 (docs/scale-out.md, "Saturation, measured with
    wrk")."""
    if threads is None:
        threads = threads_for_limit(max_in_flight)
    if workers is None:
        cores = os.cpu_count() or 1
        workers = 2 * cores + 1 if threads == 1 else max(2, cores)
    return workers, threads


def connections_per_worker() -> int:
    """Open connections a worker serves at once: what its file descriptors allow (the soft
    limit raised to the hard one first), less a reserve for the database and files, at most
    65,536. Every candidate's browser keeps a connection open (kept alive 75 s), so this, not
    the CPU, capped a node: granian's default (its backlog over its workers, 512 a worker here)
    left the 1,025th browser's requests unanswered until another's connection closed (the
    node-capacity bench: snapshots and events waited 50-70 s at 2,000 candidates while the
    workers sat idle), and gunicorn's threaded workers take 1,000 each by default."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 65_536 + 512
    if soft == resource.RLIM_INFINITY or soft > hard:
        soft = hard
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the workers inherit it
            soft = hard
        except (ValueError, OSError):
            pass
    return max(256, min(soft, 65_536 + 512) - 512)


#: How long an idle kept-alive connection stays open (granian's header read timeout, gunicorn's
#: keepalive). Longer than the runner's longest cadence (a snapshot a minute): at granian's
#: default, 30 s, the connection of a heartbeat every 30 s was closed just as the next one was
#: due (the node-capacity bench saw a third of its connections closed under it), and at
#: gunicorn's 2 s every request of a runner opened a new connection. 75 s is nginx's default.
KEEPALIVE_SECONDS = 75


def _granian(host: str, port: int, workers: int, threads: int, connections: int) -> None:
    """Serve with granian: its HTTP parsing and connection handling run in Rust, so a
    request costs the Python of the app only (gunicorn's own Python costs ~0.8-1 ms per request
    on this 2-core machine, more than the fast lane's answer). Its master restarts a worker that
    dies (a kill -9 included, after ``respawn_interval``); SIGTERM or SIGINT stops the workers
    gracefully; a worker that does not stop within the kill timeout is killed. Granian's
    ``backpressure`` is the connections a worker serves at once (``connections``); the requests
    in flight are limited by the threads and ``MICROCRED_MAX_IN_FLIGHT``."""
    from granian.constants import Interfaces
    from granian.http import HTTP1Settings
    from granian.server import Server as Granian

    # each worker stops by itself once this process is gone (``assessment.wsgi``)
    os.environ["MICROCRED_STOP_WITH_SERVER"] = str(os.getpid())

    Granian("assessment.wsgi:granian_app", address=host, port=port, interface=Interfaces.WSGI,
            workers=workers, blocking_threads=max(1, threads), runtime_threads=1,
            respawn_failed_workers=True, respawn_interval=0.5, workers_kill_timeout=30,
            # room for thousands of candidates reconnecting at once after a network blip or a
            # failover (granian's default is 1,024; the kernel caps it at somaxconn)
            backlog=4096, backpressure=connections, log_access=False,
            http1_settings=HTTP1Settings(header_read_timeout=KEEPALIVE_SECONDS * 1000)).serve()


def _close_listeners(server, worker) -> None:
    """A worker leaves its copies of the listening sockets open when it exits; close them, so
    the interpreter does not warn about them (ResourceWarning) on every stop."""
    for sock in worker.sockets:
        sock.close()


@main.command()
@click.option("--every", default=0, type=int,
              help="Keep sweeping, every this many seconds (what `microcred serve` runs).")
def sweep(every: int) -> None:
    """Finalize every attempt whose time has run out (answers saved in time are scored; a pass
    earns its badge, as on the web), and run the time-dependent proctoring rules (e.g. a camera
    that stopped sending snapshots)."""
    settings = Settings.from_env()
    _require_migrated(settings)
    db = _database(settings)
    if every <= 0:
        swept = _sweep_once(db, settings)
        if swept is None:
            click.echo("another sweeper is sweeping now; nothing done")
            return
        done, flags = swept
        click.echo(f"finalized {len(done)} attempt(s)"
                   f"{': ' + ', '.join(map(str, done)) if done else ''}")
        if flags:
            click.echo(f"{len(flags)} new proctoring flag(s)")
        return
    settle()  # a long-running process: its start out of the collector's walks (microcred.heap)
    # a sweeper left behind by a killed server stops by itself, within a second (it looked
    # only between sweeps, and lingered up to ``every`` seconds)
    stopping = threading.Event()
    stop_with_parent(stopping.set, every_s=1.0)
    while not stopping.wait(every):
        try:
            swept = _sweep_once(db, settings)
        except Exception as exc:  # noqa: BLE001 - keep sweeping after a passing database error
            click.echo(f"sweep failed: {exc}", err=True)
            continue
        if swept is None:  # another node's sweeper leads this turn
            continue
        done, flags = swept
        if done:
            click.echo(f"sweep: finalized attempts {done}", err=True)
        if flags:
            click.echo(f"sweep: {len(flags)} new proctoring flag(s)", err=True)


@main.command()
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Jobs run at once (threads of this process).")
@click.option("--exit-with-parent", is_flag=True, hidden=True,
              help="Stop when the process that started this one ends (`microcred serve`).")
def worker(workers: int, exit_with_parent: bool) -> None:
    """Run background jobs (calibrations) from the job queue: huey's consumer over the SQLite
    file instance/jobs.db, or over Redis when MICROCRED_REDIS_URL is set. Run one or more
    wherever the app runs; every job is safe to run again."""
    import logging
    import signal

    from huey.consumer import Consumer

    from assessment.jobs import build_queue

    settings = Settings.from_env()
    _require_migrated(settings)
    db = _database(settings)  # receivers are connected: the group did it before this command
    queue = build_queue(settings, db.session)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    click.echo(f"job worker on the {queue.backend} queue with {workers} thread(s); jobs: "
               f"{', '.join(queue.names) or 'none'}", err=True)
    if exit_with_parent:
        stop_with_parent(lambda: os.kill(os.getpid(), signal.SIGTERM))
    consumer = Consumer(queue.huey, workers=workers, worker_type="thread", periodic=False)
    settle()  # a long-running process: its start out of the collector's walks (microcred.heap)
    try:
        consumer.run()
    finally:
        db.dispose()


@main.command()
@click.option("--socket", "socket_path", required=True, type=click.Path(dir_okay=False),
              help="The Unix socket to listen on, in a directory only this user can enter.")
@click.option("--exit-with-parent", is_flag=True, hidden=True,
              help="Stop when the process that started this one ends (`microcred serve`).")
@click.option("--remove-folder", is_flag=True, hidden=True,
              help="Remove the socket's folder when stopping (`microcred serve` made it for "
                   "this writer, and may itself be killed before it can).")
def writer(socket_path: str, exit_with_parent: bool, remove_folder: bool) -> None:
    """Run the node's writer: the web workers of this node (started with MICROCRED_WRITER_SOCKET
    set to the socket) send it the runner's frequent writes, which it commits together, one
    thread, one transaction for what arrives at once (microcred/writer.py). `microcred serve`
    starts one by itself."""
    import importlib
    import logging
    import signal

    from assessment.database import unpinged
    from assessment.delivery.groupcommit import GroupCommitter
    from microcred.writer import Writer

    settings = Settings.from_env()
    _require_migrated(settings)
    if len(os.fsencode(socket_path)) > 100:
        raise click.BadParameter("a Unix socket's path must be under 100 bytes long",
                                 param_hint="--socket")
    folder = os.path.dirname(os.path.abspath(socket_path))
    if not os.path.isdir(folder) or os.stat(folder).st_mode & 0o077:
        raise click.BadParameter(f"{folder} must be a directory only its owner can enter "
                                 "(mode 0700): the socket takes writes without a password",
                                 param_hint="--socket")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    db = _database(settings)
    if db.write_engine.dialect.name == "postgresql":
        _writer_gives_way(db.write_engine)
    for package in packages():
        for module in package.writes:
            importlib.import_module(module)
    # the writer's one thread checks its connections out without the pool's ping (a round
    # trip per group, a fifth of a usual group's on PostgreSQL): a dead connection fails the
    # group's first statement instead, the pool replaces its connections, and the group's
    # writes go back to their web threads, whose own writes ping (GroupCommitter, WriterClient)
    with unpinged():
        committer = GroupCommitter(db.write_engine)
        # the first write's own costs (the pool's first connection, the dialect's first look, the
        # save's statements compiled) paid before any candidate's: a save of no attempt, which
        # matches no row and keeps nothing
        from assessment.delivery.hotpath import SaveWrite, SignedIn

        committer.commit_works([SaveWrite(0, [], None, SignedIn(0, 0), 0.0)])
        node_writer = Writer(socket_path, committer.commit_works)
        signal.signal(signal.SIGTERM, lambda *_: node_writer.stop())
        signal.signal(signal.SIGINT, lambda *_: node_writer.stop())
        if exit_with_parent:
            stop_with_parent(node_writer.stop)
        click.echo(f"the node's writer on {socket_path}", err=True)
        settle()
        try:
            node_writer.serve()
        finally:
            db.dispose()
            if remove_folder:  # empty once the writer took its socket away
                try:
                    os.rmdir(folder)
                except OSError:
                    pass
            click.echo(f"the node's writer stopped: {node_writer.written} writes in "
                       f"{node_writer.groups} groups", err=True)


#: how long the node's writer waits for a row lock on PostgreSQL before its group gives way
WRITER_LOCK_TIMEOUT_MS = 200


def _writer_gives_way(engine: Any) -> None:
    """On PostgreSQL the writer's group holds the rows of several candidates at once, taken in
    the order the writes came; a transaction of a view holding one of them and waiting for
    another closes a cycle, and PostgreSQL would abort one of the two after its
    ``deadlock_timeout`` (a second by default), perhaps the view's. The writer waits for a
    lock at most ``WRITER_LOCK_TIMEOUT_MS``: its statement fails first, the group runs again
    each write in a savepoint, and a write that still cannot lock goes back to its web thread,
    which stores it on its own (``GroupCommitter``)."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _lock_timeout(dbapi_conn: Any, _record: Any) -> None:
        with dbapi_conn.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = {int(WRITER_LOCK_TIMEOUT_MS)}")
        dbapi_conn.commit()


def _sweep_once(db: Database, settings: Settings) -> tuple[list[int], list] | None:
    """One sweep, if this process is the leader (None when another sweeper holds the lock:
    every node runs a sweeper, one acts at a time; see ``microcred.leader``)."""
    from assessment.delivery.sweeper import LEADER
    from assessment.delivery.sweeper import sweep as finalize_expired
    from credentials.config import current as credential_config
    from credentials.revocation import publish_stale
    from microcred.leader import try_lead
    from proctoring.checkpoints import checkpoint_if_due
    from proctoring.events import sweep_rules

    with try_lead(db.engine, LEADER) as leading:
        if not leading:
            return None
        with db.session() as session:
            # each attempt in its own transaction: one that fails is logged, recorded and
            # retried after a backoff, and the rest go on
            report = finalize_expired(session, grace_seconds=settings.save_grace_seconds)
            # status lists are signed where they change; this stores any left unsigned (lists
            # from before that), so the public GET that serves them never has to write. Ended
            # either way: its look began a write transaction (on SQLite, the write lock), which
            # stayed open through the rules' long read below (0.2-0.3 s at 5,000 sessions,
            # every 30 s) with every writer of the node queued behind it
            publish_stale(session, credential_config())
            session.commit()
            with db.session(write=False) as read:  # the look for due rules takes no lock
                flags = sweep_rules(session, read=read)  # a closed page sends nothing
                read.rollback()
                # sign the audit head, off the database: the head is read, never written
                checkpoint_if_due(read, settings.instance_dir)
            _requeue_lost_jobs(session, db, settings)
            session.commit()  # its looks end here, not after the reminders are queued
            _queue_reminders(db, settings)
        return report.finalized, flags


#: When the leader last queued the reminder emails (monotonic seconds); the job itself is
#: idempotent (each reminder is claimed before it is sent), so a second node or a restart that
#: queues it again early sends nothing twice.
_reminders_queued_at: list[float] = []


def _queue_reminders(db: Database, settings: Settings) -> None:
    """Queue the reminder emails (expiry windows, CE cycle ends) every
    ``MICROCRED_REMINDERS_EVERY_SECONDS`` (default hourly) when an SMTP server is configured."""
    from assessment.jobs import build_queue
    from credentials.reminders import SEND
    from microcred.environment import reminders_every_seconds
    from microcred.jobs import JobError

    every = reminders_every_seconds()
    if every is None:
        return
    now = time.monotonic()
    if _reminders_queued_at and now - _reminders_queued_at[0] < every:
        return
    try:
        build_queue(settings, db.session).enqueue(SEND)
    except JobError as exc:  # the queue is down: the next sweep tries again
        click.echo(f"sweep: could not queue the reminder emails: {exc}", err=True)
        return
    _reminders_queued_at[:] = [now]


def _requeue_lost_jobs(session, db: Database, settings: Settings) -> None:
    """Calibration runs, badge issuances and plugin notifications whose job was lost (a worker
    killed mid-run, a queue emptied) or failed for good are queued again."""
    from assessment.jobs import build_queue
    from assessment.psych.jobs import requeue_stale_pdfs, requeue_stale_runs
    from credentials.jobs import requeue_stale_issuances
    from microcred.jobs import JobError
    from proctoring.hook_outbox import requeue_stale as requeue_stale_hook_calls

    queues = []

    def enqueue(name: str, *args) -> None:  # the queue is opened only when a job was lost
        if not queues:
            queues.append(build_queue(settings, db.session))
        queues[0].enqueue(name, *args)

    try:
        requeued = requeue_stale_runs(session, enqueue)
    except JobError as exc:  # the queue is down: a later sweep tries again
        session.rollback()
        click.echo(f"sweep: could not re-queue lost calibration jobs: {exc}", err=True)
    else:
        if requeued:
            click.echo(f"sweep: calibration runs {requeued} queued again (their job was lost)",
                       err=True)
    try:
        pdfs = requeue_stale_pdfs(session, enqueue)
    except JobError as exc:
        session.rollback()
        click.echo(f"sweep: could not re-queue lost report PDF jobs: {exc}", err=True)
    else:
        if pdfs:
            click.echo(f"sweep: report PDFs {pdfs} queued again (their job was lost)", err=True)
    try:
        badges = requeue_stale_issuances(session, enqueue)
    except JobError as exc:
        session.rollback()
        click.echo(f"sweep: could not re-queue lost badge jobs: {exc}", err=True)
    else:
        if badges:
            click.echo(f"sweep: badges of results {badges} queued again (their job was lost or "
                       "failed)", err=True)
    try:
        calls = requeue_stale_hook_calls(session, enqueue)
    except JobError as exc:
        session.rollback()
        click.echo(f"sweep: could not re-queue lost plugin notifications: {exc}", err=True)
        return
    if calls:
        click.echo(f"sweep: plugin notifications {calls} queued again (their job was lost)",
                   err=True)


@main.group()
def user() -> None:
    """Manage users."""


@user.command("add")
@click.option("--email", required=True)
@click.option("--name", "display_name", required=True)
@click.option("--role", required=True,
              type=click.Choice(["candidate", "proctor", "psychometrician", "admin", "item_author",
                                 "panelist"]))
@click.password_option(help="At least 8 characters, hard to guess (prompted when absent).")
def user_add(email: str, display_name: str, role: str, password: str) -> None:
    """Add a user."""
    from assessment.users import UserError, create_user

    with _migrated_session() as session:
        try:
            u = create_user(session, email=email, password=password, role=role,
                            display_name=display_name)
        except UserError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
        click.echo(f"added {u.role} {u.email} (id {u.id})")


def _change_user(email: str, change) -> str:
    """Apply ``change(session, user)`` to the user with ``email`` and commit; a UserError or an
    unknown email becomes the command's error message. Returns the user's email."""
    from assessment.users import UserError, find_user_by_email

    with _migrated_session() as session:
        u = find_user_by_email(session, email)
        if u is None:
            raise click.ClickException(f"no user with email {email}")
        try:
            change(session, u)
        except UserError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
        return u.email


@user.command("password")
@click.option("--email", required=True)
@click.password_option(help="The new password (prompted when absent).")
def user_password(email: str, password: str) -> None:
    """Set a user's password (e.g. an admin who forgot theirs); ends all their sessions."""
    from assessment.users import replace_password

    changed = _change_user(email, lambda session, u: replace_password(session, u, password))
    click.echo(f"password changed for {changed}; every session of theirs has ended")


@user.command("deactivate")
@click.argument("email")
@click.option("--reactivate", is_flag=True, help="Let the account sign in again instead.")
def user_deactivate(email: str, reactivate: bool) -> None:
    """Deactivate an account (its sessions end at once), or reactivate it."""
    from assessment.users import set_active

    changed = _change_user(email, lambda session, u: set_active(session, u, active=reactivate,
                                                                 by=None))
    click.echo(f"{changed} {'reactivated' if reactivate else 'deactivated; its sessions ended'}")


@main.group()
def accommodation() -> None:
    """Accommodations for candidates."""


@accommodation.command("grant")
@click.argument("email")
@click.argument("multiplier", type=float)
@click.option("--reason", required=True)
@click.option("--exam", "exam_code", default=None, help="Exam code; all exams when absent.")
@click.option("--by", "by_email", required=True, help="Email of the admin granting it.")
def accommodation_grant(email: str, multiplier: float, reason: str, exam_code: str | None,
                        by_email: str) -> None:
    """Give a candidate a time multiplier (e.g. 1.5)."""
    from assessment.users import UserError, find_user_by_email, grant_accommodation

    with _migrated_session() as session:
        candidate, admin = find_user_by_email(session, email), find_user_by_email(session, by_email)
        if candidate is None:
            raise click.ClickException(f"no user {email}")
        if admin is None or admin.role != "admin":
            raise click.ClickException(f"{by_email} is not an admin")
        exam_id = None
        if exam_code:
            exam_id = _exam(session, exam_code).id
        try:
            grant_accommodation(session, candidate=candidate, time_multiplier=multiplier,
                                reason=reason, granted_by=admin, exam_id=exam_id)
        except UserError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
    click.echo(f"{email}: {multiplier}x time")


@main.group()
def exam() -> None:
    """Exams' rules."""


@exam.command("retakes")
@click.argument("code")
@click.option("--max-attempts", type=int, default=None,
              help="Attempts a candidate may start; no limit when absent.")
@click.option("--wait-hours", type=int, default=0, show_default=True,
              help="Hours to wait after an attempt that did not pass.")
def exam_retakes(code: str, max_attempts: int | None, wait_hours: int) -> None:
    """Set an exam's retake rules (attempt limit, wait after a failed or terminated attempt)."""
    from assessment.retakes import RetakePolicyError, set_retake_policy

    with _migrated_session() as session:
        found = _exam(session, code)
        try:
            rules = set_retake_policy(found, {"max_attempts": max_attempts,
                                              "wait_hours": wait_hours})
        except RetakePolicyError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
    click.echo(f"{code}: " + (" ".join(rules.describe()) or "no retake limits"))


@exam.command("pool")
@click.option("--exam", "code", required=True, help="The linear-on-the-fly exam's code.")
@click.option("--size", type=click.IntRange(1, 10_000), required=True,
              help="How many forms to pre-assemble into its pool.")
@click.option("--seed", type=int, default=None, help="Seed of the assembly's randomness.")
def exam_pool(code: str, size: int, seed: int | None) -> None:
    """Pre-assemble forms of a linear-on-the-fly exam into its pool before its window opens."""
    import time

    from assessment.exams import fill_exam_pool
    from itembank.pool import pool_status
    from microcred.errors import DomainError

    with _migrated_session() as session:
        found = _exam(session, code)
        started = time.perf_counter()
        try:
            made = fill_exam_pool(session, found, size, seed=seed)
        except DomainError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
        status = pool_status(session, code)
    click.echo(f"{code}: {len(made)} forms assembled in {time.perf_counter() - started:.1f} s; "
               f"{status.waiting} waiting in the pool, {status.claimed} taken")


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}" if ":" in creds else url
    return url


for _package in packages():
    if _package.cli:
        hook(_package.cli)(main)


if __name__ == "__main__":
    main()


@main.group()
def report() -> None:
    """Reports of the psychometrician's workspace."""


@report.command("item-analysis")
@click.option("--exam", "exam_ref", required=True, help="The exam's code (or numeric id).")
@click.option("--form", "form_code", default=None, help="Only this form's candidates.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Only attempts finalized on or after this date.")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Only attempts finalized on or before this date.")
@click.option("--pdf", "pdf_path", type=click.Path(dir_okay=False), help="Write the PDF here.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False),
              help="Write the report as one self-contained HTML file here.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False),
              help="Write every table as JSON here.")
@click.option("--csv-zip", "zip_path", type=click.Path(dir_okay=False),
              help="Write every table as CSV, zipped, here.")
@click.option("--dif", "dif_attribute", default=None, metavar="ATTRIBUTE",
              help="Report Mantel-Haenszel DIF by this candidate attribute (e.g. language), each "
                   "attempt grouped by the value that stood when it was sat.")
@click.option("--reference", "dif_reference", default=None, metavar="VALUE",
              help="DIF's reference group: a value of the --dif attribute.")
@click.option("--focal", "dif_focal", default=None, metavar="VALUE",
              help="DIF's focal group: a value of the --dif attribute.")
def report_item_analysis(exam_ref, form_code, since, until, pdf_path, html_path, json_path,
                         zip_path, dif_attribute, dif_reference, dif_focal) -> None:
    """The item-analysis report of an exam, as the workspace renders it (PDF, HTML, JSON, CSV).

    With --dif (and, when the attribute has more than two values, --reference and --focal) the
    report has the DIF table the workspace's report has for the same choice."""
    from pathlib import Path

    from assessment.exams import Exam, exam_by_code
    from assessment.psych.errors import AnalysisError
    from assessment.psych.report import ReportScope, build_report
    from assessment.psych.report_output import (
        render_pdf,
        render_pdf_html,
        report_json,
        tables_zip,
    )

    if not (pdf_path or html_path or json_path or zip_path):
        raise click.UsageError("say where to write the report: --pdf, --html, --json or --csv-zip")
    with _migrated_session() as session:
        found = exam_by_code(session, exam_ref)
        if found is None and is_whole(exam_ref):
            found = session.get(Exam, int(exam_ref))
        if found is None:
            raise click.ClickException(f"no exam {exam_ref}")
        form = None
        if form_code:
            form = next((ef.form for ef in found.forms if ef.form.code == form_code), None)
            if form is None:
                raise click.ClickException(f"exam {found.code} has no form {form_code}")
        scope = ReportScope(found, form, since.date() if since else None,
                            until.date() if until else None)
        groups = _dif_choice(session, scope, dif_attribute, dif_reference, dif_focal)
        try:
            # for the PDF alone, the item charts are drawn where its items are rendered
            built = build_report(session, scope, groups=groups,
                                 with_charts=bool(pdf_path or html_path),
                                 item_charts_later=bool(pdf_path) and not html_path)
        except AnalysisError as exc:
            raise click.ClickException(str(exc)) from None
        outputs = {
            pdf_path: lambda: render_pdf(built),
            html_path: lambda: render_pdf_html(built).encode(),
            json_path: lambda: report_json(built).encode(),
            zip_path: lambda: tables_zip(built),
        }
        for path, render in outputs.items():
            if path:
                Path(path).write_bytes(render())
                click.echo(f"wrote {path}")
    if built.dif_note and dif_attribute:
        click.echo(built.dif_note)
    click.echo(f"{found.code}: {len(built.items)} items, {built.n_candidates} candidates,"
               f" {len(built.flagged)} flagged")


def _dif_choice(session, scope, attribute: str | None, reference: str | None,
                focal: str | None) -> dict[int, str] | None:
    """Check the DIF options against the exam's candidates and set them on ``scope``; the
    groups (result id -> value when sat) to build the report with, or None without --dif. A bad
    choice is a usage error naming its option."""
    from assessment.candidate_attributes import (
        VALUE_MAX,
        BadAttribute,
        attribute_summaries,
        clean_name,
        groups_of_results,
    )

    if attribute is None:
        for option, value in (("--reference", reference), ("--focal", focal)):
            if value is not None:
                raise click.BadParameter("needs --dif ATTRIBUTE: the groups are values of a "
                                         "candidate attribute", param_hint=option)
        return None
    try:
        name = clean_name(attribute, "the attribute name")
    except BadAttribute as exc:
        raise click.BadParameter(exc.message, param_hint="--dif") from None
    groups = groups_of_results(session, name, scope.exam.id)
    if not groups:
        in_use = ", ".join(a.name for a in attribute_summaries(session)) or "none recorded"
        raise click.BadParameter(
            f"no candidate who sat exam {scope.exam.code} has a value of {name!r} "
            f"(attributes in use: {in_use})", param_hint="--dif")
    values = sorted(set(groups.values()))
    for option, value in (("--reference", reference), ("--focal", focal)):
        if value is None:
            continue
        if len(value) > VALUE_MAX:
            raise click.BadParameter(f"longer than {VALUE_MAX} characters", param_hint=option)
        if value not in values:
            raise click.BadParameter(
                f"no candidate who sat exam {scope.exam.code} has {name} = {value[:80]!r} "
                f"(values: {', '.join(values[:20])}{', ...' if len(values) > 20 else ''})",
                param_hint=option)
    if reference is not None and reference == focal:
        raise click.BadParameter("the focal group must differ from the reference group",
                                 param_hint="--focal")
    if len(values) > 2 and (reference is None or focal is None) and len(values) - (
            (reference is not None) + (focal is not None)) > 1:
        raise click.BadParameter(
            f"{name} has {len(values)} values ({', '.join(values[:20])}): say which two to "
            "compare with --reference and --focal", param_hint="--reference/--focal")
    scope.dif_attribute, scope.dif_reference, scope.dif_focal = name, reference, focal
    return groups
