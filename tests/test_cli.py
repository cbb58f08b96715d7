"""The ``microcred`` command: init (migrations, idempotent), demo (the Clinical Coding
Fundamentals program, its credentials file, ``--if-empty``), ``user add`` and ``sweep``.

Commands run in-process through click's CliRunner, with ``MICROCRED_DATABASE_URL`` and
``MICROCRED_INSTANCE_DIR`` pointing at temporary paths; one run goes through the installed
``.venv/bin/microcred`` script. The demo is loaded once for the module, on SQLite; ``init`` also
runs on a fresh PostgreSQL database (dropped afterwards; skipped, with the reason in the summary,
when the server does not answer)."""
from __future__ import annotations

import datetime as dt
import os
import random
import re
import selectors
import signal
import socket
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy import create_engine, func, inspect, select, text

from assessment.cli import main
from assessment.config import Settings
from assessment.database import Database
from assessment.jobs import use_process_queue
from assessment.migrate import pending
from assessment.models import load_all
from credentials.models import Issuance
from itembank.types import item_type
from microcred.jobs import JobQueue, make_huey

MICROCRED = Path(sys.executable).parent / "microcred"
DEMO_ROLES = ["candidate", "proctor", "psychometrician", "admin", "item_author"]
DEMO_EXAM_CODE = "CCF-2026"


def run(env: dict[str, str], *args: str):
    result = CliRunner().invoke(main, list(args), env=env)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def _env(url: str, instance: Path) -> dict[str, str]:
    return {"MICROCRED_DATABASE_URL": url, "MICROCRED_INSTANCE_DIR": str(instance)}


def _forbid_create_all(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("`microcred init` must build the schema by migrations")

    monkeypatch.setattr(sa.MetaData, "create_all", refuse)


def _schema(url: str) -> tuple[set[str], list[str]]:
    engine = create_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
        versions = []
        if "alembic_version" in tables:
            with engine.connect() as conn:
                versions = sorted(conn.execute(text("SELECT version_num FROM alembic_version"))
                                  .scalars())
        return tables, versions
    finally:
        engine.dispose()


# ---------------------------------------------------------------- init


def test_init_migrates_and_is_idempotent(empty_url: str, tmp_path: Path, monkeypatch):
    env = _env(empty_url, tmp_path / "instance")
    # the other commands refuse an uninitialised database, saying what to do
    refused = run(env, "user", "add", "--email", "a@example.org", "--name", "A",
                  "--role", "admin", "--password", "long enough password")
    assert refused.exit_code == 1 and "run `microcred init` first" in refused.output

    _forbid_create_all(monkeypatch)
    first = run(env, "init")
    assert first.exit_code == 0, first.output
    assert first.output.startswith("database ready:")
    tables, versions = _schema(empty_url)
    assert "alembic_version" in tables and versions
    assert tables - {"alembic_version"} == set(load_all().metadata.tables)
    assert pending(empty_url) is False
    assert (tmp_path / "instance" / "secret_key").exists()

    second = run(env, "init")
    assert second.exit_code == 0, second.output
    assert "up to date" in second.output
    assert _schema(empty_url) == (tables, versions)


def test_installed_script_runs_init(tmp_path: Path):
    """The console script itself (a fresh process, real environment variables)."""
    url = f"sqlite:///{tmp_path / 'script.db'}"
    env = {**os.environ, **_env(url, tmp_path / "instance")}
    env.pop("MICROCRED_SECRET_KEY", None)
    proc = subprocess.run([str(MICROCRED), "init"], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"database ready: {url}\n"
    assert "alembic_version" in _schema(url)[0]
    again = run(_env(url, tmp_path / "instance"), "init")
    assert again.output == f"database is up to date: {url}\n"


# ---------------------------------------------------------------- the demo, loaded once


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    root = tmp_path_factory.mktemp("cli-demo")
    url = f"sqlite:///{root / 'demo.db'}"
    env = _env(url, root / "instance")
    assert run(env, "init").exit_code == 0
    loaded = run(env, "demo")
    assert loaded.exit_code == 0, loaded.output
    database = Database(url)
    # the badge jobs in-process commands ask for run at once (huey's immediate mode); the
    # subprocess tests run a real worker
    use_process_queue(lambda: JobQueue(make_huey(instance_dir=root, redis_url=None,
                                                 immediate=True), database.session), pin=True)
    yield SimpleNamespace(env=env, url=url, instance=root / "instance", output=loaded.output,
                          database=database)
    use_process_queue(None)
    database.dispose()


def _counts(database: Database) -> dict[str, int]:
    with database.session(write=False) as s:
        return {name: s.scalar(select(func.count()).select_from(table))
                for name, table in load_all().metadata.tables.items()}


def _creds(instance: Path) -> list[tuple[str, str, str]]:
    lines = (instance / "demo-credentials.txt").read_text().splitlines()
    return [tuple(line.split()) for line in lines if line.strip()]


def test_demo_loads_the_clinical_coding_program(demo):
    from assessment.delivery.models import Attempt, Result
    from assessment.exams import Exam
    from assessment.users import User
    from itembank.models import Form, FormItem, ItemVersion

    assert "demo program loaded" in demo.output
    with demo.database.session(write=False) as s:
        exams = s.scalars(select(Exam).where(Exam.code != "CCF-SWEEP")).all()  # see the sweep
        assert [e.code for e in exams] == [DEMO_EXAM_CODE]
        exam = exams[0]
        assert exam.title == exam.program_name == "Clinical Coding Fundamentals"
        assert exam.time_limit_seconds == 30 * 60
        assert 0 < exam.pass_percent < 100
        assert exam.is_open
        # the demo's items went through review: written, submitted, signed off, approved
        published = s.scalar(select(func.count()).select_from(ItemVersion)
                             .where(ItemVersion.status == "approved"))
        assert published >= 40
        form_ids = [ef.form_id for ef in exam.forms]
        assert form_ids
        for form_id in form_ids:
            n = s.scalar(select(func.count()).select_from(FormItem)
                         .where(FormItem.form_id == form_id))
            assert n == 20, (s.get(Form, form_id).code, n)

        roles = dict(s.execute(select(User.email, User.role)
                               .where(User.email.like("%@demo.microcred.test"), User.active)).all())
        assert sorted(roles.values()) == sorted(DEMO_ROLES)
        past = s.scalar(select(func.count()).select_from(User)
                        .where(User.role == "candidate", User.active.is_(False)))
        assert past >= 500
        results = s.scalar(select(func.count()).select_from(Result).join(Attempt)
                           .where(Attempt.exam_id == exam.id, Attempt.status == "finalized"))
        assert results >= 500
        passed = s.scalar(select(func.count()).select_from(Result).where(Result.passed))
        assert 0 < passed < results


def test_demo_ships_its_badge_and_stack_and_issues_missing_badges(demo):
    """The demo exam earns the program's achievement, which completes a stack (finding 18); a
    pass released before any badge existed (the simulated history) gets its badge and the stack
    from `microcred credentials issue-missing`, once."""
    from assessment.delivery.models import Attempt, Result
    from assessment.exams import Exam
    from assessment.users import User
    from credentials.models import Achievement, Credential

    with demo.database.session() as s:
        exam = s.scalar(select(Exam).where(Exam.code == DEMO_EXAM_CODE))
        badge = s.scalar(select(Achievement).where(Achievement.exam_id == exam.id))
        assert (badge.code, badge.name, badge.active) == ("CCF", exam.program_name, True)
        stack = s.scalar(select(Achievement).where(Achievement.is_stack.is_(True)))
        assert stack.stack_components == ["CCF"] and stack.stack_required == 1
        # the simulated candidates are deactivated accounts: nothing is missing for them
        assert s.scalar(select(func.count()).select_from(Credential)) == 0
        # ... until one of them is an active account again
        passer = s.scalar(select(User).join(Attempt, Attempt.candidate_id == User.id)
                          .join(Result, Result.attempt_id == Attempt.id)
                          .where(Attempt.exam_id == exam.id, Result.passed.is_(True))
                          .order_by(User.id).limit(1))
        passer.active = True
        s.commit()
        passer_id = passer.id
    try:
        listed = run(demo.env, "credentials", "issue-missing", "--achievement", "CCF",
                     "--dry-run")
        assert listed.exit_code == 0, listed.output
        assert listed.output.startswith("CCF: 1 released pass(es) without this badge\n")
        issued = run(demo.env, "credentials", "issue-missing", "--achievement", "CCF")
        assert issued.exit_code == 0, issued.output
        assert issued.output.endswith("issued 2 credential(s)\n")  # the badge and the stack
        with demo.database.session(write=False) as s:
            held = s.scalars(select(Credential).where(Credential.holder_id == passer_id)).all()
            assert sorted(c.achievement.code for c in held) == ["CCF", "CCF-PATH"]
        again = run(demo.env, "credentials", "issue-missing", "--achievement", "CCF")
        assert again.output == ("CCF: 0 released pass(es) without this badge\n"
                                "issued 0 credential(s)\n")
        unknown = run(demo.env, "credentials", "issue-missing", "--achievement", "NOPE")
        assert unknown.exit_code == 1 and "no achievement 'NOPE'" in unknown.output
        stacked = run(demo.env, "credentials", "issue-missing", "--achievement", "CCF-PATH")
        assert stacked.exit_code == 1 and "is a stack" in stacked.output
    finally:
        with demo.database.session() as s:
            s.get(User, passer_id).active = False
            s.commit()


def test_demo_credentials_file_signs_in(demo):
    from assessment.app import create_app

    path = demo.instance / "demo-credentials.txt"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    creds = _creds(demo.instance)
    assert [role for role, _, _ in creds] == DEMO_ROLES
    for role, email, password in creds:
        assert password in demo.output and email in demo.output
        assert len(password) >= 10

    settings = Settings(instance_dir=demo.instance, database_url=demo.url,
                        secret_key="cli-test-" + uuid.uuid4().hex, cookie_secure=False)
    app = create_app(settings, TESTING=True)
    try:
        for role, email, password in creds:
            client = app.test_client()
            page = client.get("/signin").get_data(as_text=True)
            token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
            resp = client.post("/signin", data={"email": email, "password": password,
                                                "csrf_token": token})
            assert resp.status_code == 302, (role, resp.status_code)
            home = client.get("/", follow_redirects=True)
            assert home.status_code == 200, role
            assert f"({role})" in home.get_data(as_text=True), role
    finally:
        app.extensions["microcred.database"].dispose()


def test_demo_if_empty_loads_nothing_more(demo):
    before = _counts(demo.database)
    creds = (demo.instance / "demo-credentials.txt").read_text()

    again = run(demo.env, "demo", "--if-empty")
    assert again.exit_code == 0, again.output
    assert "already has users; demo not loaded" in again.output
    assert _counts(demo.database) == before
    assert (demo.instance / "demo-credentials.txt").read_text() == creds

    # without --if-empty a second load is refused with a message, not a traceback
    refused = run(demo.env, "demo")
    assert refused.exit_code == 1, refused.output
    assert "already loaded" in refused.output and "--if-empty" in refused.output
    assert "Traceback" not in refused.output
    assert _counts(demo.database) == before
    assert (demo.instance / "demo-credentials.txt").read_text() == creds


def test_demo_sign_ins_are_aligned_and_shown_once(demo):
    """`make run` shows the sign-ins once, from `microcred demo --if-empty`, in columns."""
    lines = (demo.instance / "demo-credentials.txt").read_text().splitlines()
    for n in (1, 2):  # where the email and the password columns start
        starts = {len(re.match(rf"(\S+\s+){{{n}}}", line).group(0)) for line in lines}
        assert len(starts) == 1, lines
    assert demo.output.count(lines[-1]) == 1
    again = run(demo.env, "demo", "--if-empty").output
    assert [again.count(line) for line in lines] == [1] * len(DEMO_ROLES), again
    makefile = (Path(__file__).parent.parent / "Makefile").read_text()
    assert "demo-credentials.txt" not in makefile  # the Makefile no longer prints them again


def test_user_add(demo):
    from assessment.users import User

    ok = run(demo.env, "user", "add", "--email", "New.Proctor@Example.org", "--name", "New P",
             "--role", "proctor", "--password", "a long enough password")
    assert ok.exit_code == 0, ok.output
    assert re.fullmatch(r"added proctor new\.proctor@example\.org \(id \d+\)\n", ok.output)
    with demo.database.session(write=False) as s:
        user = s.scalar(select(User).where(User.email == "new.proctor@example.org"))
        assert user.role == "proctor" and user.display_name == "New P"
        assert user.password_hash.startswith("$argon2id$")
        assert user.check_password("a long enough password")
    users = _counts(demo.database)["users"]

    duplicate = run(demo.env, "user", "add", "--email", "NEW.proctor@example.org",
                    "--name", "Twin", "--role", "admin", "--password", "a long enough password")
    assert duplicate.exit_code == 1
    assert "Error: a user with email new.proctor@example.org already exists" in duplicate.output

    bad_role = run(demo.env, "user", "add", "--email", "w@example.org", "--name", "W",
                   "--role", "wizard", "--password", "a long enough password")
    assert bad_role.exit_code == 2
    assert "Invalid value for '--role'" in bad_role.output and "'wizard'" in bad_role.output

    short = run(demo.env, "user", "add", "--email", "s@example.org", "--name", "S",
                "--role", "candidate", "--password", "short")
    assert short.exit_code == 1 and "at least 8 characters" in short.output

    not_email = run(demo.env, "user", "add", "--email", "nobody", "--name", "N",
                    "--role", "candidate", "--password", "a long enough password")
    assert not_email.exit_code == 1 and "not an email address" in not_email.output
    assert _counts(demo.database)["users"] == users


def test_sweep_finalizes_attempts_whose_time_ran_out(demo):
    from assessment.delivery import service
    from assessment.delivery.models import Attempt, Result
    from assessment.exams import Exam, create_exam
    from assessment.users import User, create_user, find_user_by_email

    with demo.database.session() as s:
        # the demo exam is proctored (an attempt starts only once a proctor admits the
        # candidate); an unproctored exam on the same forms keeps this test about the clock
        demo_exam = s.scalar(select(Exam).where(Exam.code == DEMO_EXAM_CODE))
        exam = create_exam(s, code="CCF-SWEEP", title="Sweep check", blueprint=demo_exam.blueprint,
                           forms=[ef.form for ef in demo_exam.forms], time_limit_seconds=600,
                           pass_percent=70, agreement="I will work alone.", policy={})
        late = find_user_by_email(s, "candidate@demo.microcred.test")
        on_time = create_user(s, email="sweep.ontime@example.org", password="long enough pass",
                              role="candidate", display_name="On Time")
        expired = service.start_attempt(s, late, exam, grace_seconds=5)
        running = service.start_attempt(s, on_time, exam, grace_seconds=5)
        back = dt.timedelta(seconds=exam.time_limit_seconds + 120)
        # started earlier: its start and its stored deadline (timing.StoredClock) move together
        expired.started_at, expired.deadline_at = expired.started_at - back, expired.deadline_at - back
        s.commit()
        expired_id, running_id = expired.id, running.id

    swept = run(demo.env, "sweep")
    assert swept.exit_code == 0, swept.output
    assert swept.output == f"finalized 1 attempt(s): {expired_id}\n"
    with demo.database.session(write=False) as s:
        done = s.get(Attempt, expired_id)
        assert (done.status, done.finalize_reason) == ("finalized", "time_expired")
        deadline = done.started_at + dt.timedelta(seconds=done.time_limit_seconds)
        assert done.finalized_at == deadline
        result = s.scalar(select(Result).where(Result.attempt_id == expired_id))
        assert result is not None and result.answered == 0 and result.passed is False
        assert s.get(Attempt, running_id).status == "in_progress"
        assert s.scalar(select(User.id).where(User.email == "sweep.ontime@example.org"))

    assert run(demo.env, "sweep").output == "finalized 0 attempt(s)\n"


def _expired_attempt(s, demo, *, code: str, email: str, passing: bool = True,
                     achievement: bool = True) -> tuple[int, int]:
    """An unproctored exam on the demo's forms (with an achievement, through credentials'
    services), and a candidate who answered everything (right, or wrong) and then closed the
    browser: the attempt's time ran out an hour ago. Returns (exam id, attempt id)."""
    from assessment.delivery import service
    from assessment.exams import Exam, create_exam
    from assessment.users import create_user
    from credentials.config import CredentialConfig
    from credentials.issuance import create_achievement
    from itembank.models import ItemVersion

    exam = s.scalar(select(Exam).where(Exam.code == code))
    if exam is None:
        demo_exam = s.scalar(select(Exam).where(Exam.code == DEMO_EXAM_CODE))
        exam = create_exam(s, code=code, title=f"{code} check", blueprint=demo_exam.blueprint,
                           forms=[ef.form for ef in demo_exam.forms], time_limit_seconds=600,
                           pass_percent=70, agreement="I will work alone.", policy={})
        if achievement:
            cfg = CredentialConfig(base_url="http://127.0.0.1:5000", instance_dir=demo.instance)
            create_achievement(s, cfg, code=f"{code}-BADGE", name=f"{code} badge",
                               description="Passed the sweep check.", exam_id=exam.id)
    who = create_user(s, email=email, password="long enough pass", role="candidate",
                      display_name=email.split("@")[0].title())
    began = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=exam.time_limit_seconds + 3600)
    attempt = service.start_attempt(s, who, exam, now=began, grace_seconds=5)
    saves = []
    for n, version_id in enumerate(attempt.item_order, start=1):
        version = s.get(ItemVersion, version_id)
        value = item_type(version.item_type).sample_response(version, passing, random.Random(n))
        saves.append(service.SaveRequest(n, version_id, value, False))
    service.save_responses(s, attempt, saves, now=began + dt.timedelta(seconds=60), grace_seconds=5)
    s.commit()
    return exam.id, attempt.id


def _credentials_of(database: Database, attempt_id: int) -> list[tuple[str, str]]:
    """(achievement code, credential id) of each credential the attempt's result earned."""
    from assessment.delivery.models import Result
    from credentials.models import Credential

    with database.session(write=False) as s:
        return [(c.achievement.code, c.json["id"]) for c in s.scalars(
            select(Credential).join(Result, Credential.result_id == Result.id)
            .where(Result.attempt_id == attempt_id))]


def test_sweep_in_its_own_process_issues_the_badge_a_pass_earns(demo):
    """Time runs out with no browser; `microcred sweep`, a fresh process that imports nothing
    for the badge's sake, finalizes the pass and the badge is issued (finding 3)."""
    from assessment.delivery.models import Attempt, Result

    with demo.database.session() as s:
        _, attempt_id = _expired_attempt(s, demo, code="CCF-BADGE", email="gone@example.org")
    env = {**os.environ, **demo.env}
    proc = subprocess.run([str(MICROCRED), "sweep"], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"finalized 1 attempt(s): {attempt_id}\n"
    with demo.database.session(write=False) as s:
        assert s.get(Attempt, attempt_id).finalize_reason == "time_expired"
        result_id = s.scalar(select(Result.id).where(Result.attempt_id == attempt_id,
                                                    Result.passed.is_(True)))
        assert result_id is not None
        owed = s.scalar(select(Issuance).where(Issuance.result_id == result_id))
        assert owed.state == "pending"  # owed, queued in instance/jobs.db: a worker issues it
    assert _credentials_of(demo.database, attempt_id) == []

    worker = subprocess.Popen([str(MICROCRED), "worker"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120  # a generous bound for a busy CI machine, not a goal
        while time.monotonic() < deadline and not _credentials_of(demo.database, attempt_id):
            assert worker.poll() is None, worker.stdout.read()
            time.sleep(0.2)
    finally:
        worker.send_signal(signal.SIGINT)  # huey's graceful stop
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    [(code, _)] = _credentials_of(demo.database, attempt_id)
    assert code == "CCF-BADGE-BADGE"
    with demo.database.session(write=False) as s:
        owed = s.scalar(select(Issuance).where(Issuance.result_id == result_id))
        assert (owed.state, owed.error, owed.attempts) == ("issued", None, 1)


def test_a_failing_receiver_does_not_hold_up_the_other_attempts(demo, caplog):
    """Each attempt is finalized in its own transaction: one whose receiver raises is rolled
    back, logged with its id and recorded, the ones behind it are finalized (and badged), and
    the first sweep after its backoff finalizes it once the receiver works."""
    from assessment.delivery.models import Attempt
    from microcred import signals

    with demo.database.session() as s:
        ids = [_expired_attempt(s, demo, code="CCF-BADGE", email=f"fails.{n}@example.org")[1]
               for n in range(3)]
    broken = ids[0]  # the first swept: every attempt is behind it

    def receiver(sender, *, attempt_id, **_):
        if attempt_id == broken:
            raise RuntimeError("the badge service is down")

    signals.result_finalized.connect(receiver)
    try:
        swept = run(demo.env, "sweep")
    finally:
        signals.result_finalized.disconnect(receiver)
    assert swept.exit_code == 0, swept.output
    assert swept.output == f"finalized 2 attempt(s): {ids[1]}, {ids[2]}\n"
    failed = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(failed) == 1 and f"attempt {broken} could not be finalized" in failed[0].message
    assert "the badge service is down" in failed[0].exc_text
    with demo.database.session(write=False) as s:
        assert s.get(Attempt, broken).status == "in_progress"
        assert [s.get(Attempt, i).status for i in ids[1:]] == ["finalized", "finalized"]
    assert _credentials_of(demo.database, broken) == []
    assert [len(_credentials_of(demo.database, i)) for i in ids[1:]] == [1, 1]

    # recorded, and left alone until its backoff is over (not retried on every sweep)
    assert run(demo.env, "sweep").output == "finalized 0 attempt(s)\n"
    from sqlalchemy import update

    from assessment.delivery.models import SweepFailure
    with demo.database.session() as s:
        assert s.get(SweepFailure, broken).failures == 1
        s.execute(update(SweepFailure).values(retry_at=SweepFailure.failed_at))  # time passed
        s.commit()
    again = run(demo.env, "sweep")
    assert again.output == f"finalized 1 attempt(s): {broken}\n"
    assert len(_credentials_of(demo.database, broken)) == 1


@pytest.mark.parametrize("server_kind", ["gunicorn", "granian"])
def test_serve_answers_and_its_sweeper_finalizes_expired_attempts(demo, server_kind):
    """`microcred serve` runs gunicorn (or granian) and, in a process of its own, the sweep: an attempt whose
    time ran out while nobody was connected is finalized without any request, and the pass
    earns its badge (finding 3). With no MICROCRED_PUBLIC_URL, the badge's ids and the links
    on its page name the port served, not 5000 (finding 19)."""
    import urllib.request

    from assessment.delivery.models import Attempt

    with demo.database.session() as s:
        _, attempt_id = _expired_attempt(s, demo, code=f"CCF-SERVE-{server_kind[:4].upper()}",
                                         email=f"serve.sweep.{server_kind}@example.org")

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, **demo.env, "PYTHONWARNINGS": "default::ResourceWarning"}
    env.pop("MICROCRED_PUBLIC_URL", None)
    server = subprocess.Popen(
        [str(MICROCRED), "serve", "--port", str(port), "--workers", "1", "--sweep-every", "1",
         "--server", server_kind],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90  # a bound for a busy CI machine (three processes start)
        status, finalized = None, False
        while time.monotonic() < deadline and not (status == 200 and finalized):
            time.sleep(0.5)
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as resp:
                    status = resp.status
            except OSError:
                pass
            with demo.database.session(write=False) as s:
                # finalized by the sweeper, and badged by serve's job worker
                finalized = s.get(Attempt, attempt_id).status == "finalized" \
                    and bool(_credentials_of(demo.database, attempt_id))
        assert status == 200, "microcred serve did not answer /healthz"
        with demo.database.session(write=False) as s:
            assert s.get(Attempt, attempt_id).status == "finalized", \
                "the serve sweeper did not finalize the expired attempt"
        assert finalized, "serve's job worker did not issue the badge"
        [(code, credential_id)] = _credentials_of(demo.database, attempt_id)
        assert code == f"CCF-SERVE-{server_kind[:4].upper()}-BADGE"
        assert credential_id.startswith(f"{base}/badges/"), credential_id
        with urllib.request.urlopen(credential_id, timeout=10) as resp:
            page = resp.read().decode()
        assert f"127.0.0.1%3A{port}" in page  # the LinkedIn link's certUrl
        assert ":5000" not in page and "%3A5000" not in page
        with urllib.request.urlopen(f"{credential_id}/credential.json", timeout=10) as resp:
            document = resp.read().decode()
        assert f"{base}/" in document and ":5000" not in document
    finally:
        server.terminate()
        output = server.communicate(timeout=40)[0].decode()
    assert server.returncode == 0, output
    assert f"sweep: finalized attempts [{attempt_id}]" in output
    assert "face checker with 1 search process(es), nice 10, idle class" in output  # beside the server
    assert "ResourceWarning" not in output  # nothing left open on the way out (finding 25)


def _children(pid: int) -> dict[int, str]:
    """The processes whose parent is ``pid``: their command lines."""
    from bench.delivery_load import _proc_stats

    found = {}
    for child, ppid, _, _ in _proc_stats():
        if ppid == pid:
            try:
                with open(f"/proc/{child}/cmdline", "rb") as f:
                    found[child] = f.read().replace(b"\0", b" ").decode()
            except OSError:
                continue
    return found


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie does not: it holds no port and runs no code)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_serve_killed_leaves_no_worker_writer_or_folder_behind(demo):
    """`microcred serve` killed with -9 cannot stop what it started: granian's workers kept
    serving the port, and the writer's socket folder stayed. Each now stops by itself. (What
    this serve started is found by its process tree, not by the port or the folders in /tmp,
    which another test's serve may use at the same time.)"""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([str(MICROCRED), "serve", "--port", str(port), "--workers", "2",
                               "--face-workers", "0", "--job-workers", "0"],
                              env={**os.environ, **demo.env}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        _wait_for_serve(server, port)
        started = _children(server.pid)
        writers = [cmd for cmd in started.values() if " writer --socket " in cmd]
        assert len(writers) == 1, started
        folder = os.path.dirname(writers[0].split(" --socket ", 1)[1].split()[0])
        assert os.path.isdir(folder) and os.path.basename(folder).startswith("microcred-writer-")
        # granian's workers are children of serve (its server runs in serve's process)
        processes = set(started)
        assert len(processes) >= 3, started  # the writer and two web workers at least
        server.kill()
        server.wait(10)
        deadline = time.monotonic() + 15  # the workers' and the writer's watch: 2 s; the alarm 5 s
        while True:
            running = {p for p in processes if _alive(p)}
            if not running and not os.path.exists(folder):
                break
            assert time.monotonic() < deadline, (running, os.path.exists(folder))
            time.sleep(0.2)
    finally:
        if server.poll() is None:
            server.kill()


def test_serve_by_default_answers_api_requests_beyond_its_limit_503_at_once(demo):
    """Under `microcred serve`'s defaults the backpressure limit acts (issue 15, goal 3): with
    MICROCRED_MAX_IN_FLIGHT=1, API requests kept in flight (their body not sent yet, which the
    CSRF check waits for) take each worker's one slot, and every other one is answered 503 with
    Retry-After while those are still in flight. Under the former default (gunicorn's sync
    workers, `--threads 1`) the others waited behind the held ones, unanswered."""
    from assessment.cli import serve_shape

    workers, threads = serve_shape("granian", None, None, max_in_flight=1)
    assert threads > 1, "the default must be threaded workers, or the limit never acts"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [str(MICROCRED), "serve", "--port", str(port), "--sweep-every", "0", "--job-workers", "0",
         "--face-workers", "0"],  # the web workers' defaults; nothing else started beside them
        env={**os.environ, **demo.env, "MICROCRED_MAX_IN_FLIGHT": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    clients: list[socket.socket] = []
    try:
        _wait_for_serve(server, port)

        body = b"csrf_token=stale"
        head = (f"POST /api/attempts/1/saves HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        beyond = 4  # at least this many find their worker's one slot taken
        for _ in range(workers + beyond):
            client = socket.create_connection(("127.0.0.1", port), timeout=10)
            client.sendall(head)
            clients.append(client)
        answers = _answers_within(clients, seconds=10, at_least=beyond)
        held = [c for c in clients if c not in answers]
        assert 1 <= len(held) <= workers, (len(held), answers)
        for answer in answers.values():
            assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), answer
            assert b"\r\nretry-after: 2\r\n" in answer.lower(), answer  # names: any case
            assert b'"error": "busy"' in answer, answer
        for client in held:  # the ones let in were in flight, not lost: they end as usual
            client.sendall(body)
            answer = _answers_within([client], seconds=10).get(client, b"no answer")
            assert answer.startswith(b"HTTP/1.1 400 "), answer  # the stale CSRF token
    finally:
        for client in clients:
            client.close()
        server.terminate()
        output = server.communicate(timeout=40)[0].decode()
    assert f"{workers} workers x {threads} threads" in output, output
    assert server.returncode == 0, output


def _wait_for_serve(server: subprocess.Popen, port: int, seconds: float = 60) -> None:
    """Until ``microcred serve`` on ``port`` answers /healthz (a bound for a busy CI machine)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as probe:
                probe.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                if probe.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline and server.poll() is None, "serve did not start"
        time.sleep(0.2)


def _answers_within(clients: list[socket.socket], *, seconds: float, at_least: int | None = None,
                    quiet: float = 1.0) -> dict[socket.socket, bytes]:
    """The full answers (the server closes each connection, then this side) that arrive within
    ``seconds``; once ``at_least`` have come, only until none more comes for ``quiet`` seconds."""
    at_least = len(clients) if at_least is None else at_least
    selector = selectors.DefaultSelector()
    chunks: dict[socket.socket, bytes] = {}
    for client in clients:
        selector.register(client, selectors.EVENT_READ)
        chunks[client] = b""
    answers: dict[socket.socket, bytes] = {}
    deadline = time.monotonic() + seconds
    while len(answers) < len(clients) and (left := deadline - time.monotonic()) > 0:
        events = selector.select(min(left, quiet) if len(answers) >= at_least else left)
        if not events and len(answers) >= at_least:
            break
        for key, _ in events:
            data = key.fileobj.recv(65536)
            if data:
                chunks[key.fileobj] += data
            else:  # closed by us at once: gunicorn's main loop lingers until the client closes
                answers[key.fileobj] = chunks[key.fileobj]
                selector.unregister(key.fileobj)
                key.fileobj.close()
    selector.close()
    return answers


@pytest.mark.parametrize("server_kind", ["granian", "gunicorn"])
def test_serve_answers_a_browser_beyond_a_thousand_kept_alive_connections(demo, server_kind):
    """Each candidate's browser keeps a connection open between its heartbeats, so the
    connections a worker serves at once cap a node. Under granian's default (its backlog over
    its workers: 512 a worker, 1,024 for this node; 4,096 with the backlog of 4,096) the next
    browser's request waited until another connection closed, 50-70 s, while the workers sat
    idle; gunicorn's threaded workers take 1,000 each by default. With 4,500 connections open
    and idle, a new one is answered."""
    import resource

    from assessment.cli import connections_per_worker

    held = 4500
    if connections_per_worker() < held + 100:  # it raises this process's soft limit too
        pytest.skip(f"this machine's file-descriptor limit is too low for {held} connections")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [str(MICROCRED), "serve", "--port", str(port), "--server", server_kind,
         "--sweep-every", "0", "--job-workers", "0", "--face-workers", "0"],
        env={**os.environ, **demo.env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    request = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    clients: list[socket.socket] = []
    try:
        _wait_for_serve(server, port)
        for _ in range(held):  # each asks once and keeps its connection open, as a browser does
            client = socket.create_connection(("127.0.0.1", port), timeout=10)
            client.sendall(request)
            clients.append(client)
        answered = 0
        for client in clients:
            client.settimeout(10)
            try:
                answered += client.recv(4096).startswith(b"HTTP/1.1 200")
            except TimeoutError:
                pass
        assert answered == held, f"{held - answered} of {held} kept-alive connections unanswered"
        start = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as newcomer:
            newcomer.sendall(request)
            assert newcomer.recv(64).startswith(b"HTTP/1.1 200")
        assert time.monotonic() - start < 5
    finally:
        for client in clients:
            client.close()
        server.terminate()
        output = server.communicate(timeout=40)[0].decode()
    assert server.returncode == 0, output
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] > held


def test_serve_sweeps_the_writer_folders_a_killed_node_left(short_tmp):
    """A node killed as a whole (serve, writer and all, with -9) leaves its writer's folder and
    socket: nothing of it is left to remove them. The next serve removes such folders, and only
    those: not a live writer's, not one just made (a starting node's), not one holding anything
    else, not one that is not a writer's."""
    from assessment.cli import WRITER_FOLDER_GRACE_S, sweep_writer_folders

    tmp_path = short_tmp

    old = time.time() - WRITER_FOLDER_GRACE_S - 60

    def folder(name, *, sock=None, files=(), age=old):
        path = tmp_path / f"microcred-writer-{name}"
        path.mkdir(mode=0o700)
        if sock == "dead":  # bound, then its process gone: the file stays, connecting is refused
            s = socket.socket(socket.AF_UNIX)
            s.bind(str(path / "writer.sock"))
            s.close()
        elif sock == "live":
            s = socket.socket(socket.AF_UNIX)
            s.bind(str(path / "writer.sock"))
            s.listen(1)
            live.append(s)
        for f in files:
            (path / f).write_text("x")
        os.utime(path, (age, age))
        return path

    live: list[socket.socket] = []
    try:
        dead = folder("dead", sock="dead")
        empty = folder("empty")
        running = folder("running", sock="live")
        starting = folder("starting", sock="dead", age=time.time())
        fresh = folder("fresh", age=time.time())
        other = folder("other", sock="dead", files=["notes.txt"])
        unrelated = tmp_path / "somebody-else"
        unrelated.mkdir()
        removed = sweep_writer_folders(str(tmp_path))
        assert sorted(removed) == sorted([str(dead), str(empty)])
        assert not dead.exists() and not empty.exists()
        for kept in (running, starting, fresh, other, unrelated):
            assert kept.exists(), kept
        assert (running / "writer.sock").exists() and (other / "writer.sock").exists()
        assert sweep_writer_folders(str(tmp_path)) == []  # nothing more to remove
    finally:
        for s in live:
            s.close()
