"""PostgreSQL read by several connections in one exported snapshot, in block (ctid) ranges.

Checked against the single-query read, value for value and type for type, over every PostgreSQL-only type of
the contract suite (infinities clamped, arrays, numeric without precision, money, intervals...); a snapshot
taken before the table changes reads the old rows exactly once; a project run through the path lands them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from lakeforge import Project
from lakeforge.config.models import PostgresSource as PostgresConfig
from lakeforge.config.models import TableConfig
from lakeforge.sources.base import TableRef
from lakeforge.sources.parallel import read_partitioned
from lakeforge.sources.postgres import snapshot
from lakeforge.sources.postgres.source import PostgresSource
from lakeforge.sources.sql import SqlSource
from tests.conftest import PgDatabase, write_project

pytestmark = pytest.mark.integration
ROWS = 20_000

_TABLE = """
    CREATE TYPE mood AS ENUM ('sad', 'happy');
    CREATE TABLE t (id int PRIMARY KEY, u uuid, jb jsonb, ai int[], at text[], an numeric(6,2)[], e mood,
      b bytea, iv interval, ip inet, m money, tm time, nu numeric, d12 numeric(12,2), ts_inf timestamptz,
      d_inf date, ts timestamp, f8 float8, note text, d18 numeric(18,0), d1810 numeric(18,10),
      dneg numeric(5,-2), dtiny numeric(3,5), d4 numeric(4,4));
    INSERT INTO t SELECT g, md5(g::text)::uuid, jsonb_build_object('g', g), ARRAY[g, NULL, -g],
      ARRAY['x' || g, 'y z'], ARRAY[(g % 9999) / 100.0, -1.25]::numeric(6,2)[],
      (ARRAY['sad','happy'])[1 + g % 2]::mood, decode(lpad(to_hex(g), 8, '0'), 'hex'),
      make_interval(days => g % 40, secs => g / 7.0), ('10.0.' || (g % 250) || '.1/24')::inet, (g / 100.0)::money,
      make_time(g % 24, g % 60, (g % 60) + 0.123456), pi() * g, (g * 37 % 1000000) / 100.0,
      CASE g % 1000 WHEN 0 THEN 'infinity'::timestamptz WHEN 1 THEN '-infinity'::timestamptz
        ELSE timestamptz '2024-01-01 00:00:00.000001+02' + g * interval '1 second' END,
      CASE WHEN g % 1000 = 2 THEN 'infinity'::date ELSE date '2024-01-01' + g % 3000 END,
      timestamp '2000-02-29 23:59:59.999999' + g * interval '1 minute', g / 3.0,
      CASE WHEN g % 5 = 0 THEN NULL ELSE repeat('n', g % 300) END,
      CASE g % 4 WHEN 0 THEN 999999999999999999 WHEN 1 THEN -999999999999999999 WHEN 2 THEN NULL ELSE g END,
      CASE g % 3 WHEN 0 THEN 99999999.9999999999 WHEN 1 THEN -0.0000000001 ELSE g / 7.0 END,
      (g % 999) * -100, CASE WHEN g % 2 = 0 THEN 0.00999 ELSE -0.00001 END, (g % 10000) / -10000.0
    FROM generate_series(1, {rows}) g;
"""


@pytest.fixture
def source(pg_db: PgDatabase) -> Iterator[PostgresSource]:
    pg_db.execute(_TABLE.replace("{rows}", str(ROWS)))
    src = PostgresSource("src", PostgresConfig(type="postgres", url=pg_db.url))
    yield src
    src.close()


def _sorted(batches: Iterator[pa.RecordBatch], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_batches(list(batches), schema=schema).sort_by("id")


def test_block_ranges_cover_every_block_once() -> None:
    assert snapshot.block_ranges(10, 1) == ["true"]
    assert snapshot.block_ranges(1, 4) == ["true"]
    assert snapshot.block_ranges(10, 3) == [
        "ctid < '(3,0)'::tid",
        "ctid >= '(3,0)'::tid AND ctid < '(6,0)'::tid",
        "ctid >= '(6,0)'::tid",
    ]


def test_snapshot_read_equals_single_query(source: PostgresSource) -> None:
    plan = source.describe(TableRef("public", "t"), TableConfig())
    pages = source._pages(plan.ref)
    assert pages >= 8  # several ranges really split the table
    single = _sorted(SqlSource.read(source, plan, batch_size=3000, partitions=1), plan.arrow_schema())
    parallel = _sorted(source.read(plan, batch_size=3000, partitions=4), plan.arrow_schema())
    assert single.num_rows == parallel.num_rows == ROWS
    assert parallel.schema == single.schema
    assert parallel.schema.field("d12").type == pa.decimal128(12, 2)
    assert parallel.schema.field("ts_inf").type == pa.timestamp("us", tz="UTC")
    assert parallel.schema.field("nu").type == pa.string() and parallel.schema.field("m").type == pa.decimal128(38, 2)
    assert parallel.schema.field("d18").type == pa.decimal128(18, 0)
    assert parallel.schema.field("dneg").type == pa.decimal128(7, 0)
    assert parallel.schema.field("dtiny").type == pa.decimal128(5, 5)
    assert parallel.equals(single)  # scaled-integer decimals equal the exact text path, value for value
    assert max(parallel.column("d18").to_pylist(), key=lambda v: v or 0) == 999999999999999999
    assert len(set(parallel.column("id").to_pylist())) == ROWS


def test_snapshot_sees_the_table_as_it_was(source: PostgresSource, pg_db: PgDatabase) -> None:
    plan = source.describe(TableRef("public", "t"), TableConfig())
    before = pg_db.execute("SELECT count(*), sum(d12), sum(id) FROM t")[0]
    with snapshot.exported(source._catalog, source.table_sql(plan.ref)) as snap:
        # after the snapshot: every row moves (new versions in new blocks), rows come and go
        pg_db.execute("UPDATE t SET d12 = d12 + 1, id = id + 1000000")
        pg_db.execute(f"INSERT INTO t (id, d12) SELECT g, 1 FROM generate_series(1, {ROWS}) g")
        pg_db.execute("DELETE FROM t WHERE id % 3 = 0")
        queries = [source.select_sql(plan, c) for c in snapshot.block_ranges(snap.pages, 4)]
        assert len(queries) == 4
        streams = snapshot.SnapshotStreams(source, snap)
        data = pa.Table.from_batches(list(read_partitioned(streams, queries, 2000)))
    ids = data.column("_c0").to_pylist()
    assert len(ids) == len(set(ids)) == before[0] == ROWS
    assert sum(ids) == before[2]
    assert pa.compute.sum(data.column("_c13").cast(pa.decimal128(12, 2))).as_py() == before[1]


def test_project_run_through_the_snapshot_path(pg_db: PgDatabase, project_dir: Path) -> None:
    pg_db.execute(_TABLE.replace("{rows}", str(ROWS)))
    write_project(project_dir, f"""
        sources:
          src: {{type: postgres, url: "{pg_db.url}"}}
        run: {{partitions: 3, parallel_min_rows: 0, batch_size: 2500}}
    """)
    project = Project(project_dir)
    result = project.run()
    assert result.ok, [r.error for r in result.tables] + result.errors
    data = DeltaTable(project.lake.uri("bronze.src_t")).to_pyarrow_table()
    assert data.num_rows == ROWS and len(set(data.column("id").to_pylist())) == ROWS
    truth = pg_db.execute("SELECT sum(d12), count(note), sum(extract(epoch FROM ts)::bigint) FROM t")[0]
    assert pa.compute.sum(data.column("d12")).as_py() == truth[0]
    assert data.column("note").null_count == ROWS - truth[1]
    assert data.schema.field("ts").type == pa.timestamp("us")


def test_nan_in_a_decimal_column_is_refused_naming_it(source: PostgresSource, pg_db: PgDatabase) -> None:
    from lakeforge.errors import SourceError

    pg_db.execute("UPDATE t SET d12 = 'NaN' WHERE id = 77")
    plan = source.describe(TableRef("public", "t"), TableConfig())
    with pytest.raises(SourceError, match="lakeforge: column d12 holds NaN, which decimal.12,2. cannot store"):
        list(source.read(plan, batch_size=3000))
