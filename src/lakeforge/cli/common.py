"""Shared CLI plumbing: the common options, the error boundary and output (text or JSON)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from lakeforge.errors import LakeforgeError

F = TypeVar("F", bound=Callable[..., Any])


def esc(text: object) -> str:
    """``text`` with rich markup escaped: a message holding ``[mysqld]`` prints as written."""
    from rich.markup import escape

    return escape(str(text))


class _LazyConsole:
    """A rich ``Console`` made on first use: importing rich costs ~0.1 s of CPU, which a command writing
    JSON (``lakeforge run -o json``) never needs (docs/benchmarks.md, "Fixed cost of a run")."""

    def __init__(self, *, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Any = None

    def real(self) -> Any:
        """The ``rich.console.Console`` itself: what rich's own objects (``Progress``, ``Live``) must receive."""
        if self._console is None:
            from rich.console import Console

            stream = sys.stderr if self._stderr else sys.stdout
            width = None if stream.isatty() else 200
            self._console = Console(stderr=self._stderr, soft_wrap=True, width=width)
        return self._console

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.real(), name)


out: Any = _LazyConsole(stderr=False)
err: Any = _LazyConsole(stderr=True)


class Context:
    def __init__(self, project: Path, output: str, debug: bool) -> None:
        self.project_dir = project
        self.output = output
        self.debug = debug

    @functools.cached_property
    def project(self) -> Any:
        from lakeforge.project import Project

        return Project(self.project_dir)

    @property
    def json(self) -> bool:
        return self.output == "json"


def command(group: click.Group, name: str | None = None, **kwargs: Any) -> Callable[[F], F]:
    """A command with ``--project``, ``--output`` and ``--debug`` and the error boundary around it."""

    def decorate(fn: F) -> F:
        @group.command(name, **kwargs)
        @click.option(
            "--project",
            "-p",
            "project",
            type=click.Path(file_okay=False, path_type=Path),
            default=Path("."),
            show_default=True,
            help="Project folder (holding lakeforge.yml).",
        )
        @click.option(
            "--output",
            "-o",
            type=click.Choice(["text", "json"]),
            default="text",
            show_default=True,
            help="Human text or JSON for scripts.",
        )
        @click.option("--debug", is_flag=True, help="Show tracebacks.")
        @functools.wraps(fn)
        def wrapper(project: Path, output: str, debug: bool, **params: Any) -> None:
            ctx = Context(project, output, debug)
            try:
                code = fn(ctx, **params)
            except LakeforgeError as exc:
                fail(ctx, str(exc), transient=exc.transient)
            except Exception as exc:  # the boundary: unexpected errors are still one line without --debug
                if debug:
                    raise
                fail(ctx, f"unexpected error: {type(exc).__name__}: {exc} (run with --debug for the traceback)")
            sys.exit(code or 0)

        return wrapper  # type: ignore[return-value]

    return decorate


def fail(ctx: Context, message: str, *, transient: bool = False) -> None:
    from lakeforge.errors import shorten

    message = shorten(message)
    if ctx.debug:
        err.print_exception()
    if ctx.json:
        click.echo(json.dumps({"error": message, "transient": transient}))
    else:
        err.print(f"[red]error:[/red] {esc(message)}", markup=True, highlight=False)
    sys.exit(1)


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: to_jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def print_json(value: Any) -> None:
    click.echo(json.dumps(to_jsonable(value), indent=2, ensure_ascii=False))


def print_rows(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.table import Table

    table = Table(title=title, show_lines=False, header_style="bold")
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*["" if v is None else esc(str(v)) for v in row])
    out.print(table)
