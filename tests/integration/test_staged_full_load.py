"""A full load written by several Parquet encoders and committed once (``load/staged.py``), on PostgreSQL.

The table equals its source value for value after a first load and after a reload; every committed file's
Delta statistics are true bounds of that file's rows; a load that fails mid-stream leaves the previous
version and no stray files.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from lakeforge import Project
from tests.conftest import PgDatabase, write_project

pytestmark = pytest.mark.integration
ROWS = 30_000
NAME = "bronze.src_t"
_TABLE = f"""
    CREATE TABLE t (id int PRIMARY KEY, amount numeric(12,2), at timestamptz, day date, status text, note text);
    INSERT INTO t SELECT g, CASE WHEN g % 7 = 0 THEN NULL ELSE (g * 37 % 100000) / 100.0 - 300 END,
      timestamptz '2024-01-01 00:00:00.000001+00' + g * interval '1.0005 second', date '2024-02-29' + g % 400,
      (ARRAY['new', 'paid', 'shipped'])[1 + g % 3], md5(g::text)
    FROM generate_series(1, {ROWS}) g;
"""


def _project(pg_db: PgDatabase, project_dir: Path, extra: str = "") -> Project:
    write_project(project_dir, f"""
        sources:
          src: {{type: postgres, url: "{pg_db.url}", tables: {{t: {{mode: full}}}}}}
        run: {{batch_size: 2000, retries: 0}}
        lake: {{path: ./lake{extra}}}
    """)
    return Project(project_dir)


def _log_adds(project: Project) -> list[dict[str, Any]]:
    log = Path(project.lake.uri(NAME)) / "_delta_log"
    newest = sorted(log.glob("*.json"))[-1]
    return [json.loads(line)["add"] for line in newest.read_text().splitlines() if '"add"' in line]


def _check_against_source(project: Project, pg_db: PgDatabase) -> pa.Table:
    data = project.lake.read(NAME)
    count, total, nulls, ids, days = pg_db.execute(
        "SELECT count(*), sum(amount), count(*) - count(amount), sum(id), sum(day - date '2000-01-01') FROM t"
    )[0]
    assert data.num_rows == count
    assert data.schema.field("amount").type == pa.decimal128(12, 2)
    assert data.schema.field("at").type == pa.timestamp("us", tz="UTC")
    assert pc.sum(data.column("amount")).as_py() == total
    assert data.column("amount").null_count == nulls
    assert pc.sum(data.column("id")).as_py() == ids
    assert len(set(data.column("id").to_pylist())) == count
    first_at, last_at = pg_db.execute("SELECT min(at), max(at) FROM t")[0]
    at = list(pc.min_max(data.column("at")).values())
    assert (at[0].as_py(), at[1].as_py()) == (first_at, last_at)  # microseconds kept (.000501, ...)
    return data


def test_full_load_through_encoders_equals_source_with_true_stats(pg_db: PgDatabase, project_dir: Path) -> None:
    pg_db.execute(_TABLE)
    project = _project(pg_db, project_dir)
    result = project.run()
    assert result.ok, [r.error for r in result.tables]
    assert result.tables[0].rows == ROWS
    _check_against_source(project, pg_db)
    adds = _log_adds(project)
    assert sum(json.loads(a["stats"])["numRecords"] for a in adds) == ROWS
    folder = Path(project.lake.uri(NAME))
    for add in adds:
        stats = json.loads(add["stats"], parse_float=Decimal)
        rows = pq.read_table(folder / add["path"])
        assert stats["numRecords"] == rows.num_rows and add["size"] == (folder / add["path"]).stat().st_size
        assert stats["nullCount"]["amount"] == rows.column("amount").null_count
        for column in ("id", "amount", "status", "day"):
            low, high = pc.min_max(rows.column(column)).values()
            as_json = (lambda v: v.isoformat()) if column == "day" else (lambda v: v)
            assert stats["minValues"][column] == as_json(low.as_py()), column
            assert stats["maxValues"][column] == as_json(high.as_py()), column
        first, last = pc.min_max(rows.column("at")).values()
        low_at = dt.datetime.fromisoformat(stats["minValues"]["at"].replace("Z", "+00:00"))
        high_at = dt.datetime.fromisoformat(stats["maxValues"]["at"].replace("Z", "+00:00"))
        ms = dt.timedelta(milliseconds=1)
        assert low_at <= first.as_py() < low_at + ms and high_at - ms < last.as_py() <= high_at  # milliseconds
        assert len(stats["minValues"]["note"]) == 32  # md5 text: 32 characters, within the limit
        assert stats["minValues"].get("_lf_source") == "src"
        # the load's text constants were handed to the encoders as dictionaries: written as dictionary pages,
        # read back as the table's strings by pyarrow (the footer's Arrow schema) and by DuckDB
        assert rows.schema.field("_lf_source").type == pa.string() == rows.schema.field("_lf_run_id").type
        group = pq.ParquetFile(folder / add["path"]).metadata.row_group(0)
        chunks = {group.column(i).path_in_schema: group.column(i) for i in range(group.num_columns)}
        assert "RLE_DICTIONARY" in chunks["_lf_run_id"].encodings
        assert set(rows.column("_lf_source").to_pylist()) == {"src"}

    # a reload replaces the rows: the new snapshot holds only the new files
    pg_db.execute("DELETE FROM t WHERE id % 5 = 0; UPDATE t SET amount = amount + 1 WHERE id % 3 = 0")
    result = project.run()
    assert result.ok, [r.error for r in result.tables]
    _check_against_source(project, pg_db)
    committed = {Path(f.removeprefix("file://")).name for f in project.lake.dataset(NAME).files}
    assert committed == {a["path"] for a in _log_adds(project)}


def test_a_load_failing_mid_stream_keeps_the_table_and_leaves_no_files(pg_db: PgDatabase, project_dir: Path) -> None:
    pg_db.execute(_TABLE)
    project = _project(pg_db, project_dir, ", target_file_size: 65536")
    assert project.run().ok
    before = project.lake.version(NAME), project.lake.read(NAME).num_rows
    on_disk = set(Path(project.lake.uri(NAME)).glob("*.parquet"))
    pg_db.execute(f"INSERT INTO t (id, amount) SELECT g, 1 FROM generate_series({ROWS + 1}, {3 * ROWS}) g")
    pg_db.execute(f"UPDATE t SET amount = 'NaN' WHERE id = {3 * ROWS}")  # refused when the read reaches it
    result = project.run()
    assert not result.ok and "NaN" in (result.tables[0].error or "")
    assert (project.lake.version(NAME), project.lake.read(NAME).num_rows) == before
    assert set(Path(project.lake.uri(NAME)).glob("*.parquet")) == on_disk  # the encoders' files were removed
