"""CDC into a lake on object storage (a real SeaweedFS on loopback): snapshot, then inserts, updates, deletes
and a key change through the log, into Delta and Iceberg (SQL catalog) lakes under ``s3://``; the
current-state table equals the source row for row, the change log holds every change."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml

from lakeforge import Project
from tests.integration.cdc.conftest import PgDb, cdc_project


def _orders_on_s3(fmt: str, seaweed: Any, cdc_pg: PgDb, tmp_path: Path, *, rows: int) -> Path:
    """A source table ``orders`` of ``rows`` rows and a CDC project on it whose lake is under ``s3://``."""
    cdc_pg.execute("CREATE TABLE orders (id int PRIMARY KEY, item text, qty int, price numeric(10,2), at timestamptz)")
    cdc_pg.execute("INSERT INTO orders SELECT g, 'item' || g, g, g * 1.5, '2024-01-01'::timestamptz "
                   "FROM generate_series(1, %s) g", (rows,))
    folder = cdc_project(tmp_path / "p", cdc_pg, {"orders": {"mode": "cdc"}})
    config = yaml.safe_load((folder / "lakeforge.yml").read_text())
    config["lake"] = {"path": f"s3://{seaweed.bucket}/{secrets.token_hex(4)}", "format": fmt,
                      "storage": {"endpoint": seaweed.s3, "region": "us-east-1", "access_key_id": seaweed.key,
                                  "secret_access_key": "${S3_SECRET}"}}
    if fmt == "iceberg":
        config["lake"]["catalog"] = {"type": "sql", "uri": f"sqlite:///{tmp_path}/catalog.db"}
    (folder / "lakeforge.yml").write_text(yaml.safe_dump(config))
    return folder


@pytest.mark.parametrize("fmt", ["delta", "iceberg"])
def test_cdc_on_s3(fmt: str, seaweed: Any, cdc_pg: PgDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3_SECRET", seaweed.secret)
    folder = _orders_on_s3(fmt, seaweed, cdc_pg, tmp_path, rows=500)
    project = Project(folder)

    assert project.run().ok
    cdc_pg.execute("INSERT INTO orders VALUES (501, 'new', 1, 9.99, now())")
    cdc_pg.execute("UPDATE orders SET qty = qty + 1000 WHERE id <= 10")
    cdc_pg.execute("DELETE FROM orders WHERE id BETWEEN 11 AND 20")
    cdc_pg.execute("UPDATE orders SET id = 1000 WHERE id = 21")
    result = project.run()
    assert result.ok, result
    got = project.sql('SELECT id, item, qty, price, "at" FROM bronze.src_orders ORDER BY id').to_pylist()
    want = cdc_pg.execute("SELECT id, item, qty, price, at FROM orders ORDER BY id")
    assert [tuple(r.values()) for r in got] == [tuple(r) for r in want]
    assert len(got) == 500 - 10 + 1  # a key change leaves one copy, deletes are gone for every reader
    ops = project.sql("SELECT _lf_op, count(*) n FROM bronze.src_orders_changes GROUP BY 1 ORDER BY 1").to_pylist()
    assert ops == [{"_lf_op": "delete", "n": 11}, {"_lf_op": "insert", "n": 2}, {"_lf_op": "update", "n": 10}]
    assert [t.name for t in project.tables()] == ["bronze.src_orders", "bronze.src_orders_changes"]
    assert project.lake.root.startswith("s3://")


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["delta", "iceberg"])
def test_cdc_killed_between_its_two_commits_on_s3(fmt: str, seaweed: Any, cdc_pg: PgDb, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGKILL of a real CDC run on S3 after the change log committed a micro-batch and before the current-state
    table did (kill point ``cdc_log_committed``); the next run finishes the batch: the state equals the source and
    the change log holds every change once."""
    from tests.integration.test_crash import lakeforge

    monkeypatch.setenv("S3_SECRET", seaweed.secret)
    folder = _orders_on_s3(fmt, seaweed, cdc_pg, tmp_path, rows=300)
    project = Project(folder)
    assert project.run().ok  # the snapshot
    cdc_pg.execute("INSERT INTO orders SELECT g, 'new', 1, 9.99, now() FROM generate_series(301, 340) g")
    cdc_pg.execute("UPDATE orders SET qty = qty + 1000 WHERE id <= 25")
    cdc_pg.execute("DELETE FROM orders WHERE id BETWEEN 100 AND 114")
    state_before = project.lake.version("bronze.src_orders")
    proc = lakeforge(folder, "run", kill_at="cdc_log_committed:bronze.src_orders")
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert project.lake.version("bronze.src_orders") == state_before  # the state table did not commit
    result = project.run()
    assert result.ok, result
    got = project.sql('SELECT id, item, qty, price FROM bronze.src_orders ORDER BY id').to_pylist()
    want = cdc_pg.execute("SELECT id, item, qty, price FROM orders ORDER BY id")
    assert [tuple(r.values()) for r in got] == [tuple(r) for r in want]
    ops = project.sql("SELECT _lf_op, count(*) n FROM bronze.src_orders_changes GROUP BY 1 ORDER BY 1").to_pylist()
    assert ops == [{"_lf_op": "delete", "n": 15}, {"_lf_op": "insert", "n": 40}, {"_lf_op": "update", "n": 25}]
    project.lake.close()
