"""A 1,000,000-row table through a real `lakeforge run` subprocess, per source: every row arrives once
(count, sum of ids, sum of a decimal column, checked through deltalake and DuckDB), and the load's peak
memory stays far below what holding the table would take."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from deltalake import DeltaTable

from lakeforge import Project
from tests.conftest import MyDatabase, PgDatabase, write_project

ROWS = 1_000_000
# sum over i of (i % 100000) / 100 + 0.01 * (i % 7), computed exactly in Python
EXPECTED_SUM_ID = ROWS * (ROWS + 1) // 2
EXPECTED_AMOUNT = sum(Decimal(i % 100_000) / 100 + Decimal("0.01") * (i % 7) for i in range(1, ROWS + 1))
RSS_LIMIT_MB = 1500


def _load(project_dir: Path) -> tuple[dict[str, object], float]:
    """Run `lakeforge run` in a child process; return its JSON result and the child's peak RSS in MB."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run([sys.executable, "-m", "lakeforge", "run", "-p", str(project_dir), "-o", "json"],
                          capture_output=True, text=True, timeout=600, env={**os.environ})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    assert peak >= before
    return json.loads(done.stdout), peak / 1024


def _check_lake(project_dir: Path, table: str) -> None:
    project = Project(project_dir)
    data = DeltaTable(project.lake.uri(table)).to_pyarrow_table(columns=["id", "amount"])
    assert data.num_rows == ROWS
    import pyarrow.compute as pc

    assert pc.sum(data["id"]).as_py() == EXPECTED_SUM_ID
    assert pc.sum(data["amount"]).as_py() == EXPECTED_AMOUNT
    assert str(data.schema.field("amount").type) == "decimal128(12, 2)"
    row = project.sql(f"select count(*) n, count(distinct id) d, sum(id) s, sum(amount) a from {table}").to_pylist()[0]
    assert row == {"n": ROWS, "d": ROWS, "s": EXPECTED_SUM_ID, "a": EXPECTED_AMOUNT}


def test_million_rows_postgres(pg_db: PgDatabase, project_dir: Path) -> None:
    pg_db.execute(
        "CREATE TABLE big (id bigint PRIMARY KEY, amount numeric(12,2) NOT NULL, note text);"
        f"INSERT INTO big SELECT i, (i % 100000) / 100.0 + 0.01 * (i % 7), CASE WHEN i % 3 = 0 THEN NULL "
        f"ELSE 'note ' || i END FROM generate_series(1, {ROWS}) i; ANALYZE big"
    )
    write_project(project_dir, f"""
        sources:
          src: {{type: postgres, url: "{pg_db.url}"}}
    """)
    result, peak_mb = _load(project_dir)
    assert result["tables"][0]["rows"] == ROWS
    _check_lake(project_dir, "bronze.src_big")
    print(f"peak RSS {peak_mb:.0f} MB")
    assert peak_mb < RSS_LIMIT_MB, f"peak RSS {peak_mb:.0f} MB"


def test_million_rows_mariadb(my_db: MyDatabase, project_dir: Path) -> None:
    my_db.execute(
        "CREATE TABLE big (id bigint PRIMARY KEY, amount decimal(12,2) NOT NULL, note text);\n"
        "INSERT INTO big SELECT seq, (seq % 100000) / 100 + 0.01 * (seq % 7), IF(seq % 3 = 0, NULL, "
        f"CONCAT('note ', seq)) FROM seq_1_to_{ROWS};\nANALYZE TABLE big"
    )
    write_project(project_dir, f"""
        sources:
          src: {{type: mysql, url: "{my_db.url}"}}
    """)
    result, peak_mb = _load(project_dir)
    assert result["tables"][0]["rows"] == ROWS
    _check_lake(project_dir, "bronze.src_big")
    print(f"peak RSS {peak_mb:.0f} MB")
    assert peak_mb < RSS_LIMIT_MB, f"peak RSS {peak_mb:.0f} MB"


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    return tmp_path / "project"
