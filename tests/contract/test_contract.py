"""The source contract: every source passes the same suite (run once per kit, see conftest.py).

One project load per source fills the lake with: every common type (values, NULLs, the Arrow and the Delta
type), unicode up to 4-byte UTF-8, an empty table, odd identifiers (spaces, mixed case, quotes, reserved
words) and a table without a primary key. Values are read back with ``deltalake`` directly and through
DuckDB (``Project.sql``). One more load runs through the ``lakeforge`` CLI with ``--output json``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lakeforge import Project
from lakeforge.lake.naming import normalize
from tests.contract.conftest import delta_types, lake_rows
from tests.contract.kits import COMMON, KITS, Kit

UNICODE = ["😀🎉 emoji", "漢字かな交じり", "e\u0301 combining", "שלום RTL", "👨\u200d👩\u200d👧 ZWJ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "ÄÖÜß"]
ODD_TABLE = 'Mixed Case "q" it\'s'
ODD_COLUMNS = {
    "select": "integer",
    "Mixed Case": "varchar(20)",
    'it\'s "quoted"': "varchar(20)",
    "order": "integer",
    "group by": "varchar(20)",
    "_lf_source": "varchar(20)",
}
_DELTA = {
    "int16": "short",
    "int32": "integer",
    "int64": "long",
    "float": "float",
    "double": "double",
    "string": "string",
    "date32[day]": "date",
    "timestamp[us]": "timestamp_ntz",
    "timestamp[us, tz=UTC]": "timestamp",
    "binary": "binary",
    "bool": "boolean",
}


_ICEBERG = {
    **_DELTA, "int16": "int", "int32": "int", "timestamp[us]": "timestamp", "timestamp[us, tz=UTC]": "timestamptz",
}
"""Iceberg has no 16-bit integer: smallint is stored as int (read back as int32, values exact)."""


def delta_name(arrow: pa.DataType, fmt: str = "delta") -> str:
    if pa.types.is_decimal(arrow):
        sep = "," if fmt == "delta" else ", "
        return f"decimal({arrow.precision}{sep}{arrow.scale})"
    return (_ICEBERG if fmt == "iceberg" else _DELTA)[str(arrow)]


def read_type(arrow: pa.DataType, fmt: str) -> pa.DataType:
    """The Arrow type a reader gets back: Iceberg widens int16 to int32."""
    return pa.int32() if fmt == "iceberg" and arrow == pa.int16() else arrow


@dataclass
class Loaded:
    kit: Kit
    project: Project
    result: Any

    def table(self, source_table: str) -> str:
        return "bronze.src_" + normalize(source_table)


@pytest.fixture(scope="module", params=sorted(KITS))
def kit(request: pytest.FixtureRequest, module_format: str) -> Iterator[Kit]:
    """A fresh database per source and table format (overrides conftest's per-source one)."""
    made = KITS[request.param]()
    made.create_database()
    yield made
    made.drop_database()


@pytest.fixture(scope="module")
def loaded(kit: Kit, module_format: str, tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    types = {c.column: c.types[kit.name] for c in COMMON}
    kit.create_table("types", {"id": "integer", **types}, primary_key=["id"])
    rows = [[str(i + 1)] + [c.literal(kit, i) for c in COMMON] for i in range(3)]
    rows.append(["4"] + ["NULL"] * len(COMMON))
    kit.insert("types", ["id", *types], rows)

    kit.create_table("unicode", {"id": "integer", "s": "varchar(50)", "t": "text"}, primary_key=["id"])
    kit.insert("unicode", ["id", "s", "t"], [[str(i), f"'{u}'", f"'{u * 3}'"] for i, u in enumerate(UNICODE)])

    kit.create_table("empty", {"id": "integer", "amount": "decimal(12,2)", "name": "varchar(10)"}, primary_key=["id"])

    kit.create_table(ODD_TABLE, ODD_COLUMNS, primary_key=["select"])
    kit.insert(
        ODD_TABLE,
        list(ODD_COLUMNS),
        [["1", "'a'", "'b'", "2", "'c'", "'d'"], ["2", "NULL", "'it''s'", "NULL", "'\"'", "NULL"]],
    )
    kit.create_table("select", {"from": "integer", "Where": "varchar(10)"}, primary_key=["from"])
    kit.insert("select", ["from", "Where"], [["7", "'w'"]])

    kit.create_table("no_pk", {"id": "integer", "v": "varchar(10)"})
    kit.insert("no_pk", ["id", "v"], [["1", "'x'"], ["1", "'x'"], ["1", "'x'"], ["NULL", "NULL"], ["2", "'y'"]])

    project = Project(kit.write_project(tmp_path_factory.mktemp(f"contract_{kit.name}")))
    result = project.run()
    return Loaded(kit, project, result)


def test_every_table_loads(loaded: Loaded) -> None:
    by_table = {r.table: r for r in loaded.result.tables}
    expected = {"types": 4, "unicode": len(UNICODE), "empty": 0, ODD_TABLE: 2, "select": 1, "no_pk": 5}
    assert loaded.result.ok, [(r.table, r.error) for r in loaded.result.tables]
    assert {name: by_table[loaded.table(name)].rows for name in expected} == expected


def test_common_types_arrow_and_delta(loaded: Loaded) -> None:
    table = loaded.table("types")
    arrow = lake_rows(loaded.project, table).schema
    delta = delta_types(loaded.project, table)
    fmt = loaded.project.lake.FORMAT
    for case in COMMON:
        assert arrow.field(case.column).type == read_type(case.arrow, fmt), case.column
        assert delta[case.column] == delta_name(case.arrow, fmt), case.column


def test_common_types_values_through_deltalake(loaded: Loaded) -> None:
    data = lake_rows(loaded.project, loaded.table("types"))
    assert data.column("id").to_pylist() == [1, 2, 3, 4]
    for case in COMMON:
        assert data.column(case.column).to_pylist() == [*case.values, None], case.column


def test_common_types_values_through_duckdb(loaded: Loaded) -> None:
    cols = ", ".join(f'"{c.column}"' for c in COMMON)
    data = loaded.project.sql(f"SELECT id, {cols} FROM {loaded.table('types')} ORDER BY id")
    for case in COMMON:
        assert data.column(case.column).to_pylist() == [*case.values, None], case.column
    sums = loaded.project.sql(f"SELECT sum(c_dec_38_10) AS s, sum(c_int64) AS i FROM {loaded.table('types')}")
    assert sums.to_pylist() == [{"s": 0, "i": -1}]


def test_nulls_in_every_column(loaded: Loaded) -> None:
    data = lake_rows(loaded.project, loaded.table("types"))
    null_row = data.slice(3).to_pylist()[0]
    assert null_row.pop("id") == 4
    assert {k: v for k, v in null_row.items() if not k.startswith("_lf_")} == {c.column: None for c in COMMON}


def test_unicode_round_trips(loaded: Loaded) -> None:
    table = loaded.table("unicode")
    data = lake_rows(loaded.project, table)
    assert data.column("s").to_pylist() == UNICODE
    assert data.column("t").to_pylist() == [u * 3 for u in UNICODE]
    lengths = loaded.project.sql(f"SELECT length(s) AS n, octet_length(encode(s)) AS b FROM {table} ORDER BY id")
    assert lengths.to_pylist() == [{"n": len(u), "b": len(u.encode())} for u in UNICODE]


def test_empty_table_has_schema_and_no_rows(loaded: Loaded) -> None:
    table = loaded.table("empty")
    data = lake_rows(loaded.project, table)
    assert data.num_rows == 0
    assert data.schema.field("amount").type == pa.decimal128(12, 2)
    assert delta_types(loaded.project, table)["amount"] == delta_name(pa.decimal128(12, 2), loaded.project.lake.FORMAT)
    assert loaded.project.sql(f"SELECT count(*) AS n FROM {table}").to_pylist() == [{"n": 0}]


def test_odd_identifiers(loaded: Loaded) -> None:
    table = loaded.table(ODD_TABLE)
    assert table == "bronze.src_mixed_case_q_it_s"
    data = lake_rows(loaded.project, table, order="select")
    names = [n for n in data.column_names if n not in ("_lf_source", "_lf_extracted_at", "_lf_run_id")]
    assert names == ["select", "mixed_case", "it_s_quoted", "order", "group_by", "lf_source"]
    assert data.select(names).to_pylist() == [
        {"select": 1, "mixed_case": "a", "it_s_quoted": "b", "order": 2, "group_by": "c", "lf_source": "d"},
        {"select": 2, "mixed_case": None, "it_s_quoted": "it's", "order": None, "group_by": '"', "lf_source": None},
    ]
    assert set(data.column("_lf_source").to_pylist()) == {"src"}
    reserved = loaded.project.sql('SELECT "from", "where" FROM bronze.src_select')
    assert reserved.to_pylist() == [{"from": 7, "where": "w"}]


def test_table_without_primary_key_keeps_duplicates(loaded: Loaded) -> None:
    table = loaded.table("no_pk")
    rows = loaded.project.sql(f"SELECT id, v, count(*) AS n FROM {table} GROUP BY ALL ORDER BY id NULLS LAST")
    assert rows.to_pylist() == [
        {"id": 1, "v": "x", "n": 3},
        {"id": 2, "v": "y", "n": 1},
        {"id": None, "v": None, "n": 1},
    ]


def test_cli_run_with_json_output(loaded: Loaded, tmp_path: Path) -> None:
    """The same source loaded by the ``lakeforge`` command gives the same rows as ``Project.run``."""
    project_dir = loaded.kit.write_project(tmp_path / "cli")
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "lakeforge"),
            "run",
            "--project",
            str(project_dir),
            "--output",
            "json",
            "--select",
            "src_types",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "success"
    assert [(t["table"], t["status"], t["rows"]) for t in report["tables"]] == [("bronze.src_types", "success", 4)]
    cli_rows = lake_rows(Project(project_dir), "bronze.src_types").drop_columns(["_lf_extracted_at", "_lf_run_id"])
    api_rows = lake_rows(loaded.project, "bronze.src_types").drop_columns(["_lf_extracted_at", "_lf_run_id"])
    assert cli_rows.equals(api_rows)
