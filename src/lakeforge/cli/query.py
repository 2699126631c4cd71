"""tables, sql, maintain."""

from __future__ import annotations

import click

from lakeforge.cli.common import Context, command, print_json, print_rows


def register(main: click.Group) -> None:
    @command(main, "tables")
    @click.option("--layer", multiple=True, help="Only these layers (bronze, silver, gold, ...).")
    def tables(ctx: Context, layer: tuple[str, ...]) -> int:
        """Lake tables: layer, name, rows, version, last load, mode, location (from the catalog or storage)."""
        infos = ctx.project.tables(list(layer) or None)
        if ctx.json:
            print_json(infos)
        else:
            print_rows(
                None,
                ["layer", "table", "format", "rows", "version", "last load", "mode", "location"],
                [[i.layer, i.name, i.format, i.rows, i.version, i.last_load, i.mode, i.location] for i in infos],
            )
        return 0

    @command(main, "sql")
    @click.argument("query")
    @click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "csv", "json"]),
        default="table",
        show_default=True,
        help="How to print the result.",
    )
    def sql(ctx: Context, query: str, fmt: str) -> int:
        """Run SQL over the lake (DuckDB); tables are layer.table."""
        result = ctx.project.sql(query)
        if ctx.json or fmt == "json":
            print_json(result.to_pylist())
        elif fmt == "csv":
            import io

            import pyarrow.csv as pacsv

            buffer = io.BytesIO()
            pacsv.write_csv(result, buffer)
            click.echo(buffer.getvalue().decode(), nl=False)
        else:
            rows = [list(r.values()) for r in result.to_pylist()]
            print_rows(None, result.column_names, rows)
        return 0

    @command(main, "maintain")
    @click.argument("tables", nargs=-1)
    def maintain(ctx: Context, tables: tuple[str, ...]) -> int:
        """Compact small files, checkpoint the Delta log / rewrite Iceberg manifests, expire old versions and
        remove unreferenced files older than lake.maintenance.retain (TABLES: globs; default every table)."""
        results = ctx.project.maintain(list(tables) or None)
        if ctx.json:
            print_json(results)
        else:
            print_rows(
                None,
                ["table", "files before", "bytes before", "files after", "bytes after", "removed", "done"],
                [
                    [
                        r.table,
                        r.before.files,
                        r.before.bytes,
                        r.after.files,
                        r.after.bytes,
                        r.removed_files,
                        "; ".join(r.actions),
                    ]
                    for r in results
                ],
            )
        return 0
