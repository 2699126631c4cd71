"""The general source seam: a record source defined here, registered by dotted path, loaded on Delta and
Iceberg with its position committed with the data, bad records quarantined, the cursor filtered in Arrow."""

from __future__ import annotations

import decimal
import json
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pyarrow as pa
import pytest
from click.testing import CliRunner

from lakeforge.cli.main import main
from lakeforge.config.models import SourceBase
from lakeforge.errors import ConfigError
from lakeforge.project import Project
from lakeforge.sources import config_class, source_class
from lakeforge.sources.base import TablePlan
from lakeforge.sources.records import BadRecord, Chunk, ReadRequest, RecordSource, RecordSourceConfig
from tests.conftest import write_project

SOURCE_TYPE = "tests.unit.test_record_seam:CountingSource"


class CountingConfig(RecordSourceConfig):
    upto: int
    """Records 1..upto exist."""
    bad_every: int = 0
    """Every n-th record is malformed (0: none)."""
    batch: int = 4
    replay: bool = False
    """Ignore the position and send everything again (a source without positions: the cursor filters)."""


class CountingSource(RecordSource):
    """Records ``{id, label, amount}``; the position is the next id to send."""

    type_name: ClassVar[str] = "counting"
    CONFIG: ClassVar[type[SourceBase]] = CountingConfig
    config: CountingConfig

    def read(self, plan: TablePlan, request: ReadRequest) -> Iterator[Chunk]:
        first = 1 if self.config.replay else int(request.position.get("next", 1))
        for start in range(first, self.config.upto + 1, self.config.batch):
            ids = list(range(start, min(start + self.config.batch, self.config.upto + 1)))
            good = [i for i in ids if not (self.config.bad_every and i % self.config.bad_every == 0)]
            bad = [
                BadRecord(f"id {i} is cursed", f'{{"id": {i}}}', partition="p0", offset=i) for i in ids if i not in good
            ]
            batch = pa.record_batch(
                {
                    "id": pa.array(good, pa.int64()),
                    "label": pa.array([f"n{i}" if i % 3 else None for i in good], pa.string()),
                    "amount": pa.array([str(decimal.Decimal(i) / 100) for i in good], pa.string()),
                }
            )
            yield Chunk(batch, bad, {"next": ids[-1] + 1})
        if first > self.config.upto:
            yield Chunk(position={"next": first})


def _project(path: Path, upto: int, extra: str = "", top: str = "") -> Project:
    """``extra``: more lines of the source (indented 4 spaces); ``top``: more top-level sections."""
    body = (
        f"sources:\n  counts:\n    type: {SOURCE_TYPE}\n    upto: {upto}\n"
        f'    schema: {{amount: "decimal(12,2)"}}\n{extra}lake: {{path: lh}}\n{top}'
    )
    path.mkdir(parents=True, exist_ok=True)
    (path / "lakeforge.yml").write_text(body, encoding="utf-8")
    return Project(path)


def test_registry_resolves_a_dotted_path_with_its_own_config(tmp_path: Path) -> None:
    assert source_class(SOURCE_TYPE) is CountingSource
    assert config_class(SOURCE_TYPE) is CountingConfig
    assert source_class("postgres").SUPPORTS_SQL_PUSHDOWN and source_class("postgres").SUPPORTS_CDC
    assert not CountingSource.SUPPORTS_SQL_PUSHDOWN and not CountingSource.SUPPORTS_STREAM
    config = _project(tmp_path, 3).config.sources["counts"]
    assert isinstance(config, CountingConfig) and config.upto == 3 and config.defaults.mode == "append"
    assert config.column_types == {"amount": "decimal(12,2)"}


def test_config_errors_name_the_file_key_and_choices(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        _ = _project(tmp_path / "a", 3, "    uptoo: 4\n").config
    message = str(caught.value)
    assert "lakeforge.yml" in message and "sources.counts.uptoo: unknown key (did you mean 'upto'?)" in message
    assert "bad_every" in message
    write_project(tmp_path / "b", "sources:\n  x: {type: kafkaa}\n")
    with pytest.raises(ConfigError) as caught:
        _ = Project(tmp_path / "b").config
    message = str(caught.value)
    assert "sources.x.type: 'kafkaa' is not a valid source type" in message
    assert "'postgres'" in message and "'mysql'" in message and "dotted path" in message
    write_project(tmp_path / "c", "sources:\n  x: {type: nowhere.mod:Thing}\n")
    with pytest.raises(ConfigError, match=r"sources.x.type: source type 'nowhere.mod:Thing' cannot be loaded"):
        _ = Project(tmp_path / "c").config
    write_project(tmp_path / "d", f"sources:\n  x: {{type: {SOURCE_TYPE}, upto: 1, schema: {{a: 'decimal(99,2)'}}}}\n")
    with pytest.raises(ConfigError, match=r"schema.a: 'decimal\(99,2\)'"):
        _ = Project(tmp_path / "d").config
    write_project(tmp_path / "e", f"sources:\n  x: {{type: {SOURCE_TYPE}, upto: 1, schema: {{a: money}}}}\n")
    with pytest.raises(ConfigError, match=r"'money' is not a type; valid types: string.*decimal\(p,s\)"):
        _ = Project(tmp_path / "e").config


def test_positions_commit_with_the_data_and_the_next_run_reads_only_new(tmp_path: Path, lake_format: str) -> None:
    project = _project(tmp_path, 10)
    first = project.run()
    assert first.ok, first.tables
    assert [(t.table, t.mode, t.status, t.rows) for t in first.tables] == [("bronze.counts", "append", "success", 10)]
    table = project.lake.read("bronze.counts")
    assert table.schema.field("id").type == pa.int64()
    assert table.schema.field("amount").type == pa.decimal128(12, 2)
    assert table.schema.names == ["id", "label", "amount", "_lf_source", "_lf_extracted_at", "_lf_run_id"]
    rows = sorted(table.to_pylist(), key=lambda r: r["id"])
    assert [r["id"] for r in rows] == list(range(1, 11))
    assert rows[2]["label"] is None and rows[3]["label"] == "n4"
    assert rows[6]["amount"] == decimal.Decimal("0.07")
    assert project.lake.checkpoint("bronze.counts").position == {"next": 11}  # type: ignore[union-attr]

    again = _project(tmp_path, 10).run()
    assert [(t.status, t.rows) for t in again.tables] == [("unchanged", 0)]
    more = _project(tmp_path, 13).run()
    assert [(t.status, t.rows) for t in more.tables] == [("success", 3)]
    ids = sorted(r["id"] for r in project.lake.read("bronze.counts").to_pylist())
    assert ids == list(range(1, 14))
    assert project.lake.checkpoint("bronze.counts").position == {"next": 14}  # type: ignore[union-attr]


def test_bad_records_are_quarantined_with_the_run_and_listed(tmp_path: Path, lake_format: str) -> None:
    project = _project(tmp_path, 12, "    bad_every: 5\n")
    result = project.run()
    assert result.ok and result.tables[0].rows == 10
    assert "2 bad record(s) quarantined in quarantine.counts" in (result.tables[0].reason or "")
    bad = project.quarantine()
    assert sorted((r["offset"], r["partition"], r["reason"], r["raw"]) for r in bad) == [
        (5, "p0", "id 5 is cursed", '{"id": 5}'),
        (10, "p0", "id 10 is cursed", '{"id": 10}'),
    ]
    assert {r["run_id"] for r in bad} == {result.run_id} and {r["source"] for r in bad} == {"counts"}
    assert all(r["file"] is None and r["line"] is None for r in bad)
    cli = CliRunner().invoke(main, ["quarantine", "--project", str(tmp_path), "--output", "json"])
    assert cli.exit_code == 0, cli.output
    listed = json.loads(cli.output)
    assert sorted(r["offset"] for r in listed) == [5, 10] and listed[0]["quarantine_table"] == "quarantine.counts"
    rerun = _project(tmp_path, 12, "    bad_every: 5\n").run()
    assert rerun.tables[0].status == "unchanged" and len(project.quarantine()) == 2


def test_max_bad_fraction_fails_the_table_and_commits_nothing(tmp_path: Path) -> None:
    project = _project(tmp_path, 12, "    bad_every: 3\n    defaults: {max_bad_fraction: 0.2}\n")
    result = project.run()
    assert not result.ok
    failed = result.tables[0]
    assert failed.status == "failed" and "4 of 12 records (33.3%) are malformed" in (failed.error or "")
    assert "max_bad_fraction 0.2" in (failed.error or "")
    assert not project.lake.exists("bronze.counts") and not project.lake.exists("quarantine.counts")


def test_cursor_is_filtered_in_arrow_and_merged_by_key(tmp_path: Path, lake_format: str) -> None:
    extra = "    replay: true\n    tables: {counts: {mode: incremental, cursor: id, merge_key: id}}\n"
    project = _project(tmp_path, 6, extra)
    first = project.run()
    assert [(t.mode, t.status, t.rows) for t in first.tables] == [("incremental", "success", 6)]
    cp = project.lake.checkpoint("bronze.counts")
    assert cp is not None and cp.cursor == {"columns": ["id"], "values": [{"t": "int", "v": "6"}]}
    second = _project(tmp_path, 9, extra).run()
    assert [(t.status, t.rows) for t in second.tables] == [("success", 3)]  # 1..6 sent again, filtered out
    ids = sorted(r["id"] for r in project.lake.read("bronze.counts").to_pylist())
    assert ids == list(range(1, 10))


def test_commit_intervals_bound_memory_and_each_carries_its_position(tmp_path: Path) -> None:
    project = _project(tmp_path, 40, top="run: {commit_bytes: 1}\n")
    result = project.run()
    assert result.ok and result.tables[0].rows == 40
    assert project.lake.version("bronze.counts") == 9  # 10 intervals of 4 records: versions 0..9 (Delta)
    assert project.lake.checkpoint("bronze.counts").position == {"next": 41}  # type: ignore[union-attr]
    assert project.lake.checkpoint("bronze.counts").sequence == 10  # type: ignore[union-attr]


class TickingConfig(RecordSourceConfig):
    every: float = 0.02


class TickingSource(RecordSource):
    """An endless stream: 10 records every ``every`` seconds, each batch a safe point."""

    type_name: ClassVar[str] = "ticking"
    CONFIG: ClassVar[type[SourceBase]] = TickingConfig
    SUPPORTS_STREAM: ClassVar[bool] = True
    config: TickingConfig

    def read(self, plan: TablePlan, request: ReadRequest) -> Iterator[Chunk]:
        import time

        n = start = int(request.position.get("next", 0))
        while not request.stopped():
            yield Chunk(pa.record_batch({"n": pa.array(range(n, n + 10), pa.int64())}), [], {"next": n + 10})
            n += 10
            if not request.follow and n - start >= 30:
                return
            time.sleep(self.config.every)


@pytest.mark.slow
def test_follow_commits_every_n_records_until_stopped(tmp_path: Path) -> None:
    import threading
    import time

    (tmp_path / "lakeforge.yml").write_text(
        "sources:\n  ticks: {type: tests.unit.test_record_seam:TickingSource}\n"
        "lake: {path: lh}\nrun: {stream_commit_records: 25, stream_commit_seconds: 60}\n"
    )
    project = Project(tmp_path)
    stop = threading.Event()
    results = []
    runner = threading.Thread(target=lambda: results.append(project.run(follow=True, stop=stop)))
    runner.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (
        project.lake.exists("bronze.ticks") and project.lake.version("bronze.ticks") >= 3
    ):
        time.sleep(0.05)
    stop.set()
    runner.join(60)
    assert results and results[0].ok, results
    values = sorted(project.lake.read("bronze.ticks").column("n").to_pylist())
    assert values == list(range(len(values))) and len(values) >= 90  # every record once, in >= 4 commits
    assert project.lake.version("bronze.ticks") >= 3
    assert project.lake.checkpoint("bronze.ticks").position == {"next": len(values)}  # type: ignore[union-attr]
    # without --follow a stream reads what is there and stops: 30 more records, one commit
    again = Project(tmp_path).run()
    assert [(t.status, t.rows) for t in again.tables] == [("success", 30)]


def test_each_interval_commits_the_cursor_of_its_own_rows(tmp_path: Path) -> None:
    """An interval is written while the next is read (and the cursor moves on): each commit's cursor is the
    highest of the rows it holds, never of rows read after it (a crash there would skip them)."""
    from deltalake import DeltaTable

    from lakeforge.lake.checkpoint import METADATA_KEY, Checkpoint

    extra = "    tables: {counts: {mode: incremental, cursor: id, merge_key: id}}\n"
    project = _project(tmp_path, 120, extra, top="run: {commit_bytes: 1}\n")
    assert project.run().ok
    uri = str(tmp_path / "lh" / "bronze" / "counts")
    commits = [c for c in DeltaTable(uri).history() if c.get(METADATA_KEY)]
    assert len(commits) == 30  # 30 intervals of 4 records
    for commit in commits:
        cursor = Checkpoint.from_json(commit[METADATA_KEY]).cursor
        ids = DeltaTable(uri, version=commit["version"]).to_pyarrow_table(columns=["id"]).column("id").to_pylist()
        assert cursor == {"columns": ["id"], "values": [{"t": "int", "v": str(max(ids))}]}
