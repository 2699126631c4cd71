"""``python -m bench.endpoint``: the SQL endpoint's latency and throughput against running the same SQL in-process.

Small queries (a KPI, a grouped aggregate, a point lookup) are run N times each over one psycopg connection to
``lakeforge serve sql`` (a separate process, as a client sees it), and N times in-process, both with
``Project.sql`` (a fresh DuckDB over the lake per query, what ``lakeforge sql`` does) and with one persistent
DuckDB connection over the same views (what an endpoint session holds). Then one large result (every row) is
fetched both ways for rows/s. Writes ``bench/results/endpoint.json`` and ``.md``.

    python -m bench.endpoint --rows 200000 -n 200
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.publish import TABLE, make_lake

SMALL = {
    "kpi": f"SELECT sum(amount) AS revenue, count(*) AS n FROM {TABLE}",
    "group": f"SELECT customer_key % 10 AS bucket, sum(amount) AS revenue FROM {TABLE} GROUP BY 1 ORDER BY 1",
    "lookup": f"SELECT * FROM {TABLE} WHERE id = 4242",
}
LARGE = f"SELECT * FROM {TABLE}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": round(statistics.median(ordered) * 1000, 2),
            "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 2)}


def timed(run: Any, n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        run()
        out.append(time.perf_counter() - started)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.endpoint", description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("-n", type=int, default=200, help="runs of each small query")
    p.add_argument("--work", default="/tmp/lakeforge-bench-endpoint")
    p.add_argument("--results", default="bench/results")
    args = p.parse_args(argv)
    import psycopg

    from lakeforge import Project
    from lakeforge.engines.duckdb import connect

    work = Path(args.work)
    make_lake(work / "lake", args.rows)
    (work / "lakeforge.yml").write_text(f"lake: {{path: {work / 'lake'}}}\n")
    project = Project(work)
    port = free_port()
    lakeforge = str(Path(sys.executable).parent / "lakeforge")
    server = subprocess.Popen([lakeforge, "serve", "sql", "--port", str(port), "-p", str(work)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy())
    try:
        conn = _wait(psycopg, port)
        persistent = connect(project.lake)
        figures: dict[str, Any] = {"rows": args.rows, "n": args.n, "small": {}, "large": {}}
        for name, sql in SMALL.items():
            conn.execute(sql).fetchall()  # warm up
            figures["small"][name] = {
                "endpoint": percentiles(timed(lambda q=sql: conn.execute(q).fetchall(), args.n)),
                "in_process_fresh": percentiles(timed(lambda q=sql: project.sql(q), args.n)),
                "in_process_persistent": percentiles(timed(lambda q=sql: persistent.sql(q).fetchall(), args.n)),
            }
        for label, run in (("endpoint", lambda: conn.execute(LARGE).fetchall()),
                           ("in_process_fresh", lambda: project.sql(LARGE).to_pylist())):
            seconds = min(timed(run, 2))
            figures["large"][label] = {"seconds": round(seconds, 3), "rows_per_s": round(args.rows / seconds)}
        conn.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    write(Path(args.results), figures)
    return 0


def _wait(psycopg: Any, port: int) -> Any:
    deadline = time.monotonic() + 30
    while True:
        try:
            return psycopg.connect(f"postgresql://bench@127.0.0.1:{port}/lakeforge", autocommit=True)
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def write(folder: Path, figures: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "endpoint.json").write_text(json.dumps(figures, indent=2))
    lines = [f"# SQL endpoint vs in-process ({figures['rows']:,}-row table, {figures['n']} runs per query)", "",
             "| query | endpoint p50 / p95 ms | in-process, fresh DuckDB (lakeforge sql) p50 / p95 | in-process, "
             "persistent DuckDB p50 / p95 | endpoint p95 / fresh p95 |", "|---|---|---|---|---|"]
    for name, f in figures["small"].items():
        e, fr, pe = f["endpoint"], f["in_process_fresh"], f["in_process_persistent"]
        lines.append(f"| {name} | {e['p50_ms']} / {e['p95_ms']} | {fr['p50_ms']} / {fr['p95_ms']} | "
                     f"{pe['p50_ms']} / {pe['p95_ms']} | {e['p95_ms'] / fr['p95_ms']:.2f} |")
    lines += ["", "| every row | seconds | rows/s |", "|---|---|---|"]
    for label, f in figures["large"].items():
        lines.append(f"| {label} | {f['seconds']} | {f['rows_per_s']:,} |")
    (folder / "endpoint.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
