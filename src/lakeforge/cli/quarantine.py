"""quarantine: the bad records record sources refused."""

from __future__ import annotations

import click

from lakeforge.cli.common import Context, command, out, print_json, print_rows


def register(main: click.Group) -> None:
    @command(main, "quarantine")
    @click.argument("tables", nargs=-1)
    @click.option("--limit", default=100, show_default=True, help="How many records, newest first.")
    def quarantine(ctx: Context, tables: tuple[str, ...], limit: int) -> int:
        """Bad records: source, file and line (or partition and offset), reason, raw text, run."""
        rows = ctx.project.quarantine(list(tables) or None, limit=limit)
        if ctx.json:
            print_json(rows)
            return 0
        if not rows:
            out.print("no quarantined records")
            return 0
        print_rows(
            "quarantine",
            ["table", "where", "reason", "raw", "run"],
            [[r["quarantine_table"], _where(r), r["reason"], _short(r["raw"]), r["run_id"]] for r in rows],
        )
        return 0


def _where(row: dict[str, object]) -> str:
    if row.get("file") is not None:
        return f"{row['file']}:{row['line']}" if row.get("line") is not None else str(row["file"])
    if row.get("partition") is not None or row.get("offset") is not None:
        return f"{row.get('partition')}@{row.get('offset')}"
    return ""


def _short(text: object, width: int = 80) -> str:
    value = "" if text is None else str(text)
    return value if len(value) <= width else value[: width - 3] + "..."
