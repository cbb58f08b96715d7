"""Real processes for the scale-out and fault tests: ``microcred serve`` nodes, HAProxy in front
of them, a Redis server and a PostgreSQL server of the test's own, and a candidate that talks to
them over HTTP the way the runner does (one save request at a time, retried until acknowledged).

Nothing here is mocked: the nodes are the ``microcred serve`` command a deployment runs, the load
balancer is Debian's ``haproxy``, the databases are real servers. Each helper starts its process
in a session of its own and ``stop()``/``kill()`` end only that process group.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)
CSRF_META = re.compile(r'name="csrf-token" content="([^"]+)"')
PASSWORD = "scale-out candidate password"
#: Test accounts get a cheap argon2 hash (the hash names its parameters, so the server verifies
#: it as usual); sign-in speed is not what these tests are about.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
#: One key signs sessions on every node: a node is stateless only if any node reads any
#: node's session cookie.
SECRET_KEY = "scale-out-test-secret-key-" + "x" * 32


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def require_binary(name: str, hint: str) -> str:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
    if path is None:
        pytest.skip(f"{name} is not installed ({hint})")
    return path


def _microcred() -> list[str]:
    exe = Path(sys.executable).parent / "microcred"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "assessment.cli"]


class Process:
    """A child process in its own process group, its output in ``log``."""

    def __init__(self, cmd: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.cmd, self.log, self.env = cmd, log, env
        self.proc: subprocess.Popen | None = None
        #: RLIMIT_FSIZE for the process and its children (bytes; None: unlimited)
        self.file_size_limit: int | None = None

    def start(self) -> None:
        with self.log.open("a") as fh:
            fh.write(f"$ {' '.join(self.cmd)}\n")
            fh.flush()
            limit = self.file_size_limit

            def _limit() -> None:
                if limit is not None:
                    import resource

                    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

            self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=fh,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=_limit)  # noqa: PLW1509 - setrlimit only

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL to the whole group (a node's gunicorn master, workers, sweeper, job worker)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        else:
            try:  # children the leader left behind (the sweeper, the job worker)
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def group_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-g", str(self.proc.pid)], capture_output=True, text=True,
                             check=False)
        return [int(p) for p in out.stdout.split()]

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


# ---------------------------------------------------------------- servers


class Redis(Process):
    """``redis-server`` on a port of its own, no persistence (a cache of counters)."""

    def __init__(self, workdir: Path) -> None:
        binary = require_binary("redis-server", "apt-get install redis-server")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        super().__init__([binary, "--port", str(self.port), "--bind", "127.0.0.1",
                          "--save", "", "--appendonly", "no", "--dir", str(workdir)],
                         workdir / f"redis-{self.port}.log")

    def start(self) -> None:
        super().start()
        wait_port(self.port)


class Postgres(Process):
    """A PostgreSQL server of the test's own (initdb into a temporary folder, another port):
    the test may stop, restart and cut it; the machine's server is never touched."""

    def __init__(self, workdir: Path) -> None:
        if PG_BIN is None or not (PG_BIN / "initdb").exists():
            pytest.skip("PostgreSQL's server binaries are not installed (/usr/lib/postgresql/*/bin)")
        if os.geteuid() == 0 and not _can_run_as_postgres():
            pytest.skip("initdb refuses root and there is no 'postgres' user to run it as")
        import tempfile

        self.port = free_port()
        # Its own folder under /tmp, not under pytest's (mode 0700, root's): when the tests run
        # as root the server runs as the 'postgres' user, which must reach its data folder.
        self.workdir = Path(tempfile.mkdtemp(prefix="microcred-test-pg-"))
        self.data = self.workdir / "data"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/microcred"
        super().__init__([], self.workdir / "postgres.log")

    def _as_postgres(self, cmd: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd

    def init(self) -> None:
        self.data.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres")
            shutil.chown(self.data, "postgres")
            self.log.touch()
            shutil.chown(self.log, "postgres")
        subprocess.run(self._as_postgres([str(PG_BIN / "initdb"), "-D", str(self.data), "-U",
                                          "postgres", "--auth=trust", "-E", "UTF8",
                                          "--no-sync"]),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self.start()
        subprocess.run([str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                        "-U", "postgres", "microcred"], check=True)

    def start(self) -> None:
        self.cmd = self._as_postgres([
            str(PG_BIN / "postgres"), "-D", str(self.data), "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.data}",
            "-c", "max_connections=60", "-c", "shared_buffers=16MB"])
        super().start()
        wait_port(self.port, 90)
        # accepting TCP is not yet accepting queries (startup recovery)
        deadline = time.monotonic() + 90
        while subprocess.run([str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p",
                              str(self.port), "-q"], check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("test PostgreSQL did not become ready:\n" + self.tail())
            time.sleep(0.1)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGINT to the postmaster itself (PostgreSQL's fast shutdown: ends sessions,
        checkpoints), not to ``runuser`` in front of it, which would pass on a SIGTERM (a smart
        shutdown, waiting for every client to leave)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
            os.kill(postmaster, signal.SIGINT)
        except (OSError, ValueError, IndexError):
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def remove(self) -> None:
        """Stop the server and delete its folder."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _can_run_as_postgres() -> bool:
    import pwd

    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return False
    return shutil.which("runuser") is not None


class TcpProxy:
    """A TCP relay in a thread: what a network path between a node and its database is. ``cut()``
    drops every connection and refuses new ones (a partition); ``heal()`` lets them through."""

    def __init__(self, target_port: int) -> None:
        import threading

        self.target = target_port
        self.port = free_port()
        self._open = True
        self._socks: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        import threading

        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if not self._open:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=2)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._socks |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        self._open = False
        with self._lock:
            for s in self._socks:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self._socks.clear()

    def heal(self) -> None:
        self._open = True

    def close(self) -> None:
        self.cut()
        self._server.close()


class Node(Process):
    """One ``microcred serve`` node: its own instance folder (nothing shared on disk), the
    shared database and Redis, the shared session key."""

    def __init__(self, name: str, workdir: Path, database_url: str, redis_url: str | None,
                 workers: int = 1, sweep_every: int = 2, extra_env: dict[str, str] | None = None):
        self.name, self.port = name, free_port()
        instance = workdir / f"instance-{name}"
        instance.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        for key in ("MICROCRED_REDIS_URL", "MICROCRED_DATABASE_URL"):
            env.pop(key, None)
        env.update({
            "MICROCRED_INSTANCE_DIR": str(instance),
            "MICROCRED_DATABASE_URL": database_url,
            "MICROCRED_SECRET_KEY": SECRET_KEY,
            "MICROCRED_COOKIE_SECURE": "0",
            "MICROCRED_PUBLIC_URL": "http://127.0.0.1",
            "MICROCRED_JOBS_QUEUE": f"so-{uuid.uuid4().hex[:8]}",
            "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
        })
        if redis_url:
            env["MICROCRED_REDIS_URL"] = redis_url
        env.update(extra_env or {})
        super().__init__([*_microcred(), "serve", "--host", "127.0.0.1", "--port", str(self.port),
                          "--workers", str(workers), "--sweep-every", str(sweep_every),
                          "--job-workers", "1"], workdir / f"node-{name}.log", env)
        self.base_url = f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> None:
        super().start()
        if wait:
            self.wait_healthy()

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"node {self.name} exited:\n{self.tail()}")
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"node {self.name} did not answer /healthz in {timeout:.0f} s:\n"
                           + self.tail())

    def worker_pids(self) -> list[int]:
        """The gunicorn workers: children of the master that serve requests."""
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True,
                             check=False)
        pids = [int(p) for p in out.stdout.split()]
        return [p for p in pids if "gunicorn" in _cmdline(p) or "serve" in _cmdline(p)]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class HAProxy(Process):
    """Debian's HAProxy, round robin over the nodes with no stickiness: consecutive requests of
    one candidate land on different nodes. Health checks on ``/healthz`` take a dead node out;
    a request whose connection failed or got no answer is sent again to another node
    (``retry-on conn-failure empty-response`` with ``option redispatch``), which is safe for the
    runner's requests because a save is idempotent per sequence number. Each answer names the
    node in ``X-Served-By``."""

    def __init__(self, workdir: Path, nodes: list[Node]) -> None:
        binary = require_binary(
            "haproxy", "Debian's haproxy package: `make haproxy` or `apt-get install haproxy`")
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        cfg = workdir / "haproxy.cfg"
        servers = "\n".join(
            f"    server {n.name} 127.0.0.1:{n.port} check inter 300ms fall 2 rise 2"
            for n in nodes)
        cfg.write_text(f"""global
    maxconn 512
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response
frontend web
    bind 127.0.0.1:{self.port}
    default_backend nodes
backend nodes
    balance roundrobin
    option httpchk GET /healthz
    http-response set-header X-Served-By %s
{servers}
""")
        super().__init__([binary, "-f", str(cfg), "-db"], workdir / "haproxy.log")

    def start(self) -> None:
        super().start()
        wait_port(self.port)


# ---------------------------------------------------------------- the exam


def prepare(database_url: str, n_candidates: int = 1, minutes: float = 30) -> list[str]:
    """Migrate ``database_url``, publish a small exam (code T-EXAM) and make candidates; their
    emails. In this process, through the product's own functions."""
    from assessment.database import Database
    from assessment.migrate import upgrade
    from assessment.models import load_all
    from assessment.users import create_user
    from tests.conftest import build_exam

    load_all()
    upgrade(database_url)
    database = Database(database_url)
    emails = [f"scale-candidate-{i}@example.org" for i in range(n_candidates)]
    with database.session() as session:
        build_exam(session, minutes=minutes)
        for i, email in enumerate(emails):
            user = create_user(session, email=email, password=PASSWORD, role="candidate",
                               display_name=f"Scale Candidate {i}")
            user.password_hash = FAST_HASHER.hash(PASSWORD)
        session.commit()
    database.dispose()
    return emails


def stored_saves(database_url: str, attempt_id: int) -> dict[int, tuple]:
    """(seq -> (item, value, flagged)) of the attempt's stored saves."""
    from sqlalchemy import select

    from assessment.database import Database
    from assessment.delivery.models import ResponseSave
    from assessment.models import load_all

    load_all()
    database = Database(database_url)
    with database.session(write=False) as session:
        rows = session.execute(select(ResponseSave.seq, ResponseSave.item_version_id,
                                      ResponseSave.value, ResponseSave.flagged)
                               .where(ResponseSave.attempt_id == attempt_id)).all()
    database.dispose()
    return {int(seq): (int(item), _canonical(value), bool(flag)) for seq, item, value, flag in rows}


def _canonical(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(sorted(value)) or None
    return value


@dataclass
class Candidate:
    """A candidate speaking HTTP like the runner: one save request in flight; a save that got no
    acknowledgement (transport error, 5xx, 503 backpressure) is sent again, same ``seq``, until
    acknowledged. ``acked`` is what the server acknowledged: it must all be in the database."""

    base_url: str
    email: str
    client: httpx.Client = field(init=False)
    token: str = ""
    attempt_id: int = 0
    items: list[dict] = field(default_factory=list)
    seq: int = 0
    acked: dict[int, tuple] = field(default_factory=dict)
    served_by: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.base_url, timeout=10.0)

    def _note(self, resp: httpx.Response) -> httpx.Response:
        self.served_by.append(resp.headers.get("x-served-by", "?"))
        return resp

    def _retrying(self, method: str, url: str, deadline_s: float = 40.0, **kw) -> httpx.Response:
        deadline = time.monotonic() + deadline_s
        while True:
            try:
                resp = self._note(self.client.request(method, url, **kw))
                if resp.status_code < 500:
                    return resp
                self.failures.append(f"{method} {url}: {resp.status_code}")
            except httpx.HTTPError as exc:
                self.failures.append(f"{method} {url}: {type(exc).__name__}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{method} {url} not answered in {deadline_s:.0f} s: "
                                     f"{self.failures[-5:]}")
            time.sleep(0.25)

    def sign_in(self) -> None:
        page = self._retrying("GET", "/signin")
        token = CSRF_META.search(page.text).group(1)
        resp = self._retrying("POST", "/signin", data={"email": self.email, "password": PASSWORD,
                                                       "csrf_token": token})
        assert resp.status_code == 302, (resp.status_code, resp.text[:300])

    def start(self, code: str = "T-EXAM") -> None:
        page = self._retrying("GET", f"/exams/{code}")
        assert page.status_code == 200, (page.status_code, page.text[:300])
        self.token = CSRF_META.search(page.text).group(1)
        resp = self._retrying("POST", f"/exams/{code}/start",
                              data={"agree": "yes", "csrf_token": self.token})
        match = re.search(r"/attempts/(\d+)$", resp.headers.get("location", ""))
        assert resp.status_code == 302 and match, (resp.status_code, resp.text[:300])
        self.attempt_id = int(match.group(1))
        state = self._retrying("GET", f"/api/attempts/{self.attempt_id}/state")
        assert state.status_code == 200, state.text[:300]
        self.items = state.json()["items"]

    def save(self, deadline_s: float = 40.0) -> int:
        """One answer change, sent until acknowledged; its seq."""
        self.seq += 1
        item = self.items[self.seq % len(self.items)]
        options = [o["id"] for o in item["options"]]
        value: Any = options[self.seq % len(options)]
        if item["type"] == "multiple_response":
            value = options[:2] if self.seq % 2 else options[1:3]
        flagged = self.seq % 7 == 0
        body = {"saves": [{"seq": self.seq, "item": item["id"], "value": value,
                           "flagged": flagged}], "position": self.seq % len(self.items)}
        resp = self._retrying("POST", f"/api/attempts/{self.attempt_id}/saves", deadline_s,
                              json=body, headers={"X-CSRFToken": self.token})
        assert resp.status_code == 200, (resp.status_code, resp.text[:300])
        (ack,) = resp.json()["acks"]
        assert ack["seq"] == self.seq and ack["status"] in ("saved", "duplicate"), ack
        self.acked[self.seq] = (item["id"], _canonical(value), flagged)
        return self.seq

    def heartbeat(self) -> httpx.Response:
        return self._retrying("GET", f"/api/attempts/{self.attempt_id}/heartbeat")

    def submit(self) -> None:
        resp = self._retrying("POST", f"/api/attempts/{self.attempt_id}/submit",
                              json={"confirm": True}, headers={"X-CSRFToken": self.token})
        assert resp.status_code == 200 or resp.json().get("error") == "attempt_finalized", \
            (resp.status_code, resp.text[:300])

    def lost(self, database_url: str) -> dict[int, tuple]:
        """Acknowledged saves not stored as sent (must be empty)."""
        stored = stored_saves(database_url, self.attempt_id)
        return {seq: sent for seq, sent in self.acked.items() if stored.get(seq) != sent}

    def close(self) -> None:
        self.client.close()
