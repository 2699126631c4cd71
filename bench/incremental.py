"""Incremental figures: a run with nothing new, and runs after 1% of the rows changed (lakeforge only).

Two kinds of 1% change: ``spread`` (``id % 100 = k``: every data file of the lake table holds changed rows)
and ``newest`` (the 1% highest ids, as when recent rows are edited: the changed keys sit in the last file).
Each 1% run is set beside the time of reading that 1% alone: the raw driver fetching the changed rows
(``updated_at >=`` the moment before the change) in a fresh process, ``python -m bench.incremental read``.
Alone: ``python -m bench.incremental run --table T [--source postgres] [-r 2]`` (T is changed: use a copy).
"""

from __future__ import annotations

import shutil
import statistics
from pathlib import Path
from typing import Any

from bench import data
from bench.contenders import Job, lakeforge_command, lakeforge_table
from bench.measure import measure
from bench.verify import judge, read_back


def touch_one_percent(source: str, table: str, bucket: int, *, kind: str = "spread") -> tuple[int, str]:
    """Change ``amount`` and move ``updated_at`` past every cursor for 1% of the rows: ``id % 100 = bucket``
    (spread) or the 1% highest ids (newest). Returns the count and the server's time just before the change."""
    rows = _where(source, table, bucket, kind)
    if source == "postgres":
        with data._pg(data.PG_URL) as conn:
            since = conn.execute("SELECT clock_timestamp()::text").fetchone()[0]
            cur = conn.execute(
                f"UPDATE {table} SET amount = amount + 0.01, "
                f"updated_at = clock_timestamp() + (id % 1000) * interval '1 microsecond' WHERE {rows}"
            )
            return int(cur.rowcount), str(since)
    conn = data._my()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT CAST(NOW(6) AS CHAR)")
            since = cur.fetchone()[0]
            return int(cur.execute(
                f"UPDATE {table} SET amount = amount + 0.01, "
                f"updated_at = NOW(6) + INTERVAL (id % 1000) MICROSECOND WHERE {rows}"
            )), str(since)
    finally:
        conn.close()


def _where(source: str, table: str, bucket: int, kind: str) -> str:
    if kind == "spread":
        return f"id % 100 = {bucket}"
    count = data.truth(source, table).rows
    return f"id > {count - count // 100}"  # ids are 1..count (bench/data.py)


def read_window(source: str, table: str, since: str) -> int:
    """The raw driver's fetch of the rows changed since ``since`` (what reading the 1% costs), discarded."""
    sql = f"SELECT * FROM {table} WHERE updated_at >= '{since}'"
    rows = 0
    if source == "postgres":
        import adbc_driver_manager as adbc
        import adbc_driver_postgresql
        import pyarrow as pa

        with adbc_driver_postgresql.connect(data.PG_URL) as db, adbc.AdbcConnection(db) as conn, \
                adbc.AdbcStatement(conn) as stmt:
            stmt.set_sql_query(sql)
            handle, _ = stmt.execute_query()
            with pa.RecordBatchReader.from_stream(handle) as reader:
                rows = sum(batch.num_rows for batch in reader)
    else:
        import connectorx as cx

        rows = sum(b.num_rows for b in cx.read_sql(data.MY_URL, sql, return_type="arrow_stream", batch_size=100_000))
    return rows


def run_incremental(source: str, table: str, work: Path, repetitions: int, log: Any) -> dict[str, Any]:
    job = Job("lakeforge", source, table, str(work / f"inc_{source}_{table}"))
    shutil.rmtree(job.out, ignore_errors=True)
    cmd = lakeforge_command(job, mode="incremental")
    first = measure(cmd)
    if first.returncode != 0:
        return {"ok": False, "problem": f"initial run failed: {first.error}"}
    noops, noop_runs = [], []
    for _ in range(repetitions):
        m = measure(cmd)
        status = m.output.get("tables", [{}])[0].get("status")
        if m.returncode != 0 or status != "unchanged":
            return {"ok": False, "problem": f"no-op run: status {status}, {m.error}"}
        noops.append(m.seconds)
        noop_runs.append(m.output["tables"][0]["seconds"])
    result: dict[str, Any] = {
        "initial_seconds": round(first.seconds, 3),
        "noop_seconds": round(statistics.median(noops), 3),
        "noop_run_seconds": round(statistics.median(noop_runs), 3),
    }
    problems: list[str] = []
    for kind in ("spread", "newest"):
        figures = _one_percent_runs(job, cmd, source, table, repetitions, kind, problems)
        if "problem" in figures:
            return {"ok": False, "problem": figures["problem"]}
        result.update({f"{kind}_{k}": v for k, v in figures.items()})
    result.update(changed_rows=result["spread_rows"], changed_seconds=result["spread_seconds"],
                  changed_peak_rss_mb=result["spread_peak_rss_mb"], ok=not problems, problem="; ".join(problems))
    log(f"  incremental {source} {table}: {result}")
    shutil.rmtree(job.out, ignore_errors=True)
    return result


def _one_percent_runs(job: Job, cmd: list[str], source: str, table: str, repetitions: int, kind: str,
                      problems: list[str]) -> dict[str, Any]:
    """1% changes of one kind, each followed by the lakeforge run and the raw read of the changed rows
    (alternating, so both see the same load); medians."""
    import sys

    runs: list[Any] = []
    reads: list[Any] = []
    changed = 0
    for rep in range(repetitions):
        changed, since = touch_one_percent(source, table, (rep * 37 + 11) % 100, kind=kind)
        m = measure(cmd)
        if m.returncode != 0:
            return {"problem": f"1% {kind} run failed: {m.error}"}
        runs.append(m)
        r = measure([sys.executable, "-m", "bench.incremental", "read", source, table, since])
        if r.returncode != 0 or r.output.get("rows") != changed:
            return {"problem": f"1% {kind} read: {r.output.get('rows')} rows, {changed} changed {r.error}"}
        reads.append(r)
        check = judge(read_back("lakeforge", {"delta": lakeforge_table(job)}, job.out), data.truth(source, table))
        if not check.ok:
            problems.append(f"{kind}: {check.problem}")

    def med(values: list[float]) -> float:
        return round(statistics.median(values), 3)

    run_s, read_s = med([m.seconds for m in runs]), med([r.seconds for r in reads])
    run_cpu, read_cpu = med([m.cpu_seconds for m in runs]), med([r.cpu_seconds for r in reads])
    return {
        "rows": changed,
        "seconds": run_s,
        "in_run_seconds": med([m.output["tables"][0]["seconds"] for m in runs]),
        "cpu_seconds": run_cpu,
        "peak_rss_mb": round(statistics.median([m.peak_rss for m in runs]) / 1e6, 1),
        "read_seconds": read_s,
        "read_cpu_seconds": read_cpu,
        "ratio": round(run_s / read_s, 2) if read_s else None,
        "cpu_ratio": round(run_cpu / read_cpu, 2) if read_cpu else None,
        "lake_files": _files(job),
    }


def _files(job: Job) -> int:
    from deltalake import DeltaTable

    return len(DeltaTable(lakeforge_table(job)).file_uris())


def main() -> None:
    import argparse
    import json

    p = argparse.ArgumentParser(description="incremental figures, or the raw read of a window (used by them)")
    sub = p.add_subparsers(dest="command", required=True)
    read = sub.add_parser("read")
    read.add_argument("source")
    read.add_argument("table")
    read.add_argument("since")
    run = sub.add_parser("run")
    run.add_argument("--source", default="postgres")
    run.add_argument("--table", required=True)
    run.add_argument("-r", "--repetitions", type=int, default=2)
    run.add_argument("--work", default="/tmp/lakeforge-bench-incremental")
    args = p.parse_args()
    if args.command == "read":
        print(json.dumps({"rows": read_window(args.source, args.table, args.since)}))
        return
    figures = run_incremental(args.source, args.table, Path(args.work), args.repetitions, print)
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
