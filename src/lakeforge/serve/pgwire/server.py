"""The SQL endpoint's listener: one thread per client connection (``lakeforge serve sql``).

Why a protocol layer of our own rather than buenavista 0.5 or roapi (evaluated, see docs/serving.md):
buenavista authenticates with MD5 only (no SCRAM-SHA-256, no TLS), sends errors without SQLSTATE, maps
types loosely and has no catalog for psql's ``\\dt``; roapi serves Delta over DataFusion, not the same engine
as ``lakeforge sql``, so results and types could differ. This layer is ~700 lines over DuckDB, which
``lakeforge sql`` already uses.
"""

from __future__ import annotations

import socket
import ssl
import threading
from typing import TYPE_CHECKING

from lakeforge.errors import ConfigError

if TYPE_CHECKING:
    import duckdb

    from lakeforge.lake.base import Lake
    from lakeforge.serve.config import SqlEndpointConfig
    from lakeforge.serve.pgwire.session import Session

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
SERVER_VERSION = "15.0"


def check_bind(cfg: SqlEndpointConfig, host: str) -> None:
    """A non-loopback address needs at least one user with a password."""
    if host not in LOCAL_HOSTS and not cfg.users:
        raise ConfigError(
            f"refusing to serve SQL on {host} without a password: add serve.sql.users "
            "(user: ${PASSWORD_VAR}) to lakeforge.yml, or bind 127.0.0.1"
        )


class EndpointServer:
    """Listens on ``host:port``; :meth:`serve_forever` until :meth:`shutdown`."""

    def __init__(
        self,
        lake: Lake,
        cfg: SqlEndpointConfig,
        *,
        host: str | None = None,
        port: int | None = None,
        refresh_seconds: float = 1.0,
    ) -> None:
        self.lake = lake
        self.cfg = cfg
        self.host = host or cfg.host
        check_bind(cfg, self.host)
        self.users = {name: secret.get_secret_value() for name, secret in cfg.users.items()}
        self.refresh_seconds = refresh_seconds
        self.tls = self._tls()
        self.settings = {
            "transaction_isolation": "read committed",
            "max_identifier_length": "63",
            "search_path": '"$user", public',
            "lc_collate": "C.UTF-8",
            "statement_timeout": "0",
        }
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((self.host, cfg.port if port is None else port))
        self.sock.listen(64)
        self.port: int = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sessions: dict[int, tuple[int, Session]] = {}
        self._next_pid = 1000

    def _tls(self) -> ssl.SSLContext | None:
        if not self.cfg.tls_cert:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cfg.tls_cert, self.cfg.tls_key)
        return context

    def parameters(self, client: dict[str, str]) -> dict[str, str]:
        return {
            "server_version": SERVER_VERSION,
            "server_encoding": "UTF8",
            "client_encoding": "UTF8",
            "DateStyle": "ISO, MDY",
            "TimeZone": "UTC",
            "integer_datetimes": "on",
            "IntervalStyle": "postgres",
            "standard_conforming_strings": "on",
            "is_superuser": "off",
            "default_transaction_read_only": "on",
            "in_hot_standby": "off",
            "application_name": client.get("application_name", ""),
            "session_authorization": client.get("user", ""),
        }

    def register(self, session: Session) -> tuple[int, int]:
        """A (process id, secret key) pair for the session, so a CancelRequest can find it."""
        import secrets

        with self._lock:
            pid = self._next_pid = self._next_pid + 1
            key = secrets.randbits(31)
            self._sessions[pid] = (key, session)
        return pid, key

    def unregister(self, key: tuple[int, int]) -> None:
        with self._lock:
            self._sessions.pop(key[0], None)

    def cancel(self, pid: int, key: int) -> None:
        """Interrupt the query of the session with this pid, when the secret key matches."""
        with self._lock:
            entry = self._sessions.get(pid)
        if entry is not None and entry[0] == key:
            entry[1].interrupt()

    def lake_versions(self) -> dict[str, int]:
        return {name: self.lake.version(name) for name in self.lake.names()}

    def open_engine(self) -> tuple[duckdb.DuckDBPyConnection, dict[str, int]]:
        """A DuckDB over the lake's current tables with the catalog installed, locked read-only."""
        import duckdb

        from lakeforge.engines.duckdb import register
        from lakeforge.serve.pgwire import catalog

        versions = self.lake_versions()
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        schemas = {}
        for name, version in versions.items():
            register(con, self.lake, name, version)
            schemas[name] = self.lake.dataset(name, version).schema
        catalog.install(con, schemas, self.cfg.database)
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        return con, versions

    def serve_forever(self) -> None:
        from lakeforge.serve.pgwire.session import Session

        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            client.settimeout(None)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=Session(client, self).run, daemon=True, name="lakeforge-sql").start()
        self.sock.close()

    def start(self) -> threading.Thread:
        """Serve in a background thread (tests, the web app)."""
        thread = threading.Thread(target=self.serve_forever, daemon=True, name="lakeforge-sql-listener")
        thread.start()
        return thread

    def shutdown(self) -> None:
        self._stop.set()
