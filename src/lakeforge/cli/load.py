"""init, check, run, runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from lakeforge.cli.common import Context, command, err, esc, out, print_json, print_rows

if TYPE_CHECKING:
    from lakeforge.load.table import TableResult


def register(main: click.Group) -> None:
    @command(main, "init")
    @click.option(
        "--source",
        "sources",
        multiple=True,
        required=True,
        metavar="NAME=URL",
        help="A source, e.g. crm=postgresql://user@host:5432/crm (repeat for more).",
    )
    @click.option("--force", is_flag=True, help="Overwrite an existing lakeforge.yml.")
    def init(ctx: Context, sources: tuple[str, ...], force: bool) -> int:
        """Write lakeforge.yml (all tables, full mode) and .env.example."""
        from lakeforge.config.init_file import ambiguity_warnings, parse_source_args
        from lakeforge.project import Project

        parsed = parse_source_args(list(sources))
        Project.init(ctx.project_dir, list(sources), force=force)
        warnings = ambiguity_warnings(parsed)
        if ctx.json:
            print_json(
                {"created": str(ctx.project_dir / "lakeforge.yml"), "sources": list(parsed), "warnings": warnings}
            )
        else:
            for warning in warnings:
                err.print(f"[yellow]warning:[/yellow] {esc(warning)}", highlight=False)
            out.print(f"wrote {ctx.project_dir / 'lakeforge.yml'} and .env.example; next: lakeforge check")
        return 0

    @command(main, "check")
    def check(ctx: Context) -> int:
        """Validate lakeforge.yml, connect to every source and check servers are ready for cdc tables."""
        results = ctx.project.check()
        if ctx.json:
            print_json({"ok": all(r.ok for r in results), "sources": results})
        else:
            out.print(f"config ok: {ctx.project.path / 'lakeforge.yml'}")
            for r in results:
                if r.ok:
                    facts = ", ".join(f"{k} {v}" for k, v in r.detail.items())
                    out.print(f"[green]ok[/green]   {r.source} ({r.type}): {facts}; {r.tables} tables selected")
                elif r.error:
                    out.print(f"[red]fail[/red] {esc(r.error)}", highlight=False)
                else:
                    out.print(f"[red]fail[/red] {r.source} ({r.type}) is not ready for CDC:", highlight=False)
                    for p in r.problems:
                        out.print(f"  - {esc(p.what)}\n    fix: {esc(p.fix)}", highlight=False)
        return 0 if all(r.ok for r in results) else 1

    @command(main, "run")
    @click.option(
        "--select",
        "-s",
        multiple=True,
        metavar="PATTERN",
        help="Only these tables (glob on lake name, source or source.table).",
    )
    @click.option(
        "--follow", "-f", is_flag=True, help="Keep applying cdc changes until SIGINT/SIGTERM, then commit and stop."
    )
    @click.option("--allow-empty", is_flag=True, help="Succeed when no table is selected (else an error).")
    def run(ctx: Context, select: tuple[str, ...], follow: bool, allow_empty: bool) -> int:
        """Load every selected table into the lake."""
        import contextlib

        from lakeforge.interrupt import graceful_signals

        # --follow handles SIGINT/SIGTERM itself (commit, acknowledge, stop); a plain run rolls back the table
        # in flight on the first signal and stops at once on the second
        signals = contextlib.nullcontext() if follow else graceful_signals()
        signals.__enter__()
        bars = None if ctx.json else _RichProgress()  # its refresh thread inherits the blocked signals
        try:
            result = ctx.project.run(select=list(select) or None, progress=bars, follow=follow, allow_empty=allow_empty)
        except KeyboardInterrupt:
            message = "interrupted: committed tables are kept, the table in flight rolled back (lakeforge runs)"
            if ctx.json:
                print_json({"status": "interrupted", "error": message, "transient": False})
            else:
                err.print(f"[yellow]{message}[/yellow]", highlight=False)
            return 130
        finally:
            if bars:
                bars.stop()
            signals.__exit__(None, None, None)
        if ctx.json:
            print_json(result)
        else:
            for message in result.errors:
                err.print(f"[red]error:[/red] {esc(message)}", highlight=False)
            rows = [
                [r.table, r.mode, r.status, r.rows, f"{r.seconds:.2f}", r.error or r.reason or ""]
                for r in result.tables
            ]
            print_rows(
                f"run {result.run_id}: {result.status}",
                ["table", "mode", "status", "rows", "seconds", "error / note"],
                rows,
            )
            for r in result.tables:
                if r.reason and r.status != "failed":
                    err.print(f"[yellow]note:[/yellow] {r.table}: {esc(r.reason)}", highlight=False)
        return 0 if result.ok else 1

    @command(main, "runs")
    @click.option("--limit", default=10, show_default=True, help="How many runs.")
    def runs(ctx: Context, limit: int) -> int:
        """Run history: per run and table, rows, seconds, status, error."""
        history = ctx.project.runs(limit)
        if ctx.json:
            print_json(history)
            return 0
        rows: list[list[Any]] = []
        for entry in history:
            run = entry["run"] or {}
            rows.append(
                [run.get("run_id"), "*", run.get("status"), run.get("rows"), run.get("seconds"), run.get("error") or ""]
            )
            for t in entry["tables"]:
                rows.append(["", t["table"], t["status"], t["rows"], t["seconds"], t["error"] or t.get("reason") or ""])
        print_rows("runs", ["run", "table", "status", "rows", "seconds", "error / note"], rows)
        return 0


class _RichProgress:
    """Progress bars: one line per table with rows loaded and rate."""

    def __init__(self) -> None:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.bars = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn("{task.completed:,.0f} rows"),
            TimeElapsedColumn(),
            console=err.real(),
            transient=False,
        )
        self.tasks: dict[str, Any] = {}
        self.bars.start()

    def table_started(self, table: str, estimated_rows: int) -> None:
        self.tasks[table] = self.bars.add_task(table, total=None)

    def rows(self, table: str, count: int) -> None:
        self.bars.advance(self.tasks[table], count)

    def table_finished(self, result: TableResult) -> None:
        task = self.tasks[result.table]
        mark = {"success": "[green]✓[/green]", "unchanged": "[cyan]=[/cyan]"}.get(result.status, "[red]✗[/red]")
        self.bars.update(task, description=f"{mark} {result.table}", total=result.rows, completed=result.rows)

    def warning(self, message: str) -> None:
        self.bars.console.print(f"[yellow]warning:[/yellow] {esc(message)}", highlight=False)

    def stop(self) -> None:
        self.bars.stop()
