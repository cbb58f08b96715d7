"""``microcred audit verify|checkpoint|export-checkpoints``,
``microcred proctor assign|unassign|list``, ``microcred proctoring purge`` and
``microcred proctoring sweep``. ``register(group)`` adds them to the ``microcred`` command
(whose group connects every package's receivers, so results finalized by the command line's
sweep are held for review like the web's).
"""
from __future__ import annotations

import sys

import click

from microcred.commands import stop_with_parent
from microcred.heap import settle


def _session():
    from assessment.config import Settings
    from assessment.database import Database
    from assessment.models import load_all

    load_all()
    settings = Settings.from_env()
    return Database(settings.database_url).session(), settings


def _settings():
    from assessment.config import Settings

    return Settings.from_env()


def _user(session, email: str):
    from assessment.users import find_user_by_email

    user = find_user_by_email(session, email)
    if user is None:
        raise click.ClickException(f"no user {email}")
    return user


def _exam(session, code: str):
    from assessment.exams import exam_by_code

    exam = exam_by_code(session, code)
    if exam is None:
        raise click.ClickException(f"no exam {code}")
    return exam


def register(group: click.Group) -> None:
    @group.group("audit")
    def audit_group() -> None:
        """The tamper-evident audit log."""

    @audit_group.command("verify")
    @click.option("--checkpoints", "checkpoints_path", type=click.Path(dir_okay=False),
                  default=None, help="Checkpoints to check against: an export, or a copy of the "
                  "instance folder's audit_checkpoints.jsonl (default: that file).")
    @click.option("--public-key", default=None,
                  help="The checkpoint key's public half, as printed by export-checkpoints "
                  "(default: the instance folder's key).")
    def audit_verify(checkpoints_path: str | None, public_key: str | None) -> None:
        """Check the audit chain and every signed checkpoint; exit 1 and list every edited,
        deleted or reordered row, and every rewrite the checkpoints reveal."""
        from proctoring import checkpoints as cps

        session, settings = _session()
        try:
            key = (cps.parse_public_key(public_key) if public_key
                   else cps.load_signer(settings.instance_dir).public_key)
            signed = cps.read_checkpoints(checkpoints_path or
                                          cps.checkpoint_path(settings.instance_dir))
        except (cps.CheckpointError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
        with session:
            report = cps.verify_anchored(session, signed, key)
        for note in report.notes:
            click.echo(f"note: {note}")
        if report.ok:
            last = report.last_checkpoint
            anchored = (f"; anchored by {report.checkpoints} signed checkpoint(s), the last of "
                        f"{last.at} at seq {last.seq}") if last else ""
            click.echo(f"audit log intact: {report.records} records, hash chain verified{anchored}")
            return
        click.echo(f"audit log TAMPERED: {len(report.problems)} problem(s) in "
                   f"{report.records} records", err=False)
        for problem in report.problems:
            click.echo(f"  - {problem}")
        sys.exit(1)

    @audit_group.command("checkpoint")
    def audit_checkpoint() -> None:
        """Sign the chain's current head now and append it to the instance folder's checkpoint
        file (the sweeper of `microcred serve` does this every few minutes)."""
        from proctoring import checkpoints as cps

        session, settings = _session()
        with session:
            try:
                cp = cps.write_checkpoint(session, settings.instance_dir)
            except cps.CheckpointError as exc:
                raise click.ClickException(str(exc)) from None
        click.echo(f"checkpoint {cp.at}: {cp.seq} records, head {cp.head[:16]}, "
                   f"key {cp.key_id}, in {cps.checkpoint_path(settings.instance_dir)}")

    @audit_group.command("export-checkpoints")
    @click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
                  help="Write to this file (default: standard output).")
    def audit_export_checkpoints(output: str | None) -> None:
        """Every signed checkpoint and the public key that checks them, as JSON: keep it where
        the server cannot write, and check against it with `audit verify --checkpoints`."""
        import json

        from proctoring import checkpoints as cps

        settings = _settings()
        try:
            doc = cps.export(settings.instance_dir)
        except cps.CheckpointError as exc:
            raise click.ClickException(str(exc)) from None
        text = json.dumps(doc, indent=1) + "\n"
        if output:
            with open(output, "w") as fh:
                fh.write(text)
            click.echo(f"{len(doc['checkpoints'])} checkpoint(s) and public key "
                       f"{doc['public_key']} written to {output}", err=True)
        else:
            click.echo(text, nl=False)

    @group.group("proctor")
    def proctor_group() -> None:
        """Proctor assignments."""

    @proctor_group.command("assign")
    @click.argument("email")
    @click.argument("exam_code")
    @click.option("--by", "by_email", default=None, help="Email of the admin making the assignment.")
    def proctor_assign(email: str, exam_code: str, by_email: str | None) -> None:
        """Let the proctor EMAIL watch and act on the sessions of EXAM_CODE."""
        from microcred.errors import DomainError
        from proctoring.assignments import assign

        session, _ = _session()
        with session:
            by = _user(session, by_email) if by_email else None
            try:
                assign(session, _user(session, email), _exam(session, exam_code), by)
            except DomainError as exc:
                raise click.ClickException(exc.message) from None
            session.commit()
        click.echo(f"{email} proctors {exam_code}")

    @proctor_group.command("unassign")
    @click.argument("email")
    @click.argument("exam_code")
    @click.option("--by", "by_email", default=None, help="Email of the admin.")
    def proctor_unassign(email: str, exam_code: str, by_email: str | None) -> None:
        """Withdraw the proctor EMAIL from EXAM_CODE."""
        from microcred.errors import DomainError
        from proctoring.assignments import unassign

        session, _ = _session()
        with session:
            by = _user(session, by_email) if by_email else None
            try:
                gone = unassign(session, _user(session, email), _exam(session, exam_code), by)
            except DomainError as exc:
                raise click.ClickException(exc.message) from None
            session.commit()
        click.echo(f"{email} {'no longer proctors' if gone else 'was not assigned to'} {exam_code}")

    @group.group("proctoring")
    def proctoring_group() -> None:
        """Proctoring data."""

    @proctoring_group.command("sweep")
    def proctoring_sweep() -> None:
        """Run the flag rules over every session in progress, for the rules that depend on time
        (a camera that stopped sending snapshots, a full-screen exit not ended): a closed page
        sends nothing that would run them. Run it every minute or so when nobody watches the
        console (whose polls show a silent camera's flag but store nothing)."""
        from proctoring.events import sweep_rules

        session, _ = _session()
        with session:
            raised = sweep_rules(session)
            for flag in raised:
                click.echo(f"session {flag.session_id}: [{flag.severity}] {flag.message}")
        click.echo(f"{len(raised)} new flag(s)")

    @proctoring_group.command("faces")
    @click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
                  help="Frames searched at once (search processes, and a thread of this one "
                       "for each).")
    @click.option("--nice", "niceness", default=10, show_default=True, type=click.IntRange(0, 19),
                  help="Lower the search processes' CPU priority by this much, so that the "
                       "web's requests go first when the node is busy.")
    @click.option("--idle/--no-idle", default=True, show_default=True,
                  help="Search only on CPU nothing else wants (Linux's SCHED_IDLE): a node short "
                       "of CPU answers its candidates first and falls behind on faces instead.")
    @click.option("--exit-with-parent", is_flag=True, hidden=True,
                  help="Stop when the process that started this one ends (`microcred serve`).")
    def proctoring_faces(workers: int, niceness: int, idle: bool, exit_with_parent: bool) -> None:
        """Count the faces of the camera snapshots still owed a face check, newest first (the
        sessions that have ended before the others), and raise their flags: the face checker.
        `microcred serve` starts one beside the server; run more (here or on other nodes) when
        the checks fall behind. The searches run in processes of their own at a low CPU
        priority; this process, which writes the results, keeps the normal one (so it never
        holds the database's write lock while starved of CPU). Stop it with Ctrl-C or SIGTERM."""
        import logging
        import os
        import signal
        import threading

        from assessment.config import Settings
        from assessment.database import Database
        from assessment.models import load_all
        from proctoring import face_checks
        from proctoring.images import ImageVault, load_key, max_image_pixels

        load_all()
        settings = Settings.from_env()
        db = Database(settings.database_url)
        vault = ImageVault(load_key(settings.instance_dir), max_pixels=max_image_pixels())
        logging.basicConfig(level=logging.INFO,
                            format="%(asctime)s %(name)s %(levelname)s %(message)s")
        # nice 10 still took 0.66 of 2 cores from a node's web workers under load (their save
        # p99 331 ms at 1,000 candidates); an idle-class process runs only when no other does
        idle = idle and hasattr(os, "SCHED_IDLE")
        search = face_checks.SearchPool(workers, niceness=niceness, idle=idle)
        scheduling = f"nice {niceness}" + (", idle class" if idle else "")
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        if exit_with_parent:
            stop_with_parent(stop.set)
        threads = [threading.Thread(target=face_checks.serve, args=(db.session, vault),
                                    kwargs={"stop": stop, "search": search}, name=f"faces-{n}")
                   for n in range(workers)]
        click.echo(f"face checker with {workers} search process(es), {scheduling}", err=True)
        settle()  # its start out of the collector's walks: it holds the write lock at times
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            stop.wait(1)
        for t in threads:
            t.join()
        search.close()
        db.dispose()

    @proctoring_group.command("purge")
    @click.option("--days", type=click.IntRange(1, 36_500), default=None,
                  help="Retention in days (default: MICROCRED_IMAGE_RETENTION_DAYS or 30).")
    def proctoring_purge(days: int | None) -> None:
        """Delete identity photos and snapshots older than the retention period."""
        from proctoring import audit
        from proctoring.images import purge, retention_days

        try:
            keep = days if days is not None else retention_days()
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        if keep < 1:
            raise click.ClickException("--days must be at least 1")
        session, _ = _session()
        with session:
            n = purge(session, older_than_days=keep)
            audit.record(session, "images.purged", actor=None, subject_type="images",
                         subject_id="retention", data={"count": n, "older_than_days": keep})
            session.commit()
        click.echo(f"purged {n} image(s) older than {keep} days")
