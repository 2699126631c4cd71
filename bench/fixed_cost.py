"""The fixed cost of a run: ``python -m bench.fixed_cost [-n 5] [--formats delta,iceberg] [--before SRC]``.

``lakeforge run -o json`` on a one-row PostgreSQL table (``fixed_cost_one`` in the bench database), one
project per lake format, each run a fresh process. Prints the CPU seconds (user + system of the child) and
the wall time of every run and the medians. With ``--before /work/main/src`` every run is paired with the same
run on that source tree (``PYTHONPATH``), alternating, so both see the same load. The figures in
docs/benchmarks.md ("Fixed cost of a run") came from it. Each run adds three events to the project's run
history, which the next run pays for on Iceberg (see docs/benchmarks.md): compare runs of equal history.
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

from bench.data import PG_URL

TABLE = "fixed_cost_one"


def prepare() -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id int PRIMARY KEY, v text)")
        conn.execute(f"INSERT INTO {TABLE} VALUES (1, 'a') ON CONFLICT DO NOTHING")


def project(work: Path, fmt: str) -> Path:
    folder = work / fmt
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lakeforge.yml").write_text(
        f"sources:\n  src:\n    type: postgres\n    url: {PG_URL}\n    include: [{TABLE}]\n"
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
    p.add_argument("--before", help="a lakeforge source tree (its src folder) to pair every run with")
    p.add_argument("--work", default="/tmp/lakeforge-fixed-cost")
    args = p.parse_args()
    prepare()
    trees: list[tuple[str, str | None]] = [("after", None)]
    if args.before:
        trees.insert(0, ("before", args.before))
    for fmt in args.formats.split(","):
        cpu: dict[str, list[float]] = {name: [] for name, _ in trees}
        for _ in range(args.n):
            for name, src in trees:
                folder = project(Path(args.work) / name, fmt)
                seconds, wall = run_once(folder, src)
                cpu[name].append(seconds)
                print(f"{fmt} {name}: cpu {seconds:.2f} s, wall {wall:.2f} s (load {os.getloadavg()[0]:.1f})")
        for name, values in cpu.items():
            print(f"{fmt} {name}: median cpu {statistics.median(values):.2f} s over {len(values)} runs")


if __name__ == "__main__":
    main()
