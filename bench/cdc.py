"""``python -m bench.cdc --json FILE``: CDC throughput and delay, each source on its own throwaway server.

- Throughput: N changes (60% inserts, 25% updates, 15% deletes, in transactions of 6,000 / 2,500 / 1,500
  rows) committed in the source after a snapshot, then one catch-up ``lakeforge run`` in a fresh process,
  timed from start to exit; the lake is then checked against the source row for row.
- Delay: a ``lakeforge run --follow`` child while a writer commits one-row transactions at a steady rate,
  each row carrying its commit time (``clock_timestamp()`` / ``NOW(6)``, taken inside the transaction just
  before COMMIT). The current-state Delta table is polled every 50 ms; a row's delay is the time it was first
  seen there minus that time. ``run.cdc_commit_seconds`` bounds the delay and is reported with it.

Writes ``{"<source>_apply": {"changes_per_s": .., "delay_p50_s": .., "delay_p95_s": .., ...}}``; the targets
(>= 100,000 changes/s, p95 delay <= 1 s with cdc_commit_seconds 0.5, issue #14) are printed as met or not.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.measure import _tree_rss, measure

ROOT = Path(__file__).resolve().parent.parent
LAKEFORGE = str(Path(sys.executable).parent / "lakeforge")
TABLE, LAKE_TABLE = "ev", "bronze.src_ev"
COLUMNS = "id, k, amount, note"
DELAY_IDS = 50_000_000
"""Rows of the delay benchmark have ids from here on."""
RATE_TARGET, P95_TARGET = 100_000, 1.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Db:
    """One database on a throwaway server: statements in transactions, by kind."""

    def __init__(self, kind: str, port: int) -> None:
        self.kind, self.port = kind, port
        self.url = (f"postgresql://postgres@127.0.0.1:{port}/bench" if kind == "postgres"
                    else f"mysql://root@127.0.0.1:{port}/bench")

    def connect(self, autocommit: bool = False) -> Any:
        if self.kind == "postgres":
            import psycopg

            return psycopg.connect(self.url, autocommit=autocommit)
        import pymysql

        return pymysql.connect(host="127.0.0.1", port=self.port, user="root", database="bench",
                               autocommit=autocommit, init_command="SET time_zone = '+00:00'")

    def txn(self, *statements: str) -> None:
        conn = self.connect()
        try:
            cur = conn.cursor()
            for sql in statements:
                cur.execute(sql)
            conn.commit()
        finally:
            conn.close()

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        conn = self.connect(autocommit=True)
        try:
            cur = conn.cursor()
            cur.execute(sql)
            return [tuple(r) for r in cur.fetchall()]
        finally:
            conn.close()

    def series(self, first: int, last: int) -> str:
        from tests.servers import integer_series

        return integer_series(self.kind, first, last)


@contextlib.contextmanager
def server(kind: str) -> Iterator[Db]:
    """A throwaway wal_level=logical PostgreSQL / ROW-binlog MariaDB (``tests/servers.py``), database ``bench``."""
    sys.path.insert(0, str(ROOT))
    from tests.servers import mariadb_server, postgres_server

    with (postgres_server() if kind == "postgres" else mariadb_server()) as srv:
        if kind == "postgres":
            import psycopg

            with psycopg.connect(srv.admin_url, autocommit=True) as conn:
                conn.execute("CREATE DATABASE bench")
        else:
            import pymysql

            conn = pymysql.connect(host="127.0.0.1", port=srv.port, user="root", autocommit=True)
            conn.cursor().execute("CREATE DATABASE bench")
            conn.close()
        yield Db(kind, srv.port)


def configure(db: Db, project: Path, commit_seconds: float | None) -> None:
    """The project's ``lakeforge.yml``; ``commit_seconds`` None keeps lakeforge's default."""
    import yaml

    run = {} if commit_seconds is None else {"cdc_commit_seconds": commit_seconds}
    config = {"sources": {"src": {"type": db.kind, "url": db.url, "include": [], "tables": {TABLE: {"mode": "cdc"}}}},
              "lake": {"path": "./lake"}, "run": run}
    (project / "lakeforge.yml").write_text(yaml.safe_dump(config), encoding="utf-8")


def setup(db: Db, work: Path, rows: int) -> Path:
    """Table ``ev`` with ``rows`` rows and a project streaming it; the first run takes the snapshot."""
    ts = "timestamptz" if db.kind == "postgres" else "datetime(6)"
    db.txn(f"CREATE TABLE {TABLE} (id bigint PRIMARY KEY, k int NOT NULL, amount numeric(12,2) NOT NULL, "
           f"note varchar(64), committed_at {ts})")
    db.txn(f"INSERT INTO {TABLE} (id, k, amount, note) SELECT g, g % 1000, g * 0.01, concat('row ', g) "
           f"FROM {db.series(1, rows)}")
    project = work / f"project_{db.kind}"
    project.mkdir(parents=True, exist_ok=True)
    configure(db, project, None)
    done = subprocess.run([LAKEFORGE, "run", "--project", str(project)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"snapshot run failed: {done.stderr[-500:]}")
    return project


def make_changes(db: Db, changes: int, rows: int, first_block: int = 0) -> dict[str, int]:
    """``changes`` changes in blocks of 10,000: insert 6,000 new rows, update 2,500, delete 1,500 (the
    updated and deleted rows are distinct rows of the snapshot). ``first_block``: a later round of changes
    (new ids, other rows updated and deleted)."""
    blocks = changes // 10_000
    if rows // 2 + (first_block + blocks) * 1500 > rows:
        raise ValueError(f"{rows} rows are too few for {first_block + blocks} blocks of changes")
    for b in range(first_block, first_block + blocks):
        new = rows + 1 + b * 6000
        upd = 1 + b * 2500
        dele = rows // 2 + 1 + b * 1500
        db.txn(f"INSERT INTO {TABLE} (id, k, amount, note) SELECT g, g % 1000, g * 0.01, concat('new ', g) "
               f"FROM {db.series(new, new + 5999)}")
        db.txn(f"UPDATE {TABLE} SET k = k + 1, amount = amount + 1, note = 'upd' "
               f"WHERE id BETWEEN {upd} AND {upd + 2499}")
        db.txn(f"DELETE FROM {TABLE} WHERE id BETWEEN {dele} AND {dele + 1499}")
    return {"insert": blocks * 6000, "update": blocks * 2500, "delete": blocks * 1500}


def lake_matches(db: Db, project: Path) -> str:
    """'' when the lake's current state equals the source row for row, else what differs."""
    from lakeforge import Project

    p = Project(project)
    lake = sorted(tuple(r.values()) for r in p.sql(f"select {COLUMNS} from {LAKE_TABLE}").to_pylist())
    source = sorted(db.query(f"SELECT {COLUMNS} FROM {TABLE}"))
    if lake == source:
        return ""
    return f"lake {len(lake)} rows, source {len(source)} rows; first difference " + str(
        next(((a, b) for a, b in zip(lake, source, strict=False) if a != b), "in length"))


def throughput(db: Db, project: Path, changes: int, rows: int) -> dict[str, Any]:
    started = time.perf_counter()
    make_changes(db, changes, rows)
    log(f"  {db.kind}: {changes:,} changes committed in {time.perf_counter() - started:.1f} s; catch-up run")
    load = os.getloadavg()[0]
    m = measure([LAKEFORGE, "run", "--output", "json", "--project", str(project)], timeout=1800)
    if m.returncode != 0:
        raise RuntimeError(f"catch-up run failed: {m.error}")
    tables = m.output.get("tables", [{}])
    in_run = float(tables[0].get("seconds") or 0)
    problem = lake_matches(db, project)
    applied = int(tables[0].get("rows") or 0)
    if applied != changes:
        problem = f"run applied {applied:,} changes, expected {changes:,}; " + problem
    return {"changes": changes, "seconds": round(m.seconds, 2), "changes_per_s": round(changes / m.seconds),
            "in_run_seconds": round(in_run, 2), "changes_per_s_in_run": round(changes / in_run) if in_run else None,
            "cpu_seconds": round(m.cpu_seconds, 1), "peak_rss_mb": round(m.peak_rss / 1e6),
            "cdc_commit_seconds_catch_up": "default (5)", "load_before": round(load, 1),
            "ok": not problem, "problem": problem}


def follow_command(project: Path) -> list[str]:
    """``lakeforge run --follow`` when the CLI has it, else the same through the Python API."""
    help_text = subprocess.run([LAKEFORGE, "run", "--help"], capture_output=True, text=True).stdout
    if "--follow" in help_text:
        return [LAKEFORGE, "run", "--follow", "--project", str(project)]
    return [sys.executable, "-c", f"from lakeforge import Project; Project({str(project)!r}).run(follow=True)"]


def writer(db: Db, rate: float, seconds: float, done: threading.Event, sent: list[int]) -> None:
    """One-row transactions at ``rate`` per second, each carrying its own commit time."""
    now = "clock_timestamp()" if db.kind == "postgres" else "NOW(6)"
    conn = db.connect(autocommit=False)
    cur = conn.cursor()
    start = time.perf_counter()
    i = 0
    try:
        while (due := start + i / rate) < start + seconds:
            time.sleep(max(0.0, due - time.perf_counter()))
            cur.execute(f"INSERT INTO {TABLE} VALUES ({DELAY_IDS + i}, 0, 1, 'delay', {now})")
            conn.commit()
            i += 1
    finally:
        sent.append(i)
        conn.close()
        done.set()


def seen_rows(uri: str) -> dict[int, dt.datetime]:
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    table = DeltaTable(uri).to_pyarrow_dataset().to_table(columns=["id", "committed_at"],
                                                          filter=pc.field("id") >= DELAY_IDS - 1)
    return dict(zip(table["id"].to_pylist(), table["committed_at"].to_pylist(), strict=True))


def delay(db: Db, project: Path, rate: float, seconds: float, commit_seconds: float) -> dict[str, Any]:
    from deltalake import DeltaTable

    from lakeforge import Project

    uri = Project(project).lake.uri(LAKE_TABLE)
    configure(db, project, commit_seconds)
    errors = project / "follow.stderr"
    child = subprocess.Popen(follow_command(project), stdout=subprocess.DEVNULL, stderr=errors.open("w"))
    import psutil

    tree = psutil.Process(child.pid)
    peak = 0
    delays: dict[int, float] = {}
    done, sent = threading.Event(), []
    try:
        db.txn(f"INSERT INTO {TABLE} VALUES ({DELAY_IDS - 1}, 0, 1, 'ready', NULL)")  # the child is streaming
        deadline = time.monotonic() + 60
        while DELAY_IDS - 1 not in seen_rows(uri):
            if child.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the follow run did not apply a first change within 60 s")
            time.sleep(0.1)
        thread = threading.Thread(target=writer, args=(db, rate, seconds, done, sent), daemon=True)
        thread.start()
        version = DeltaTable(uri).version()
        wait_until = None
        while wait_until is None or time.monotonic() < wait_until:
            peak = max(peak, _tree_rss(tree))
            current = DeltaTable(uri).version()
            if current != version:
                version = current
                now = time.time()
                for key, at in seen_rows(uri).items():
                    if key >= DELAY_IDS and key not in delays:
                        at = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
                        delays[key] = now - at.timestamp()
            if done.is_set() and wait_until is None:
                wait_until = time.monotonic() + commit_seconds + 30
            if (done.is_set() and len(delays) >= sent[0]) or child.poll() is not None:
                break
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(60)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    values = sorted(delays.values())
    missing = (sent[0] if sent else 0) - len(values)
    problem = "" if child.returncode == 0 else f"follow child exited {child.returncode}: {errors.read_text()[-300:]}"
    if missing:
        problem += f"; {missing} rows never seen in the lake"
    quantiles = statistics.quantiles(values, n=100) if len(values) > 1 else [float("nan")] * 99
    return {"delay_rows": len(values), "delay_rate_per_s": rate, "delay_seconds": seconds,
            "delay_changes_per_s": round(len(values) / seconds, 1),
            "delay_p50_s": round(quantiles[49], 3), "delay_p95_s": round(quantiles[94], 3),
            "delay_max_s": round(values[-1], 3) if values else None,
            "cdc_commit_seconds": commit_seconds, "follow_peak_rss_mb": round(peak / 1e6),
            "delay_ok": not problem, "delay_problem": problem.strip("; ")}


def bench_source(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    rows = args.changes
    with server(kind) as db, tempfile.TemporaryDirectory(prefix="lf-bench-cdc-") as tmp:
        log(f"{kind}: snapshot of {rows:,} rows")
        project = setup(db, Path(tmp), rows)
        result = throughput(db, project, args.changes, rows)
        log(f"  {kind}: {result}")
        log(f"{kind}: follow delay, {args.rate:.0f} one-row transactions/s for {args.seconds:.0f} s, "
            f"cdc_commit_seconds={args.commit_seconds}")
        result |= delay(db, project, args.rate, args.seconds, args.commit_seconds)
        problem = lake_matches(db, project)
        if problem:
            result["delay_ok"], result["delay_problem"] = False, f"after follow: {problem}"
        return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.cdc", description=__doc__.splitlines()[0])
    p.add_argument("--json", required=True, help="write the figures here")
    p.add_argument("--sources", default="postgres,mysql", help="default %(default)s")
    p.add_argument("--changes", type=int, default=200_000, help="changes for the throughput run (default %(default)s)")
    p.add_argument("--rate", type=float, default=200.0, help="delay writer: transactions/s (default %(default)s)")
    p.add_argument("--seconds", type=float, default=30.0, help="delay writer: how long (default %(default)s)")
    p.add_argument("--commit-seconds", type=float, default=0.5,
                   help="run.cdc_commit_seconds for the delay run (default %(default)s; lakeforge's own default, "
                        "5 s, used for the catch-up run, alone puts the delay near 5 s)")
    p.add_argument("--quick", action="store_true", help="20,000 changes, 10 s of writes")
    args = p.parse_args(argv)
    if args.quick:
        args.changes, args.seconds = min(args.changes, 20_000), min(args.seconds, 10.0)
    args.changes = max(10_000, args.changes // 10_000 * 10_000)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    figures: dict[str, Any] = {}
    for kind in [s.strip() for s in args.sources.split(",") if s.strip()]:
        try:
            figures[f"{kind}_apply"] = bench_source(kind, args)
        except Exception as exc:  # one source failing still reports the other
            log(f"{kind}: failed: {type(exc).__name__}: {exc}")
            figures[f"{kind}_apply"] = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    Path(args.json).write_text(json.dumps(figures, indent=1), encoding="utf-8")
    for case, f in figures.items():
        if "error" in f:
            print(f"{case}: failed: {f['error']}")
            continue
        rate, p95 = f["changes_per_s"], f["delay_p95_s"]
        print(f"{case}: {rate:,.0f} changes/s ({'met' if rate >= RATE_TARGET else 'NOT met'}: >= {RATE_TARGET:,}), "
              f"p50 delay {f['delay_p50_s']:.2f} s, p95 {p95:.2f} s ({'met' if p95 <= P95_TARGET else 'NOT met'}: "
              f"<= {P95_TARGET} s, cdc_commit_seconds={f['cdc_commit_seconds']}), "
              f"peak RSS {f['peak_rss_mb']} MB catch-up / {f['follow_peak_rss_mb']} MB follow, "
              f"check {'ok' if f['ok'] and f['delay_ok'] else 'WRONG: ' + f['problem'] + f['delay_problem']}")
    return 0 if all("error" not in f and f["ok"] and f["delay_ok"] for f in figures.values()) else 1


def _stop(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds the ``with server(...)`` blocks: the throwaway servers are removed


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _stop)
    sys.exit(main())
