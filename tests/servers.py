"""Throwaway database servers for CDC tests: PostgreSQL with ``wal_level=logical`` and MariaDB with a ROW
binlog and GTIDs, each on a free loopback port in a temporary folder, stopped and removed at the end.

PostgreSQL's ``initdb``/``pg_ctl`` refuse to run as root, so they run as the ``postgres`` user (via
``runuser``) when the tests run as root.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PG_BIN = Path(os.environ.get("LAKEFORGE_PG_BIN", "/usr/lib/postgresql/15/bin"))


def integer_series(kind: str, first: int, last: int) -> str:
    """A ``FROM`` clause of the integers ``first..last`` as column ``g`` (PostgreSQL or MariaDB)."""
    if kind == "postgres":
        return f"generate_series({first}, {last}) g"
    return f"(SELECT seq AS g FROM seq_{first}_to_{last}) s"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    kind: str
    port: int
    directory: Path

    @property
    def admin_url(self) -> str:
        if self.kind == "postgres":
            return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        return f"mysql://root@127.0.0.1:{self.port}/mysql"


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@contextlib.contextmanager
def postgres_server(port: int | None = None) -> Iterator[Server]:
    if not (PG_BIN / "initdb").exists():
        import pytest

        pytest.skip(f"PostgreSQL binaries not found in {PG_BIN}")
    base = Path(tempfile.mkdtemp(prefix="lf-pg-"))
    data, sockets = base / "data", base / "sock"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(sockets, "postgres")
    port = port or free_port()
    subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                                 "--no-sync"]), check=True, capture_output=True)
    opts = (f"-c wal_level=logical -c port={port} -c listen_addresses=127.0.0.1 -k {sockets} "
            "-c fsync=off -c max_wal_senders=10 -c max_replication_slots=10 -c shared_buffers=64MB")
    subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(base / "log"),
                                 "-w", "start"]), check=True, capture_output=True)
    try:
        yield Server("postgres", port, base)
    finally:
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def mariadb_server(port: int | None = None, extra_args: tuple[str, ...] = ()) -> Iterator[Server]:
    if shutil.which("mariadbd") is None and not Path("/usr/sbin/mariadbd").exists():
        import pytest

        pytest.skip("mariadbd not found")
    base = Path(tempfile.mkdtemp(prefix="lf-my-"))
    data = base / "data"
    port = port or free_port()
    subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=root",
                    "--auth-root-authentication-method=normal", "--skip-test-db"], check=True, capture_output=True)
    daemon = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
    proc = subprocess.Popen(
        [daemon, "--no-defaults", f"--datadir={data}", f"--port={port}", f"--socket={base / 'sock'}",
         "--bind-address=127.0.0.1", "--user=root", "--log-bin=binlog", "--binlog-format=ROW",
         "--binlog-row-image=FULL", "--binlog-row-metadata=FULL", "--server-id=1", "--gtid-strict-mode=1",
         f"--pid-file={base / 'pid'}", "--skip-name-resolve", "--innodb-buffer-pool-size=64M",
         "--innodb-flush-log-at-trx-commit=2", "--sync-binlog=0", f"--log-error={base / 'err.log'}",
         *extra_args],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _wait_mariadb(port, proc, base)
        yield Server("mysql", port, base)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(base, ignore_errors=True)


def _wait_mariadb(port: int, proc: subprocess.Popen[bytes], base: Path) -> None:
    import pymysql

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = (base / "err.log").read_text(errors="replace") if (base / "err.log").exists() else ""
            raise RuntimeError(f"mariadbd exited with {proc.returncode}: {log[-2000:]}")
        try:
            pymysql.connect(host="127.0.0.1", port=port, user="root", connect_timeout=1).close()
            return
        except pymysql.MySQLError:
            time.sleep(0.2)
    raise RuntimeError("mariadbd did not start within 60 s")
