"""``python -m bench``: lakeforge against pandas, dlt and the raw driver, on the same data, side by side.

For each source, table shape and size it generates the data (once), then runs every contender in turn in
a fresh process (the order rotates each repetition), reads each output back to check the row count and
``sum(amount)`` against the source, and writes ``latest.json`` and ``latest.md`` with medians, ratios and
the targets. ``--quick`` is a one-minute run on 100,000 rows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from bench import data, environment
from bench.contenders import CONTENDERS, Job, command
from bench.incremental import run_incremental
from bench.measure import measure
from bench.report import Run, judge_targets, summarise, write
from bench.verify import Check, judge, read_back

SIZES = {"1m": 1_000_000, "10m": 10_000_000, "100k": 100_000}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1m,10m", help="row counts: 1m,10m (or any integer); default %(default)s")
    p.add_argument("--shapes", default="narrow,wide", help="narrow,wide; default %(default)s")
    p.add_argument("--sources", default="postgres,mysql", help="postgres,mysql; default %(default)s")
    p.add_argument("--contenders", default=",".join(CONTENDERS), help="default %(default)s")
    p.add_argument("--repetitions", "-r", type=int, default=3, help="runs per contender; default %(default)s")
    p.add_argument("--long-run", type=float, default=150.0,
                   help="a contender whose first run takes longer is not repeated; default %(default)s s")
    p.add_argument("--no-incremental", action="store_true", help="skip the incremental figures")
    p.add_argument("--no-cdc", action="store_true", help="skip the CDC figures (bench/cdc.py)")
    p.add_argument("--render", action="store_true",
                   help="only rebuild latest.md from the runs recorded in --results/latest.json")
    p.add_argument("--no-compile", action="store_true", help="do not compile installed packages' bytecode first")
    p.add_argument("--timeout", type=float, default=900.0, help="kill a contender run after this many seconds")
    p.add_argument("--quick", action="store_true", help="100,000 rows, 2 repetitions: a one-minute check")
    p.add_argument("--results", default="bench/results", help="folder for latest.json / latest.md")
    p.add_argument("--work", default=os.environ.get("LAKEFORGE_BENCH_WORK", "/tmp/lakeforge-bench"),
                   help="scratch folder for outputs (deleted after each run)")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.repetitions = "100k", min(args.repetitions, 2)
    args.size_list = [SIZES.get(s.lower()) or int(s.replace("_", "")) for s in args.sizes.split(",") if s]
    for name in ("shapes", "sources", "contenders"):
        setattr(args, f"{name}_list", [s.strip() for s in getattr(args, name).split(",") if s.strip()])
    unknown = set(args.contenders_list) - set(CONTENDERS)
    if unknown:
        p.error(f"unknown contender(s) {', '.join(sorted(unknown))}; choose from {', '.join(CONTENDERS)}")
    return args


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        from bench.report import render

        print(render(Path(args.results)).read_text(encoding="utf-8"))
        return 0
    contenders = [c for c in args.contenders_list if environment.installed(c)]
    for missing in set(args.contenders_list) - set(contenders):
        log(f"skipping {missing}: not installed (make install; duckdb and sling: make bench-env)")
    if not args.no_compile:
        environment.compile_bytecode(log)
    work = Path(args.work)
    runs: list[Run] = []
    table_mb: dict[tuple[str, str], float] = {}
    figures: dict[str, Any] = {"incremental": {}, "cdc": {}}
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    for size in args.size_list:
        for source in args.sources_list:
            for shape in args.shapes_list:
                table = data.ensure(source, shape, size, log=log)
                table_mb[(source, table)] = environment.table_mb(source, table)
                runs += bench_table(source, table, contenders, args, work)
                if shape == "narrow" and not args.no_incremental and "lakeforge" in contenders:
                    figures["incremental"][f"{source} {table}"] = run_incremental(
                        source, table, work, args.repetitions, log)
    if not args.no_cdc:
        figures["cdc"] = environment.cdc_figures(args, work, log)
    meta = environment.describe(args, started)
    summaries = summarise(runs, table_mb)
    targets = judge_targets(summaries, figures)
    js, md = write(Path(args.results), runs, summaries, targets, figures, meta)
    print(md.read_text(encoding="utf-8"))
    log(f"wrote {js} and {md}")
    wrong = [s for s in summaries if not s.ok]
    return 1 if wrong and "lakeforge" in {s.contender for s in wrong} else 0


def bench_table(source: str, table: str, contenders: list[str], args: argparse.Namespace, work: Path) -> list[Run]:
    truth = data.truth(source, table)
    rows = truth.rows
    runs: list[Run] = []
    done_once: set[str] = set()
    for rep in range(args.repetitions):
        order = contenders[rep % len(contenders):] + contenders[: rep % len(contenders)]
        for contender in order:
            if contender in done_once:
                continue
            job = Job(contender, source, table, str(work / f"{contender}_{source}_{table}"))
            shutil.rmtree(job.out, ignore_errors=True)
            Path(job.out).mkdir(parents=True)
            load = os.getloadavg()[0]
            m = measure(command(job), timeout=args.timeout)
            if m.returncode == 0:
                check = judge(read_back(contender, m.output, job.out), truth)
            else:
                check = Check(0, "", "", False, f"failed: {m.error}")
            runs.append(Run(source, table, rows, contender, rep, round(m.seconds, 3), m.peak_rss, check.ok,
                            check.problem, check.amount_type, load, round(m.cpu_seconds, 2), _extra(m.output)))
            log(f"  {source} {table} {contender:9} rep {rep}: {m.seconds:7.2f} s (cpu {m.cpu_seconds:6.2f} s), "
                f"{rows / m.seconds / 1e6:5.2f} M rows/s, {m.peak_rss / 1e6:6.0f} MB, "
                f"{'ok' if check.ok else 'WRONG'} {check.problem} (load {load:.1f})")
            if m.seconds > args.long_run:
                done_once.add(contender)
            shutil.rmtree(job.out, ignore_errors=True)
    return runs


def _extra(output: dict[str, Any]) -> dict[str, Any]:
    if "tables" in output:  # lakeforge's own timing of the table load, without process start-up
        return {"run_seconds": output["tables"][0].get("seconds")}
    return {k: v for k, v in output.items() if k == "arrow_bytes"}


if __name__ == "__main__":
    sys.exit(main())
