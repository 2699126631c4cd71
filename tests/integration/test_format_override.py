"""Per-layer and per-table formats: ``lake.format`` for most tables, ``lake.layers.<layer>.format`` or
``lake.tables.<layer.table>.format`` for some, behind one Lake (``lake/routed.py``); switching an existing
table's format is refused with how to migrate."""

from __future__ import annotations

import decimal
from pathlib import Path

import pyarrow as pa
import pytest

from lakeforge import Project
from lakeforge.config.models import LakeConfig
from lakeforge.errors import LakeError
from lakeforge.lake import open_lake
from lakeforge.lake.routed import RoutedLake
from tests.conftest import PgDatabase, write_project

SCHEMA = pa.schema([("id", pa.int64()), ("amount", pa.decimal128(12, 2))])


def batch(ids: list[int]) -> pa.RecordBatch:
    amounts = [decimal.Decimal(i) / 100 for i in ids]
    return pa.record_batch([pa.array(ids, pa.int64()), pa.array(amounts, pa.decimal128(12, 2))], schema=SCHEMA)


def is_delta(lake_root: Path, name: str) -> bool:
    return (lake_root / name.replace(".", "/") / "_delta_log").is_dir()


def test_layer_and_table_overrides_route_each_table(tmp_path: Path) -> None:
    config = LakeConfig.model_validate({"path": "lh", "format": "delta", "layers": {"silver": {"format": "iceberg"}},
                                        "tables": {"bronze.ice": {"format": "iceberg"}}})
    lake = open_lake(config, tmp_path)
    assert isinstance(lake, RoutedLake)
    assert [lake.format_of(n) for n in ("bronze.t", "bronze.ice", "silver.s", "_lakeforge.runs")] == [
        "delta", "iceberg", "iceberg", "delta"]
    for name, ids in (("bronze.t", [1, 2]), ("bronze.ice", [3]), ("silver.s", [4, 5, 6])):
        lake.write(name, [batch(ids)], schema=SCHEMA, mode="overwrite")
    root = tmp_path / "lh"
    assert is_delta(root, "bronze.t") and not is_delta(root, "bronze.ice") and not is_delta(root, "silver.s")
    assert lake.names() == ["bronze.ice", "bronze.t", "silver.s"] and lake.names(["silver"]) == ["silver.s"]
    assert {n: lake.info(n).format for n in lake.names()} == {"bronze.ice": "iceberg", "bronze.t": "delta",
                                                               "silver.s": "iceberg"}
    got = lake.read("silver.s")
    assert got.schema == SCHEMA and got.column("amount").to_pylist() == [decimal.Decimal("0.04"),
                                                                          decimal.Decimal("0.05"),
                                                                          decimal.Decimal("0.06")]
    counts = lake.merge("bronze.ice", [batch([3, 7])], schema=SCHEMA, keys=["id"])
    assert (counts["num_target_rows_inserted"], lake.read("bronze.ice").num_rows) == (1, 2)
    lake.close()


def test_an_override_on_an_existing_table_is_refused_with_how_to_migrate(tmp_path: Path) -> None:
    before = open_lake(LakeConfig(path="lh"), tmp_path)
    before.write("bronze.t", [batch([1])], schema=SCHEMA, mode="overwrite")
    after = open_lake(LakeConfig.model_validate({"path": "lh", "tables": {"bronze.t": {"format": "iceberg"}}}),
                      tmp_path)
    with pytest.raises(LakeError, match=r"bronze.t is a Delta table .* but lake.format is iceberg; .* To migrate: "
                                        r".*lakeforge run --select bronze.t"):
        after.write("bronze.t", [batch([2])], schema=SCHEMA, mode="overwrite")
    assert before.read("bronze.t").column("id").to_pylist() == [1]  # untouched
    after.close()


def test_bad_overrides_name_the_key_and_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown format 'parquet'; valid: delta, iceberg"):
        LakeConfig.model_validate({"layers": {"silver": {"format": "parquet"}}})
    with pytest.raises(ValueError, match="'orders': a lake table is named layer.table"):
        LakeConfig.model_validate({"tables": {"orders": {"format": "iceberg"}}})
    with pytest.raises(ValueError, match="catalog is for format: iceberg"):
        LakeConfig.model_validate({"catalog": {"type": "sql"}})
    LakeConfig.model_validate({"catalog": {"type": "sql"}, "layers": {"gold": {"format": "iceberg"}}})


def test_an_override_naming_a_missing_class_fails_when_the_lake_opens(tmp_path: Path) -> None:
    from lakeforge.errors import ConfigError

    config = LakeConfig.model_validate({"path": "lh", "layers": {"gold": {"format": "nowhere.module:Lake"}}})
    with pytest.raises(ConfigError, match="lake.format 'nowhere.module:Lake': cannot import nowhere.module"):
        open_lake(config, tmp_path)


def test_a_run_loads_one_table_as_iceberg_and_sql_reads_both(pg_db: PgDatabase, project_dir: Path) -> None:
    for table in ("orders", "items"):
        pg_db.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, amount numeric(12,2))")
        pg_db.execute(f"INSERT INTO {table} SELECT g, g * 0.01 FROM generate_series(1, 500) g")
    p = Project(write_project(project_dir, f"""
    lake:
      path: ./lake
      tables: {{bronze.src_orders: {{format: iceberg}}}}
    sources:
      src: {{type: postgres, url: {pg_db.url}, include: [orders, items]}}
    """))
    result = p.run()
    assert result.ok, result
    assert {i.name: i.format for i in p.tables()} == {"bronze.src_items": "delta", "bronze.src_orders": "iceberg"}
    got = p.sql("select (select sum(amount) from bronze.src_orders) as o, (select count(*) from bronze.src_items) as n")
    assert got.to_pylist() == [{"o": decimal.Decimal("1252.50"), "n": 500}]
    assert p.runs(limit=1)[0]["run"]["status"] == "success"  # the run history in lake.format (Delta)
    assert is_delta(project_dir / "lake", "_lakeforge.runs")
