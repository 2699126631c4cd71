"""Incremental figures: a run with nothing new, and a run after 1% of the rows changed (lakeforge only)."""

from __future__ import annotations

import shutil
import statistics
from pathlib import Path
from typing import Any

from bench import data
from bench.contenders import Job, lakeforge_command, lakeforge_table
from bench.measure import measure
from bench.verify import judge, read_back


def touch_one_percent(source: str, table: str, bucket: int) -> int:
    """Change ``amount`` and move ``updated_at`` past every cursor for rows with ``id % 100 = bucket``."""
    if source == "postgres":
        with data._pg(data.PG_URL) as conn:
            cur = conn.execute(
                f"UPDATE {table} SET amount = amount + 0.01, "
                f"updated_at = clock_timestamp() + (id % 1000) * interval '1 microsecond' WHERE id % 100 = {bucket}"
            )
            return int(cur.rowcount)
    conn = data._my()
    try:
        with conn.cursor() as cur:
            return int(cur.execute(
                f"UPDATE {table} SET amount = amount + 0.01, "
                f"updated_at = NOW(6) + INTERVAL (id % 1000) MICROSECOND WHERE id % 100 = {bucket}"
            ))
    finally:
        conn.close()


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
    changed, secs, rss, problems = 0, [], [], []
    for rep in range(repetitions):
        changed = touch_one_percent(source, table, (rep * 37 + 11) % 100)
        m = measure(cmd)
        if m.returncode != 0:
            return {"ok": False, "problem": f"1% run failed: {m.error}"}
        secs.append(m.seconds)
        rss.append(m.peak_rss)
        check = judge(read_back("lakeforge", {"delta": lakeforge_table(job)}, job.out), data.truth(source, table))
        if not check.ok:
            problems.append(check.problem)
    result = {
        "initial_seconds": round(first.seconds, 3),
        "noop_seconds": round(statistics.median(noops), 3),
        "noop_run_seconds": round(statistics.median(noop_runs), 3),
        "changed_rows": changed,
        "changed_seconds": round(statistics.median(secs), 3),
        "changed_peak_rss_mb": round(statistics.median(rss) / 1e6, 1),
        "ok": not problems,
        "problem": "; ".join(problems),
    }
    log(f"  incremental {source} {table}: {result}")
    shutil.rmtree(job.out, ignore_errors=True)
    return result
