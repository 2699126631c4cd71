"""The fixed cost of a run: ``python -m bench.fixed_cost [-n 5] [--formats delta,iceberg] [--sources postgres,mysql]
[--before SRC]``.

``lakeforge run -o json`` on a one-row table (``fixed_cost_one`` in the bench database of PostgreSQL or
MariaDB), one project per source and lake format, each run a fresh process. Prints the CPU seconds (user +
system of the child) and the wall time of every run and the medians. With ``--before /work/main/src`` every
run is paired with the same run on that source tree (``PYTHONPATH``), alternating (before-after, then
after-before), so both see the same load. The figures in docs/benchmarks.md ("Fixed cost of a run") came
from it. Each run adds events to the project's run history, which the next run pays for on Iceberg (see
docs/benchmarks.md): compare runs of equal history.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.data import MY_URL, PG_URL

TABLE = "fixed_cost_one"


URLS = {"postgres": PG_URL, "mysql": MY_URL}


def prepare(source: str) -> None:
    if source == "postgres":
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id int PRIMARY KEY, v text)")
            conn.execute(f"INSERT INTO {TABLE} VALUES (1, 'a') ON CONFLICT DO NOTHING")
        return
    import pymysql

    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", database=MY_URL.rsplit("/", 1)[1])
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id int PRIMARY KEY, v text)")
            cur.execute(f"INSERT IGNORE INTO {TABLE} VALUES (1, 'a')")
        conn.commit()
    finally:
        conn.close()


def project(work: Path, fmt: str, source: str = "postgres") -> Path:
    folder = work / source / fmt
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lakeforge.yml").write_text(
        f"sources:\n  src:\n    type: {source}\n    url: {URLS[source]}\n    include: [{TABLE}]\n"
        f"    tables:\n      {TABLE}:\n        mode: full\n"
        f"lake:\n  path: ./lakehouse\n  format: {fmt}\n",
        encoding="utf-8",
    )
    return folder


def run_once(folder: Path, src: str | None) -> tuple[float, float]:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "lakeforge", "run", "-p", str(folder), "-o", "json"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=5, help="runs per format (and per tree)")
    p.add_argument("--formats", default="delta,iceberg")
    p.add_argument("--sources", default="postgres", help="postgres, mysql or both (comma-separated)")
    p.add_argument("--before", help="a lakeforge source tree (its src folder) to pair every run with")
    p.add_argument("--work", default="/tmp/lakeforge-fixed-cost")
    args = p.parse_args()
    trees: list[tuple[str, str | None]] = [("after", None)]
    if args.before:
        trees.insert(0, ("before", args.before))
    for source in args.sources.split(","):
        prepare(source)
        for fmt in args.formats.split(","):
            cpu: dict[str, list[float]] = {name: [] for name, _ in trees}
            walls: dict[str, list[float]] = {name: [] for name, _ in trees}
            for i in range(args.n):
                for name, src in trees if i % 2 == 0 else trees[::-1]:
                    folder = project(Path(args.work) / name, fmt, source)
                    seconds, wall = run_once(folder, src)
                    cpu[name].append(seconds)
                    walls[name].append(wall)
                    load = os.getloadavg()[0]
                    print(f"{source} {fmt} {name}: cpu {seconds:.2f} s, wall {wall:.2f} s (load {load:.1f})")
            for name, values in cpu.items():
                print(
                    f"{source} {fmt} {name}: median cpu {statistics.median(values):.2f} s, "
                    f"wall {statistics.median(walls[name]):.2f} s over {len(values)} runs"
                )


if __name__ == "__main__":
    main()
