"""Commit intervals encoded into staged files while they are read (load/interval_files.py), on a local Delta lake."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from lakeforge.load import interval_files
from lakeforge.project import Project


def _project(root: Path, *, mode: str = "append", commit_bytes: int = 400_000, bad: float = 1.0) -> Project:
    (root / "lakeforge.yml").write_text(
        "sources:\n  drops:\n    type: files\n    path: drops\n    format: csv\n    block_bytes: 60000\n"
        f'    schema: {{amount: "decimal(12,2)"}}\n    defaults: {{mode: {mode}, max_bad_fraction: {bad}}}\n'
        f"lake: {{path: lh}}\nrun: {{commit_bytes: {commit_bytes}}}\n"
    )
    return Project(root)


def _write(folder: Path, name: str, first: int, count: int, *, extra: bool = False) -> None:
    folder.mkdir(exist_ok=True)
    head = "id,amount" + (",note" if extra else "")
    lines = [f"{i},{i}.{i % 100:02d}" + (f",n{i}" if extra else "") for i in range(first, first + count)]
    (folder / name).write_text(head + "\n" + "\n".join(lines) + "\n")


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What each interval's ``Staged.files`` gave the commit: (files, rows) or None (written the usual way)."""
    seen: list[Any] = []
    real = interval_files.Staged.files

    def files(self: interval_files.Staged, schema: Any) -> Any:
        result = real(self, schema)
        seen.append(None if result is None else (len(result[0]), result[1]))
        return result

    monkeypatch.setattr(interval_files.Staged, "files", files)
    return seen


def _on_disk(project: Project) -> set[str]:
    folder = Path(project.lake.uri("bronze.drops"))
    return {str(p.relative_to(folder)) for p in folder.rglob("*.parquet")}


def test_intervals_commit_files_written_while_reading_with_stats_and_position(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _spy(monkeypatch)
    _write(tmp_path / "drops", "a.csv", 1, 40_000)
    project = _project(tmp_path)
    result = project.run()
    assert result.ok and result.tables[0].rows == 40_000
    staged = [s for s in seen if s is not None]
    assert len(staged) >= 2 and sum(rows for _, rows in staged) == 40_000  # every row went through staged files
    table = project.lake.read("bronze.drops")
    assert sorted(table.column("id").to_pylist()) == list(range(1, 40_001))
    assert str(table.schema.field("amount").type) == "decimal128(12, 2)"
    assert sum(table.column("amount").to_pylist()) == sum(
        __import__("decimal").Decimal(f"{i}.{i % 100:02d}") for i in range(1, 40_001)
    )
    delta = DeltaTable(project.lake.uri("bronze.drops"))
    adds = delta.get_add_actions(flatten=True)
    adds = pa.table(adds).to_pylist()
    assert sum(a["num_records"] for a in adds) == 40_000
    assert min(a["min.id"] for a in adds) == 1 and max(a["max.id"] for a in adds) == 40_000  # footer statistics
    assert {Path(a["path"]).name for a in adds} == _on_disk(project)  # no file left outside the table
    assert set(project.lake.checkpoint("bronze.drops").position["files"]) == {"a.csv"}  # type: ignore[union-attr]


def test_a_column_met_mid_interval_falls_back_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _spy(monkeypatch)
    _write(tmp_path / "drops", "a.csv", 1, 5_000)
    _write(tmp_path / "drops", "b.csv", 5_001, 5_000, extra=True)  # same interval (commit_bytes is large)
    project = _project(tmp_path, commit_bytes=50_000_000)
    result = project.run()
    assert result.ok and result.tables[0].rows == 10_000
    assert seen == [None]  # the staged files were written with the first file's columns: deleted, rows rewritten
    rows = {r["id"]: r["note"] for r in project.lake.read("bronze.drops").to_pylist()}
    assert len(rows) == 10_000 and rows[1] is None and rows[5_001] == "n5001"
    adds = DeltaTable(project.lake.uri("bronze.drops")).get_add_actions(flatten=True)
    adds = pa.table(adds).to_pylist()
    assert {Path(a["path"]).name for a in adds} == _on_disk(project)


def test_a_failed_read_deletes_the_open_intervals_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lakeforge.load import staged

    monkeypatch.setattr(staged, "ROW_GROUP_BYTES", 20_000)  # files are on disk while the interval is read
    monkeypatch.setattr(staged, "FILE_BYTES", 40_000)
    written: list[str] = []
    real_abort = staged.StagedWriter.abort

    def abort(self: staged.StagedWriter) -> None:
        written.extend(p for e in self.encoders for p in e.paths)
        real_abort(self)

    monkeypatch.setattr(staged.StagedWriter, "abort", abort)
    drops = tmp_path / "drops"
    _write(drops, "a.csv", 1, 20_000)
    (drops / "b.csv").write_text("id,amount\n" + "".join(f"{i},bad\n" for i in range(60_000)))
    project = _project(tmp_path, commit_bytes=50_000_000, bad=0.5)
    result = project.run()
    assert result.tables[0].status == "failed" and "are malformed" in (result.tables[0].error or "")
    assert written  # staged files were written before the failure ...
    assert not project.lake.exists("bronze.drops")
    assert not list((tmp_path / "lh" / "bronze").rglob("*.parquet"))  # ... and deleted with it


def test_full_mode_replaces_over_several_intervals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _spy(monkeypatch)
    _write(tmp_path / "drops", "a.csv", 1, 30_000)
    project = _project(tmp_path, mode="full")
    assert project.run().tables[0].rows == 30_000
    _write(tmp_path / "drops", "a.csv", 100_001, 20_000)
    again = Project(tmp_path)
    assert again.run().tables[0].rows == 20_000
    ids = sorted(again.lake.read("bronze.drops").column("id").to_pylist())
    assert ids == list(range(100_001, 120_001))  # the first commit replaced the table, later ones appended
    assert sum(s[1] for s in seen if s is not None) == 50_000


def test_load_constants_are_written_as_dictionaries_and_read_back_as_strings(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from lakeforge.load.staged import ARROW_SCHEMA

    _write(tmp_path / "drops", "a.csv", 1, 30_000)
    project = _project(tmp_path)
    assert project.run().tables[0].rows == 30_000
    table = project.lake.read("bronze.drops")
    parts = sorted((tmp_path / "lh" / "bronze" / "drops").glob("part-lf-*.parquet"))
    assert parts
    for part in parts:
        file = pq.ParquetFile(part)
        # the footer names the table's types (string), as pyarrow writes them for the table's schema
        reference = tmp_path / "reference.parquet"
        pq.write_table(table.slice(0, 1), reference)
        assert (
            file.metadata.metadata[ARROW_SCHEMA.encode()]
            == pq.ParquetFile(reference).metadata.metadata[ARROW_SCHEMA.encode()]
        )
        assert str(file.schema_arrow.field("_lf_run_id").type) == "string"
        group = file.metadata.row_group(0)
        columns = {group.column(i).path_in_schema: group.column(i) for i in range(group.num_columns)}
        assert "RLE_DICTIONARY" in columns["_lf_source"].encodings
        assert columns["_lf_source"].statistics.min == columns["_lf_source"].statistics.max == "drops"
    assert set(table.column("_lf_source").to_pylist()) == {"drops"}
    assert table.schema.field("_lf_run_id").type == pa.string()
    assert len(set(table.column("_lf_run_id").to_pylist())) == 1
    duck = (
        __import__("duckdb")
        .sql(f"select _lf_source, count(*) from read_parquet('{parts[0].parent}/part-lf-*.parquet') group by 1")
        .fetchall()
    )
    assert duck == [("drops", 30_000)]
