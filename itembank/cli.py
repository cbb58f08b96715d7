"""``microcred items import PATH`` and ``microcred items export``: QTI packages (and CSV banks)
in and out of the item bank from the command line. ``register(group)`` adds them to the
``microcred`` command (``itembank.package``)."""
from __future__ import annotations

import sys
from pathlib import Path

import click


def _session():
    """A session on the configured database, through the ``microcred`` command's context (the
    bank's commands never import the app's configuration or database)."""
    from microcred.commands import migrated_session

    session = migrated_session()
    if session is None:
        raise click.ClickException("the database is missing or not migrated: run `microcred init`")
    return session


def register(group: click.Group) -> None:
    @group.group("items")
    def items_group() -> None:
        """The item bank: import and export (QTI 3.0 / 2.x content packages, CSV)."""

    @items_group.command("import")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--drafts", is_flag=True, help="Import every item as a draft (ignore the "
                  "lifecycle state the package gives).")
    @click.option("--dry-run", is_flag=True, help="Print the report; write nothing.")
    def import_command(path: Path, drafts: bool, dry_run: bool) -> None:
        """Import a QTI content package (.zip), one QTI item (.xml) or a CSV bank (.csv),
        printing what happened to each item. Exits non-zero when the package is refused."""
        from itembank.qti import PackageRefused, import_package
        from itembank.qti.csv_import import import_csv
        from microcred.errors import DomainError

        session = _session()
        try:
            data = path.read_bytes()
            if path.suffix.lower() == ".csv":
                report = import_csv(session, data, path.name, commit=not dry_run)
            else:
                report = import_package(session, data, path.name, keep_status=not drafts,
                                        commit=not dry_run)
            session.commit()
        except PackageRefused as exc:
            session.rollback()
            raise click.ClickException(f"refused, nothing imported: {exc.message}") from None
        except DomainError as exc:
            session.rollback()
            raise click.ClickException(exc.message) from None
        finally:
            session.close()
        for line in report.lines():
            click.echo(line)
        if not report.imported and report.items:
            raise SystemExit(1)

    @items_group.command("export")
    @click.option("--format", "fmt", type=click.Choice(["qti3", "qti21"]), default="qti3",
                  show_default=True, help="QTI 3.0 or QTI 2.1.")
    @click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
                  help="The package to write (a .zip).")
    @click.option("--status", default=None, help="Only items whose newest version has this "
                  "lifecycle state (e.g. approved).")
    @click.option("--domain", default=None, help="Only items of this blueprint domain code.")
    @click.option("--type", "type_", default=None, help="Only items of this type.")
    def export_command(fmt: str, out: Path, status: str | None, domain: str | None,
                       type_: str | None) -> None:
        """Export the bank (each item's newest version) as a QTI content package."""
        from itembank.qti.package import export_package, newest_versions

        session = _session()
        try:
            versions = newest_versions(session, status=status, domain=domain, item_type=type_)
            with click.progressbar(length=len(versions), label=f"exporting {len(versions)} "
                                   "items", show_pos=True, file=sys.stderr) as bar:
                done = [0]

                def step(n: int) -> None:
                    bar.update(n - done[0])
                    done[0] = n

                data = export_package(session, versions, fmt, progress=step)
        finally:
            session.close()
        out.write_bytes(data)
        click.echo(f"wrote {len(versions)} item(s) to {out} ({fmt}, {len(data):,} bytes)")
