"""Command line: ``microcred verify FILE`` and ``microcred credentials ...``.

``register(group)`` adds the commands to Microcred's click group (assessment.cli).
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from credentials.verify import Resolver, verify


def _session_and_cfg():
    """A session on the configured database when it is migrated, else None (offline)."""
    from assessment.config import Settings
    from assessment.database import Database
    from assessment.migrate import pending

    settings = Settings.from_env()
    try:
        if pending(settings.database_url):
            return None, None
    except Exception:  # noqa: BLE001 - no database: verify offline
        return None, None
    from credentials.config import current

    return Database(settings.database_url).session(write=True), current()


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

    session, cfg = _session_and_cfg()
    if session is None:
        raise click.ClickException("the database is not migrated: run `microcred init`")
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

    session, _ = _session_and_cfg()
    if session is None:
        raise click.ClickException("the database is not migrated: run `microcred init`")
    with session:
        for c in expiring(session, within_days=days):
            click.echo(f"{c.valid_until.date()}  {c.public_id}  {c.achievement.code}  "
                       f"holder {c.holder_id}")


def register(group: click.Group) -> None:
    group.add_command(verify_command)
    group.add_command(credentials_group)
