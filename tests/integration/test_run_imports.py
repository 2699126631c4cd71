"""What the fixed cost of ``lakeforge run`` relies on (docs/benchmarks.md, "Fixed cost of a run"): a one-table
database run, in a fresh ``python -m lakeforge`` process, loads its rows without importing what it does not use,
parses no CA bundle for a TLS session that verifies nothing, and hands its objects to the permanent
generation before the interpreter shuts down."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from deltalake import DeltaTable

from tests.conftest import MyDatabase, PgDatabase, write_project

# what a one-table PostgreSQL or MariaDB run into Delta never needs (each was imported once, see the docs)
NEVER = [
    "pandas",  # pyarrow's pandas shim, ADBC's DB-API module
    "polars",
    "rich",  # -o json prints no console output
    "pyarrow.compute",  # the table needs no cast
    "duckdb",
    "pyiceberg",
    "sqlalchemy",
    "lakeforge.load.records",  # record sources' loader (files, streams, python)
    "lakeforge.sources.records",
    "lakeforge.load.incremental",  # a full table
]
# the catalog goes through ADBC; `ssl` comes with pyarrow.fs (pyarrow._fs imports it, ~10 ms), which the staged
# Parquet writer of a full load uses (load/staged.py), so it is not listed
NOT_FOR_POSTGRES = ["psycopg", "pymysql", "cryptography"]

# runs the CLI as ``python -m lakeforge`` does, and reports what it imported and did when it exits
PROBE = """
import atexit, gc, json, sys
target, project, count_ca = sys.argv[1:4]
calls = []
if count_ca == "yes":  # the only way PyMySQL's context loads the system CA bundle
    import ssl
    _load = ssl.SSLContext.load_default_certs
    def counted(self, *args, **kwargs):
        calls.append(1)
        return _load(self, *args, **kwargs)
    ssl.SSLContext.load_default_certs = counted
def report():
    with open(target, "w") as out:
        json.dump({"modules": sorted(sys.modules), "frozen": gc.get_freeze_count(), "ca_loads": len(calls)}, out)
atexit.register(report)
sys.argv = ["lakeforge", "run", "-p", project, "-o", "json"]
from lakeforge.cli.main import cli
cli()
"""


def _run(tmp_path: Path, project: Path, *, count_ca: bool) -> tuple[dict[str, object], dict[str, object]]:
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(report), str(project), "yes" if count_ca else "no"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout), json.loads(report.read_text())


def _project(tmp_path: Path, kind: str, url: str) -> Path:
    return write_project(
        tmp_path / "project",
        f"""
        sources:
          src:
            type: {kind}
            url: {url}
        lake:
          path: ./lake
        """,
    )


def _imported(report: dict[str, object], names: list[str]) -> list[str]:
    modules = set(report["modules"])  # type: ignore[call-overload]
    return [n for n in names if n in modules]


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_one_table_run_imports_only_what_it_uses(
    kind: str, pg_db: PgDatabase, my_db: MyDatabase, tmp_path: Path
) -> None:
    db = pg_db if kind == "postgres" else my_db
    db.execute("CREATE TABLE one (id INT PRIMARY KEY, note VARCHAR(10))")
    db.execute("INSERT INTO one VALUES (1, 'a')")
    project = _project(tmp_path, kind, db.url)

    result, report = _run(tmp_path, project, count_ca=kind == "mysql")

    assert result["status"] == "success" and [t["rows"] for t in result["tables"]] == [1]  # type: ignore[index]
    lake_table = DeltaTable(str(project / "lake" / "bronze" / "src_one")).to_pyarrow_table()
    assert lake_table.select(["id", "note"]).to_pylist() == [{"id": 1, "note": "a"}]
    assert _imported(report, NEVER) == []
    if kind == "postgres":
        assert _imported(report, NOT_FOR_POSTGRES) == []
    else:
        assert _imported(report, ["pymysql", "connectorx"]) == ["pymysql", "connectorx"]
        assert report["ca_loads"] == 0  # PyMySQL's preferred TLS context without the system CA bundle
    assert int(report["frozen"]) > 10_000  # type: ignore[call-overload]  # cli() froze the objects left
