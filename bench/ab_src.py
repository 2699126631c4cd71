"""A/B of two lakeforge source trees on one table, alternating fresh ``lakeforge run`` processes.

``python -m bench.ab_src --table wide_10m --reps 2 --before /tmp/before/src`` (``--before``: a tree exported
with ``git archive <commit> src | tar -x -C /tmp/before``; the other side is this checkout's ``src``). Each
run is measured as the bench measures (``bench.measure``: wall, CPU of the process tree, peak tree RSS) and
checked against the source (``bench.verify``). Prints one JSON line per run and the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from pathlib import Path

from bench.contenders import Job, lakeforge_command
from bench.data import truth
from bench.measure import measure
from bench.verify import judge, read_back


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.ab_src", description=__doc__.splitlines()[0])
    p.add_argument("--table", default="wide_10m")
    p.add_argument("--source", default="mysql", choices=["mysql", "postgres"])
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--before", required=True, help="the other source tree (a src folder)")
    p.add_argument("--work", default="/tmp/lakeforge-bench-ab")
    args = p.parse_args()
    trees = {"before": args.before, "after": str(Path(__file__).resolve().parent.parent / "src")}
    expected = truth(args.source, args.table)
    runs: list[dict[str, object]] = []
    for rep in range(args.reps):
        for variant in ("before", "after") if rep % 2 == 0 else ("after", "before"):
            out = f"{args.work}/{variant}_{args.table}"
            shutil.rmtree(out, ignore_errors=True)
            job = Job("lakeforge", args.source, args.table, out, batch=100_000)
            load = os.getloadavg()[0]
            m = measure(lakeforge_command(job), env=dict(os.environ, PYTHONPATH=trees[variant]), timeout=1800)
            check = judge(read_back("lakeforge", m.output, out), expected)
            run = {"variant": variant, "rep": rep, "wall": round(m.seconds, 2), "cpu": round(m.cpu_seconds, 2),
                   "rss_mb": m.peak_rss // 2**20, "load": round(load, 1), "ok": check.ok, "problem": check.problem,
                   "utc": time.strftime("%H:%M:%S", time.gmtime())}
            print(json.dumps(run), flush=True)
            runs.append(run)
            shutil.rmtree(out, ignore_errors=True)
    for variant in trees:
        mine = [r for r in runs if r["variant"] == variant]
        print(variant, {k: statistics.median(float(str(r[k])) for r in mine) for k in ("wall", "cpu", "rss_mb")})


if __name__ == "__main__":
    main()
