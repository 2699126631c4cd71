"""Source errors through the real CLI: unreachable database, wrong password, missing privilege, missing table.
Each is one line naming the source, no traceback without --debug, and the password appears nowhere (stdout,
stderr, --output json, the run history on disk). Transient faults (a connection cut mid-read by a loopback
proxy) are retried and the run ends with exactly the source's rows.

PostgreSQL here trusts every local connection, so the password tests start a throwaway cluster with
scram-sha-256 authentication (as the ``postgres`` user when run as root); MariaDB's users are created on the
local server and dropped afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lakeforge import Project
from tests.conftest import MY_HOST, MY_PORT, write_project

LAKEFORGE = str(Path(sys.executable).parent / "lakeforge")
PG_BIN = Path(os.environ.get("LAKEFORGE_PG_BIN", "/usr/lib/postgresql/15/bin"))
PASSWORD = "Pw-" + secrets.token_hex(8) + "!x"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@pytest.fixture(scope="module")
def pg_scram() -> Iterator[dict[str, Any]]:
    """A PostgreSQL cluster that checks passwords, with a role ``lf_user`` and a database ``shop``."""
    import psycopg

    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL binaries not found in {PG_BIN}")
    base = Path(tempfile.mkdtemp(prefix="lf-pgpw-"))
    admin_pw = secrets.token_hex(8)
    (base / "pw").write_text(admin_pw)
    (base / "sock").mkdir()
    if os.geteuid() == 0:
        for path in (base, base / "pw", base / "sock"):
            shutil.chown(path, "postgres")
    port = free_port()
    data = base / "data"
    subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--no-sync",
                                 "--auth-host=scram-sha-256", "--auth-local=trust", f"--pwfile={base / 'pw'}"]),
                   check=True, capture_output=True)
    opts = f"-c port={port} -c listen_addresses=127.0.0.1 -k {base / 'sock'} -c fsync=off -c shared_buffers=32MB"
    subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(base / "log"),
                                 "-w", "start"]), check=True, capture_output=True)
    admin = f"postgresql://postgres:{admin_pw}@127.0.0.1:{port}"
    try:
        with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
            conn.execute(f"CREATE ROLE lf_user LOGIN PASSWORD '{PASSWORD}'")
            conn.execute("CREATE DATABASE shop")
            conn.execute("CREATE DATABASE locked")
            conn.execute("REVOKE CONNECT ON DATABASE locked FROM PUBLIC")
        with psycopg.connect(f"{admin}/shop", autocommit=True) as conn:
            conn.execute("CREATE TABLE orders (id int PRIMARY KEY)")
            conn.execute("CREATE TABLE secret (id int PRIMARY KEY)")
            conn.execute("INSERT INTO orders VALUES (1), (2)")
            conn.execute("GRANT SELECT ON orders TO lf_user")
        yield {"port": port, "admin": admin}
        with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
            conn.execute("DROP DATABASE shop WITH (FORCE)")
            conn.execute("DROP DATABASE locked WITH (FORCE)")
            conn.execute("DROP ROLE lf_user")
    finally:
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def my_user(my_db: Any) -> Iterator[Any]:
    """A MariaDB user with a password, allowed to read ``orders`` only; a second database it cannot use."""
    user = "lf_" + secrets.token_hex(4)
    my_db.execute("CREATE TABLE orders (id int PRIMARY KEY)")
    my_db.execute("CREATE TABLE secret (id int PRIMARY KEY)")
    my_db.execute("INSERT INTO orders VALUES (1), (2)")
    my_db.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{PASSWORD}'")
    my_db.execute(f"GRANT SELECT ON `{my_db.name}`.`orders` TO '{user}'@'%'")
    my_db.user = user
    yield my_db
    my_db.execute(f"DROP USER IF EXISTS '{user}'@'%'")


def project(path: Path, kind: str, url: str, password: str, tables: str = "") -> Path:
    (path).mkdir(parents=True, exist_ok=True)
    (path / ".env").write_text(f"SRC_PASSWORD={password}\n")
    body = f"""
    lake: {{path: ./lake}}
    run: {{retries: 0}}
    sources:
      src:
        type: {kind}
        url: {url}
        password: ${{SRC_PASSWORD}}
        connect_timeout: 3
    """
    if tables:
        body = body.rstrip() + f"\n        tables: {{{tables}: {{mode: full}}}}\n"
    return write_project(path, body)


def cli(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SRC_PASSWORD"}
    return subprocess.run([LAKEFORGE, *args, "--project", str(path)], capture_output=True, text=True, env=env,
                          timeout=60)


def assert_clean_failure(path: Path, expected: str) -> None:
    """``run`` and ``check`` fail with one line naming the source and ``expected``; no traceback, no password."""
    text = cli(path, "run")
    as_json = cli(path, "run", "--output", "json")
    check = cli(path, "check", "--output", "json")
    for proc in (text, as_json, check):
        assert proc.returncode == 1, proc
        assert "Traceback" not in proc.stdout + proc.stderr
        assert PASSWORD not in proc.stdout + proc.stderr
    lines = [line for line in text.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1 and "source 'src'" in lines[0] and expected in lines[0], text.stderr
    run = json.loads(as_json.stdout)
    assert run["status"] == "failed" and expected in run["errors"][0] and "source 'src'" in run["errors"][0]
    sources = json.loads(check.stdout)["sources"]
    assert not sources[0]["ok"] and expected in sources[0]["error"]
    history = Project(path).runs()
    assert history[0]["run"]["status"] == "failed" and expected in history[0]["run"]["error"]
    for file in (path / "lake").rglob("*"):  # the run history on disk, every Delta log and Parquet file
        if file.is_file():
            assert PASSWORD.encode() not in file.read_bytes(), file


@pytest.mark.parametrize("problem", ["unreachable", "password", "database_privilege", "table_privilege",
                                     "missing_table"])
def test_postgres_errors(pg_scram: dict[str, Any], tmp_path: Path, problem: str) -> None:
    port, user, database, password, tables = pg_scram["port"], "lf_user", "shop", PASSWORD, ""
    expected = {
        "unreachable": "cannot connect", "password": "password authentication failed",
        "database_privilege": "permission denied for database", "table_privilege": "'secret'",
        "missing_table": "'nosuch'",
    }[problem]
    if problem == "unreachable":
        port = free_port()
    elif problem == "password":
        password = PASSWORD[:-1] + "?"
    elif problem == "database_privilege":
        database = "locked"
    elif problem in ("table_privilege", "missing_table"):
        tables = "secret" if problem == "table_privilege" else "nosuch"
    url = f"postgresql://{user}@127.0.0.1:{port}/{database}"
    path = project(tmp_path / "p", "postgres", url, password, tables)
    assert_clean_failure(path, expected)
    if problem == "password":  # the wrong password is no more visible than the right one
        assert password not in cli(path, "run").stderr


@pytest.mark.parametrize("problem", ["unreachable", "password", "database_privilege", "table_privilege",
                                     "missing_table"])
def test_mariadb_errors(my_user: Any, tmp_path: Path, problem: str) -> None:
    port, database, password, tables = MY_PORT, my_user.name, PASSWORD, ""
    expected = {"unreachable": "cannot connect", "password": "Access denied for user",
                "database_privilege": "Access denied for user", "table_privilege": "'secret'",
                "missing_table": "'nosuch'"}[problem]
    if problem == "unreachable":
        port = free_port()
    elif problem == "password":
        password = PASSWORD[:-1] + "?"
    elif problem == "database_privilege":
        database = "mysql"
    else:
        tables = "secret" if problem == "table_privilege" else "nosuch"
    path = project(tmp_path / "p", "mysql", f"mysql://{my_user.user}@{MY_HOST}:{port}/{database}", password, tables)
    assert_clean_failure(path, expected)


def test_debug_shows_traceback_without_password(pg_scram: dict[str, Any], tmp_path: Path) -> None:
    path = project(tmp_path / "p", "postgres", f"postgresql://lf_user@127.0.0.1:{pg_scram['port']}/shop",
                   PASSWORD, "nosuch")
    (path / "lakeforge.yml").write_text((path / "lakeforge.yml").read_text() + "  typo_key: 1\n")
    plain = cli(path, "check")
    debug = cli(path, "check", "--debug")
    assert plain.returncode == debug.returncode == 1
    assert "Traceback" not in plain.stderr and "Traceback" in debug.stderr
    assert "typo_key" in plain.stderr and PASSWORD not in plain.stderr + debug.stderr


# -- transient faults: a loopback proxy that cuts the big data connection once, mid-read ------------------
class CuttingProxy:
    """Forwards 127.0.0.1:<port> to a server; the first connection to send more than ``cut_after`` bytes to
    the client is reset (RST) in the middle of the stream. Later connections pass untouched.

    It runs in its own process: connectorx holds the GIL while it connects, so a proxy thread in the test
    process could never accept its connection."""

    def __init__(self, target_port: int, cut_after: int) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self.port = free_port()
        self._cuts = ctx.Value("i", 0)
        ready = ctx.Event()
        self._process = ctx.Process(target=_serve, args=(target_port, self.port, cut_after, self._cuts, ready),
                                    daemon=True)
        self._process.start()
        assert ready.wait(30), "proxy did not start"

    @property
    def cuts(self) -> int:
        return int(self._cuts.value)

    def close(self) -> None:
        self._process.terminate()
        self._process.join(10)


def _serve(target_port: int, port: int, cut_after: int, cuts: Any, ready: Any) -> None:
    listener = socket.create_server(("127.0.0.1", port))
    ready.set()
    while True:
        client, _ = listener.accept()
        server = socket.create_connection(("127.0.0.1", target_port))
        threading.Thread(target=_pipe, args=(client, server, False, cut_after, cuts), daemon=True).start()
        threading.Thread(target=_pipe, args=(server, client, True, cut_after, cuts), daemon=True).start()


def _pipe(src: socket.socket, dst: socket.socket, to_client: bool, cut_after: int, cuts: Any) -> None:
    sent = 0
    try:
        while data := src.recv(65536):
            dst.sendall(data)
            sent += len(data)
            if to_client and cuts.value == 0 and sent > cut_after:
                cuts.value += 1
                for sock in (dst, src):  # SO_LINGER 0: close with a reset, as a dropped network does
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)  # wakes the other direction's blocked recv
                    sock.close()
                return
    except OSError:
        pass
    finally:
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_connection_reset_mid_read_is_retried(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    db = request.getfixturevalue("pg_db" if kind == "postgres" else "my_db")
    if kind == "postgres":
        db.execute("CREATE TABLE big (id int PRIMARY KEY, payload text)")
        db.execute("INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 200000) g")
        port = 5432
    else:
        db.execute("CREATE TABLE big (id int PRIMARY KEY, payload text)")
        db.execute("INSERT INTO big SELECT seq, md5(seq) FROM seq_1_to_200000")
        port = MY_PORT
    proxy = CuttingProxy(port, cut_after=1_000_000)
    try:
        url = db.url.replace(f":{port}/", f":{proxy.port}/")
        path = write_project(tmp_path / "p", f"""
        lake: {{path: ./lake}}
        run: {{retries: 2, retry_backoff: 0.2, batch_size: 10000}}
        sources:
          src: {{type: {kind}, url: "{url}"}}
        """)
        result = Project(path).run()
    finally:
        proxy.close()
    assert proxy.cuts == 1, result
    assert result.ok, result
    table = result.tables[0]
    assert table.attempts == 2 and table.status == "success" and table.rows == 200_000
    lake = Project(path).lake.read("bronze.src_big").select(["id", "payload"])
    got = sorted(tuple(r.values()) for r in lake.to_pylist())
    assert got == sorted(tuple(r) for r in db.execute("SELECT id, payload FROM big"))
