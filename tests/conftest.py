"""Fixtures shared by the whole suite.

Integration tests run on every configured database: SQLite always, and PostgreSQL when a server
answers at ``MICROCRED_TEST_POSTGRES_URL`` (default: the local server, user postgres, trust auth).
Each run creates a fresh PostgreSQL database and drops it afterwards. A PostgreSQL that does not
answer (asked once per run) makes its half of the suite skip, said in one line of the summary.
"""
from __future__ import annotations

import functools
import os
import re
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

os.environ.setdefault("MICROCRED_INSTANCE_DIR", str(Path(__file__).parent / ".instance"))
# Tests need no power-loss durability: every commit's fsync (synchronous=FULL, the product's
# default, about 6 ms on this disk) would multiply the suite's time. Process crashes (the fault
# tests' kill -9) lose nothing under NORMAL in WAL; tests/test_durability.py pins the default.
os.environ.setdefault("MICROCRED_SQLITE_SYNCHRONOUS", "NORMAL")

from assessment.config import Settings
from assessment.database import Database
from assessment.migrate import upgrade
from assessment.models import load_all
from microcred import clock as microcred_clock
from microcred.packages import connect_receivers

POSTGRES_ADMIN_URL = os.environ.get(
    "MICROCRED_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
PASSWORD = "correct horse battery staple"


def _share_url_builders() -> None:
    """Most tests make an app, and each app's URL map compiles a builder function for each of
    its ~160 rules (werkzeug generates and compiles Python code per rule): ~0.1 s of CPU per
    app, about a tenth of the suite. The function depends only on the rule's text and parsed
    parts (it reads the rule's converters when called, through the rule it is bound to), so in
    the tests one compiled function serves every app's equal rule. A rule with a default for
    one of its variables (resolved through its converter when compiled) is compiled as usual."""
    from werkzeug.routing.rules import Rule

    compile_builder = Rule._compile_builder
    built: dict[tuple, object] = {}

    def shared(self, append_unknown: bool = True):
        defaults = self.defaults or {}
        if any(dynamic and part in defaults for dynamic, part in self._trace):
            return compile_builder(self, append_unknown)
        key = (self.rule, tuple(self._trace), tuple(defaults), append_unknown)
        function = built.get(key)
        if function is None:
            function = built[key] = compile_builder(self, append_unknown)
        return function

    Rule._compile_builder = shared


_share_url_builders()


def _share_compiled_templates() -> None:
    """Each app's Jinja environment compiled every template it rendered anew (~10-25 ms each,
    a few per test); in the tests the environments share one in-memory bytecode cache. Jinja
    keys it by template and checks the source's checksum, so an edited template compiles
    again; what a template renders (filters, globals) is still the app's own."""
    import flask
    import jinja2

    class Shared(jinja2.BytecodeCache):
        def __init__(self) -> None:
            self.codes: dict[str, bytes] = {}

        def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            code = self.codes.get(bucket.key)
            if code is not None:
                bucket.bytecode_from_string(code)

        def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            self.codes[bucket.key] = bucket.bytecode_to_string()

    flask.Flask.jinja_options = {**flask.Flask.jinja_options, "bytecode_cache": Shared()}


_share_compiled_templates()


@functools.cache
def _postgres_available() -> str | None:
    """None when PostgreSQL answers; else why not, in one line. Asked once per session."""
    try:
        engine = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT",
                               connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure to reach it is a reason to skip
        cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
        # psycopg says 'connection failed: connection to server at ... failed: <why>' and
        # then a hint on more lines; the why is enough
        first = (str(cause).strip().splitlines() or [""])[0]
        detail = first.rsplit("failed:", 1)[-1].strip() or cause.__class__.__name__
        where = make_url(POSTGRES_ADMIN_URL).render_as_string(hide_password=True)
        return (f"PostgreSQL at {where} did not answer ({detail}); start it or set "
                f"MICROCRED_TEST_POSTGRES_URL")


def _create_pg_database() -> tuple[str, str]:
    name = f"microcred_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return re.sub(r"/[^/]*$", f"/{name}", POSTGRES_ADMIN_URL), name


def _drop_pg_database(name: str) -> None:
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _require_postgres() -> None:
    """Skip this test when PostgreSQL is down, with one short reason (folded into one line of
    the summary by ``pytest_runtest_makereport``)."""
    reason = _postgres_available()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def clock() -> Iterator[microcred_clock.ManualClock]:
    """The one clock, standing still at the real time until moved: ``clock.set(when)``,
    ``clock.advance(seconds)``. Every call site reads it (``microcred.clock.now`` behind
    ``microcred.db.utcnow``), in this process and in a live server's threads."""
    manual = microcred_clock.ManualClock()
    microcred_clock.set_source(manual)
    try:
        yield manual
    finally:
        microcred_clock.set_source(None)


@pytest.fixture
def writes_during(app):
    """``writes_during(action)`` runs ``action`` and returns its value and the INSERT, UPDATE
    and DELETE statements the app's engines ran meanwhile (a GET must run none)."""
    from microcred.querycount import count_queries

    database = app.extensions["microcred.database"]

    def run(action):
        with count_queries(database.engine, database.write_engine) as sent:
            value = action()
        return value, [s for s in sent
                       if s.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE")]

    return run


@pytest.fixture(scope="session", autouse=True)
def receivers() -> None:
    """The test process finalizes and releases results like any Microcred process, so it wires
    every package's receivers the one way they are wired (``microcred.packages``)."""
    connect_receivers()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A freshly migrated database of each kind, for the whole run."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'microcred.db'}"
        upgrade(url)
        yield url
        return
    _require_postgres()
    url, name = _create_pg_database()
    try:
        upgrade(url)
        yield url
    finally:
        _drop_pg_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a database with no tables at all, of each kind, for one test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    _require_postgres()
    url, name = _create_pg_database()
    try:
        yield url
    finally:
        _drop_pg_database(name)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Report every PostgreSQL skip from one place, so the summary says it once:
    "SKIPPED [n] tests/conftest.py: PostgreSQL at ... did not answer (...)"."""
    report = yield
    reason = _postgres_available.cache_info().currsize and _postgres_available()
    if (reason and report.skipped and isinstance(report.longrepr, tuple)
            and report.longrepr[2].endswith(reason)):
        report.longrepr = (__file__, None, report.longrepr[2])
    return report


def _empty_all_tables(database: Database) -> None:
    from assessment.delivery.hotpath import forget_shapes
    from proctoring import liveness

    forget_shapes()  # ids start again after the tables are emptied: a cached shape would be stale
    liveness.forget()  # and a last-seen time noted in this test would land on the next one's row
    metadata = load_all().metadata
    tables = [t.name for t in reversed(metadata.sorted_tables)]
    with database.engine.begin() as conn:
        if database.is_sqlite:
            for name in tables:
                conn.execute(text(f'DELETE FROM "{name}"'))
        else:
            # TRUNCATE costs a new file per table (and, cascading from users, nearly all of
            # them): seconds a test on a busy machine. Most tests fill a handful of the tables, so
            # delete from those holding rows, children first, and restart the sequences a test
            # advanced (ids start at 1 in every test, as they did with RESTART IDENTITY)
            probe = " UNION ALL ".join(
                f"SELECT '{t}' WHERE EXISTS (SELECT 1 FROM \"{t}\")" for t in tables)
            dirty = {row[0] for row in conn.execute(text(probe))}
            for name in tables:
                if name in dirty:
                    conn.execute(text(f'DELETE FROM "{name}"'))
            conn.execute(text(
                "SELECT setval(quote_ident(schemaname) || '.' || quote_ident(sequencename), 1, false) "
                "FROM pg_sequences WHERE last_value IS NOT NULL")).all()


@pytest.fixture(scope="session")
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    yield db
    db.dispose()


@pytest.fixture
def db(database: Database) -> Iterator[Session]:
    """A session on the migrated database; every table is emptied after the test.

    Its transactions begin deferred (not ``BEGIN IMMEDIATE``), so a test that has read something
    does not hold SQLite's write lock while the app under test writes."""
    from assessment.jobs import use_process_queue
    from microcred.jobs import JobQueue, make_huey

    # a job a commit outside any request asks for (a released pass's badge) runs at once, as
    # the app's do in tests (huey's immediate mode); tests/test_jobs.py runs real workers
    use_process_queue(lambda: JobQueue(make_huey(instance_dir=Path("."), redis_url=None,
                                                 immediate=True), database.session),
                      pin=True)
    session = database.session(write=False)
    try:
        yield session
    finally:
        use_process_queue(None)
        session.rollback()
        session.close()
        _empty_all_tables(database)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    instance = tmp_path / "instance"
    instance.mkdir()
    return Settings(
        instance_dir=instance,
        database_url=database_url,
        secret_key="test-secret-" + uuid.uuid4().hex,
        cookie_secure=False,
        save_grace_seconds=2.0,
        # no waiting room: tests start many attempts at one instant of a standing clock
        # (tests/delivery/test_waiting_room.py sets a rate of its own)
        start_rate=0.0,
    )


@pytest.fixture
def app(settings: Settings, db: Session):
    from assessment.app import create_app

    # jobs run as they are enqueued (huey's immediate mode), in tests only: tests/test_jobs.py
    # runs them on a real worker
    application = create_app(settings, TESTING=True, JOBS_IMMEDIATE=True)
    yield application
    application.extensions["microcred.database"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_user(db: Session):
    """``make_user(role, email=None, name=None)`` -> a committed User with password PASSWORD."""
    from assessment.users import create_user

    counter = iter(range(1, 10_000))

    def make(role: str, email: str | None = None, name: str | None = None):
        n = next(counter)
        user = create_user(
            db,
            email=email or f"{role}{n}@example.org",
            password=PASSWORD,
            role=role,
            display_name=name or f"{role.title()} {n}",
        )
        db.commit()
        return user

    return make


def csrf_token(client) -> str:
    """The CSRF token of the client's session, read from a page's meta tag."""
    page = client.get("/signin", follow_redirects=True).get_data(as_text=True)
    match = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert match, "no csrf-token meta tag"
    return match.group(1)


def signin(client, user, password: str = PASSWORD):
    token = csrf_token(client)
    resp = client.post("/signin", data={"email": user.email, "password": password, "csrf_token": token})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    return client


#: argon2id at its lowest cost: the hash is as real (its parameters are in it, so any process
#: verifies it as written), only cheap. The production cost (~0.1-0.2 s of CPU a hash here) spent
#: on every account a test makes and every sign-in was about a tenth of the suite's CPU.
QUICK_HASHER = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)


@pytest.fixture(autouse=True)
def _quick_password_hashes(request, monkeypatch):
    """Every test hashes and verifies passwords with :data:`QUICK_HASHER`, except those marked
    ``production_hashes`` (tests/test_security.py checks the production parameters)."""
    if request.node.get_closest_marker("production_hashes") is None:
        from assessment import users

        monkeypatch.setattr(users, "_hasher", QUICK_HASHER)
        monkeypatch.setattr(users, "_DUMMY_HASH", None)  # the unknown-email check's, made anew
    yield


def bench_candidates(session: Session, n: int, prefix: str) -> list[str]:
    """``n`` candidates with the benches' password (bench/delivery_load.py), for a bench's brief
    run in the suite; their emails."""
    from assessment.users import create_user
    from bench.delivery_load import PASSWORD as BENCH_PASSWORD

    emails = [create_user(session, email=f"{prefix}{i}@example.org", password=BENCH_PASSWORD,
                          role="candidate", display_name=f"{prefix} {i}").email
              for i in range(n)]
    session.commit()
    return emails


@pytest.fixture(name="csrf_token")
def csrf_token_fixture():
    return csrf_token


@pytest.fixture(name="signin")
def signin_fixture():
    return signin


def build_exam(session: Session, *, code: str = "T-EXAM", minutes: float = 10, pass_percent: float = 60,
               n_per_domain: tuple[int, int] = (3, 2), policy: dict | None = None,
               shuffle: bool = True):
    """A small published exam: two domains, single-choice and multiple-response items."""
    from assessment.exams import create_exam
    from itembank.authoring import create_blueprint, create_form, create_item, publish_version

    bp = create_blueprint(session, code=f"{code}-BP", name=f"{code} blueprint", domains=[
        {"code": "A", "name": "Domain A", "weight": 0.6, "items_on_form": n_per_domain[0]},
        {"code": "B", "name": "Domain B", "weight": 0.4, "items_on_form": n_per_domain[1]},
    ])
    versions = []
    for dom, count in zip(("A", "B"), n_per_domain):
        for i in range(count):
            multiple = dom == "B" and i == 0
            v = create_item(
                session, code=f"{code}-{dom}{i + 1}",
                item_type_name="multiple_response" if multiple else "single_choice",
                domain_code=dom,
                stem=f"Question {dom}{i + 1}: which option is right?",
                interaction={"options": [{"id": x, "text": f"Option {x} of {dom}{i + 1}"} for x in "ABCD"],
                             **({"select": 2} if multiple else {})},
                key={"correct": ["A", "C"] if multiple else ["B"]},
                rationale="Because the key says so.",
            )
            versions.append(publish_version(session, v))
    form = create_form(session, code=f"{code}-F1", blueprint=bp, versions=versions)
    exam = create_exam(session, code=code, title=f"Exam {code}", blueprint=bp, forms=[form],
                       time_limit_seconds=int(minutes * 60), pass_percent=pass_percent,
                       instructions=["Answer every question."], agreement="I will work alone.",
                       policy=policy or {}, shuffle_items=shuffle, shuffle_options=shuffle)
    session.commit()
    return exam


@pytest.fixture
def demo_exam(db: Session):
    return build_exam(db)


@pytest.fixture(name="build_exam")
def build_exam_fixture():
    return build_exam


# ---------------------------------------------------------------- a live server and a browser


class LiveServer:
    """The app on a real socket, with the face checker that ``microcred serve`` starts beside
    it (camera snapshots' faces are counted off the request path, ``proctoring.face_checks``)."""

    def __init__(self, app, database: Database | None = None) -> None:
        from werkzeug.serving import make_server

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self.server = make_server("127.0.0.1", self.port, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"
        self.stopping = threading.Event()
        self.faces = None
        proctoring = app.extensions.get("microcred.proctoring")
        if database is not None and proctoring is not None:
            from proctoring import face_checks

            self.faces = threading.Thread(
                target=face_checks.serve, args=(database.session, proctoring.vault),
                kwargs={"stop": self.stopping, "idle_s": 0.2}, daemon=True, name="faces")

    def start(self) -> LiveServer:
        self.thread.start()
        if self.faces is not None:
            self.faces.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(5)
        self.stopping.set()
        if self.faces is not None:
            self.faces.join(10)


@pytest.fixture
def live_server(app, database, monkeypatch) -> Iterator[LiveServer]:
    # the runner beats every 4 s in the browser tests (30 s in production), so a proctor's
    # pause or message shows within seconds without a test waiting half a minute
    monkeypatch.setenv("MICROCRED_HEARTBEAT_SECONDS", "4")
    server = LiveServer(app, database).start()
    yield server
    server.stop()


CHROMIUM = os.environ.get("MICROCRED_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
]


def photo_like_frame(seed: int, width: int = 1280, height: int = 720):
    """A BGR frame that compresses like a camera photo, not like a test card: colour gradients
    under sensor-like noise. At 1280x720 its JPEG (quality 90) is some 400 KB, where the fake
    camera's flat green frames make a few KB and once hid a 64 KB upload limit."""
    import numpy as np

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = seed * 0.7
    base = np.stack([x * 255 / width, y * 255 / height,
                     127 + 100 * np.sin((x + y) / 97 + phase)], axis=-1)
    noise = rng.normal(0, 18, (height, width, 3)).astype(np.float32)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def camera_jpeg(seed: int, width: int = 1280, height: int = 720, quality: int = 90) -> bytes:
    """A camera-sized JPEG (:func:`photo_like_frame`), encoded with Pillow."""
    import io

    from PIL import Image

    rgb = photo_like_frame(seed, width, height)[:, :, ::-1]
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, "JPEG", quality=quality)
    return out.getvalue()


@pytest.fixture(scope="session")
def camera_photos() -> tuple[bytes, bytes]:
    """Two different 1280x720 camera photos (a selfie and an ID), some 400 KB each."""
    return camera_jpeg(1), camera_jpeg(2)


def fake_camera_video(path: Path, frames: int = 6) -> Path:
    """A 1280x720 Y4M video of :func:`photo_like_frame` frames, for Chromium's fake camera
    (``--use-file-for-fake-video-capture``), which loops it: photos taken in the browser then
    weigh what a real webcam's do (hundreds of KB)."""
    import cv2

    with path.open("wb") as fh:
        fh.write(b"YUV4MPEG2 W1280 H720 F10:1 Ip A1:1 C420jpeg\n")
        for i in range(frames):
            fh.write(b"FRAME\n")
            fh.write(cv2.cvtColor(photo_like_frame(i), cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM}; `make test` installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    video = fake_camera_video(tmp_path_factory.mktemp("camera") / "camera.y4m")
    args = [*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={video}"]
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser) -> Iterator:
    context = browser.new_context()
    pg = context.new_page()
    yield pg
    context.close()


def pytest_unconfigure(config):
    """Name any non-daemon thread still alive: it would keep the test process from exiting."""
    stragglers = [t for t in threading.enumerate()
                  if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    for t in stragglers:
        print(f"\nthread still running after the tests: {t.name} ({t.__class__.__name__})")


class NodeWriter:
    """A real ``microcred writer`` process on the test database (``microcred.writer``)."""

    def __init__(self, database_url: str, folder: Path) -> None:
        import subprocess
        import sys
        import time

        folder.mkdir(mode=0o700)
        self.path = str(folder / "writer.sock")
        env = {**os.environ, "MICROCRED_DATABASE_URL": database_url,
               "MICROCRED_INSTANCE_DIR": str(folder.parent / "writer-instance")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "assessment.cli", "writer", "--socket", self.path],
            env=env, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not os.path.exists(self.path):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"the writer did not start: {self.process.stderr.read()}")
            time.sleep(0.05)

    def client(self):
        from microcred.writer import WriterClient

        return WriterClient(self.path, timeout=20)

    def stop(self) -> str:
        """Stop it (SIGTERM); what it printed."""
        import subprocess

        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.stderr.read()


@pytest.fixture
def node_writer(database_url: str, tmp_path: Path) -> Iterator[NodeWriter]:
    """The node's writer process, started for this test (its item shapes cache is its own: the
    tables are emptied between tests and ids start again)."""
    writer = NodeWriter(database_url, tmp_path / "writer")
    yield writer
    writer.stop()


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temporary directory with a short path, for Unix sockets: a socket's path is at most
    107 bytes, and pytest's own directories under xdist come near it before the socket's name."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="mc-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
