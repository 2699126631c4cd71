"""publish, serve sql, serve web."""

from __future__ import annotations

import click

from lakeforge.cli.common import Context, command, err, out, print_json, print_rows

_COLOUR = {"published": "green", "unchanged": "cyan", "failed": "red"}


def register(main: click.Group) -> None:
    @command(main, "publish")
    @click.argument("target", required=False)
    @click.option(
        "--table",
        "-t",
        "tables",
        multiple=True,
        metavar="PATTERN",
        help="Only these lake tables (layer.table or a glob).",
    )
    @click.option("--force", is_flag=True, help="Publish even the tables whose lake version is already there.")
    def publish(ctx: Context, target: str | None, tables: tuple[str, ...], force: bool) -> int:
        """Publish lake tables into the publish: targets (PostgreSQL, MariaDB/MySQL), or only TARGET."""
        results = ctx.project.publish(target, tables=list(tables) or None, force=force)
        failed = any(r.status == "failed" for r in results)
        if ctx.json:
            print_json(results)
            return 1 if failed else 0
        if not results:
            out.print("nothing to publish: no lake table matches the targets' tables", highlight=False)
            return 0
        print_rows(
            "lakeforge publish",
            ["target", "lake table", "target table", "mode", "status", "version", "rows", "seconds"],
            [
                [
                    r.target,
                    r.lake_table,
                    r.target_table,
                    r.mode,
                    f"[{_COLOUR[r.status]}]{r.status}[/{_COLOUR[r.status]}]",
                    r.version,
                    r.rows,
                    f"{r.seconds:.2f}",
                ]
                for r in results
            ],
        )
        for r in results:
            for note in r.notes:
                out.print(f"[yellow]note[/yellow] {r.target} {r.lake_table}.{note}", highlight=False)
            if r.error:
                err.print(f"[red]failed[/red] {r.lake_table}: {r.error}", highlight=False)
        return 1 if failed else 0

    @main.group("serve")
    def serve() -> None:
        """Serve the lake: a PostgreSQL-protocol SQL endpoint, dashboards."""
