"""``python -m bench.cdc_snapshot --rows N --reps R``: a MariaDB CDC table's initial snapshot read in one
process (the CDC reader's own transaction, pymysql) against range tasks on threads (``run.partitions`` 4, the
read-lock dance, connectorx; ``tasks-1``: one range task, which separates the reader's speed from the
parallelism), alternating in one run on one throwaway ROW-binlog server.

Each contender runs in a fresh child process (``lakeforge``'s ``Project.run`` on a new lake); the parent
reports wall seconds, the child's user+sys CPU seconds (``os.wait4``), its peak RSS, and the server's CPU
seconds over the same interval (``/proc/<mariadbd>/stat``); every load is checked (row count and
``sum(amount)`` equal the source's).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONTENDERS = ("one-process", "tasks-1", "tasks-4")


def child(port: int, lake: Path, contender: str) -> None:
    """One load (runs in the child process); prints rows and the lake's sum(amount)."""
    import yaml

    from lakeforge import Project
    from lakeforge.distributed.executor import ThreadExecutor
    from lakeforge.distributed.extract import DistributedExtractor

    lake.mkdir(parents=True)
    tasks = contender != "one-process"
    config = {
        "sources": {
            "src": {
                "type": "mysql",
                "url": f"mysql://root@127.0.0.1:{port}/bench",
                "include": [],
                "tables": {"ev": {"mode": "cdc"}},
            }
        },
        "lake": {"path": "./lake"},
        "run": {"partitions": int(contender.split("-")[1]) if tasks else 1, "parallel_min_rows": 0},
    }
    (lake / "lakeforge.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    project = Project(lake)
    if tasks:
        project.extractor = DistributedExtractor(ThreadExecutor(4))  # type: ignore[misc]
    result = project.run()
    assert result.ok, [r.error for r in result.tables]
    (row,) = project.sql("select count(*) n, sum(amount)::varchar s from bronze.src_ev").to_pylist()
    print(json.dumps({"rows": row["n"], "sum": row["s"]}))


def _server_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--child", nargs=3, metavar=("PORT", "LAKE", "CONTENDER"))
    args = parser.parse_args()
    if args.child:
        child(int(args.child[0]), Path(args.child[1]), args.child[2])
        return
    sys.path.insert(0, str(ROOT))
    import pymysql
    from tests.servers import mariadb_server

    with mariadb_server() as srv:
        conn = pymysql.connect(host="127.0.0.1", port=srv.port, user="root", autocommit=True)
        cur = conn.cursor()
        cur.execute("CREATE DATABASE bench")
        cur.execute("USE bench")
        cur.execute(
            "CREATE TABLE bench.ev (id bigint PRIMARY KEY, k int NOT NULL, amount decimal(12,2) NOT NULL, "
            "note varchar(64), at datetime(6))"
        )
        cur.execute(
            f"INSERT INTO bench.ev SELECT seq, seq % 1000, seq * 0.01, concat('row ', seq), "
            f"TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq SECOND FROM seq_1_to_{args.rows}"
        )
        cur.execute("SELECT count(*), sum(amount) FROM bench.ev")
        want = cur.fetchone()
        server_pid = int((srv.directory / "pid").read_text())
        runs: dict[str, list[dict[str, Any]]] = {c: [] for c in CONTENDERS}
        with tempfile.TemporaryDirectory() as work:
            for rep in range(args.reps):
                for contender in CONTENDERS if rep % 2 == 0 else CONTENDERS[::-1]:
                    lake = Path(work) / f"{contender}-{rep}"
                    cpu0, wall0 = _server_cpu(server_pid), time.perf_counter()
                    proc = subprocess.Popen(
                        [sys.executable, "-m", "bench.cdc_snapshot", "--child", str(srv.port), str(lake), contender],
                        cwd=ROOT,
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                    assert proc.stdout is not None
                    out = proc.stdout.read()
                    _, status, usage = os.wait4(proc.pid, 0)
                    wall = time.perf_counter() - wall0
                    got = json.loads(out.strip().splitlines()[-1])
                    ok = status == 0 and got["rows"] == want[0] and str(got["sum"]) == str(want[1])
                    runs[contender].append(
                        {
                            "wall_s": wall,
                            "cpu_s": usage.ru_utime + usage.ru_stime,
                            "rss_mb": usage.ru_maxrss / 1024,
                            "server_cpu_s": _server_cpu(server_pid) - cpu0,
                            "ok": ok,
                        }
                    )
        conn.close()
    print(f"{args.rows:,} rows, {args.reps} reps alternating, load average {os.getloadavg()}")
    print("| contender | wall s (median) | M rows/s | child CPU s | server CPU s | peak RSS MB | ok |")
    print("|---|---|---|---|---|---|---|")
    base = statistics.median(r["wall_s"] for r in runs["one-process"])
    for contender, rs in runs.items():
        wall = statistics.median(r["wall_s"] for r in rs)
        cpu, server = (statistics.median(r[k] for r in rs) for k in ("cpu_s", "server_cpu_s"))
        print(
            f"| {contender} | {wall:.2f} ({base / wall:.2f}x) | {args.rows / wall / 1e6:.2f} | "
            f"{cpu:.2f} | {server:.2f} | "
            f"{max(r['rss_mb'] for r in rs):.0f} | {all(r['ok'] for r in rs)} |"
        )


if __name__ == "__main__":
    main()
