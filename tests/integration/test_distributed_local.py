"""Distributed full loads with range tasks in threads of this process (ThreadExecutor): the snapshot, the
file staging and the ONE commit, on the local servers; Ray itself is tested in tests/scale (namespace)."""

from __future__ import annotations

import decimal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
import pytest

from lakeforge.distributed.executor import ThreadExecutor
from lakeforge.distributed.ranges import key_ranges
from tests.contract.conftest import lake_rows
from tests.contract.kits import KITS, Kit
from tests.scale.helpers import contract_tables, project, same_tables


@pytest.fixture(params=sorted(KITS))
def kit(request: pytest.FixtureRequest) -> Iterator[Kit]:
    made = KITS[request.param]()
    made.create_database()
    yield made
    made.drop_database()


def _orders(kit: Kit, n: int) -> None:
    kit.create_table(
        "orders",
        {"id": "bigint", "amount": "decimal(12,2)", "note": "varchar(40)", "at": "date"},
        primary_key=["id"],
    )
    rows = [
        [str(i), f"{i}.{i % 100:02d}", "NULL" if i % 7 == 0 else f"'n{i}'", "'2024-02-29'"] for i in range(1, n + 1)
    ]
    for start in range(0, n, 5000):
        kit.insert("orders", ["id", "amount", "note", "at"], rows[start : start + 5000])


def _parquet_names(folder: str) -> set[str]:
    infos = pafs.LocalFileSystem().get_file_info(pafs.FileSelector(folder, recursive=True, allow_not_found=True))
    return {i.base_name for i in infos if i.base_name.endswith(".parquet")}


def test_key_ranges_cover_every_key_once() -> None:
    for low, high, parts in [(1, 100, 8), (5, 5, 4), (-10, 3, 3), (1, 7, 16), (0, 10**12, 7)]:
        ranges = key_ranges(low, high, parts)
        assert ranges[0][0] == low and ranges[-1][1] == high + 1
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
        assert len(ranges) == min(parts, high - low + 1)


@pytest.mark.parametrize("fmt", ["delta", "iceberg"])
def test_ranges_commit_once_and_equal_the_source(kit: Kit, fmt: str, tmp_path: Path) -> None:
    _orders(kit, 20_000)
    made = project(kit, tmp_path / "p", partitions=4, executor=ThreadExecutor(4), fmt=fmt)
    result = made.run()
    assert result.ok, [r.error for r in result.tables]
    (table,) = result.tables
    assert table.rows == 20_000 and "read by 4 range tasks on threads" in (table.reason or "")
    data = lake_rows(made, "bronze.src_orders")
    expected = [(i, decimal.Decimal(f"{i}.{i % 100:02d}"), None if i % 7 == 0 else f"n{i}") for i in range(1, 20_001)]
    got = list(zip(*(data.column(c).to_pylist() for c in ("id", "amount", "note")), strict=True))
    assert got == expected
    assert str(data.schema.field("amount").type) == "decimal128(12, 2)"
    checkpoint = made.lake.checkpoint("bronze.src_orders")
    assert checkpoint is not None and checkpoint.mode == "full" and checkpoint.sequence == 1
    if kit.name == "postgres":
        assert checkpoint.position["snapshot"] and checkpoint.position["lsn"]
    if fmt == "delta":
        from deltalake import DeltaTable

        delta = DeltaTable(made.lake.uri("bronze.src_orders"))
        assert delta.version() == 0  # one commit: every range's files at once
        committed = {p.rsplit("/", 1)[-1] for p in delta.file_uris()}
        assert committed == _parquet_names(made.lake.uri("bronze.src_orders"))  # no orphans left
        assert all(name.startswith("lf-") for name in committed) and len(committed) == 4
    else:
        assert len(list(made.lake.table("bronze.src_orders").snapshots())) == 1  # type: ignore[attr-defined]

    again = made.run()  # a second full load replaces the rows (never appends them)
    assert again.ok and lake_rows(made, "bronze.src_orders").num_rows == 20_000
    assert made.lake.checkpoint("bronze.src_orders").sequence == 2  # type: ignore[union-attr]


def test_failed_range_commits_nothing_and_leaves_no_files(tmp_path: Path) -> None:
    kit = KITS["postgres"]()
    kit.create_database()
    try:
        _orders(kit, 8_000)
        made = project(kit, tmp_path / "p", partitions=4, executor=ThreadExecutor(4))
        assert made.run().ok
        before = _parquet_names(made.lake.uri("bronze.src_orders"))
        kit.execute("UPDATE orders SET amount = 'NaN' WHERE id = 7000")
        failed = made.run()
        (table,) = failed.tables
        assert table.status == "failed" and "cannot be stored exactly" in (table.error or "")
        assert made.lake.version("bronze.src_orders") == 0  # the first load's commit is still the table
        assert lake_rows(made, "bronze.src_orders").num_rows == 8_000
        assert _parquet_names(made.lake.uri("bronze.src_orders")) == before  # the failed load's files are gone
    finally:
        kit.drop_database()


def test_contract_types_survive_the_distributed_path(kit: Kit, tmp_path: Path) -> None:
    """The contract suite's tables loaded by range tasks equal the single-process load, type for type."""
    contract_tables(kit)
    local = project(kit, tmp_path / "local", partitions=1, executor=None)
    distributed = project(kit, tmp_path / "dist", partitions=3, executor=ThreadExecutor(3))
    for made in (local, distributed):
        result = made.run()
        assert result.ok, [r.error for r in result.tables]
    counts = same_tables(local, distributed)
    assert counts["bronze.src_types"] == 4 and counts["bronze.src_empty"] == 0 and counts["bronze.src_no_pk"] == 5


@pytest.mark.parametrize("kind", ["delta", "iceberg-rest"])
def test_range_tasks_write_into_the_object_store(
    kind: str, seaweed: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A lake on S3 (SeaweedFS): the tasks' files go to the bucket, one commit makes them the table."""
    from lakeforge import Project
    from lakeforge.distributed.extract import DistributedExtractor
    from tests.integration.test_s3 import lake_yaml

    monkeypatch.setenv("S3_KEY", seaweed.key)
    monkeypatch.setenv("S3_SECRET", seaweed.secret)
    kit = KITS["postgres"]()
    kit.create_database()
    try:
        _orders(kit, 12_000)
        folder = tmp_path / "p"
        folder.mkdir()
        (folder / "lakeforge.yml").write_text(
            f"{lake_yaml(kind, seaweed, folder)}\n"
            f"sources:\n  src: {{type: postgres, url: '{kit.url()}'}}\n"
            "run: {partitions: 3, parallel_min_rows: 0, retries: 0}\n"
        )
        made = Project(folder)
        made.extractor = DistributedExtractor(ThreadExecutor(3))  # type: ignore[misc]
        result = made.run()
        assert result.ok, [r.error for r in result.tables]
        assert made.lake.root.startswith("s3://")
        data = made.lake.read("bronze.src_orders").sort_by("id")
        assert data.column("id").to_pylist() == list(range(1, 12_001))
        expected = sum(decimal.Decimal(f"{i}.{i % 100:02d}") for i in range(1, 12_001))
        assert sum(data.column("amount").to_pylist()) == expected
        fs, _ = made.lake.file_system()
        staged = made.lake.staging("bronze.src_orders", made.lake.schema("bronze.src_orders"))  # type: ignore[arg-type]
        from lakeforge.lake.files import fs_path

        names = [i.base_name for i in fs.get_file_info(pafs.FileSelector(fs_path(staged), recursive=False))]
        assert len([n for n in names if n.startswith("lf-")]) == 3  # three ranges, one file each, in the bucket
    finally:
        kit.drop_database()
