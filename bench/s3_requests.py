"""``python -m bench.s3_requests``: the object-store requests each ``lakeforge run`` makes on an S3 lake.

A throwaway SeaweedFS (``tests/seaweed.py``) behind a counting proxy (``bench/s3_proxy.py``); for each S3 lake
(``delta-s3``, ``iceberg-s3`` with its SQLite catalog, as ``bench/storage.py`` runs them):

- a full load of ``narrow_<rows>`` into a new lake, then the same load again (the steady state: the table and
  its run history exist);
- CDC: a snapshot run, ``--changes`` changes, one catch-up run in micro-batches of ``--batch-changes``.

Prints the requests of each run by operation and by object (Delta log, Iceberg metadata, data, run lock ...),
and their count per data commit. Counts, not times: the figures do not depend on the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench.cdc import TABLE, lake_matches, log, make_changes, server
from bench.storage import ROOT, check_full, lake_config, run, write_project


def counted(log_: Any, project: Path, *args: str) -> dict[str, Any]:
    from bench.s3_proxy import summary

    log_.take()
    m = run(project, *args)
    requests = log_.take()
    counts = summary(requests)
    return {
        "seconds": round(m.seconds, 2),
        "requests": len(requests),
        "ops": dict(counts["ops"].most_common()),
        "kinds": dict(counts["kinds"].most_common()),
        "output": m.output,
    }


def full(kind: str, rows: int, work: Path, s3: Any, proxy_log: Any) -> dict[str, Any]:
    from bench import data

    table = data.ensure("postgres", "narrow", rows, log=log)
    truth = data.truth("postgres", table)
    project = work / f"full_{kind}"
    source = {"type": "postgres", "url": data.PG_URL, "include": [table], "tables": {table: {"mode": "full"}}}
    write_project(project, source, lake_config(kind, project, s3), {"batch_size": 100_000})
    out = {}
    for label in ("first", "again"):
        out[label] = counted(proxy_log, project, "run")
        problem = check_full(project, f"bronze.src_{table}", truth.rows, truth.amount_sum)
        if problem:
            raise RuntimeError(f"{kind}: {problem}")
        out[label].pop("output")
        out[label]["data_commits"] = 1
    return out


def cdc(kinds: list[str], rows: int, changes: int, batch: int, work: Path, s3: Any, proxy_log: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with server("postgres") as db:
        db.txn(
            f"CREATE TABLE {TABLE} (id bigint PRIMARY KEY, k int NOT NULL, amount numeric(12,2) NOT NULL, "
            "note varchar(64), committed_at timestamptz)"
        )
        db.txn(
            f"INSERT INTO {TABLE} (id, k, amount, note) SELECT g, g % 1000, g * 0.01, concat('row ', g) "
            f"FROM {db.series(1, rows)}"
        )
        projects = {}
        for kind in kinds:
            project = work / f"cdc_{kind}"
            slot = "lf_" + kind.replace("-", "_")
            source = {
                "type": "postgres",
                "url": db.url,
                "include": [],
                "slot_name": slot,
                "tables": {TABLE: {"mode": "cdc"}},
            }
            write_project(project, source, lake_config(kind, project, s3), {"cdc_commit_changes": batch})
            snap = counted(proxy_log, project, "run")
            snap.pop("output")
            out[kind] = {"snapshot": snap}
            projects[kind] = project
        make_changes(db, changes, rows)
        for kind, project in projects.items():
            caught = counted(proxy_log, project, "run")
            applied = int(caught.pop("output")["tables"][0]["rows"] or 0)
            problem = lake_matches(db, project) or ("" if applied == changes else f"applied {applied}")
            if problem:
                raise RuntimeError(f"CDC into {kind}: {problem}")
            caught["data_commits"] = -(-changes // batch)
            out[kind]["catch_up"] = caught
    return out


def render(result: dict[str, Any]) -> str:
    lines = [f"command: `{result['command']}`", ""]
    runs = []
    for kind, f in result["full"].items():
        runs += [(f"{kind} full load, new lake", f["first"]), (f"{kind} full load again", f["again"])]
    for kind, c in result["cdc"].items():
        runs += [(f"{kind} CDC snapshot run", c["snapshot"]), (f"{kind} CDC catch-up", c["catch_up"])]
    lines += ["| run | s | requests | data commits | by operation |", "|---|---:|---:|---:|---|"]
    for label, r in runs:
        ops = ", ".join(f"{k} {v}" for k, v in r["ops"].items())
        lines.append(f"| {label} | {r['seconds']} | {r['requests']} | {r.get('data_commits', '')} | {ops} |")
    lines.append("")
    for label, r in runs:
        lines.append(f"{label}: " + ", ".join(f"{k} {v}" for k, v in r["kinds"].items()))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.s3_requests", description=__doc__.splitlines()[0])
    p.add_argument("--lakes", default="delta-s3,iceberg-s3")
    p.add_argument("--rows", type=int, default=1_000_000, help="full load rows (default %(default)s)")
    p.add_argument("--cdc-rows", type=int, default=20_000)
    p.add_argument("--changes", type=int, default=10_000)
    p.add_argument("--batch-changes", type=int, default=5_000)
    p.add_argument("--json", help="also write the counts here")
    args = p.parse_args(argv)
    kinds = [k.strip() for k in args.lakes.split(",") if k.strip()]
    sys.path.insert(0, str(ROOT))
    from tests.seaweed import seaweedfs

    from bench.s3_proxy import counting_proxy

    result: dict[str, Any] = {"command": "python -m bench.s3_requests " + " ".join(argv or sys.argv[1:])}
    with tempfile.TemporaryDirectory(prefix="lf-s3-requests-") as tmp, seaweedfs() as weed:
        os.environ.update(S3_KEY=weed.key, S3_SECRET=weed.secret)
        with counting_proxy(weed.s3, Path(tmp) / "requests.jsonl") as (url, proxy_log):
            s3 = SimpleNamespace(s3=url, bucket=weed.bucket, iceberg=weed.iceberg)
            result["full"] = {k: full(k, args.rows, Path(tmp), s3, proxy_log) for k in kinds}
            result["cdc"] = cdc(kinds, args.cdc_rows, args.changes, args.batch_changes, Path(tmp), s3, proxy_log)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
