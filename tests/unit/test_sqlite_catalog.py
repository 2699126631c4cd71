"""The SQLite catalog without SQLAlchemy (lake/iceberg/sqlite_catalog.py): PyIceberg's own ``SqlCatalog`` reads
and writes the same file (both ways), a commit that lost the race to another writer fails and lands nothing,
and an Iceberg lake on it does not import SQLAlchemy."""

from __future__ import annotations

import decimal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lakeforge.config.models import LakeConfig
from lakeforge.lake import open_lake
from lakeforge.lake.iceberg.lake import IcebergLake
from lakeforge.lake.iceberg.sqlite_catalog import SqliteCatalog

SCHEMA = pa.schema([("id", pa.int64()), ("amount", pa.decimal128(12, 2)), ("v", pa.string())])


def _batch(ids: list[int]) -> pa.RecordBatch:
    return pa.record_batch(
        [pa.array(ids, pa.int64()), pa.array([decimal.Decimal(i) / 4 for i in ids], pa.decimal128(12, 2)),
         pa.array([None if i % 2 else f"v{i}" for i in ids], pa.string())], schema=SCHEMA)


def _lake(tmp_path: Path) -> IcebergLake:
    lake = open_lake(LakeConfig(path="lh", format="iceberg"), tmp_path)
    assert isinstance(lake, IcebergLake)
    return lake


def _sqlalchemy_catalog(lake: IcebergLake) -> Any:
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog("lakeforge", uri=f"sqlite:///{lake.root}/catalog.db", warehouse=f"file://{lake.root}")


def _ids(table: Any) -> list[int]:
    return sorted(table.scan().to_arrow().column("id").to_pylist())


def test_pyiceberg_sql_catalog_reads_and_writes_the_same_file(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    assert isinstance(lake.catalog, SqliteCatalog)
    lake.write("bronze.t", [_batch([1, 2, 3])], schema=SCHEMA, mode="overwrite")
    lake.write("silver.u", [_batch([9])], schema=SCHEMA, mode="overwrite")
    other = _sqlalchemy_catalog(lake)
    assert sorted(other.list_namespaces()) == [("bronze",), ("silver",)]
    assert other.list_tables("bronze") == [("bronze", "t")]
    theirs = other.load_table(("bronze", "t"))
    assert theirs.scan().to_arrow().sort_by("id").to_pylist() == pa.Table.from_batches([_batch([1, 2, 3])]).to_pylist()
    theirs.append(pa.Table.from_batches([_batch([4])]).cast(theirs.schema().as_arrow()))  # SQLAlchemy's commit
    assert sorted(lake.read("bronze.t").column("id").to_pylist()) == [1, 2, 3, 4]  # the lake sees it
    lake.write("bronze.t", [_batch([5])], schema=SCHEMA, mode="append")
    assert _ids(other.load_table(("bronze", "t"))) == [1, 2, 3, 4, 5]
    assert [r["amount"] for r in lake.read("bronze.t").to_pylist() if r["id"] == 5] == [decimal.Decimal("1.25")]
    other.drop_table(("silver", "u"))
    assert lake.names() == ["bronze.t"]
    other.close()
    lake.close()


def test_a_commit_that_lost_the_race_fails_and_lands_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pyiceberg.exceptions import CommitFailedException

    lake = _lake(tmp_path)
    lake.write("bronze.t", [_batch([1])], schema=SCHEMA, mode="overwrite")
    mine = lake.table("bronze.t")
    rival = _lake(tmp_path)
    write_metadata = SqliteCatalog._write_metadata

    def rival_commits_first(metadata: Any, io: Any, path: str) -> None:
        write_metadata(metadata, io, path)
        if "rival" not in metadata.properties:  # between this commit's metadata file and its catalog update
            rival.table("bronze.t").transaction().set_properties({"rival": "1"}).commit_transaction()

    monkeypatch.setattr(SqliteCatalog, "_write_metadata", staticmethod(rival_commits_first))
    with pytest.raises(CommitFailedException, match="updated by another process"):
        lake.catalog.commit_table(mine, (), mine.transaction().set_properties({"mine": "1"})._updates)
    monkeypatch.undo()
    final = _sqlalchemy_catalog(lake).load_table(("bronze", "t"))
    assert final.properties.get("rival") == "1" and "mine" not in final.properties
    lake.close()
    rival.close()


@pytest.mark.slow
def test_an_iceberg_lake_does_not_import_sqlalchemy(tmp_path: Path) -> None:
    code = (
        "import sys, pyarrow as pa\n"
        "from lakeforge.config.models import LakeConfig\n"
        "from lakeforge.lake import open_lake\n"
        f"lake = open_lake(LakeConfig(path='lh', format='iceberg'), {str(tmp_path)!r})\n"
        "s = pa.schema([('id', pa.int64())])\n"
        "lake.write('bronze.t', [pa.record_batch([pa.array([1, 2])], schema=s)], schema=s, mode='overwrite')\n"
        "print(lake.read('bronze.t').num_rows, 'sqlalchemy' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["2", "False"]


def test_created_tables_fall_back_from_dictionary_early(tmp_path: Path) -> None:
    """``write.parquet.dict-size-bytes`` 256 KiB (lake/iceberg/schema.py DICT_SIZE): a column of distinct values
    falls back to plain encoding, a column of few values stays dictionary-encoded, the rows read back exactly."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    lake = _lake(tmp_path)
    n = 300_000
    ids = pa.array(range(n), pa.int64())
    status = pc.cast(pc.bit_wise_and(ids, 3), pa.string())
    data = pa.table({"id": ids, "name": pc.cast(ids, pa.string()), "status": status})
    lake.write("bronze.t", data.to_batches(), schema=data.schema, mode="overwrite")
    table = lake.table("bronze.t")
    assert table.properties["write.parquet.dict-size-bytes"] == str(256 * 1024)
    [task] = list(table.scan().plan_files())
    chunk = pq.ParquetFile(task.file.file_path.removeprefix("file://")).metadata.row_group(0)
    encodings = {chunk.column(i).path_in_schema: chunk.column(i).encodings for i in range(chunk.num_columns)}
    assert "RLE_DICTIONARY" in encodings["status"]
    assert "PLAIN" in encodings["name"]
    back = lake.read("bronze.t").sort_by("id")
    assert back.column("name").to_pylist() == data.column("name").to_pylist()
    assert back.column("status").to_pylist() == data.column("status").to_pylist()
    lake.close()
