"""Where a full load's memory goes: ``python -m bench.memory --source mysql --table wide_10m``.

Runs ``lakeforge run`` on a one-table project *in this process* (the bench's project, ``bench.contenders``)
while a thread samples, every 0.25 s, the process RSS and the bytes held by pyarrow's memory pool
(``pa.total_allocated_bytes()``: the arrays lakeforge allocates; not the driver's or the Delta writer's
own allocations). Prints the peaks and a timeline; the figures in docs/benchmarks.md ("Profiles") came
from it. Environment variables such as ``ARROW_DEFAULT_MEMORY_POOL`` or ``MALLOC_ARENA_MAX`` apply as usual.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import shutil
import sys
import threading
import time
from pathlib import Path

from bench.contenders import Job, project_yaml


def sample(samples: list[tuple[float, int, int]], stop: threading.Event, started: float) -> None:
    import psutil

    proc = psutil.Process()
    while not stop.is_set():
        pa = sys.modules.get("pyarrow")
        pool = pa.total_allocated_bytes() if pa is not None and hasattr(pa, "total_allocated_bytes") else 0
        samples.append((time.perf_counter() - started, proc.memory_info().rss, pool))
        stop.wait(0.25)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.splitlines()[0])
    p.add_argument("--source", default="mysql", choices=["postgres", "mysql"])
    p.add_argument("--table", default="wide_10m")
    p.add_argument("--batch", type=int, default=100_000, help="run.batch_size; default %(default)s")
    p.add_argument("--work", default="/tmp/lakeforge-bench-memory")
    args = p.parse_args(argv)
    job = Job("lakeforge", args.source, args.table, args.work, batch=args.batch)
    shutil.rmtree(job.out, ignore_errors=True)
    Path(job.out).mkdir(parents=True)
    (Path(job.out) / "lakeforge.yml").write_text(project_yaml(job), encoding="utf-8")
    samples: list[tuple[float, int, int]] = []
    stop = threading.Event()
    started = time.perf_counter()
    sampler = threading.Thread(target=sample, args=(samples, stop, started), daemon=True)
    sampler.start()
    sys.argv = ["lakeforge", "run", "--project", job.out, "--output", "json"]
    code: object = 0
    try:
        runpy.run_module("lakeforge", run_name="__main__")
    except SystemExit as exc:
        code = exc.code
    stop.set()
    sampler.join()
    step = max(1, len(samples) // 30)
    print(
        json.dumps(
            {
                "source": args.source,
                "table": args.table,
                "batch": args.batch,
                "exit": code,
                "seconds": round(time.perf_counter() - started, 1),
                "peak_rss_mb": round(max(s[1] for s in samples) / 1e6),
                "peak_arrow_pool_mb": round(max(s[2] for s in samples) / 1e6),
                "env": {k: v for k, v in os.environ.items() if k.startswith(("ARROW_", "MALLOC_"))},
                "timeline_s_rss_pool_mb": [
                    (round(t, 1), round(r / 1e6), round(a / 1e6)) for t, r, a in samples[::step]
                ],
            }
        )
    )
    shutil.rmtree(job.out, ignore_errors=True)
    return 0 if code in (0, None) else 1


if __name__ == "__main__":
    sys.exit(main())
