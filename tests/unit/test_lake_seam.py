"""The table-format seam: the registry, the Delta implementation behind the Lake interface."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from lakeforge.config.models import LakeConfig
from lakeforge.errors import ConfigError
from lakeforge.lake import FORMATS, lake_class, open_lake
from lakeforge.lake.base import Lake
from lakeforge.lake.checkpoint import Checkpoint
from lakeforge.lake.delta import DeltaLake


@pytest.fixture(params=["delta", "iceberg"])
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Lake:
    opened = open_lake(LakeConfig(path="lh", format=request.param), tmp_path)
    request.addfinalizer(opened.close)
    return opened


def _rows(lake: Lake, name: str) -> list[dict[str, object]]:
    return sorted(lake.read(name).to_pylist(), key=lambda r: str(r["id"]))


SCHEMA = pa.schema([("id", pa.int64()), ("v", pa.string()), ("gone", pa.bool_())])


def _batch(ids: list[int], vs: list[str | None], gone: list[bool] | None = None) -> pa.RecordBatch:
    return pa.record_batch([pa.array(ids, pa.int64()), pa.array(vs, pa.string()),
                            pa.array(gone or [False] * len(ids), pa.bool_())], schema=SCHEMA)


def test_registry_picks_the_format_and_a_dotted_path(tmp_path: Path) -> None:
    assert set(FORMATS) == {"delta", "iceberg"}
    lake = open_lake(LakeConfig(path="lh"), tmp_path)
    assert isinstance(lake, DeltaLake) and lake.root == str(tmp_path / "lh")
    assert lake_class("lakeforge.lake.delta:DeltaLake") is DeltaLake
    assert lake_class("lakeforge.lake.delta.DeltaLake") is DeltaLake
    with pytest.raises(ConfigError, match="not a subclass"):
        lake_class("lakeforge.errors:LakeError")
    with pytest.raises(ConfigError, match="cannot import"):
        lake_class("nowhere.module:Lake")
    with pytest.raises(ValueError, match="unknown format 'parquet'; valid: delta, iceberg"):
        LakeConfig(format="parquet")


def test_lake_interface_round_trip(lake: Lake) -> None:
    name = "bronze.t"
    assert not lake.exists(name) and lake.schema(name) is None and lake.checkpoint(name) is None
    assert lake.next_sequence(name) == 1
    cp = Checkpoint("r1", "full", 1, source="s", source_table="public.t")
    lake.write(name, [_batch([1, 2], ["a", None])], schema=SCHEMA, mode="overwrite", checkpoint=cp)
    first = lake.version(name)
    assert lake.checkpoint(name) == cp and lake.next_sequence(name) == 2
    assert lake.schema(name) == SCHEMA
    assert lake.names() == [name] and lake.names(["silver"]) == []
    counts = lake.merge(name, [_batch([2, 3], ["b", "c"])], schema=SCHEMA, keys=["id"], compare=["v"],
                        checkpoint=Checkpoint("r2", "incremental", 2))
    assert (counts["num_target_rows_inserted"], counts["num_target_rows_updated"]) == (1, 1)
    assert [r["v"] for r in _rows(lake, name)] == ["a", "b", "c"]
    before = lake.version(name)
    lake.merge(name, [_batch([2], ["b"])], schema=SCHEMA, keys=["id"], compare=["v"])
    assert lake.version(name) == before  # nothing differs: no commit
    lake.merge(name, [_batch([1, 3], ["x", "y"], [True, False])], schema=SCHEMA, keys=["id"], delete_column="gone")
    assert [(r["id"], r["v"]) for r in _rows(lake, name)] == [(2, "b"), (3, "y")]
    snap = lake.snapshot(name, first)
    assert snap.version == first and snap.dataset.count_rows() == 2  # time travel
    assert sorted(snap.dataset.to_table()["v"].to_pylist(), key=str) == [None, "a"]
    lake.delete_all(name)
    assert lake.read(name).num_rows == 0 and lake.checkpoint(name) == Checkpoint("r2", "incremental", 2)
    info = lake.info(name)
    assert (info.rows, info.mode, info.format) == (0, "incremental", lake.FORMAT)


def test_soft_delete_keeps_the_row_and_sets_only_the_flag_columns(lake: Lake) -> None:
    lake.write("bronze.s", [_batch([1, 2], ["a", "b"])], schema=SCHEMA, mode="overwrite")
    lake.merge("bronze.s", [_batch([1, 5], [None, None], [True, True])], schema=SCHEMA, keys=["id"],
               delete_column="gone", keep_deleted=["gone"])
    assert [(r["id"], r["v"], r["gone"]) for r in _rows(lake, "bronze.s")] == [
        (1, "a", True), (2, "b", False), (5, None, True)]
    lake.delete_all("bronze.s", set_values={"gone": True, "v": "it's"})
    assert {(r["v"], r["gone"]) for r in _rows(lake, "bronze.s")} == {("it's", True)}


def test_nested_columns_append_and_read_back_exactly(lake: Lake) -> None:
    """Stream sources land headers as list<struct>; JSON files keep objects as structs and maps: a second
    append to the same table is the same type (Iceberg gives nested types back with its own field names)."""
    headers = pa.list_(pa.struct([("key", pa.string()), ("value", pa.string())]))
    table = pa.table({
        "id": pa.array([1, 2], pa.int64()),
        "h": pa.array([[{"key": "k", "value": None}], []], headers),
        "m": pa.array([[("a", 1)], None], pa.map_(pa.string(), pa.int64())),
        "s": pa.array([{"x": 1, "y": {"z": "q"}}, None]),
    })
    for _ in range(2):
        lake.write("bronze.n", table.to_batches(), schema=table.schema, mode="append")
    rows = _rows(lake, "bronze.n")
    assert [r["h"] for r in rows] == [[{"key": "k", "value": None}]] * 2 + [[]] * 2
    assert [r["m"] for r in rows] == [[("a", 1)]] * 2 + [None] * 2
    assert [r["s"] for r in rows] == [{"x": 1, "y": {"z": "q"}}] * 2 + [None] * 2


def test_an_iceberg_namespace_prefix_keeps_lakes_apart_in_one_catalog(tmp_path: Path) -> None:
    catalog = {"type": "sql", "uri": f"sqlite:///{tmp_path}/shared.db"}
    one = open_lake(LakeConfig(path="a", format="iceberg", catalog={**catalog, "namespace_prefix": "a_"}), tmp_path)
    two = open_lake(LakeConfig(path="b", format="iceberg", catalog=catalog), tmp_path)
    one.write("bronze.t", [_batch([1], ["a"])], schema=SCHEMA, mode="append")
    two.write("bronze.t", [_batch([2, 3], ["b", "c"])], schema=SCHEMA, mode="append")
    assert one.names() == ["bronze.t"] and [r["id"] for r in _rows(one, "bronze.t")] == [1]
    assert [r["id"] for r in _rows(two, "bronze.t")] == [2, 3]
    assert sorted(ns for ns, *_ in one.catalog.list_namespaces()) == ["a_bronze", "bronze"]  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="namespace_prefix"):
        LakeConfig(format="iceberg", catalog={**catalog, "namespace_prefix": "a.b"})


def test_properties_live_with_the_table(lake: Lake) -> None:
    lake.write("_lakeforge.x", [_batch([1], ["a"])], schema=SCHEMA, mode="append", properties={"lakeforge.v": "3"})
    lake.write("_lakeforge.x", [_batch([2], ["b"])], schema=SCHEMA, mode="append", properties={"lakeforge.v": "3"})
    assert lake.properties("_lakeforge.x") == {"lakeforge.v": "3"} and lake.read("_lakeforge.x").num_rows == 2
    assert lake.names() == []  # the internal layer is not listed


def test_a_commit_conflict_is_transient() -> None:
    from deltalake.exceptions import CommitFailedError, DeltaError

    from lakeforge.lake.delta.lake import delta_error

    conflict = delta_error("bronze.t", "merge", CommitFailedError("Transaction failed: version already exists"))
    assert conflict.transient and "concurrent writer" in str(conflict)
    assert not delta_error("bronze.t", "merge", DeltaError("schema mismatch")).transient


def test_an_iceberg_commit_conflict_is_transient() -> None:
    from pyiceberg.exceptions import CommitFailedException, ValidationError

    from lakeforge.lake.iceberg.lake import iceberg_error

    assert iceberg_error("bronze.t", "merge", CommitFailedException("branch main has changed")).transient
    assert not iceberg_error("bronze.t", "merge", ValidationError("bad")).transient


def test_switching_a_tables_format_is_refused_with_how_to_migrate(tmp_path: Path) -> None:
    from lakeforge.errors import LakeError

    delta = open_lake(LakeConfig(path="lh"), tmp_path)
    delta.write("bronze.t", [_batch([1], ["a"])], schema=SCHEMA, mode="overwrite")
    iceberg = open_lake(LakeConfig(path="lh", format="iceberg"), tmp_path)
    with pytest.raises(LakeError, match=r"bronze.t is a Delta table .* but lake.format is iceberg; .* To migrate"):
        iceberg.write("bronze.t", [_batch([2], ["b"])], schema=SCHEMA, mode="overwrite")
    iceberg.write("bronze.u", [_batch([2], ["b"])], schema=SCHEMA, mode="overwrite")
    with pytest.raises(LakeError, match=r"bronze.u is an Iceberg table .* but lake.format is delta"):
        delta.write("bronze.u", [_batch([3], ["c"])], schema=SCHEMA, mode="overwrite")
    assert delta.read("bronze.t").num_rows == 1 and iceberg.read("bronze.u").num_rows == 1
    iceberg.close()


@pytest.mark.parametrize(("arrow", "why"), [
    (pa.uint64(), "no unsigned integers"), (pa.uint8(), "no unsigned integers"),
    (pa.timestamp("ns", tz="UTC"), "microseconds"), (pa.decimal256(40, 2), "at most 38 digits"),
])
def test_iceberg_refuses_types_it_cannot_hold(arrow: pa.DataType, why: str, tmp_path: Path) -> None:
    from lakeforge.errors import LakeError

    lake = open_lake(LakeConfig(path="lh", format="iceberg"), tmp_path)
    schema = pa.schema([("x", arrow)])
    with pytest.raises(LakeError, match=f"bronze.t: column 'x' has Arrow type .*{why}"):
        lake.write("bronze.t", [pa.record_batch([pa.array([None], arrow)], schema=schema)], schema=schema,
                   mode="overwrite")
    assert not lake.exists("bronze.t")


def test_iceberg_exact_values_round_trip(tmp_path: Path) -> None:
    import datetime as dt
    import decimal

    lake = open_lake(LakeConfig(path="lh", format="iceberg"), tmp_path)
    values = {
        "d": (pa.decimal128(38, 10), [decimal.Decimal("1234567890123456789012345678.0123456789"), None]),
        "tz": (pa.timestamp("us", tz="UTC"), [dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC), None]),
        "ntz": (pa.timestamp("us"), [dt.datetime(1, 1, 1), None]),
        "i2": (pa.int16(), [-32768, None]),
        "f": (pa.float64(), [float("-0.0"), None]),
        "b": (pa.binary(), [b"\x00\xff", None]),
        "l": (pa.list_(pa.int64()), [[1, None], None]),
    }
    schema = pa.schema([(k, t) for k, (t, _) in values.items()])
    batch = pa.record_batch([pa.array(v, t) for t, v in values.values()], schema=schema)
    lake.write("bronze.types", [batch], schema=schema, mode="overwrite")
    got = lake.read("bronze.types")
    for column, (arrow, expected) in values.items():
        assert got.column(column).to_pylist() == expected, column
        assert got.schema.field(column).type == (pa.int32() if arrow == pa.int16() else arrow), column
    assert str(got.column("f").to_pylist()[0]) == "-0.0"
    lake.close()


def test_a_real_iceberg_commit_conflict_is_retried_and_loses_nothing(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer holding an older snapshot commits after another writer: the catalog refuses the commit, PyIceberg
    refreshes and retries it (when its retries run out, CommitFailedException is a transient LakeError, above);
    both writes are in the table."""
    from lakeforge.lake.iceberg import IcebergLake

    lake = open_lake(LakeConfig(path="lh", format="iceberg"), tmp_path)
    assert isinstance(lake, IcebergLake)
    lake.write("bronze.t", [_batch([1, 3], ["a", "c"])], schema=SCHEMA, mode="overwrite")
    stale = lake.table("bronze.t")
    lake.write("bronze.t", [_batch([2], ["b"])], schema=SCHEMA, mode="append")  # the other writer
    with monkeypatch.context() as patch:
        patch.setattr(lake, "table", lambda name: stale)
        counts = lake.merge("bronze.t", [_batch([1, 3], ["x", None], [False, True])], schema=SCHEMA, keys=["id"],
                            delete_column="gone")
    assert (counts["num_target_rows_updated"], counts["num_target_rows_deleted"]) == (1, 1)
    assert [(r["id"], r["v"]) for r in _rows(lake, "bronze.t")] == [(1, "x"), (2, "b")]
    lake.close()


def test_a_merge_with_two_rows_for_one_key_is_refused(lake: Lake) -> None:
    from lakeforge.errors import LakeError

    lake.write("bronze.d", [_batch([1], ["a"])], schema=SCHEMA, mode="overwrite")
    version = lake.version("bronze.d")
    with pytest.raises(LakeError, match="bronze.d: merge failed"):
        lake.merge("bronze.d", [_batch([1, 1], ["x", "y"])], schema=SCHEMA, keys=["id"])
    assert lake.version("bronze.d") == version and [r["v"] for r in _rows(lake, "bronze.d")] == ["a"]
