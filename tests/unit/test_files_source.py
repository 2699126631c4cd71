"""``type: files`` on a local folder: CSV/JSON/Parquet, compression, exact types, new files only, quarantine."""

from __future__ import annotations

import datetime as dt
import decimal
import gzip
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from lakeforge.project import Project

D = decimal.Decimal


def _project(root: Path, source: str, run: str = "") -> Project:
    root.mkdir(parents=True, exist_ok=True)
    (root / "lakeforge.yml").write_text(f"sources:\n  drops:\n{source}lake: {{path: lh}}\n{run}")
    return Project(root)


def _rows(project: Project, table: str = "bronze.drops") -> list[dict[str, Any]]:
    return sorted(project.lake.read(table).to_pylist(), key=lambda r: (r["_lf_file"], r["_lf_row"]))


CSV_SOURCE = """    type: files
    path: drops
    pattern: "*.csv*"
    recursive: true
    format: csv
    schema: {amount: "decimal(12,2)", at: timestamp}
"""


def test_csv_types_compression_and_only_new_files(tmp_path: Path) -> None:
    drops = tmp_path / "drops"
    (drops / "2024").mkdir(parents=True)
    (drops / "a.csv").write_text("id,name,amount,at\n1,Ann,10.50,2024-01-01T10:00:00Z\n2,NULL,,2024-01-02 00:00:00\n")
    (drops / "2024" / "b.csv.gz").write_bytes(gzip.compress(b'id,name,amount,at\n3,"B, quoted",0.07,\n'))
    (drops / "c.csv.zst").write_bytes(zstandard.ZstdCompressor().compress(b"id,name,amount,at\n4,Zed,-3,\n"))
    (drops / "ignored.txt").write_text("not,a,match\n")
    project = _project(tmp_path, CSV_SOURCE)
    first = project.run()
    assert [(t.table, t.mode, t.status, t.rows) for t in first.tables] == [("bronze.drops", "append", "success", 4)]
    table = project.lake.read("bronze.drops")
    assert table.schema.names == [
        "id",
        "name",
        "amount",
        "at",
        "_lf_file",
        "_lf_row",
        "_lf_source",
        "_lf_extracted_at",
        "_lf_run_id",
    ]
    types = {f.name: f.type for f in table.schema}
    assert types["id"] == pa.int64() and types["name"] == pa.string()
    assert types["amount"] == pa.decimal128(12, 2) and types["at"] == pa.timestamp("us", tz="UTC")
    assert types["_lf_file"] == pa.string() and types["_lf_row"] == pa.int64()
    got = [(r["_lf_file"], r["_lf_row"], r["id"], r["name"], r["amount"], r["at"]) for r in _rows(project)]
    utc = dt.UTC
    assert got == [
        ("2024/b.csv.gz", 1, 3, "B, quoted", D("0.07"), None),
        ("a.csv", 1, 1, "Ann", D("10.50"), dt.datetime(2024, 1, 1, 10, tzinfo=utc)),
        ("a.csv", 2, 2, "NULL", None, dt.datetime(2024, 1, 2, tzinfo=utc)),  # "NULL" is text unless listed
        ("c.csv.zst", 1, 4, "Zed", D("-3.00"), None),
    ]
    assert project.run().tables[0].status == "unchanged"

    (drops / "d.csv").write_text("id,name,amount,at\n5,New,1.25,\n")
    second = project.run()
    assert [(t.status, t.rows) for t in second.tables] == [("success", 1)]
    (drops / "a.csv").write_text("id,name,amount,at\n1,Ann,11.00,\n")  # rewritten in place: read again, once
    third = project.run()
    assert [(t.status, t.rows) for t in third.tables] == [("success", 1)]
    assert project.run().tables[0].status == "unchanged"
    rows = _rows(project)
    assert sorted(r["id"] for r in rows) == [1, 1, 2, 3, 4, 5]
    position = project.lake.checkpoint("bronze.drops").position  # type: ignore[union-attr]
    assert sorted(position["files"]) == ["2024/b.csv.gz", "a.csv", "c.csv.zst", "d.csv"]
    assert position["files"]["a.csv"]["size"] == (drops / "a.csv").stat().st_size


def test_null_values_encoding_and_no_header(tmp_path: Path) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()
    (drops / "x.csv").write_bytes("1;Zoë;NULL\n2;;N/A\n".encode("latin-1"))
    source = """    type: files
    path: drops
    format: csv
    csv: {header: false, columns: [id, name, note], delimiter: ";", encoding: latin-1, null_values: ["NULL", "N/A"]}
"""
    project = _project(tmp_path, source)
    assert project.run().ok
    assert [(r["id"], r["name"], r["note"]) for r in _rows(project)] == [(1, "Zoë", None), (2, "", None)]


def test_malformed_csv_rows_are_quarantined_with_file_line_and_reason(tmp_path: Path) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()
    body = (
        b"id,name,amount,at\n"
        b"1,ok,1.00,\n"
        b'2,"two\nlines",2.00,\n'
        b"3,too,many,fields,here\n"
        b"4,bad amount,12.345,\n"
        b"5,bad \xff utf8,5.00,\n"
        b"\n"
        b"6,bad date,6.00,yesterday\n"
        b"7,last,7.00,\n"
    )
    (drops / "m.csv").write_bytes(body)
    project = _project(tmp_path, CSV_SOURCE)
    result = project.run()
    assert result.ok and result.tables[0].rows == 3
    assert "4 bad record(s) quarantined in quarantine.drops" in (result.tables[0].reason or "")
    assert [(r["id"], r["name"], r["_lf_row"]) for r in _rows(project)] == [
        (1, "ok", 1),
        (2, "two\nlines", 2),
        (7, "last", 8),
    ]
    bad = sorted(project.quarantine(), key=lambda r: r["line"])
    assert [(r["file"], r["line"], r["offset"], r["reason"], r["raw"]) for r in bad] == [
        ("m.csv", 5, 3, "expected 4 fields, found 5", "3,too,many,fields,here"),
        ("m.csv", 6, 4, "column amount: '12.345' is not a valid decimal(12,2)", "4,bad amount,12.345,"),
        ("m.csv", 7, 5, "column name: not valid utf-8", "5,bad \\xff utf8,5.00,"),
        ("m.csv", 9, 7, "column at: 'yesterday' is not a valid timestamp", "6,bad date,6.00,yesterday"),
    ]
    assert {r["run_id"] for r in bad} == {result.run_id}


def test_max_bad_fraction_fails_the_table(tmp_path: Path) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()
    (drops / "m.csv").write_text("id,amount\n1,1.00\n2,x\n3,y\n")
    source = '    type: files\n    path: drops\n    format: csv\n    schema: {amount: "decimal(5,2)"}\n'
    project = _project(tmp_path, source + "    defaults: {max_bad_fraction: 0.5}\n")
    result = project.run()
    assert result.tables[0].status == "failed" and "2 of 3 records (66.7%) are malformed" in (
        result.tables[0].error or ""
    )
    assert not project.lake.exists("bronze.drops") and not project.lake.exists("quarantine.drops")


def test_json_lines_arrays_nested_and_broken_lines(tmp_path: Path) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()
    lines = [
        {"id": 1, "amount": 1.5, "customer": {"name": "Ann", "tier": 2}},
        {"id": 2, "amount": 2, "customer": {"name": "Bob", "tier": None}},
    ]
    text = "\n".join(json.dumps(x) for x in lines) + '\n{"id": 3, "amount": \n[1, 2]\n\n{"id": 4, "amount": 4.25}\n'
    (drops / "a.jsonl").write_text(text)
    (drops / "b.json").write_text(json.dumps([{"id": 5, "amount": "5.10", "customer": {"name": "Cy", "tier": 1}}, 7]))
    source = '    type: files\n    path: drops\n    format: json\n    schema: {amount: "decimal(8,2)"}\n'
    project = _project(tmp_path, source + "    json: {nested: flatten}\n")
    result = project.run()
    assert result.ok and result.tables[0].rows == 4
    table = project.lake.read("bronze.drops")
    assert table.schema.field("amount").type == pa.decimal128(8, 2)
    assert table.schema.field("customer_name").type == pa.string()
    assert table.schema.field("customer_tier").type == pa.int64()
    got = [
        (r["_lf_file"], r["_lf_row"], r["id"], r["amount"], r["customer_name"], r["customer_tier"])
        for r in _rows(project)
    ]
    assert got == [
        ("a.jsonl", 1, 1, D("1.50"), "Ann", 2),
        ("a.jsonl", 2, 2, D("2.00"), "Bob", None),
        ("a.jsonl", 6, 4, D("4.25"), None, None),
        ("b.json", 1, 5, D("5.10"), "Cy", 1),
    ]
    bad = sorted((r["file"], r["line"], r["offset"], r["reason"], r["raw"]) for r in project.quarantine())
    assert bad == [
        ("a.jsonl", 3, 3, "invalid JSON: Expecting value at column 21", '{"id": 3, "amount": '),
        ("a.jsonl", 4, 4, "a JSON list is not a record (an object)", "[1, 2]"),
        ("b.json", 1, 2, "a JSON int is not a record (an object)", "7"),  # a one-line array: line 1
    ]


def test_json_nested_as_structs_and_parquet(tmp_path: Path) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()
    (drops / "a.jsonl").write_text('{"id": 1, "c": {"n": "Ann"}}\n')
    project = _project(tmp_path, "    type: files\n    path: drops\n    format: json\n")
    assert project.run().ok
    table = project.lake.read("bronze.drops")
    assert table.schema.field("c").type == pa.struct([("n", pa.string())])
    assert table.column("c").to_pylist() == [{"n": "Ann"}]

    pdir = tmp_path / "p" / "drops"
    pdir.mkdir(parents=True)
    data = pa.table(
        {
            "k": pa.array([1, 2, 3], pa.int32()),
            "v": pa.array([D("1.10"), None, D("3.30")], pa.decimal128(5, 2)),
            "ts": pa.array([dt.datetime(2024, 1, 1, tzinfo=dt.UTC)] * 3, pa.timestamp("us", tz="UTC")),
        }
    )
    pq.write_table(data, pdir / "part-0.parquet", row_group_size=2)
    pproject = _project(tmp_path / "p", "    type: files\n    path: drops\n    format: parquet\n")
    assert pproject.run().tables[0].rows == 3
    got = pproject.lake.read("bronze.drops")
    assert got.schema.field("k").type == pa.int32() and got.schema.field("v").type == pa.decimal128(5, 2)
    assert got.select(["k", "v", "ts", "_lf_row"]).to_pylist()[1] == {
        "k": 2,
        "v": None,
        "ts": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        "_lf_row": 2,
    }


def test_large_file_commits_in_intervals_and_resumes_mid_file(tmp_path: Path) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()
    (drops / "big.csv").write_text("id,v\n" + "".join(f"{i},{i * 2}\n" for i in range(1, 200_001)))
    source = "    type: files\n    path: drops\n    format: csv\n    block_bytes: 200000\n"
    project = _project(tmp_path, source, run="run: {commit_bytes: 1000000}\n")
    result = project.run()
    assert result.ok and result.tables[0].rows == 200_000
    assert project.lake.version("bronze.drops") >= 2  # several commits for one file
    table = project.lake.read("bronze.drops")
    assert sorted(zip(table.column("_lf_row").to_pylist(), table.column("id").to_pylist(), strict=True)) == [
        (i, i) for i in range(1, 200_001)
    ]  # pieces parsed at the same time, each record once with its own number
    parts = list((tmp_path / "lh" / "bronze" / "drops").glob("*.parquet"))
    assert len(parts) >= 2
    # each interval's rows are encoded by the staged writers and committed as files (load/staged.py)
    assert all(p.name.startswith("part-lf-") for p in parts), [p.name for p in parts]
    for part in parts:
        meta = pq.ParquetFile(part).metadata.row_group(0)
        columns = {meta.column(i).path_in_schema: meta.column(i) for i in range(meta.num_columns)}
        assert {c.compression for c in columns.values()} == {"SNAPPY"}
        assert "DELTA_BINARY_PACKED" in columns["_lf_row"].encodings  # record numbers: delta-encoded
    assert project.lake.checkpoint("bronze.drops").position == {  # type: ignore[union-attr]
        "files": {
            "big.csv": {"size": (drops / "big.csv").stat().st_size, "mtime_ns": (drops / "big.csv").stat().st_mtime_ns}
        }
    }


def test_bad_options_name_the_key(tmp_path: Path) -> None:
    from lakeforge.errors import ConfigError

    project = _project(tmp_path, "    type: files\n    path: drops\n    format: xml\n")
    with pytest.raises(
        ConfigError, match=r"sources.drops.format: 'xml' is not valid; valid choices: 'csv', 'json' or 'parquet'"
    ):
        _ = project.config
    missing = _project(tmp_path / "m", "    type: files\n    path: nowhere\n    format: csv\n")
    result = missing.run()
    assert result.tables[0].status == "failed" and "is not a folder" in (result.tables[0].error or "")


def test_full_mode_replaces_and_incremental_merges_by_key(tmp_path: Path) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()
    (drops / "a.csv").write_text("id,v,at\n1,a,2024-01-01T00:00:00Z\n2,b,2024-01-01T00:00:00Z\n")
    base = "    type: files\n    path: drops\n    format: csv\n"
    full = _project(tmp_path, base + "    defaults: {mode: full}\n")
    assert [(t.mode, t.rows) for t in full.run().tables] == [("full", 2)]
    (drops / "b.csv").write_text("id,v,at\n3,c,2024-01-02T00:00:00Z\n")
    assert [(t.mode, t.rows) for t in full.run().tables] == [("full", 3)]
    assert sorted(r["id"] for r in full.lake.read("bronze.drops").to_pylist()) == [1, 2, 3]  # replaced, not 1,2,1,2,3

    inc_dir = tmp_path / "inc"
    (inc_dir / "drops").mkdir(parents=True)
    (inc_dir / "drops" / "a.csv").write_text("id,v,at\n1,a,2024-01-01T00:00:00Z\n2,b,2024-01-01T00:00:00Z\n")
    options = "    tables: {drops: {mode: incremental, merge_key: id, cursor: at}}\n"
    inc = _project(inc_dir, base + options)
    assert [(t.mode, t.rows) for t in inc.run().tables] == [("incremental", 2)]
    # a corrected export: row 2 changed and newer, row 1 resent unchanged with an old cursor (filtered out)
    (inc_dir / "drops" / "b.csv").write_text("id,v,at\n1,a,2024-01-01T00:00:00Z\n2,B,2024-01-03T00:00:00Z\n")
    assert [(t.mode, t.rows) for t in inc.run().tables] == [("incremental", 1)]
    got = sorted((r["id"], r["v"]) for r in inc.lake.read("bronze.drops").to_pylist())
    assert got == [(1, "a"), (2, "B")]


def test_nested_secrets_are_scrubbed(tmp_path: Path) -> None:
    from lakeforge.sources import create_source

    source = "    type: files\n    path: s3://b/p/\n    format: csv\n"
    project = _project(tmp_path, source + "    storage: {access_key_id: AKIAKEY, secret_access_key: 'S3cr3t/+x'}\n")
    files = create_source("drops", project.config.sources["drops"])
    assert files.scrub("denied for S3cr3t/+x (S3cr3t%2F%2Bx)") == "denied for *** (***)"
    assert "S3cr3t" not in repr(project.config)
