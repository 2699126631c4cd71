"""``python -m bench.cdc_replay``: the same pending CDC changes applied again and again, to compare code versions.

One throwaway server per source keeps N committed changes (``bench/cdc.py``'s table and mix) after a snapshot;
before each catch-up run the lake is restored from a copy and, on PostgreSQL, the slot from a copy taken
before the first run (``pg_copy_logical_replication_slot``), so every run applies exactly the same changes.
Variants alternate within each round: ``--variant NAME=SRC_DIR`` runs ``lakeforge`` with ``SRC_DIR`` first on
``PYTHONPATH`` (``after=src`` for the working tree; a ``git archive`` of another commit's ``src`` for
"before"). Each run's lake is checked against the source row for row. Prints one JSON line per run: wall s,
CPU s (user+sys of the process tree), changes per CPU second, peak RSS, load average.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.cdc import LAKEFORGE, _stop, lake_matches, make_changes, server, setup
from bench.measure import measure

SLOT, COPY = "lakeforge_src", "lakeforge_src_replay"


def _reset(db: Any, project: Path, saved: Path) -> None:
    shutil.rmtree(project / "lake", ignore_errors=True)
    shutil.copytree(saved, project / "lake")
    if db.kind == "postgres":
        db.query(f"SELECT pg_drop_replication_slot('{SLOT}')")
        db.query(f"SELECT pg_copy_logical_replication_slot('{COPY}', '{SLOT}')")


def run_source(kind: str, changes: int, variants: dict[str, str], rounds: int, spy: str = "") -> list[dict[str, Any]]:
    results = []
    with server(kind) as db, tempfile.TemporaryDirectory(prefix="lf-bench-replay-") as tmp:
        project = setup(db, Path(tmp), changes)
        make_changes(db, changes, changes)
        saved = Path(tmp) / "lake_saved"
        shutil.copytree(project / "lake", saved)
        if kind == "postgres":
            db.query(f"SELECT pg_copy_logical_replication_slot('{SLOT}', '{COPY}')")
        for r in range(rounds):
            for name, src in variants.items():
                if kind == "postgres" or r or name != next(iter(variants)):
                    _reset(db, project, saved)
                env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(src).resolve()), os.getcwd()])}
                load = os.getloadavg()[0]
                cmd = [LAKEFORGE, "run", "--output", "json", "--project", str(project)]
                if spy:  # py-spy's own CPU is in the figures then: profile only, do not compare
                    cmd = [
                        spy,
                        "record",
                        "--nonblocking",
                        "-r",
                        "200",
                        "-f",
                        "raw",
                        "--threads",
                        "-o",
                        f"{kind}_{name}_{r}.raw",
                        "--",
                        *cmd,
                    ]
                m = measure(cmd, env=env, timeout=900)
                tables = m.output.get("tables", [{}])
                applied = int(tables[0].get("rows") or 0)
                problem = m.error or lake_matches(db, project)
                if applied != changes:
                    problem = f"applied {applied}; {problem}"
                row = {
                    "source": kind,
                    "variant": name,
                    "round": r,
                    "wall_s": round(m.seconds, 2),
                    "cpu_s": round(m.cpu_seconds, 2),
                    "changes_per_cpu_s": round(changes / m.cpu_seconds),
                    "changes_per_s": round(changes / m.seconds),
                    "in_run_s": round(float(tables[0].get("seconds") or 0), 2),
                    "peak_rss_mb": round(m.peak_rss / 1e6),
                    "load": round(load, 1),
                    "ok": not problem,
                    "problem": problem[:200],
                }
                print(json.dumps(row), flush=True)
                results.append(row)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.cdc_replay", description=__doc__.splitlines()[0])
    p.add_argument("--sources", default="postgres,mysql")
    p.add_argument("--changes", type=int, default=200_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--variant", action="append", default=[], help="NAME=SRC_DIR (default after=src)")
    p.add_argument("--py-spy", default="", help="path of py-spy: record each run to <source>_<variant>_<round>.raw")
    args = p.parse_args(argv)
    variants = dict(v.split("=", 1) for v in args.variant) or {"after": "src"}
    ok = True
    for kind in [s.strip() for s in args.sources.split(",") if s.strip()]:
        ok &= all(
            r["ok"] for r in run_source(kind, args.changes // 10_000 * 10_000, variants, args.rounds, args.py_spy)
        )
    return 0 if ok else 1


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _stop)  # unwinds the ``with server(...)`` blocks: the servers are removed
    sys.exit(main())
