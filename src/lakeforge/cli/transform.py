"""build, checks, lineage, export."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click

from lakeforge.cli.common import Context, command, err, esc, out, print_json, print_rows

_STATUS_COLOUR = {
    "success": "green",
    "pass": "green",
    "unchanged": "cyan",
    "quarantined": "yellow",
    "warn": "yellow",
    "skipped": "yellow",
    "failed": "red",
    "fail": "red",
    "error": "red",
}


def _as_of(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a date (YYYY-MM-DD) or timestamp", param_hint="--as-of") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _coloured(status: str) -> str:
    colour = _STATUS_COLOUR.get(status)
    return f"[{colour}]{status}[/{colour}]" if colour else status


def register(main: click.Group) -> None:
    @command(main, "build")
    @click.option(
        "--select",
        "-s",
        multiple=True,
        metavar="PATTERN",
        help="Models to build: layer.name, a glob, NAME+ (and downstream), +NAME (and upstream).",
    )
    @click.option("--as-of", "as_of", metavar="DATE", help="Build point-in-time models as of this date.")
    @click.option("--full-refresh", is_flag=True, help="Rebuild incremental and SCD2 models from scratch.")
    def build(ctx: Context, select: tuple[str, ...], as_of: str | None, full_refresh: bool) -> int:
        """Run the models in dependency order, each followed by its checks."""
        result = ctx.project.build(select=list(select) or None, as_of=_as_of(as_of), full_refresh=full_refresh)
        if ctx.json:
            print_json({"build_id": result.build_id, "status": result.status, "models": result.models})
            return 0 if result.ok else 1
        if not result.models:
            out.print(f"no models to build in {ctx.project.path / ctx.project.config.models_path}", highlight=False)
            return 0
        rows: list[list[Any]] = []
        for m in result.models:
            failed = [c for c in m.checks if c.status != "pass"]
            checks = f"{len(m.checks) - len(failed)}/{len(m.checks)} passed" if m.checks else ""
            rows.append([m.model, m.materialized, _coloured(m.status), m.rows, f"{m.seconds:.2f}", checks])
        print_rows(
            f"lakeforge build {result.build_id}: {result.status}",
            ["model", "materialized", "status", "rows", "seconds", "checks"],
            rows,
        )
        for m in result.models:
            if m.error:
                err.print(f"[red]{m.status}[/red] {m.model}: {esc(m.error)}", highlight=False)
            for c in m.checks:
                if c.status in ("warn", "quarantined"):
                    out.print(f"[yellow]{c.status}[/yellow] {m.model} {c.check}: {esc(c.message)}", highlight=False)
        return 0 if result.ok else 1

    @command(main, "checks")
    @click.option("--failed", is_flag=True, help="Only checks that did not pass.")
    def checks(ctx: Context, failed: bool) -> int:
        """The latest result of every data-quality check."""
        rows = [r for r in ctx.project.checks() if not failed or r["status"] != "pass"]
        if ctx.json:
            print_json(rows)
        else:
            print_rows(
                None,
                ["model", "check", "severity", "status", "failing", "quarantined", "message", "checked"],
                [
                    [
                        r["model"],
                        r["check"],
                        r["severity"],
                        _coloured(r["status"]),
                        r["failing_rows"],
                        r["quarantined_rows"],
                        r["message"],
                        r["checked_at"].isoformat(timespec="seconds"),
                    ]
                    for r in rows
                ],
            )
        return 1 if any(r["status"] in ("fail", "error") for r in rows) else 0

    @command(main, "lineage")
    @click.argument("table", required=False)
    def lineage(ctx: Context, table: str | None) -> int:
        """Upstream and downstream tables of TABLE (every edge without TABLE)."""
        result = ctx.project.lineage(table)
        if ctx.json:
            print_json(result)
        elif table is None:
            print_rows(
                "lineage", ["upstream", "model", "file"], [[a, b, result.files.get(b, "")] for a, b in result.edges]
            )
        else:
            out.print(f"[bold]{table}[/bold]")
            out.print("upstream:   " + (", ".join(result.upstream) or "(none: a source table)"), highlight=False)
            out.print("downstream: " + (", ".join(result.downstream) or "(none)"), highlight=False)
            print_rows(None, ["from", "to"], [[a, b] for a, b in result.edges])
        return 0

    @command(main, "export")
    @click.argument("model", required=False)
    @click.option("--as-of", "as_of", metavar="DATE", help="Features as of this date (no later rows).")
    @click.option("--to", "to", type=click.Path(dir_okay=False, path_type=Path), help="Parquet file to write.")
    @click.option(
        "--from-manifest",
        "manifest",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help="Rebuild an earlier export from its manifest (same Delta versions, same rows).",
    )
    def export(ctx: Context, model: str | None, as_of: str | None, to: Path | None, manifest: Path | None) -> int:
        """Write a model's rows to Parquet, with a manifest of the Delta versions read."""
        result = ctx.project.export(model, to=to, as_of=_as_of(as_of), from_manifest=manifest)
        if ctx.json:
            print_json(result)
        else:
            out.print(
                f"wrote {result.rows} rows of {result.model} (as of {result.as_of}) to {result.path}", highlight=False
            )
            out.print(
                f"manifest {result.manifest}: " + ", ".join(f"{k}@v{v}" for k, v in sorted(result.inputs.items())),
                highlight=False,
            )
        return 0
