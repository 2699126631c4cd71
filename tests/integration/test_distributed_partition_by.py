"""``partition_by``: a table without a single integer key split by range tasks (ThreadExecutor) on a declared
integer, date or timestamp column, NULLs in a task of their own, inside one snapshot; the lake equals the
one-process load and the source."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakeforge import Project
from lakeforge.distributed.executor import ThreadExecutor
from lakeforge.distributed.extract import DistributedExtractor
from tests.contract.kits import KITS, Kit
from tests.scale.helpers import same_tables

ROWS = 3000
TYPES = {
    "postgres": {"at": "timestamp(6)", "at_tz": "timestamptz"},
    "mysql": {"at": "datetime(6)", "at_tz": "timestamp(6) NULL"},
}


@pytest.fixture(params=sorted(KITS))
def kit(request: pytest.FixtureRequest) -> Iterator[Kit]:
    made = KITS[request.param]()
    made.create_database()
    yield made
    made.drop_database()


def _events(kit: Kit) -> None:
    """No primary key; ``at``/``at_tz`` NULL on every 9th row, ``day`` on every 11th."""
    types = TYPES[kit.name]
    columns = {
        "device": "int",
        "seq": "int",
        "at": types["at"],
        "at_tz": types["at_tz"],
        "day": "date",
        "amount": "decimal(12,2)",
        "note": "varchar(20)",
    }
    kit.create_table("events", columns)
    base = dt.datetime(2024, 3, 30, 23, 0, 0, 250000)
    rows = []
    for i in range(ROWS):
        at = "NULL" if i % 9 == 0 else f"'{base + dt.timedelta(minutes=7 * i, microseconds=i)}'"
        day = "NULL" if i % 11 == 0 else f"'{dt.date(2023, 12, 30) + dt.timedelta(days=i // 40)}'"
        rows.append([str(i % 13), str(i), at, at, day, f"{i}.{i % 100:02d}", f"'n{i}'"])
    for start in range(0, ROWS, 1000):
        kit.insert("events", list(columns), rows[start : start + 1000])


def _project(kit: Kit, folder: Path, column: str | None, partitions: int) -> Project:
    folder.mkdir(parents=True)
    tables = f", tables: {{events: {{partition_by: {column}}}}}" if column else ""
    (folder / "lakeforge.yml").write_text(
        f'sources:\n  src: {{type: {kit.source_type}, url: "{kit.url()}"{tables}}}\n'
        f"lake: {{path: ./lake}}\nrun: {{partitions: {partitions}, parallel_min_rows: 0, retries: 0}}\n"
    )
    made = Project(folder)
    if column:
        made.extractor = DistributedExtractor(ThreadExecutor(4), retries=0)  # type: ignore[misc]
    return made


@pytest.mark.parametrize("column", ["at", "at_tz", "day", "seq"])
def test_partition_by_column_equals_the_source(kit: Kit, column: str, tmp_path: Path) -> None:
    _events(kit)
    local = _project(kit, tmp_path / "local", None, 1)
    split = _project(kit, tmp_path / "split", column, 4)
    for made in (local, split):
        result = made.run()
        assert result.ok, [r.error for r in result.tables]
    (table,) = result.tables
    assert table.rows == ROWS and "read by 5 range tasks on threads" in (table.reason or "")
    tasks = sorted(split.extractor.results, key=lambda r: r.index)  # type: ignore[union-attr]
    nulls = kit.execute(f"SELECT COUNT(*) FROM events WHERE {kit.quote(column)} IS NULL")[0][0]
    assert [t.rows for t in tasks][-1] == nulls  # the last task reads the NULLs
    assert all(t.rows > 0 for t in tasks[:-1]) and sum(t.rows for t in tasks) == ROWS
    assert same_tables(local, split) == {"bronze.src_events": ROWS}
    data = split.lake.read("bronze.src_events").sort_by("seq")
    assert data.column("seq").to_pylist() == list(range(ROWS))
    assert sum(data.column("amount").to_pylist()) == sum(decimal.Decimal(f"{i}.{i % 100:02d}") for i in range(ROWS))


def test_partition_by_a_text_column_fails_the_table(tmp_path: Path) -> None:
    kit = KITS["postgres"]()
    kit.create_database()
    try:
        _events(kit)
        result = _project(kit, tmp_path / "p", "note", 4).run()
        (table,) = result.tables
        assert table.status == "failed"
        assert "partition_by column 'note' is character varying(20)" in (table.error or ""), table.error
    finally:
        kit.drop_database()
