"""The SQL endpoint against real clients: psql and psycopg (text and binary results) run the same queries as
``lakeforge sql`` with identical values and types; psql's ``\\dt`` and ``\\d`` describe the lake tables with
their exact PostgreSQL types; SCRAM-SHA-256 with a wrong password, an unknown user or no password is refused;
writes and file access are refused; a non-local bind without a password is refused."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lakeforge import Project
from lakeforge.errors import ConfigError
from lakeforge.serve.pgwire.server import EndpointServer
from tests.integration.publish_helpers import types_table, write_lake

PASSWORD = "endpoint-pw-1"
QUERIES = [
    "SELECT * FROM gold.types ORDER BY id",
    "SELECT count(*) AS n, sum(c_dec_10_2) AS total, max(c_tstz) AS latest FROM gold.types",
    "SELECT id, c_dec_38_20 * 2 AS doubled, c_text || '!' AS shout FROM gold.types WHERE id < 3 ORDER BY id",
]


@pytest.fixture
def endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Project, EndpointServer]]:
    monkeypatch.setenv("ANALYST_PW", PASSWORD)
    folder = tmp_path / "p"
    folder.mkdir()
    config = "lake: {path: ./lake}\nserve:\n  sql:\n    users: {analyst: '${ANALYST_PW}'}\n"
    (folder / "lakeforge.yml").write_text(config)
    project = Project(folder)
    write_lake(project, "gold.types", types_table())
    server = project.serve_sql(port=0)
    server.start()
    yield project, server
    server.shutdown()


def url(server: EndpointServer, password: str = PASSWORD, user: str = "analyst") -> str:
    return f"postgresql://{user}:{password}@127.0.0.1:{server.port}/lakeforge"


def psql(server: EndpointServer, *args: str, password: str = PASSWORD) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PGPASSWORD": password}
    return subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(server.port), "-U", "analyst", "-d", "lakeforge",
                           "-X", "-v", "ON_ERROR_STOP=1", *args], env=env, capture_output=True, text=True,
                          timeout=60)


def normalise(value: Any) -> Any:
    return bytes(value) if isinstance(value, memoryview) else value


@pytest.mark.parametrize("binary", [False, True])
def test_psycopg_matches_lakeforge_sql(endpoint: Any, binary: bool) -> None:
    project, server = endpoint
    with psycopg.connect(url(server)) as conn:
        for query in QUERIES:
            want = project.sql(query)
            cur = conn.execute(query, binary=binary)
            assert [d.name for d in cur.description] == want.column_names
            rows = [tuple(normalise(v) for v in row) for row in cur.fetchall()]
            expected = [tuple(r.values()) for r in want.to_pylist()]
            for got_row, want_row in zip(rows, expected, strict=True):
                for got, wanted, field in zip(got_row, want_row, want.schema, strict=True):
                    if str(field.type) == "float" and got is not None and not binary:
                        import numpy as np

                        got = float(np.float32(got))  # float4's text is its shortest form, as PostgreSQL sends it
                    assert got == wanted and type(got) is type(wanted), (query, field.name)


def test_wire_types_are_exact(endpoint: Any) -> None:
    _, server = endpoint
    with psycopg.connect(url(server)) as conn:
        cur = conn.execute("SELECT c_dec_38_10, c_dec_10_2, c_tstz, c_ts, c_date, c_int16, c_binary, c_bool, "
                           "c_float64 FROM gold.types LIMIT 1")
        names = [conn.adapters.types.get(d.type_code).name for d in cur.description]  # type: ignore[union-attr]
        assert names == ["numeric", "numeric", "timestamptz", "timestamp", "date", "int2", "bytea", "bool", "float8"]
        assert [(d.precision, d.scale) for d in cur.description[:2]] == [(38, 10), (10, 2)]
        params = conn.execute("SELECT id FROM gold.types WHERE c_dec_10_2 = %s AND c_varchar = %s",
                              (types_table().column("c_dec_10_2")[0].as_py(), "héllo wörld")).fetchall()
        assert params == [(0,)]


def test_psql_lists_and_describes_lake_tables(endpoint: Any) -> None:
    _, server = endpoint
    listed = psql(server, "-c", "\\dt")
    assert listed.returncode == 0, listed.stderr
    assert "gold   | types | table | lakeforge" in listed.stdout
    described = psql(server, "-c", "\\d gold.types")
    assert described.returncode == 0, described.stderr
    lines = {line.split("|")[0].strip(): line.split("|")[1].strip() for line in described.stdout.splitlines()
             if line.count("|") >= 4}
    assert lines["c_dec_38_20"] == "numeric(38,20)" and lines["c_tstz"] == "timestamp with time zone"
    assert lines["c_binary"] == "bytea" and lines["c_int32"] == "integer" and lines["c_bool"] == "boolean"
    csv = psql(server, "--csv", "-c", "SELECT id, c_dec_38_10, c_tstz FROM gold.types ORDER BY id")
    assert csv.stdout.splitlines()[1:4] == [
        "0,1234567890123456789012345678.0123456789,2038-01-19 03:14:07.999999+00",
        "1,-1234567890123456789012345678.0123456789,1970-01-01 00:00:01+00",
        "2,0.0000000000,2024-10-27 01:30:00.5+00",
    ]


def test_authentication_failures_are_refused(endpoint: Any) -> None:
    _, server = endpoint
    for bad in (url(server, password="wrong"), url(server, user="mallory")):
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(bad)
    refused = psql(server, "-c", "select 1", password="wrong")
    assert refused.returncode != 0 and "password authentication failed" in refused.stderr


def test_writes_and_file_access_are_refused(endpoint: Any) -> None:
    _, server = endpoint
    with psycopg.connect(url(server), autocommit=True) as conn:
        for statement in ("INSERT INTO gold.types (id) VALUES (9)", "DROP VIEW gold.types",
                          "CREATE TABLE t AS SELECT 1", "COPY gold.types TO '/tmp/x.csv'"):
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction, match="read-only lakeforge endpoint"):
                conn.execute(statement)
        with pytest.raises(psycopg.Error, match="file system operations are disabled"):
            conn.execute("SELECT * FROM read_csv('/etc/passwd')")
        with pytest.raises(psycopg.Error):
            conn.execute("SET enable_external_access = true; SELECT * FROM read_csv('/etc/passwd')")
        assert conn.execute("SELECT count(*) FROM gold.types").fetchone() == (4,)


def test_new_lake_version_is_seen(endpoint: Any) -> None:
    project, server = endpoint
    with psycopg.connect(url(server), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM gold.types").fetchone() == (4,)
        write_lake(project, "gold.types", types_table().slice(0, 2))
        import time

        time.sleep(server.refresh_seconds + 0.1)
        assert conn.execute("SELECT count(*) FROM gold.types").fetchone() == (2,)


def test_non_local_bind_without_password_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "lakeforge.yml").write_text("lake: {path: ./lake}\n")
    with pytest.raises(ConfigError, match="refusing to serve SQL on 0.0.0.0 without a password"):
        Project(folder).serve_sql(host="0.0.0.0", port=0)


def test_tls_when_configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True, timeout=60)
    monkeypatch.setenv("ANALYST_PW", PASSWORD)
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "lakeforge.yml").write_text(
        f"lake: {{path: ./lake}}\nserve:\n  sql:\n    users: {{analyst: '${{ANALYST_PW}}'}}\n"
        f"    tls_cert: {cert}\n    tls_key: {key}\n")
    project = Project(folder)
    write_lake(project, "gold.types", types_table())
    server = project.serve_sql(port=0)
    server.start()
    try:
        with psycopg.connect(url(server) + "?sslmode=require") as conn:
            assert conn.info.pgconn.ssl_in_use
            assert conn.execute("SELECT count(*) FROM gold.types").fetchone() == (4,)
        env = {**os.environ, "PGPASSWORD": PASSWORD, "PGSSLMODE": "require"}
        done = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(server.port), "-U", "analyst", "-d", "lakeforge",
                               "-X", "-c", "\\conninfo"], env=env, capture_output=True, text=True, timeout=60)
        assert "SSL connection (protocol: TLSv1.3" in done.stdout, done.stdout + done.stderr
    finally:
        server.shutdown()


def test_cancel_interrupts_a_running_query(endpoint: Any) -> None:
    import threading
    import time

    _, server = endpoint
    with psycopg.connect(url(server), autocommit=True) as conn:
        # cancel_safe (libpq's new cancel API); the legacy conn.cancel() blocks in C holding the GIL, which
        # deadlocks against a server running in the same process as here
        timer = threading.Timer(0.5, conn.cancel_safe)
        timer.start()
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled, match="canceling statement due to user request"):
            conn.execute("SELECT sum(a.range * b.range) FROM range(1000000) a, range(1000000) b").fetchall()
        assert time.monotonic() - started < 10
        assert conn.execute("SELECT count(*) FROM gold.types").fetchone() == (4,)  # the session goes on


def test_psql_interrupt_cancels_the_query(endpoint: Any) -> None:
    import signal
    import time

    _, server = endpoint
    env = {**os.environ, "PGPASSWORD": PASSWORD}
    proc = subprocess.Popen(["psql", "-h", "127.0.0.1", "-p", str(server.port), "-U", "analyst", "-d", "lakeforge",
                             "-X", "-c", "SELECT sum(a.range * b.range) FROM range(1000000) a, range(1000000) b"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)  # psql sends a CancelRequest on its own connection
    _, err = proc.communicate(timeout=30)
    assert "Cancel request sent" in err and "canceling statement due to user request" in err
