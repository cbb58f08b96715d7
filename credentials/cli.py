"""Command line: ``microcred verify FILE`` and ``microcred credentials ...``.

``register(group)`` adds the commands to Microcred's click group (assessment.cli).
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from credentials.issuance import IssuanceError
from credentials.verify import Resolver, verify
from microcred.commands import migrated_session


def _session_and_cfg():
    """A session on the configured database when it is migrated, else None (offline)."""
    from credentials.config import current

    session = migrated_session()
    return (None, None) if session is None else (session, current())


def _migrated_session_and_cfg():
    """A session on the configured database, which must be migrated (else a click error)."""
    session, cfg = _session_and_cfg()
    if session is None:
        raise click.ClickException("the database is not migrated: run `microcred init`")
    return session, cfg


@click.command("verify", help="Verify an Open Badges 3.0 credential: a JSON file, a JWT or a "
                              "baked PNG/SVG ('-' reads standard input). Exit 0 when verified. "
                              "Status lists and did:web documents that are not this "
                              "Microcred's are fetched over HTTP(S) from public hosts only.")
@click.argument("file", type=click.Path(allow_dash=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify_command(file: str, as_json: bool) -> None:
    data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    from credentials.resolution import DatabaseResolver, NetworkResolver

    session, cfg = _session_and_cfg()
    # Status lists and did:web documents that are not this Microcred's are fetched (guarded:
    # credentials.remote); this Microcred's own come from its database when there is one.
    resolver: Resolver = NetworkResolver()
    if session is not None:
        resolver = DatabaseResolver(session, cfg, fallback=resolver)
    try:
        report = verify(data, resolver)
        if session is not None:
            session.commit()
    finally:
        if session is not None:
            session.close()
    if as_json:
        import json

        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        for step in report.steps:
            mark = {True: "ok  ", False: "FAIL", None: "--  "}[step.ok]
            click.echo(f"[{mark}] {step.name}: {step.message}")
        click.echo("VERIFIED" if report.verified else f"NOT VERIFIED ({report.status})")
    sys.exit(0 if report.verified else 1)


@click.group("credentials", help="Issuers, keys and credentials.")
def credentials_group() -> None:
    pass


@credentials_group.command("rotate-key", help="Give an issuer a new signing key; old "
                                              "credentials keep verifying.")
@click.option("--issuer", "slug", default="default", show_default=True)
def rotate_key(slug: str) -> None:
    from sqlalchemy import select

    from credentials import issuers
    from credentials.models import Issuer

    session, cfg = _migrated_session_and_cfg()
    with session:
        issuer = session.scalar(select(Issuer).where(Issuer.slug == slug))
        if issuer is None:
            raise click.ClickException(f"no issuer {slug!r}")
        key = issuers.rotate_key(session, cfg, issuer)
        session.commit()
        click.echo(f"{slug}: new key {key.key_ref} ({key.public_key_multibase})")


@credentials_group.command("expiring", help="List credentials expiring soon, not yet renewed.")
@click.option("--days", default=60, show_default=True, type=click.IntRange(1, 36_500))
def expiring_command(days: int) -> None:
    from credentials.issuance import expiring

    session, _ = _migrated_session_and_cfg()
    with session:
        for c in expiring(session, within_days=days):
            click.echo(f"{c.valid_until.date()}  {c.public_id}  {c.achievement.code}  "
                       f"holder {c.holder_id}")


@credentials_group.command("issue-missing", help="Issue the badges earned by passes released "
                                                 "before the achievement existed (never twice).")
@click.option("--achievement", "code", required=True, help="The achievement's code.")
@click.option("--dry-run", is_flag=True, help="Only list the passes that would be badged.")
def issue_missing_command(code: str, dry_run: bool) -> None:
    from sqlalchemy import select

    from credentials.backfill import BATCH, issue_missing, missing_badges
    from credentials.models import Achievement

    session, cfg = _migrated_session_and_cfg()
    with session:
        achievement = session.scalar(select(Achievement).where(Achievement.code == code))
        if achievement is None:
            raise click.ClickException(f"no achievement {code!r}")
        passes = missing_badges(session, achievement)
        click.echo(f"{code}: {len(passes)} released pass(es) without this badge")
        if dry_run:
            for p in passes:
                click.echo(f"  result {p.result_id}  {p.candidate_name}  {p.percent:g}%  "
                           f"{p.finalized_at:%Y-%m-%d}")
            return
        total = 0
        while True:  # a transaction per batch: an interruption keeps what was issued
            try:
                issued = issue_missing(session, cfg, achievement, limit=BATCH)
            except IssuanceError as exc:
                session.rollback()
                raise click.ClickException(str(exc)) from None
            session.commit()
            if not issued:
                break
            total += len(issued)
        click.echo(f"issued {total} credential(s)")


@credentials_group.command("reminders", help="Plan the reminder emails now due (expiry, CE "
                                             "cycle end) and send them through the SMTP server "
                                             "of MICROCRED_SMTP_*; each is sent once, however "
                                             "often this runs (run it from cron, e.g. hourly).")
def reminders_command() -> None:
    from credentials import reminders
    from credentials.errors import CredentialError

    session, cfg = _migrated_session_and_cfg()
    with session:
        try:
            smtp = reminders.SmtpSettings.from_environment()
        except CredentialError as exc:
            raise click.ClickException(str(exc)) from None
        planned = reminders.plan(session)
        counts = reminders.send_due(session, cfg, smtp)
    click.echo(f"planned {len(planned)}; sent {counts['sent']}, skipped {counts['skipped']}, "
               f"to retry {counts['retry']}, failed {counts['failed']}")


def register(group: click.Group) -> None:
    group.add_command(verify_command)
    group.add_command(credentials_group)
