"""``python -m bench.scale``: distributed extraction on a local Ray cluster beside the one-process path.

Runs inside a loopback-only network namespace (Ray listens on every interface): it re-executes itself under
``unshare -n`` with ``lo`` up, starts throwaway PostgreSQL and MariaDB servers there (the machine's own are
not reachable from the namespace), fills a table of ``--rows`` rows in each, starts a Ray cluster (a head
without CPUs and two worker nodes of ``--node-cpus`` CPUs), then loads the table in turn with:

- ``single``: ``engine: local``, ``run.partitions: 1`` (the default path: one reader thread + the writer)
- ``local-N``: ``engine: local``, ``run.partitions: N`` (N reader threads in one process, one writer)
- ``ray-N``: ``engine: ray``, ``run.partitions: N`` (N range tasks on the cluster, one commit)

each in a fresh driver process; it reports rows/s, the driver tree's peak RSS, the cluster's peak RSS during
the load (raylets and workers, above its idle level), each task's peak RSS and its own rate (rows/s of one
range task: the input of the throughput model in docs/scale-out.md). Results: ``bench/results/scale.json``
and ``scale.md``. Every load is checked: row count and sum(amount) equal the source's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--partitions", default="1,2,4")
    p.add_argument("--sources", default="postgres,mysql")
    p.add_argument("--node-cpus", type=int, default=2, help="CPUs of each of the two Ray worker nodes")
    p.add_argument("--repetitions", "-r", type=int, default=1)
    p.add_argument("--results", default=str(ROOT / "bench" / "results"))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    if os.environ.get("LAKEFORGE_IN_NETNS") != "1":
        inner = " ".join([sys.executable, "-m", "bench.scale", *(argv or sys.argv[1:])])
        env = {**os.environ, "LAKEFORGE_IN_NETNS": "1", "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT)}
        sys.exit(subprocess.call(["unshare", "-n", "sh", "-c", f"ip link set lo up && exec {inner}"], env=env))
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from tests.servers import mariadb_server, postgres_server

    runs: list[dict[str, Any]] = []
    with postgres_server(5432), mariadb_server(3306):
        sources = [s for s in args.sources.split(",") if s]
        for source in sources:
            started = time.perf_counter()
            fill(source, args.rows)
            log(f"{source}: {args.rows:,} rows generated in {time.perf_counter() - started:.0f} s")
        with ray_cluster(args.node_cpus) as (address, cluster_pids):
            for source in sources:
                for rep in range(args.repetitions):
                    for contender, parts in contenders(args.partitions):
                        run = load(source, contender, parts, address, cluster_pids, args.rows)
                        run["repetition"] = rep
                        runs.append(run)
                        mb = {k: run[k] / 2**20 for k in ("driver_peak_rss", "cluster_peak_rss")}
                        log(
                            f"{source} {contender:9} {run['rows_per_s'] / 1e6:5.2f} M rows/s  driver "
                            f"{mb['driver_peak_rss']:6.0f} MB  cluster +{mb['cluster_peak_rss']:6.0f} MB ok={run['ok']}"
                        )
    write(Path(args.results), args, runs)


def contenders(partitions: str) -> list[tuple[str, int]]:
    parts = [int(p) for p in partitions.split(",") if p]
    return [("single", 1), *[(f"local-{n}", n) for n in parts if n > 1], *[(f"ray-{n}", n) for n in parts]]


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def fill(source: str, rows: int) -> None:
    if source == "postgres":
        import psycopg

        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS big")
            conn.execute(
                "CREATE TABLE big (id bigint PRIMARY KEY, amount numeric(14,2) NOT NULL, qty integer, note text, "
                "made_at timestamptz)"
            )
            conn.execute(
                "INSERT INTO big SELECT g, (g % 1000) + 0.25, g % 50, 'note ' || g, "
                f"timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second' FROM generate_series(1, {rows}) g"
            )
            conn.execute("VACUUM ANALYZE big")
        return
    import pymysql

    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", autocommit=True)
    with conn.cursor() as cur:
        cur.execute("CREATE DATABASE IF NOT EXISTS bench")
        cur.execute("USE bench")
        cur.execute("DROP TABLE IF EXISTS bench.big")
        cur.execute(
            "CREATE TABLE bench.big (id bigint PRIMARY KEY, amount decimal(14,2) NOT NULL, qty int, "
            "note varchar(40), made_at datetime(6))"
        )
        for start in range(1, rows + 1, 1_000_000):
            cur.execute(
                "INSERT INTO bench.big SELECT seq, (seq % 1000) + 0.25, seq % 50, CONCAT('note ', seq), "
                "TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq SECOND "
                f"FROM seq_{start}_to_{min(start + 999_999, rows)}"
            )
        cur.execute("ANALYZE TABLE bench.big")
    conn.close()


class ray_cluster:  # noqa: N801 - a context manager used like a function
    def __init__(self, node_cpus: int) -> None:
        self.node_cpus = node_cpus

    def __enter__(self) -> tuple[str, list[int]]:
        import psutil
        from ray.cluster_utils import Cluster

        before = {p.pid for p in psutil.Process().children(recursive=True)}
        self.cluster = Cluster(
            initialize_head=True,
            head_node_args={"num_cpus": 0, "node_ip_address": "127.0.0.1", "include_dashboard": False},
        )
        for _ in range(2):
            self.cluster.add_node(num_cpus=self.node_cpus, node_ip_address="127.0.0.1")
        self.cluster.wait_for_nodes()
        pids = [p.pid for p in psutil.Process().children(recursive=False) if p.pid not in before]
        return str(self.cluster.address), pids

    def __exit__(self, *exc: object) -> None:
        self.cluster.shutdown()


def tree_rss(pids: list[int]) -> int:
    import psutil

    total, seen = 0, set()
    for pid in pids:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for p in procs:
            if p.pid in seen:
                continue
            seen.add(p.pid)
            try:
                total += p.memory_info().rss
            except psutil.Error:
                continue
    return total


def load(
    source: str, contender: str, parts: int, address: str, cluster_pids: list[int], rows: int
) -> dict[str, Any]:
    from bench.measure import measure

    folder = Path(tempfile.mkdtemp(prefix="lf-scale-"))
    pg, my = "postgresql://postgres@127.0.0.1:5432/postgres", "mysql://root@127.0.0.1:3306/bench"
    url = pg if source == "postgres" else my
    engine = f'engine: {{type: ray, address: "{address}", task_cpus: 0.5}}\n' if contender.startswith("ray") else ""
    (folder / "lakeforge.yml").write_text(
        f"sources:\n  src: {{type: {source}, url: \"{url}\", include: [big]}}\n"
        f"lake: {{path: ./lake}}\nrun: {{partitions: {parts}, parallel_min_rows: 0}}\n{engine}"
    )
    idle = tree_rss(cluster_pids)
    peak = [idle]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], tree_rss(cluster_pids))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    measured = measure([sys.executable, "-m", "bench.scale_run", str(folder)], timeout=1800)
    stop.set()
    sampler.join()
    out = measured.output
    ok = measured.returncode == 0 and out.get("rows") == rows and out.get("sum_amount") == expected_sum(rows)
    tasks = out.get("tasks", [])
    subprocess.run(["rm", "-rf", str(folder)], check=False)
    return {
        "source": source,
        "contender": contender,
        "partitions": parts,
        "rows": out.get("rows"),
        "seconds": measured.seconds,
        "load_seconds": out.get("seconds"),
        "rows_per_s": rows / measured.seconds,
        "driver_peak_rss": measured.peak_rss,
        "cluster_idle_rss": idle,
        "cluster_peak_rss": max(0, peak[0] - idle),
        "task_peak_rss_max": max((t["peak_rss"] for t in tasks), default=0),
        "task_rows_per_s": statistics.median(t["rows"] / t["seconds"] for t in tasks) if tasks else None,
        "ok": ok,
        "error": measured.error,
    }


def expected_sum(rows: int) -> str:
    """sum((g % 1000) + 0.25 for g in 1..rows), exactly."""
    from decimal import Decimal

    full = rows // 1000
    total = full * sum(range(1000)) + sum(g % 1000 for g in range(full * 1000 + 1, rows + 1))
    return f"{Decimal(total) + Decimal(rows) * Decimal('0.25'):.2f}"


def write(folder: Path, args: argparse.Namespace, runs: list[dict[str, Any]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scale.json").write_text(json.dumps({"args": vars(args), "runs": runs}, indent=2, default=str))
    lines = [
        f"# Scale-out: {args.rows:,} rows, {os.cpu_count()} cores shared by the databases, Ray and the driver",
        "",
        "| source | contender | M rows/s | vs single | driver peak RSS | cluster peak RSS (above idle) | "
        "task peak RSS | one task's M rows/s | ok |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for source in dict.fromkeys(r["source"] for r in runs):
        mine = [r for r in runs if r["source"] == source]
        base = statistics.median(r["rows_per_s"] for r in mine if r["contender"] == "single")
        for contender in dict.fromkeys(r["contender"] for r in mine):
            rs = [r for r in mine if r["contender"] == contender]
            rate = statistics.median(r["rows_per_s"] for r in rs)
            task_rate = [r["task_rows_per_s"] for r in rs if r["task_rows_per_s"]]
            one_task = f"{statistics.median(task_rate) / 1e6:.2f}" if task_rate else "-"
            lines.append(
                f"| {source} | {contender} | {rate / 1e6:.2f} | {rate / base:.2f}x | "
                f"{max(r['driver_peak_rss'] for r in rs) / 2**20:.0f} MB | "
                f"{max(r['cluster_peak_rss'] for r in rs) / 2**20:.0f} MB | "
                f"{max(r['task_peak_rss_max'] for r in rs) / 2**20:.0f} MB | {one_task} | {all(r['ok'] for r in rs)} |"
            )
    (folder / "scale.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
