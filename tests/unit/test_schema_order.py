"""Column order in the lake: source columns first, ``_lf_*`` metadata last, and no rewrite unless a column is added."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from lakeforge.lake.schema import evolve
from lakeforge.project import Project


def _names(schema: pa.Schema) -> list[str]:
    return list(schema.names)


def test_new_table_puts_metadata_last() -> None:
    source = pa.schema([("a", pa.int64()), ("_lf_file", pa.string()), ("b", pa.string()), ("_lf_run_id", pa.string())])
    evolution = evolve("t", None, source)
    assert _names(evolution.schema) == ["a", "b", "_lf_file", "_lf_run_id"]
    assert not evolution.rewrite


def test_existing_metadata_in_the_middle_is_not_rewritten_every_run() -> None:
    lake = pa.schema([("a", pa.int64()), ("_lf_file", pa.string()), ("b", pa.string())])
    evolution = evolve("t", lake, lake)
    assert _names(evolution.schema) == ["a", "b", "_lf_file"]
    assert not evolution.reordered and not evolution.rewrite


def test_added_column_goes_before_metadata_with_one_rewrite() -> None:
    lake = pa.schema([("a", pa.int64()), ("_lf_file", pa.string())])
    source = pa.schema([("a", pa.int64()), ("_lf_file", pa.string()), ("c", pa.float64())])
    evolution = evolve("t", lake, source)
    assert _names(evolution.schema) == ["a", "c", "_lf_file"]
    assert evolution.added == ["c"] and evolution.reordered and evolution.rewrite


def test_files_table_meeting_a_column_in_a_later_file_is_not_rewritten_on_later_runs(tmp_path: Path) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()
    (drops / "a.csv").write_text("id,name\n1,Ann\n")
    (drops / "b.csv").write_text("id,name,extra\n2,Bob,x\n")
    (tmp_path / "lakeforge.yml").write_text(
        "sources:\n  drops: {type: files, path: drops, pattern: '*.csv', format: csv}\nlake: {path: lh}\n"
    )
    project = Project(tmp_path)
    first = project.run()
    assert first.tables[0].rows == 2
    table = project.lake.read("bronze.drops")
    assert table.schema.names[:3] == ["id", "name", "extra"]
    assert all(n.startswith("_lf_") for n in table.schema.names[3:])
    (drops / "c.csv").write_text("id,name,extra\n3,Cy,y\n")
    second = Project(tmp_path).run()
    assert second.tables[0].rows == 1
    assert second.tables[0].reason is None  # before the fix: "...the table was rewritten once in one commit"
    rows = sorted(Project(tmp_path).lake.read("bronze.drops").to_pylist(), key=lambda r: r["id"])
    assert [(r["id"], r["name"], r["extra"]) for r in rows] == [(1, "Ann", None), (2, "Bob", "x"), (3, "Cy", "y")]
