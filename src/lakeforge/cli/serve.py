"""publish, serve sql, serve web."""

from __future__ import annotations

import contextlib
from typing import Any

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

    serve = serve_group(main)

    @command(serve, "sql")
    @click.option("--host", help="Address to bind (default serve.sql.host, 127.0.0.1).")
    @click.option("--port", type=int, help="Port (default serve.sql.port, 5433; 0 picks a free one).")
    def serve_sql(ctx: Context, host: str | None, port: int | None) -> int:
        """Serve the lake over the PostgreSQL wire protocol (read-only): psql, JDBC, BI tools."""
        import signal

        server = ctx.project.serve_sql(host=host, port=port)
        auth = "SCRAM-SHA-256" if server.users else "no password (loopback only)"
        tls = ", TLS available" if server.tls else ""
        out.print(
            f"serving the lake at postgresql://{server.host}:{server.port}/{server.cfg.database} ({auth}{tls}); "
            f"try: psql -h {server.host} -p {server.port} -d {server.cfg.database}",
            highlight=False,
        )
        signal.signal(signal.SIGTERM, lambda *_: server.shutdown())
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            server.shutdown()
        return 0

    @command(serve, "web")
    @click.option("--host", help="Address to bind (default serve.web.host, 127.0.0.1).")
    @click.option("--port", type=int, help="Port (default serve.web.port, 8080; 0 picks a free one).")
    def serve_web(ctx: Context, host: str | None, port: int | None) -> int:
        """Serve the dashboards (dashboards/*.yml) and the operations view over HTTP."""
        import signal

        app = ctx.project.serve_web(host=host, port=port)
        out.print(f"dashboards at {app.url()} (operations: {app.url()}ops)", highlight=False)
        signal.signal(signal.SIGTERM, lambda *_: threading_shutdown(app))
        with contextlib.suppress(KeyboardInterrupt):
            app.serve_forever()
        return 0


def threading_shutdown(app: object) -> None:
    """``shutdown`` waits for the serving loop, so it is called from another thread."""
    import threading

    threading.Thread(target=app.shutdown, daemon=True).start()  # type: ignore[attr-defined]


def serve_group(main: click.Group) -> click.Group:
    """The ``serve`` group (``serve sql``, ``serve web``). When another module already registered a plain
    ``serve`` command (the scheduler of docs/operations.md), that command becomes what ``lakeforge serve`` does
    without a subcommand, with its options unchanged; so register this module after it."""
    existing = main.commands.get("serve")
    if isinstance(existing, click.Group):
        return existing
    help_text = "Serve the lake: a PostgreSQL-protocol SQL endpoint (sql), dashboards (web)."
    if existing is None:
        group = click.Group("serve", help=help_text)
    else:
        first = (existing.help or "").strip().splitlines()[0] if existing.help else ""
        group = click.Group(
            "serve",
            params=list(existing.params),
            invoke_without_command=True,
            help=f"{first} Subcommands: sql (PostgreSQL-protocol endpoint), web (dashboards).",
            callback=_run_without_subcommand(existing),
        )
    main.add_command(group)
    return group


def _run_without_subcommand(command: click.Command) -> Any:
    def callback(**params: Any) -> Any:
        ctx = click.get_current_context()
        if ctx.invoked_subcommand is None and command.callback is not None:
            return ctx.invoke(command.callback, **params)
        return None

    return callback
