"""Operating CDC from the command line: ``check`` says what to change, ``run --follow`` stops cleanly on
SIGINT/SIGTERM (and follows several sources at once), ``cdc status`` reports positions and lag, ``cdc
drop-slot`` and ``cdc resnapshot`` recover from a dropped slot. Real ``lakeforge`` processes, real servers:
the local ones (not set up for CDC) and the throwaway CDC servers of conftest.py."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lakeforge import Project
from lakeforge.sources.postgres.pgoutput import lsn_value
from tests.conftest import MyDatabase, PgDatabase
from tests.integration.cdc.conftest import MyDb, PgDb, cdc_project, pg_database
from tests.servers import Server

LAKEFORGE = str(Path(sys.executable).parent / "lakeforge")
ORDERS = "CREATE TABLE orders (id int PRIMARY KEY, item text, qty int)"


def cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LAKEFORGE, *args, "--project", str(project)], capture_output=True, text=True, timeout=180)


def as_json(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.stdout.strip(), proc.stderr
    return json.loads(proc.stdout)


def write(path: Path, sources: dict[str, Any], **run: Any) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    config = {"sources": sources, "lake": {"path": "./lake"}, "run": {"cdc_commit_seconds": 1, **run}}
    (path / "lakeforge.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def pg_source(url: str, **extra: Any) -> dict[str, Any]:
    return {"type": "postgres", "url": url, "include": [], "tables": {"orders": {"mode": "cdc"}}, **extra}


def lake_orders(project: Project, table: str = "bronze.src_orders") -> list[tuple[Any, ...]]:
    if not project.lake.exists(table):
        return []
    rows = project.sql(f"select id, item, qty from {table} order by id").to_pylist()
    return [(r["id"], r["item"], r["qty"]) for r in rows]


def source_orders(db: Any) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in db.execute("SELECT id, item, qty FROM orders ORDER BY id")]


def wait_for(what: str, condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def change_orders(db: Any, step: int) -> None:
    db.execute(f"INSERT INTO orders VALUES ({1000 + step}, 'new {step}', {step})")
    db.execute(f"UPDATE orders SET qty = qty + 100, item = 'changed {step}' WHERE id % 7 = {step % 7}")
    db.execute(f"DELETE FROM orders WHERE id = {step + 1}")


def slot_row(db: PgDb, slot: str = "lakeforge_src") -> dict[str, Any] | None:
    rows = db.execute(
        "SELECT active, active_pid, confirmed_flush_lsn::text, restart_lsn::text, wal_status "
        "FROM pg_replication_slots WHERE slot_name = %s",
        (slot,),
    )
    if not rows:
        return None
    return dict(zip(["active", "active_pid", "confirmed_flush_lsn", "restart_lsn", "wal_status"], rows[0], strict=True))


class Follower:
    """``lakeforge run --follow`` as a child process."""

    def __init__(self, project: Path) -> None:
        self.out = open(project / "follow.out", "w+", encoding="utf-8")  # noqa: SIM115 - closed in stop()
        self.err = open(project / "follow.err", "w+", encoding="utf-8")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [LAKEFORGE, "run", "--follow", "--project", str(project), "--output", "json"],
            stdout=self.out,
            stderr=self.err,
            text=True,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        self.err.seek(0)
        return self.err.read()

    def stop(self, sig: int) -> tuple[int, Any]:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=90)
        self.out.seek(0)
        text = self.out.read()
        return code, json.loads(text) if text.strip() else None

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait()
        self.out.close()
        self.err.close()


@pytest.fixture
def second_pg(cdc_pg_server: Server) -> Iterator[PgDb]:
    """A second database on the throwaway PostgreSQL server (a second source)."""
    with pg_database(cdc_pg_server) as db:
        yield db


# -- lakeforge check ------------------------------------------------------------------------------------
def test_check_names_wal_level_on_local_postgres(pg_db: PgDatabase, tmp_path: Path) -> None:
    pg_db.execute(ORDERS)
    project = write(tmp_path / "p", {"crm": pg_source(pg_db.url)})
    text = cli(project, "check")
    assert text.returncode == 1, text.stdout + text.stderr
    assert "not ready for CDC" in text.stdout and "wal_level is 'replica'" in text.stdout
    assert "fix: ALTER SYSTEM SET wal_level = logical" in text.stdout
    report = cli(project, "check", "--output", "json")
    assert report.returncode == 1
    data = as_json(report)
    assert data["ok"] is False
    [crm] = data["sources"]
    assert crm["ok"] is False and crm["tables"] == 1 and crm["detail"]["wal_level"] == "replica"
    assert {
        "what": "wal_level is 'replica', CDC needs 'logical'",
        "fix": "ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL",
    } in crm["problems"]


def test_check_names_log_bin_on_local_mariadb(my_db: MyDatabase, tmp_path: Path) -> None:
    my_db.execute("CREATE TABLE orders (id int PRIMARY KEY, item varchar(20), qty int)")
    project = write(
        tmp_path / "p",
        {"shop": {"type": "mysql", "url": my_db.url, "include": [], "tables": {"orders": {"mode": "cdc"}}}},
    )
    text = cli(project, "check")
    assert text.returncode == 1, text.stdout + text.stderr
    assert "the binary log is off" in text.stdout and "log_bin" in text.stdout
    [shop] = as_json(cli(project, "check", "-o", "json"))["sources"]
    assert shop["ok"] is False
    log_bin = [p for p in shop["problems"] if "log_bin" in p["fix"]]
    assert log_bin and log_bin[0]["what"] == "the binary log is off"


def test_check_passes_on_cdc_servers(cdc_pg: PgDb, cdc_my: MyDb, tmp_path: Path) -> None:
    cdc_pg.execute(ORDERS)
    cdc_my.execute("CREATE TABLE orders (id int PRIMARY KEY, item varchar(20), qty int)")
    project = write(
        tmp_path / "p",
        {
            "crm": pg_source(cdc_pg.url),
            "shop": {"type": "mysql", "url": cdc_my.url, "include": [], "tables": {"orders": {"mode": "cdc"}}},
        },
    )
    report = cli(project, "check", "--output", "json")
    assert report.returncode == 0, report.stdout + report.stderr
    sources = {s["source"]: s for s in as_json(report)["sources"]}
    assert sources["crm"]["ok"] and sources["crm"]["problems"] == [] and sources["crm"]["tables"] == 1
    assert sources["shop"]["ok"] and sources["shop"]["problems"] == [] and sources["shop"]["tables"] == 1
    text = cli(project, "check")
    assert text.returncode == 0 and "ok   crm (postgres)" in text.stdout and "ok   shop (mysql)" in text.stdout


def test_check_role_without_replication_gets_alter_role(cdc_pg: PgDb, tmp_path: Path) -> None:
    cdc_pg.execute(ORDERS)
    role = "lf_norep_" + secrets.token_hex(3)
    cdc_pg.execute(f'CREATE ROLE "{role}" LOGIN')
    cdc_pg.execute(f'GRANT SELECT ON orders TO "{role}"')
    try:
        url = f"postgresql://{role}@127.0.0.1:{cdc_pg.port}/{cdc_pg.name}"
        report = cli(write(tmp_path / "p", {"crm": pg_source(url)}), "check", "-o", "json")
        assert report.returncode == 1, report.stdout + report.stderr
        [crm] = as_json(report)["sources"]
        assert {
            "what": f"role '{role}' has no REPLICATION privilege",
            "fix": f'ALTER ROLE "{role}" WITH REPLICATION;',
        } in crm["problems"]
        assert not any("wal_level" in p["what"] for p in crm["problems"])  # this server is logical
    finally:
        cdc_pg.execute(f'DROP OWNED BY "{role}"')
        cdc_pg.execute(f'DROP ROLE "{role}"')


def test_slot_in_use_is_reported_and_not_dropped(cdc_pg: PgDb, tmp_path: Path) -> None:
    import psycopg2
    import psycopg2.extras

    cdc_pg.execute(ORDERS)
    cdc_pg.execute("INSERT INTO orders SELECT g, 'item ' || g, g FROM generate_series(1, 20) g")
    project = cdc_project(tmp_path / "p", cdc_pg, {"orders": {"mode": "cdc"}})
    assert Project(project).run().ok
    wait_for("the run to release the slot", lambda: not (slot_row(cdc_pg) or {}).get("active"))
    other = psycopg2.connect(cdc_pg.url, connection_factory=psycopg2.extras.LogicalReplicationConnection)
    try:
        other.cursor().start_replication(
            slot_name="lakeforge_src",
            decode=False,
            options={"proto_version": "1", "publication_names": "lakeforge_src"},
        )
        pid = other.info.backend_pid
        wait_for("the other consumer to hold the slot", lambda: (slot_row(cdc_pg) or {}).get("active_pid") == pid)
        report = cli(project, "check", "-o", "json")
        assert report.returncode == 1, report.stdout + report.stderr
        [src] = as_json(report)["sources"]
        assert src["problems"] == [
            {
                "what": f"replication slot 'lakeforge_src' is in use by process {pid}",
                "fix": f"stop the other consumer, or SELECT pg_terminate_backend({pid}); "
                "or set slot_name to another name",
            }
        ]
        refused = cli(project, "cdc", "drop-slot", "src")
        assert refused.returncode == 1 and f"in use by process {pid}" in refused.stderr, refused.stderr
        assert slot_row(cdc_pg) is not None
    finally:
        other.close()
    wait_for("the slot to be released", lambda: not (slot_row(cdc_pg) or {}).get("active"))
    assert cli(project, "check").returncode == 0


# -- lakeforge run --follow -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sig", "commit_seconds"), [(signal.SIGTERM, 1), (signal.SIGINT, 3600)], ids=["sigterm", "sigint-buffered"]
)
def test_follow_stops_cleanly_on_signal(cdc_pg: PgDb, tmp_path: Path, sig: int, commit_seconds: int) -> None:
    """SIGTERM after changes were committed while following; SIGINT while changes are only buffered (commit
    every hour): either way the follower commits, acknowledges, records the run as success and exits 0."""
    cdc_pg.execute(ORDERS)
    cdc_pg.execute("INSERT INTO orders SELECT g, 'item ' || g, g FROM generate_series(1, 50) g")
    path = cdc_project(tmp_path / "p", cdc_pg, {"orders": {"mode": "cdc"}}, cdc_commit_seconds=commit_seconds)
    project = Project(path)
    follower = Follower(path)
    try:
        wait_for("the snapshot", lambda: len(lake_orders(project)) == 50 or not follower.alive())
        assert follower.alive(), follower.output()
        snapshot = lake_orders(project)
        for step in range(1, 4):
            change_orders(cdc_pg, step)
        end = lsn_value(cdc_pg.execute("SELECT pg_current_wal_lsn()::text")[0][0])
        if commit_seconds == 1:
            wait_for("the changes in the lake", lambda: lake_orders(project) == source_orders(cdc_pg))
        else:
            sent = "SELECT coalesce(max(sent_lsn), '0/0')::text FROM pg_stat_replication"
            wait_for("the walsender to send the changes", lambda: lsn_value(cdc_pg.execute(sent)[0][0]) >= end)
            time.sleep(1)  # the follower reads them into its buffer
            assert lake_orders(project) == snapshot  # buffered, not committed yet
        code, result = follower.stop(sig)
        assert code == 0, follower.output()
    finally:
        follower.kill()
    assert lake_orders(project) == source_orders(cdc_pg)
    assert result["status"] == "success" and result["errors"] == []
    [table] = result["tables"]
    assert table["table"] == "bronze.src_orders" and table["status"] == "success" and table["rows"] > 50
    runs = as_json(cli(path, "runs", "--output", "json"))
    assert runs[0]["run"]["run_id"] == result["run_id"] and runs[0]["run"]["status"] == "success"
    assert [(t["table"], t["status"]) for t in runs[0]["tables"]] == [("bronze.src_orders", "success")]
    slot = slot_row(cdc_pg)
    assert slot is not None and not slot["active"]
    assert lsn_value(slot["confirmed_flush_lsn"]) >= project.lake.checkpoint("bronze.src_orders").position["value"]
    # nothing applied twice or lost: a catch-up run finds nothing new
    again = project.run()
    assert again.ok and [r.status for r in again.tables] == ["unchanged"]
    assert lake_orders(project) == source_orders(cdc_pg)


def test_follow_several_sources_at_once(cdc_pg: PgDb, second_pg: PgDb, tmp_path: Path) -> None:
    for db in (cdc_pg, second_pg):
        db.execute(ORDERS)
        db.execute("INSERT INTO orders SELECT g, 'item ' || g, g FROM generate_series(1, 30) g")
    path = write(tmp_path / "p", {"a": pg_source(cdc_pg.url), "b": pg_source(second_pg.url)})
    project = Project(path)
    follower = Follower(path)
    try:
        wait_for(
            "both snapshots",
            lambda: (
                (
                    len(lake_orders(project, "bronze.a_orders")) == 30
                    and len(lake_orders(project, "bronze.b_orders")) == 30
                )
                or not follower.alive()
            ),
        )
        assert follower.alive(), follower.output()
        change_orders(cdc_pg, 1)
        change_orders(second_pg, 2)
        wait_for(
            "both sources' changes",
            lambda: (
                lake_orders(project, "bronze.a_orders") == source_orders(cdc_pg)
                and lake_orders(project, "bronze.b_orders") == source_orders(second_pg)
            ),
        )
        code, result = follower.stop(signal.SIGTERM)
        assert code == 0, follower.output()
    finally:
        follower.kill()
    assert lake_orders(project, "bronze.a_orders") == source_orders(cdc_pg)
    assert lake_orders(project, "bronze.b_orders") == source_orders(second_pg)
    assert result["status"] == "success"
    assert sorted((t["table"], t["status"]) for t in result["tables"]) == [
        ("bronze.a_orders", "success"),
        ("bronze.b_orders", "success"),
    ]


# -- lakeforge cdc status -------------------------------------------------------------------------------
def test_status_postgres(cdc_pg: PgDb, tmp_path: Path) -> None:
    cdc_pg.execute(ORDERS)
    cdc_pg.execute("INSERT INTO orders SELECT g, 'item ' || g, g FROM generate_series(1, 10) g")
    path = write(tmp_path / "p", {"src": pg_source(cdc_pg.url, max_slot_lag_bytes=1)})
    before = as_json(cli(path, "cdc", "status", "-o", "json"))
    assert before[0]["log"]["exists"] is False and before[0]["tables"][0]["position"] is None
    project = Project(path)
    assert project.run().ok

    [src] = as_json(cli(path, "cdc", "status", "src", "-o", "json"))
    slot = slot_row(cdc_pg)
    assert slot is not None
    log = src["log"]
    assert (src["source"], src["type"], log["slot"], log["exists"], log["active"]) == (
        "src",
        "postgres",
        "lakeforge_src",
        True,
        False,
    )
    assert (log["confirmed_flush_lsn"], log["restart_lsn"], log["wal_status"]) == (
        slot["confirmed_flush_lsn"],
        slot["restart_lsn"],
        slot["wal_status"],
    )
    assert log["retained_wal_bytes"] == lsn_value(log["current_lsn"]) - lsn_value(slot["restart_lsn"]) > 1
    assert "max_slot_lag_bytes=1" in src["warning"] and "lakeforge cdc drop-slot src" in src["warning"]
    [table] = src["tables"]
    cp = project.lake.checkpoint("bronze.src_orders")
    assert cp is not None
    assert (table["table"], table["source_table"], table["rows"]) == ("bronze.src_orders", "public.orders", 10)
    assert (table["position"], table["position_value"]) == (cp.position["text"], cp.position["value"])
    assert table["position_value"] == lsn_value(table["position"])
    _assert_lag(table, log)

    end_before = table["position_value"]
    t0 = cdc_pg.execute("SELECT now()")[0][0]
    cdc_pg.execute("UPDATE orders SET qty = 99 WHERE id = 3")
    t1 = cdc_pg.execute("SELECT now()")[0][0]
    end = lsn_value(cdc_pg.execute("SELECT pg_current_wal_lsn()::text")[0][0])
    [src] = as_json(cli(path, "cdc", "status", "-o", "json"))
    [table] = src["tables"]
    assert table["caught_up"] is False and table["lag_bytes"] >= end - table["position_value"] > 0
    _assert_lag(table, src["log"])

    run = cli(path, "run")  # also warns about the slot
    assert run.returncode == 0, run.stderr
    assert "warning:" in run.stderr and "max_slot_lag_bytes=1" in run.stderr, run.stderr
    [src] = as_json(cli(path, "cdc", "status", "-o", "json"))
    [table] = src["tables"]
    last = project.sql(
        "select max(_lf_commit_ts) t, max(_lf_position_value) v, arg_max(_lf_position, "
        "_lf_position_value) p from bronze.src_orders_changes"
    ).to_pylist()[0]
    assert table["position_value"] == last["v"] > end_before and table["position"] == last["p"]
    committed = dt.datetime.fromisoformat(table["source_commit_time"])
    assert committed == last["t"] and t0 <= committed <= t1
    _assert_lag(table, src["log"])

    text = cli(path, "cdc", "status")
    assert text.returncode == 0 and "lakeforge_src" in text.stdout and table["position"] in text.stdout


def _assert_lag(table: dict[str, Any], log: dict[str, Any]) -> None:
    """Lag as documented: against the server's current LSN; seconds since the last applied source commit."""
    current = lsn_value(log["current_lsn"])
    assert table["lag_bytes"] == max(current - table["position_value"], 0)
    assert table["caught_up"] is (table["position_value"] >= current)
    if table["caught_up"]:
        assert table["lag_seconds"] == 0
    else:
        since = dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(table["source_commit_time"])
        assert 0 <= table["lag_seconds"] <= since.total_seconds() + 0.01
        assert table["lag_seconds"] >= since.total_seconds() - 30  # measured by the cli moments ago


def test_status_mariadb_binlog(cdc_my: MyDb, tmp_path: Path) -> None:
    cdc_my.execute("CREATE TABLE orders (id int PRIMARY KEY, item varchar(20), qty int)")
    path = cdc_project(tmp_path / "p", cdc_my, {"orders": {"mode": "cdc"}})
    report = cli(path, "cdc", "status", "-o", "json")
    assert report.returncode == 0, report.stderr
    [src] = as_json(report)
    logs = cdc_my.execute("SHOW BINARY LOGS")
    assert src["type"] == "mysql" and src["error"] is None and src["warning"] is None
    assert src["log"]["gtid_binlog_pos"] == cdc_my.execute("SELECT @@gtid_binlog_pos")[0][0]
    assert (src["log"]["binlog_files"], src["log"]["oldest_binlog"], src["log"]["binlog_format"]) == (
        len(logs),
        logs[0][0],
        "ROW",
    )
    assert src["tables"] == [
        {
            "table": "bronze.src_orders",
            "source_table": f"{cdc_my.name}.orders",
            "position": None,
            "position_value": None,
            "source_commit_time": None,
            "lake_commit_time": None,
            "rows": None,
            "caught_up": None,
            "lag_seconds": None,
            "lag_bytes": None,
        }
    ]
    refused = cli(path, "cdc", "drop-slot", "src")
    assert refused.returncode == 1 and "has no replication slot to drop" in refused.stderr, refused.stderr


def test_status_mariadb_after_runs(cdc_my: MyDb, tmp_path: Path) -> None:
    cdc_my.execute("CREATE TABLE orders (id int PRIMARY KEY, item varchar(20), qty int)")
    cdc_my.executemany("INSERT INTO orders VALUES (%s, %s, %s)", [(i, f"item {i}", i) for i in range(1, 11)])
    path = cdc_project(tmp_path / "p", cdc_my, {"orders": {"mode": "cdc"}})
    project = Project(path)
    result = project.run()
    assert result.ok, result
    [src] = as_json(cli(path, "cdc", "status", "-o", "json"))
    [table] = src["tables"]
    gtid = cdc_my.execute("SELECT @@gtid_binlog_pos")[0][0]
    assert table["position"] == gtid and table["rows"] == 10  # snapshot at the server's position
    assert table["caught_up"] is True and table["lag_seconds"] == 0 and table["lag_bytes"] is None
    cdc_my.execute("UPDATE orders SET qty = 99 WHERE id = 3")
    [table] = as_json(cli(path, "cdc", "status", "-o", "json"))[0]["tables"]
    assert table["caught_up"] is False and table["lag_seconds"] >= 0
    assert project.run().ok
    [table] = as_json(cli(path, "cdc", "status", "-o", "json"))[0]["tables"]
    assert table["position"] == cdc_my.execute("SELECT @@gtid_binlog_pos")[0][0]
    assert table["caught_up"] is True and table["lag_seconds"] == 0
    assert lake_orders(project) == source_orders(cdc_my)


# -- lakeforge cdc drop-slot / resnapshot ---------------------------------------------------------------
def test_drop_slot_then_resnapshot(cdc_pg: PgDb, tmp_path: Path) -> None:
    cdc_pg.execute(ORDERS)
    cdc_pg.execute("INSERT INTO orders SELECT g, 'item ' || g, g FROM generate_series(1, 40) g")
    cdc_pg.execute("CREATE TABLE other (id int PRIMARY KEY, v text)")
    cdc_pg.execute("INSERT INTO other VALUES (1, 'one')")
    path = cdc_project(tmp_path / "p", cdc_pg, {"orders": {"mode": "cdc"}, "other": {"mode": "cdc"}})
    project = Project(path)
    assert project.run().ok
    dropped = cli(path, "cdc", "drop-slot", "src", "-o", "json")
    assert dropped.returncode == 0, dropped.stderr
    assert as_json(dropped) == {"source": "src", "slot": "lakeforge_src", "dropped": True}
    assert slot_row(cdc_pg) is None
    again = cli(path, "cdc", "drop-slot", "src")
    assert again.returncode == 0 and "no replication slot lakeforge_src" in again.stdout

    change_orders(cdc_pg, 1)  # made while no slot exists: only a new snapshot can bring it
    cdc_pg.execute("UPDATE other SET v = 'uno'")
    lost = cli(path, "run", "-o", "json")
    assert lost.returncode == 1
    errors = [t["error"] for t in as_json(lost)["tables"]]
    assert len(errors) == 2 and all("lakeforge cdc resnapshot src" in e for e in errors), errors
    assert lake_orders(project) != source_orders(cdc_pg)

    one = cli(path, "cdc", "resnapshot", "src", "--table", "orders", "-o", "json")
    assert one.returncode == 0, one.stdout + one.stderr
    assert [(t["table"], t["status"], t["rows"]) for t in as_json(one)["tables"]] == [
        ("bronze.src_orders", "success", len(source_orders(cdc_pg)))
    ]
    assert lake_orders(project) == source_orders(cdc_pg)
    assert project.sql("select v from bronze.src_other").to_pylist() == [{"v": "one"}]  # not yet

    rest = cli(path, "cdc", "resnapshot", "src")
    assert rest.returncode == 0, rest.stdout + rest.stderr
    assert project.sql("select v from bronze.src_other").to_pylist() == [{"v": "uno"}]
    change_orders(cdc_pg, 2)
    assert project.run().ok  # back to streaming from the new slot
    assert lake_orders(project) == source_orders(cdc_pg)
    missing = cli(path, "cdc", "resnapshot", "src", "--table", "nope")
    assert missing.returncode == 1 and "no mode: cdc tables matching nope" in missing.stderr
