"""cdc status, cdc drop-slot, cdc resnapshot."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from lakeforge.cli.common import Context, command, err, esc, out, print_json, print_rows

if TYPE_CHECKING:
    from lakeforge.load.cdc_ops import CdcSourceStatus

_LOG_FIELDS = {
    "postgres": [
        "slot",
        "exists",
        "active",
        "active_pid",
        "confirmed_flush_lsn",
        "restart_lsn",
        "wal_status",
        "current_lsn",
        "lag_bytes",
        "retained_wal_bytes",
        "publication",
    ],
    "mysql": ["gtid_binlog_pos", "binlog_files", "binlog_bytes", "oldest_binlog", "binlog_format", "server_id"],
}


def register(main: click.Group) -> None:
    @main.group("cdc")
    def cdc() -> None:
        """Change data capture: log positions and lag, replication slots, re-snapshots."""

    @command(cdc, "status")
    @click.argument("source", required=False)
    def status(ctx: Context, source: str | None) -> int:
        """Per cdc source: slot / binlog position, lag in bytes and seconds, last commit per table."""
        statuses = ctx.project.cdc_status(source)
        if ctx.json:
            print_json(statuses)
        elif not statuses:
            out.print("no source has mode: cdc tables", highlight=False)
        for s in [] if ctx.json else statuses:
            _print_status(s)
        return 1 if any(s.error for s in statuses) else 0

    @command(cdc, "drop-slot")
    @click.argument("source")
    def drop_slot(ctx: Context, source: str) -> int:
        """Drop a PostgreSQL source's replication slot (refused while a consumer holds it)."""
        slot, existed = ctx.project.drop_slot(source)
        if ctx.json:
            print_json({"source": source, "slot": slot, "dropped": existed})
        elif existed:
            out.print(
                f"dropped replication slot {slot}; its tables need: lakeforge cdc resnapshot {source}", highlight=False
            )
        else:
            out.print(f"no replication slot {slot}: nothing to drop", highlight=False)
        return 0

    @command(cdc, "resnapshot")
    @click.argument("source")
    @click.option(
        "--table",
        "-t",
        "tables",
        multiple=True,
        metavar="PATTERN",
        help="Only these tables (glob on lake name or source table; repeat for more).",
    )
    def resnapshot(ctx: Context, source: str, tables: tuple[str, ...]) -> int:
        """Reload the cdc tables whose log position was lost (dropped slot, purged binlog); others catch up."""
        result = ctx.project.resnapshot(source, tables=list(tables) or None)
        if ctx.json:
            print_json(result)
        else:
            for message in [*result.errors, *(r.error for r in result.tables if r.error)]:
                err.print(f"[red]error:[/red] {esc(message)}", highlight=False)
            for warning in result.warnings:
                err.print(f"[yellow]warning:[/yellow] {esc(warning)}", highlight=False)
            print_rows(
                f"resnapshot {result.run_id}: {result.status}",
                ["table", "status", "rows", "seconds"],
                [[r.table, r.status, r.rows, f"{r.seconds:.2f}"] for r in result.tables],
            )
        return 0 if result.ok else 1


def _print_status(s: CdcSourceStatus) -> None:
    out.print(f"[bold]{s.source}[/bold] ({s.type})", highlight=False)
    if s.error:
        err.print(f"[red]error:[/red] {esc(s.error)}", highlight=False)
    log = [[key, s.log[key]] for key in _LOG_FIELDS.get(s.type, list(s.log)) if key in s.log]
    if log:
        print_rows(None, ["log", "value"], log)
    if s.warning:
        err.print(f"[yellow]warning:[/yellow] {esc(s.warning)}", highlight=False)
    rows: list[list[Any]] = []
    for t in s.tables:
        lag = "caught up" if t.caught_up else ("" if t.lag_seconds is None else f"{t.lag_seconds:.1f} s")
        rows.append(
            [
                t.table,
                t.position or "(not loaded)",
                _when(t.source_commit_time),
                t.rows,
                _when(t.lake_commit_time),
                lag,
                t.lag_bytes,
            ]
        )
    print_rows(None, ["table", "position", "source commit", "rows", "lake commit", "lag", "lag bytes"], rows)


def _when(value: Any) -> str:
    return value.isoformat(timespec="seconds") if value is not None else ""
