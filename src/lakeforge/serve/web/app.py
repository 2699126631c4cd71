"""``lakeforge serve web``: dashboards (``dashboards/*.yml``) and the operations view, over HTTP.

The standard library's threading HTTP server; pages are rendered on the server from SQL over the lake (the
same DuckDB views ``lakeforge sql`` uses, opened per request so a new lake version shows at once), with file
access switched off in the engine. Plotly's JavaScript is served from the installed ``plotly`` package: no CDN.
Bound to 127.0.0.1 by default; another address needs ``serve.web.users`` (HTTP basic authentication).
"""

from __future__ import annotations

import base64
import hmac
import html
import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlsplit

from lakeforge.errors import ConfigError, MissingExtraError
from lakeforge.serve.web import render
from lakeforge.serve.web.dashboards import (
    Chart,
    DashboardFile,
    Kpi,
    Table,
    TileError,
    chosen,
    filter_options,
    load_dashboards,
    require,
    run_sql,
)
from lakeforge.serve.web.ops import OpsData, ops_page

if TYPE_CHECKING:
    import duckdb

    from lakeforge.lake.base import Lake
    from lakeforge.serve.config import WebConfig

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def plotly_js() -> Path:
    try:
        import plotly
    except ImportError:
        raise MissingExtraError("plotly", "serve") from None
    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


class WebApp:
    def __init__(
        self,
        lake: Lake,
        ops: OpsData,
        cfg: WebConfig,
        dashboards: Path,
        *,
        host: str | None = None,
        port: int | None = None,
    ) -> None:
        self.lake, self.ops, self.cfg, self.folder = lake, ops, cfg, dashboards
        self.host = host or cfg.host
        if self.host not in LOCAL_HOSTS and not cfg.users:
            raise ConfigError(
                f"refusing to serve dashboards on {self.host} without a password: add "
                "serve.web.users (user: ${PASSWORD_VAR}) to lakeforge.yml, or bind 127.0.0.1"
            )
        self.users = {u: p.get_secret_value() for u, p in cfg.users.items()}
        self.script = plotly_js()
        app = self

        class Handler(_Handler):
            web = app

        self.httpd = ThreadingHTTPServer((self.host, cfg.port if port is None else port), Handler)
        self.httpd.daemon_threads = True
        self.port: int = self.httpd.server_address[1]

    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.2)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, daemon=True, name="lakeforge-web")
        thread.start()
        return thread

    def shutdown(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- pages --------------------------------------------------------------------------------------------
    def engine(self) -> duckdb.DuckDBPyConnection:
        from lakeforge.engines.duckdb import connect

        con = connect(self.lake)
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        return con

    def nav(self) -> list[tuple[str, str]]:
        files = load_dashboards(self.folder)
        return (
            [("Dashboards", "/")]
            + [(f.dashboard.title if f.dashboard else f.name, f"/d/{quote(f.name)}") for f in files.values()]
            + [("Operations", "/ops")]
        )

    def index(self) -> str:
        files = load_dashboards(self.folder)
        items = (
            "".join(
                f'<li><a href="/d/{quote(f.name)}">{html.escape(f.dashboard.title if f.dashboard else f.name)}</a>'
                + (f' <span class="tile-error">{html.escape(f.error)}</span>' if f.error else "")
                + "</li>"
                for f in files.values()
            )
            or f'<li class="muted">no dashboards in {html.escape(str(self.folder))}</li>'
        )
        ops = '<p><a href="/ops">Operations</a></p>'
        body = f'<section class="tile w3"><h2>Dashboards</h2><ul>{items}</ul>{ops}</section>'
        return render.page("lakeforge", body, nav=self.nav())

    def dashboard(self, file: DashboardFile, query: dict[str, str]) -> str:
        if file.dashboard is None:
            return render.page(file.name, render.error(file.error or ""), nav=self.nav())
        board = file.dashboard
        con = self.engine()
        try:
            options, values = {}, {}
            for flt in board.filters:
                try:
                    options[flt.name] = filter_options(con, flt)
                except TileError:
                    options[flt.name] = []
                values[flt.name] = chosen(options[flt.name], query.get(flt.name, flt.default))
            tiles = [self._tile(con, file.name, i, spec, values) for i, spec in enumerate(board.tiles)]
        finally:
            con.close()
        intro = f"<p>{html.escape(board.description)}</p>" if board.description else ""
        body = intro + render.filters_form(board.filters, options, values) + f'<div class="grid">{"".join(tiles)}</div>'
        return render.page(board.title, body, nav=self.nav(), charts=True)

    def _tile(self, con: duckdb.DuckDBPyConnection, name: str, i: int, spec: Any, values: dict[str, Any]) -> str:
        try:
            table = run_sql(con, spec.sql, values)
            if isinstance(spec, Kpi):
                require(table, [spec.column] if spec.column else [], spec.title)
                inner = render.kpi(spec, table)
            elif isinstance(spec, Chart):
                require(table, [spec.x, *spec.y, *([spec.color] if spec.color else [])], spec.title)
                inner = render.chart(spec, table, f"chart-{i}")
            else:
                href = f"/d/{quote(name)}/tile/{i}.csv{render.query_string(values)}" if spec.export else None
                inner = render.data_table(table, spec.limit, href)
        except TileError as exc:
            inner = render.error(f"SQL failed: {exc}")
        return render.tile(spec.title, inner, spec.width, f"tile-{i}")

    def csv(self, file: DashboardFile, index: int, query: dict[str, str]) -> bytes:
        import pyarrow.csv as pacsv

        board = file.dashboard
        if board is None or not 0 <= index < len(board.tiles) or not isinstance(board.tiles[index], Table):
            raise KeyError(index)
        con = self.engine()
        try:
            values = {f.name: chosen(filter_options(con, f), query.get(f.name, f.default)) for f in board.filters}
            table = run_sql(con, board.tiles[index].sql, values)
        finally:
            con.close()
        buffer = io.BytesIO()
        pacsv.write_csv(table, buffer)
        return buffer.getvalue()


class _Handler(BaseHTTPRequestHandler):
    web: WebApp
    server_version = "lakeforge"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the CLI prints where it listens
        return

    def _authorised(self) -> bool:
        users = self.web.users
        if not users:
            return True
        header = self.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                user, password = "", ""
            if user in users and hmac.compare_digest(users[user].encode(), password.encode()):
                return True
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="lakeforge"')
        self.end_headers()
        return False

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        if not self._authorised():
            return
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        path = parts.path.rstrip("/") or "/"
        try:
            self._route(path, query)
        except (KeyError, ValueError):
            self._send(404, "text/plain", b"not found")
        except TileError as exc:
            self._send(500, "text/plain", f"SQL failed: {exc}".encode())

    def _route(self, path: str, query: dict[str, str]) -> None:
        web = self.web
        if path == "/":
            self._send(200, "text/html", web.index().encode())
        elif path == "/static/plotly.min.js":
            self._send(200, "application/javascript", web.script.read_bytes(), cache=True)
        elif path == "/ops":
            self._send(200, "text/html", render.page("Operations", ops_page(web.ops), nav=web.nav()).encode())
        elif path.startswith("/d/"):
            name, _, rest = path[3:].partition("/")
            files = load_dashboards(web.folder)
            if name not in files:
                raise KeyError(name)
            if rest.startswith("tile/") and rest.endswith(".csv"):
                data = web.csv(files[name], int(rest[5:-4]), query)
                self._send(200, "text/csv; charset=utf-8", data, download=f"{name}-tile-{rest[5:-4]}.csv")
            else:
                self._send(200, "text/html", web.dashboard(files[name], query).encode())
        else:
            raise KeyError(path)

    def _send(self, status: int, kind: str, body: bytes, *, cache: bool = False, download: str | None = None) -> None:
        self.send_response(status)
        self.send_header(
            "Content-Type", kind if "charset" in kind or not kind.startswith("text") else f"{kind}; charset=utf-8"
        )
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=86400" if cache else "no-store")
        if download:
            self.send_header("Content-Disposition", f'attachment; filename="{download}"')
        self.end_headers()
        self.wfile.write(body)
