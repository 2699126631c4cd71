"""Distributed full loads on a local Ray cluster (head + two worker nodes) inside a loopback-only namespace.

Each database holds a 5,000,000-row table loaded with 8 partitions and compared with the source by
checksums mixing every column of every row; a writer committing during the load must not break the
snapshot (the lake equals the source as of one instant of the writer's log); a worker killed mid-task is
retried without duplicates; the contract suite's tables load type for type as in one process.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from lakeforge import Project
from tests.contract.conftest import lake_rows
from tests.contract.kits import KITS, Kit
from tests.scale.helpers import contract_tables, project, same_tables, write

BIG = 5_000_000
MEDIUM = 200_000
CHECKSUM = (
    "count(*), count(DISTINCT id), sum(id), sum(amount), sum(qty), count(note), sum(length(note)), "
    "sum((id % 1000) * qty), sum(amount * (id % 97)), min(made_at), max(made_at)"
)


@pytest.fixture(scope="module", params=sorted(KITS))
def kit(request: pytest.FixtureRequest) -> Iterator[Kit]:
    made = KITS[request.param]()
    made.create_database()
    yield made
    made.drop_database()


def fill(kit: Kit, table: str, n: int) -> None:
    """``n`` rows with even ids 2..2n (a writer inserts odd ones), amount = id/2 % 1000 + 0.25."""
    if kit.name == "postgres":
        kit.execute(
            f"CREATE TABLE {table} (id bigint PRIMARY KEY, amount numeric(14,2) NOT NULL, qty integer, note text, "
            f"made_at timestamptz); INSERT INTO {table} SELECT g * 2, (g % 1000) + 0.25, g % 50, "
            "CASE WHEN g % 11 = 0 THEN NULL ELSE 'n' || g END, "
            f"timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second' FROM generate_series(1, {n}) g; "
            f"ANALYZE {table}"
        )
        return
    kit.execute(
        f"CREATE TABLE {table} (id bigint PRIMARY KEY, amount decimal(14,2) NOT NULL, qty int, note varchar(40), "
        "made_at datetime(6))"
    )
    step = 1_000_000
    for start in range(1, n + 1, step):
        kit.execute(
            f"INSERT INTO {table} SELECT seq * 2, (seq % 1000) + 0.25, seq % 50, "
            "IF(seq % 11 = 0, NULL, CONCAT('n', seq)), TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq SECOND "
            f"FROM seq_{start}_to_{min(start + step - 1, n)}"
        )


def ray_project(kit: Kit, folder: Path, address: str, include: list[str], *, partitions: int = 8) -> Project:
    extra = (
        f'engine: {{type: ray, address: "{address}", task_cpus: 0.5}}\n'
        f"run: {{partitions: {partitions}, parallel_min_rows: 0, retries: 2, retry_backoff: 0.1}}\n"
    )
    return Project(write(kit, folder, extra, include=include))


def lake_checksum(made: Project, name: str) -> tuple[Any, ...]:
    import duckdb

    con = duckdb.connect()
    con.register("t", made.lake.dataset(name))
    row = con.execute(f"SELECT {CHECKSUM} FROM t").fetchone()
    assert row is not None
    return tuple(row)


def source_checksum(kit: Kit, table: str) -> tuple[Any, ...]:
    return tuple(kit.execute(f"SELECT {CHECKSUM} FROM {table}")[0])


def same(a: tuple[Any, ...], b: tuple[Any, ...]) -> None:
    """Equal values; timestamps compared as UTC instants (the lake keeps the zone, MariaDB's DATETIME has none)."""
    for x, y in zip(a, b, strict=True):
        if hasattr(x, "tzinfo") and hasattr(y, "tzinfo") and (x.tzinfo is None) != (y.tzinfo is None):
            x, y = x.replace(tzinfo=None), y.replace(tzinfo=None)
        assert x == y, (a, b)


def test_five_million_rows_with_eight_partitions(kit: Kit, ray_address: str, tmp_path: Path) -> None:
    fill(kit, "big", BIG)
    made = ray_project(kit, tmp_path / "p", ray_address, ["big"])
    result = made.run()
    assert result.ok, [r.error for r in result.tables]
    (table,) = result.tables
    assert table.rows == BIG and "read by 8 range tasks on ray" in (table.reason or "")
    same(lake_checksum(made, "bronze.src_big"), source_checksum(kit, "big"))
    tasks = made.extractor.results  # type: ignore[union-attr]
    assert sorted(r.index for r in tasks) == list(range(8)) and sum(r.rows for r in tasks) == BIG
    assert len({r.pid for r in tasks}) >= 2  # the ranges ran in several worker processes
    schema = made.lake.schema("bronze.src_big")
    assert schema is not None and str(schema.field("amount").type) == "decimal128(14, 2)"
    assert made.lake.version("bronze.src_big") == 0  # one Delta commit for all eight ranges


class Writer(threading.Thread):
    """Commits transactions while the load runs: each moves 1.00 of amount from one row to another and inserts
    a new (odd) id; ``log`` keeps them in commit order."""

    def __init__(self, kit: Kit, table: str, n: int) -> None:
        super().__init__(daemon=True)
        self.kit, self.table, self.n = kit, table, n
        self.log: list[tuple[int, int, int]] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def _connect(self) -> Any:
        if self.kit.name == "postgres":
            import psycopg

            return psycopg.connect(self.kit.url())
        import pymysql

        from tests.conftest import MY_HOST, MY_PORT

        return pymysql.connect(host=MY_HOST, port=MY_PORT, user="root", database=self.kit.database, autocommit=False)

    def run(self) -> None:
        rng = random.Random(7)
        conn = self._connect()
        try:
            cur = conn.cursor()
            i = 0
            while not self.stop.is_set():
                i += 1
                # new odd ids from a permutation of 0..n-1 (7919 is prime to n): never one twice
                a, b, new = 2 * rng.randint(1, self.n), 2 * rng.randint(1, self.n), 2 * ((i * 7919) % self.n) + 1
                cur.execute(f"UPDATE {self.table} SET amount = amount - 1 WHERE id = {a}")
                cur.execute(f"UPDATE {self.table} SET amount = amount + 1 WHERE id = {b}")
                cur.execute(f"INSERT INTO {self.table} (id, amount, qty, note) VALUES ({new}, 0, {i % 50}, 'w{i}')")
                conn.commit()
                self.log.append((a, b, new))
                time.sleep(0.002)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
        finally:
            conn.close()


def test_concurrent_writer_sees_one_snapshot(kit: Kit, ray_address: str, tmp_path: Path) -> None:
    fill(kit, "busy", MEDIUM)
    writer = Writer(kit, "busy", MEDIUM)
    writer.start()
    while len(writer.log) < 50 and writer.is_alive():
        time.sleep(0.05)
    made = ray_project(kit, tmp_path / "p", ray_address, ["busy"])
    result = made.run()
    time.sleep(0.3)
    writer.stop.set()
    writer.join(30)
    assert writer.error is None, writer.error
    assert result.ok, [r.error for r in result.tables]
    data = lake_rows(made, "bronze.src_busy")
    ids = data.column("id").to_pylist()
    inserted = {i for i in ids if i % 2 == 1}
    k = len(inserted)
    assert 50 <= k < len(writer.log), (k, len(writer.log))  # the writer ran before and after the snapshot
    assert inserted == {new for _, _, new in writer.log[:k]}  # exactly the first k transactions, none after
    expected: dict[int, Decimal] = {}
    for a, b, _ in writer.log[:k]:
        expected[a] = expected.get(a, Decimal(0)) - 1
        expected[b] = expected.get(b, Decimal(0)) + 1
    amounts = dict(zip(ids, data.column("amount").to_pylist(), strict=True))
    for key, delta in expected.items():
        assert amounts[key] == Decimal(key // 2 % 1000) + Decimal("0.25") + delta, key
    assert len(ids) == MEDIUM + k and sum(amounts.values()) == sum(
        Decimal(g % 1000) + Decimal("0.25") for g in range(1, MEDIUM + 1)
    )
    checkpoint = made.lake.checkpoint("bronze.src_busy")
    assert checkpoint is not None
    assert checkpoint.position.get("lsn" if kit.name == "postgres" else "binlog_file")


def test_killed_worker_is_retried_without_duplicates(
    kit: Kit, ray_address: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(kit, "killme", MEDIUM)
    marker = tmp_path / "killed"
    monkeypatch.setenv("LAKEFORGE_TEST_KILL_AT", "range:bronze.src_killme")
    monkeypatch.setenv("LAKEFORGE_TEST_KILL_ONCE", str(marker))
    made = ray_project(kit, tmp_path / "p", ray_address, ["killme"])
    result = made.run()
    assert result.ok, [r.error for r in result.tables]
    assert marker.exists()  # a worker did die mid-task
    (table,) = result.tables
    assert table.rows == MEDIUM
    same(lake_checksum(made, "bronze.src_killme"), source_checksum(kit, "killme"))
    if made.lake.FORMAT == "delta":
        from deltalake import DeltaTable

        committed = {u.rsplit("/", 1)[-1] for u in DeltaTable(made.lake.uri("bronze.src_killme")).file_uris()}
        on_disk = {p.name for p in Path(made.lake.uri("bronze.src_killme")).glob("*.parquet")}
        assert committed == on_disk  # the killed attempt's partial file was removed


def test_contract_types_survive_ray(kit: Kit, ray_address: str, tmp_path: Path) -> None:
    tables = contract_tables(kit)
    local = project(kit, tmp_path / "local", partitions=1, executor=None, include=tables)
    distributed = ray_project(kit, tmp_path / "ray", ray_address, tables, partitions=3)
    for made in (local, distributed):
        result = made.run()
        assert result.ok, [r.error for r in result.tables]
    counts = same_tables(local, distributed)
    assert counts["bronze.src_types"] == 4 and counts["bronze.src_unicode"] == 7


@pytest.mark.parametrize("kind", sorted(KITS))
def test_cdc_snapshot_on_ray_then_changes(kind: str, ray_address: str, tmp_path: Path) -> None:
    """CDC: a snapshot read by 8 range tasks on Ray (PostgreSQL: the slot's exported snapshot; MariaDB: one
    taken under the global read lock at a GTID), then the log on top."""
    kit = KITS[kind]()
    kit.create_database()
    try:
        fill(kit, "feed", MEDIUM)
        extra = (
            f'engine: {{type: ray, address: "{ray_address}", task_cpus: 0.5}}\n'
            "run: {partitions: 8, parallel_min_rows: 0, cdc_commit_seconds: 1}\n"
        )
        folder = write(kit, tmp_path / "p", extra)
        text = (folder / "lakeforge.yml").read_text().replace(f'url: "{kit.url()}"', f'url: "{kit.url()}", '
                                                             "include: [], tables: {feed: {mode: cdc}}")
        (folder / "lakeforge.yml").write_text(text)
        made = Project(folder)
        result = made.run()
        assert result.ok, [r.error for r in result.tables]
        tasks = made.extractor.results  # type: ignore[union-attr]
        assert len(tasks) == 8 and sum(t.rows for t in tasks) == MEDIUM
        same(lake_checksum(made, "bronze.src_feed"), source_checksum(kit, "feed"))
        kit.execute("UPDATE feed SET qty = 99 WHERE id <= 20")
        kit.execute("DELETE FROM feed WHERE id > 399990")
        kit.execute("INSERT INTO feed (id, amount, qty) VALUES (1, 0.5, 1)")
        assert made.run().ok
        same(lake_checksum(made, "bronze.src_feed"), source_checksum(kit, "feed"))
    finally:
        if kind == "postgres":
            with contextlib.suppress(Exception):
                kit.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                            f"WHERE database = '{kit.database}'")
        kit.drop_database()
