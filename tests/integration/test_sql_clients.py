"""The SQL endpoint with the drivers BI tools use: pgJDBC (DBeaver, Metabase, Tableau) and node-postgres read the
same values and types as ``lakeforge sql``; pgJDBC's metadata calls (getTables, getColumns) list the lake.

Installed by ``.ci/services.sh``: Debian's ``libpostgresql-jdbc-java`` (Java 17 runs the client as a single
source file) and ``pg`` from npm into ``tests/clients/node``.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.integration.test_sql_endpoint import PASSWORD, endpoint  # noqa: F401  (the fixture)

CLIENTS = Path(__file__).resolve().parents[1] / "clients"
JDBC_JAR = "/usr/share/java/postgresql.jar"
COLUMNS = "id, c_int16, c_int64, c_dec_38_10, c_dec_10_2, c_dec_38_20, c_tstz, c_ts, c_date, c_binary, c_bool, c_text"
QUERY = f"SELECT {COLUMNS} FROM gold.types WHERE id < ? ORDER BY id"
JDBC_TYPES = ["int8", "int2", "int8", "numeric", "numeric", "numeric", "timestamptz", "timestamp", "date", "bytea",
              "bool", "text"]


def java_text(value: Any) -> str:
    """A lake value as the Java client prints it (typed getter, then its canonical string)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        text = value.astimezone(dt.UTC).replace(tzinfo=None).isoformat()
        if "." in text:  # java.time.Instant prints the fraction in groups of three digits
            head, frac = text.split(".")
            frac = frac.rstrip("0")
            text = head + "." + frac.ljust(3 if len(frac) <= 3 else 6, "0")
        return text + "Z"
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def test_pgjdbc_reads_what_lakeforge_sql_reads(endpoint: Any) -> None:  # noqa: F811
    project, server = endpoint
    url = f"jdbc:postgresql://127.0.0.1:{server.port}/lakeforge"
    run = subprocess.run(["java", "-cp", JDBC_JAR, str(CLIENTS / "java" / "LakeforgeClient.java"), url, "analyst",
                          PASSWORD, QUERY], capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    lines = [line.split("\t") for line in run.stdout.splitlines()]
    assert lines[0] == ["TYPES", *JDBC_TYPES]
    want = project.sql(QUERY.replace("?", "3")).to_pylist()
    rows = [line[1:] for line in lines if line[0] == "ROW"]
    assert rows == [[java_text(v) for v in row.values()] for row in want]
    assert ["TABLE", "gold.types"] in lines
    columns = [line[1:] for line in lines if line[0] == "COLUMN"]
    assert columns == [["c_dec_10_2", "numeric", "10", "2"], ["c_dec_38_10", "numeric", "38", "10"],
                       ["c_dec_38_20", "numeric", "38", "20"], ["c_dec_30_0", "numeric", "30", "0"]]


def test_node_postgres_reads_what_lakeforge_sql_reads(endpoint: Any) -> None:  # noqa: F811
    project, server = endpoint
    url = f"postgresql://analyst:{PASSWORD}@127.0.0.1:{server.port}/lakeforge"
    query = QUERY.replace("?", "$1")
    run = subprocess.run(["node", str(CLIENTS / "node" / "client.js"), url, query], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    [result] = json.loads(run.stdout)
    assert [oid for _, oid in result["fields"]] == [20, 21, 20, 1700, 1700, 1700, 1184, 1114, 1082, 17, 16, 25]
    want = project.sql(query.replace("$1", "3"))
    assert [name for name, _ in result["fields"]] == want.column_names
    for got, row in zip(result["rows"], want.to_pylist(), strict=True):
        values = list(row.values())
        assert [int(v) for v in got[:3]] == values[:3]
        assert [Decimal(v) for v in got[3:6]] == values[3:6] and got[3:6] == [format(v, "f") for v in values[3:6]]
        assert dt.datetime.fromisoformat(got[6]) == values[6]
        assert dt.datetime.fromisoformat(got[7]) == values[7]
        assert dt.date.fromisoformat(got[8]) == values[8]
        assert bytes.fromhex(got[9][2:]) == values[9]
        assert (got[10] == "t") == values[10] and got[11] == values[11]
