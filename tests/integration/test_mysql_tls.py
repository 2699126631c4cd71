"""``sources/mysql/driver.py``: PyMySQL's preferred TLS without the system CA bundle. A MariaDB that offers
TLS (a throwaway server with a self-signed certificate) still gets an encrypted session, one that does not
offer it still gets a plaintext one, and a load through a TLS server lands the same rows."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from deltalake import DeltaTable

from lakeforge import Project
from lakeforge.sources.mysql import driver
from tests.conftest import MY_PORT
from tests.servers import Server, mariadb_server


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    certs = tmp_path_factory.mktemp("certs")
    key, cert = certs / "key.pem", certs / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    with mariadb_server(extra_args=(f"--ssl-cert={cert}", f"--ssl-key={key}")) as server:
        yield server


def _cipher(port: int) -> tuple[str, bool]:
    conn = driver.connect(host="127.0.0.1", port=port, user="root", autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            (_, cipher), *_ = cur.fetchall()
        return str(cipher), bool(conn.ssl)
    finally:
        conn.close()


def test_tls_when_offered_plaintext_when_not(tls_server: Server) -> None:
    cipher, _ = _cipher(tls_server.port)
    assert cipher  # an encrypted session, as pymysql.connect gives without TLS options
    assert _cipher(MY_PORT) == ("", True)  # the shared server offers no TLS: plaintext, TLS was only preferred


def test_context_verifies_nothing_unless_asked() -> None:
    unopened = driver.Connection.__new__(driver.Connection)  # the method needs no connection
    preferred = unopened._create_ssl_ctx({})
    assert (preferred.verify_mode, preferred.check_hostname) == (ssl.CERT_NONE, False)
    assert preferred.cert_store_stats()["x509_ca"] == 0  # the bundle nobody reads was not loaded
    asked = unopened._create_ssl_ctx({"ca": "/etc/ssl/certs/ca-certificates.crt"})
    assert (asked.verify_mode, asked.check_hostname) == (ssl.CERT_REQUIRED, True)  # PyMySQL's own context


def test_load_through_tls_server(tls_server: Server, tmp_path: Path) -> None:
    conn = driver.connect(host="127.0.0.1", port=tls_server.port, user="root", autocommit=True)
    with conn.cursor() as cur:
        cur.execute("CREATE DATABASE tlsdb")
        cur.execute("CREATE TABLE tlsdb.t (id INT PRIMARY KEY, amount DECIMAL(12,3), note TEXT)")
        cur.execute("INSERT INTO tlsdb.t VALUES (1, 12.345, 'a'), (2, NULL, NULL)")
    conn.close()
    (tmp_path / "lakeforge.yml").write_text(
        f"sources:\n  s:\n    type: mysql\n    url: mysql://root@127.0.0.1:{tls_server.port}/tlsdb\n"
        "lake:\n  path: ./lake\n",
        encoding="utf-8",
    )
    project = Project(tmp_path)
    result = project.run()
    assert result.ok and [t.rows for t in result.tables] == [2]
    rows = DeltaTable(project.lake.uri("bronze.s_t")).to_pyarrow_table().sort_by("id")
    assert rows.select(["id", "amount", "note"]).to_pylist() == [
        {"id": 1, "amount": Decimal("12.345"), "note": "a"},
        {"id": 2, "amount": None, "note": None},
    ]
