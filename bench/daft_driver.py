"""``python -m bench.daft_driver``: what the driver holds when models run on Daft on a Ray cluster.

Two contenders build the same two models over the same Delta bronze table of ``--rows`` rows, each build in
a fresh driver process joined to one local Ray cluster (a head without CPUs and two worker nodes), contenders
alternating A B A B:

- ``driver`` (the path before issue #13's second step, kept as the fallback): lake tables reach Daft as Arrow
  read on the driver (``daft.from_arrow``) and a model's result comes back to the driver's DuckDB, which
  writes it;
- ``workers``: Daft's scan tasks read the pinned version's Parquet files on the workers and the table
  models' results are written by the workers as files, which the driver commits once with the checkpoint.

Models: ``silver.big`` (a ``table`` model keeping every row: its result is as big as its input) and
``gold.by_grp`` (an aggregate over it). Reported per build: the driver's peak RSS (its process tree), its
CPU seconds (user+sys), wall seconds, and the cluster's peak RSS above its idle level. Every build is
checked: ``silver.big`` has ``--rows`` rows and ``gold.by_grp``'s total equals the generated sum.

``--scenario scd2`` measures an SCD2 build instead: ``gold.dim`` (``materialized: scd2``, business key ``id``)
over every row of ``bronze.big``, built twice in one driver process (the first versions, then a diff where 10%
of the keys change and 1% are gone). Contenders: ``scd2-driver`` (the path before the SCD2 diff moved to the
workers: the model's result, the diff and the versions pass through the driver's DuckDB) and ``workers``
(the result staged as files, the diff run by Daft's workers, the dimension written by them and committed once).
Checked: the dimension's rows, its current rows, and the second build's opened and closed counts.

Runs inside a loopback-only network namespace (Ray listens on every interface): it re-executes itself under
``unshare -n`` with ``lo`` up. Results: ``bench/results/daft_driver.json``.
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
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MODELS = {
    "silver/big.sql": "select id, grp, amount, name, ts from bronze.big where amount >= 0",
    "gold/by_grp.sql": "select grp, count(*) as n, sum(amount) as total from silver.big group by all",
}
SCD2_HEADER = "/* lakeforge\nmaterialized: scd2\nunique_key: id\n*/\n"
SCD2_MODELS = [  # the first build, then the second: 10% of the names change, 1% of the keys are gone
    SCD2_HEADER + "select id, grp, amount, name from bronze.big",
    SCD2_HEADER + "select id, grp, amount, case when id % 10 = 0 then name || ' v2' else name end as name "
    "from bronze.big where id % 100 <> 1",
]
CONTENDERS = {"table": ("driver", "workers"), "scd2": ("scd2-driver", "workers")}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.daft_driver", description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=3_000_000)
    p.add_argument("--scenario", choices=sorted(CONTENDERS), default="table")
    p.add_argument("--repetitions", "-r", type=int, default=2)
    p.add_argument("--node-cpus", type=int, default=2)
    p.add_argument("--results", default=str(ROOT / "bench" / "results"))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    if os.environ.get("LAKEFORGE_IN_NETNS") != "1":
        inner = " ".join([sys.executable, "-m", "bench.daft_driver", *(argv or sys.argv[1:])])
        env = {**os.environ, "LAKEFORGE_IN_NETNS": "1", "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT)}
        sys.exit(subprocess.call(["unshare", "-n", "sh", "-c", f"ip link set lo up && exec {inner}"], env=env))
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from bench.scale import ray_cluster

    work = Path(tempfile.mkdtemp(prefix="lf-daft-driver-"))
    try:
        started = time.perf_counter()
        total = fill(work / "lake", args.rows)
        log(f"{args.rows:,} rows written in {time.perf_counter() - started:.0f} s; load {os.getloadavg()}")
        runs: list[dict[str, Any]] = []
        with ray_cluster(args.node_cpus) as (address, cluster_pids):
            for rep in range(args.repetitions):
                for mode in CONTENDERS[args.scenario]:
                    run = build(work, mode, address, cluster_pids, args.rows, total, args.scenario)
                    run["repetition"] = rep
                    runs.append(run)
                    mb = run["driver_peak_rss"] / 2**20, run["cluster_peak_rss"] / 2**20
                    log(
                        f"{mode:8} driver peak {mb[0]:6.0f} MB  cpu {run['cpu_seconds']:5.1f} s"
                        f"  wall {run['seconds']:5.1f} s  cluster +{mb[1]:5.0f} MB"
                        f"  load {run['load'][0]:.1f}  ok={run['ok']} {run['error']}"
                    )
    finally:
        subprocess.run(["rm", "-rf", str(work)], check=False)
    write(Path(args.results), args, runs)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def fill(lake: Path, rows: int) -> str:
    """``bronze.big`` in a Delta lake at ``lake``, written in 131,072-row batches; returns sum(amount)."""
    import numpy as np
    import pyarrow as pa

    from lakeforge.lake.delta import DeltaLake

    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("grp", pa.int32()),
            ("amount", pa.decimal128(14, 2)),
            ("name", pa.string()),
            ("ts", pa.timestamp("us", tz="UTC")),
        ]
    )
    step = 131_072

    def batches() -> Any:
        for start in range(0, rows, step):
            ids = np.arange(start, min(start + step, rows), dtype=np.int64)
            cents = (ids * 37) % 100_000
            yield pa.RecordBatch.from_arrays(
                [
                    pa.array(ids),
                    pa.array((ids % 100).astype(np.int32)),
                    pa.array(cents.astype(np.int32)).cast(pa.decimal128(14, 2)),
                    pa.array([f"customer {i % 50_000}" for i in ids.tolist()]),
                    pa.array(1_700_000_000_000_000 + ids * 1_000_000, pa.timestamp("us", tz="UTC")),
                ],
                schema=schema,
            )

    DeltaLake(str(lake)).write("bronze.big", batches(), schema=schema, mode="overwrite")
    ids = np.arange(rows, dtype=np.int64)
    return f"{Decimal(int(((ids * 37) % 100_000).sum())):.2f}"  # every amount is a whole number


def scd2_expected(rows: int) -> dict[str, int]:
    """What the two SCD2 builds leave: every key's first version, one more per changed key; current versions of
    the keys still there; the second build opens the changed keys and closes them and the gone ones."""
    changed, gone = len(range(0, rows, 10)), len(range(1, rows, 100))
    return {"dim_rows": rows + changed, "current": rows - gone, "opened": changed, "closed": changed + gone}


def build(
    work: Path, mode: str, address: str, cluster_pids: list[int], rows: int, total: str, scenario: str = "table"
) -> dict[str, Any]:
    from bench.measure import measure
    from bench.scale import tree_rss

    folder = work / f"p-{scenario}-{mode}"
    if scenario == "scd2":
        subprocess.run(["rm", "-rf", str(folder)], check=False)  # an SCD2 run starts from no dimension
    (folder / "models" / "silver").mkdir(parents=True, exist_ok=True)
    (folder / "models" / "gold").mkdir(parents=True, exist_ok=True)
    for name, text in MODELS.items() if scenario == "table" else ():
        (folder / "models" / name).write_text(text)
    lake = work / "lake" if scenario == "table" else folder / "lake"
    if scenario == "scd2":
        subprocess.run(["cp", "-r", str(work / "lake"), str(lake)], check=True)  # the dimension in its own lake
    (folder / "lakeforge.yml").write_text(
        f"lake: {{path: {lake}}}\nengine: {{type: ray, address: '{address}', transforms: daft}}\n"
    )
    idle = tree_rss(cluster_pids)
    peak = [idle]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], tree_rss(cluster_pids))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    load = os.getloadavg()
    measured = measure([sys.executable, "-m", "bench.daft_driver_run", str(folder), mode, scenario], timeout=1800)
    stop.set()
    sampler.join()
    out = measured.output
    if scenario == "scd2":
        ok = measured.returncode == 0 and out.get("scd2") == scd2_expected(rows)
    else:
        ok = measured.returncode == 0 and out.get("silver_rows") == rows and out.get("gold_total") == total
    return {
        "mode": mode,
        "rows": rows,
        "seconds": measured.seconds,
        "cpu_seconds": measured.cpu_seconds,
        "driver_peak_rss": measured.peak_rss,
        "cluster_peak_rss": max(0, peak[0] - idle),
        "load": load,
        "written_by": out.get("written_by"),
        "ok": ok,
        "error": measured.error,
    }


def write(folder: Path, args: argparse.Namespace, runs: list[dict[str, Any]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    name = "daft_driver.json" if args.scenario == "table" else f"daft_driver_{args.scenario}.json"
    (folder / name).write_text(json.dumps({"rows": args.rows, "scenario": args.scenario, "runs": runs}, indent=2))
    for mode in CONTENDERS[args.scenario]:
        rs = [r for r in runs if r["mode"] == mode]
        med = {k: statistics.median(r[k] for r in rs) for k in ("driver_peak_rss", "cpu_seconds", "seconds")}
        print(
            f"{mode}: driver peak RSS {med['driver_peak_rss'] / 2**20:.0f} MB, CPU {med['cpu_seconds']:.1f} s, "
            f"wall {med['seconds']:.1f} s (medians of {len(rs)}), all ok: {all(r['ok'] for r in rs)}"
        )


if __name__ == "__main__":
    main()
