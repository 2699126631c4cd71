"""``python -m bench.storage --json FILE``: the same loads into Delta and Iceberg, local and on object storage.

One run starts a throwaway SeaweedFS (S3 + Iceberg REST catalog, loopback only, ``tests/seaweed.py``) and,
for each lake (``delta-local``, ``delta-s3``, ``iceberg-local``, ``iceberg-s3``: Iceberg with its SQL catalog
in a local SQLite file, so local and S3 differ only in where the files go; ``iceberg-s3-rest`` with
SeaweedFS's REST catalog on request), in the same run and on the same data:

- **full load**: ``lakeforge run`` of the bench table ``narrow_<n>`` (``bench/data.py``) in a fresh process,
  wall time, rows/s and peak RSS; the lake's row count and ``sum(amount)`` checked against the source;
- **CDC**: a throwaway ``wal_level=logical`` PostgreSQL, a snapshot, then ``-r`` rounds of N changes
  (``bench/cdc.py``) each followed by one catch-up ``lakeforge run`` per lake, the lakes taking turns (each
  project has its own replication slot), median changes/s, the lake compared with the source row for row;
  micro-batches of ``--batch-changes`` changes so the CDC table ends in many small files;
- **maintenance**: the CDC table's data files and the time to read it whole (``Project.sql`` count + sum,
  best of three) before and after ``lakeforge maintain``, the rows checked equal.

Ratios: each S3 lake's rows/s (changes/s) over the same format's local figure; the target is >= 0.7.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.cdc import LAKE_TABLE, TABLE, Db, lake_matches, log, make_changes, server
from bench.measure import measure

ROOT = Path(__file__).resolve().parent.parent
LAKEFORGE = str(Path(sys.executable).parent / "lakeforge")
LAKES = ("delta-local", "delta-s3", "iceberg-local", "iceberg-s3")
S3_TARGET = 0.7


def lake_config(kind: str, project: Path, s3: Any) -> dict[str, Any]:
    """``lake:`` of a project for ``kind``; credentials come from the environment (``${S3_KEY}``)."""
    fmt = kind.split("-")[0]
    if kind.endswith("-local"):
        return {"path": "./lake", "format": fmt}
    storage = {
        "endpoint": s3.s3,
        "region": "us-east-1",
        "access_key_id": "${S3_KEY}",
        "secret_access_key": "${S3_SECRET}",
    }
    config: dict[str, Any] = {
        "path": f"s3://{s3.bucket}/{kind}-{secrets.token_hex(3)}",
        "format": fmt,
        "storage": storage,
    }
    if kind == "iceberg-s3":
        config["catalog"] = {"type": "sql", "uri": f"sqlite:///{project}/catalog.db"}
    elif kind == "iceberg-s3-rest":
        config["catalog"] = {"type": "rest", "uri": s3.iceberg, "credential": "${S3_KEY}:${S3_SECRET}"}
    return config


def write_project(project: Path, source: dict[str, Any], lake: dict[str, Any], run: dict[str, Any]) -> None:
    import yaml

    project.mkdir(parents=True, exist_ok=True)
    config = {"sources": {"src": source}, "lake": lake, "run": run}
    (project / "lakeforge.yml").write_text(yaml.safe_dump(config), encoding="utf-8")


def run(project: Path, *args: str) -> Any:
    m = measure([LAKEFORGE, *args, "--output", "json", "--project", str(project)], env=dict(os.environ), timeout=1800)
    if m.returncode != 0:
        raise RuntimeError(f"lakeforge {' '.join(args)} failed in {project.name}: {m.error}")
    return m


# -- full load ----------------------------------------------------------------------------------------------
def full_loads(kinds: list[str], rows: int, reps: int, work: Path, s3: Any) -> dict[str, Any]:
    from bench import data

    table = data.ensure("postgres", "narrow", rows, log=log)
    truth = data.truth("postgres", table)
    count, total = truth.rows, truth.amount_sum
    walls: dict[str, list[float]] = {k: [] for k in kinds}
    rss: dict[str, list[int]] = {k: [] for k in kinds}
    cpu: dict[str, list[float]] = {k: [] for k in kinds}
    for rep in range(reps):  # the lakes take turns, rotated each repetition (a busy spell hits them alike)
        for kind in kinds[rep % len(kinds) :] + kinds[: rep % len(kinds)]:
            project = work / f"full_{kind}_{rep}"
            source = {"type": "postgres", "url": data.PG_URL, "include": [table], "tables": {table: {"mode": "full"}}}
            write_project(project, source, lake_config(kind, project, s3), {"batch_size": 100_000})
            m = run(project, "run")
            problem = check_full(project, f"bronze.src_{table}", count, total)
            walls[kind].append(m.seconds)
            rss[kind].append(m.peak_rss)
            cpu[kind].append(m.cpu_seconds)
            log(
                f"  full {kind} rep {rep}: {m.seconds:.2f} s, {rows / m.seconds / 1e6:.2f} M rows/s, "
                f"{m.peak_rss / 1e6:.0f} MB, load {os.getloadavg()[0]:.1f}, {problem or 'ok'}"
            )
            if problem:
                raise RuntimeError(f"full load into {kind}: {problem}")
    results: dict[str, Any] = {}
    for kind in kinds:
        wall = statistics.median(walls[kind])
        results[kind] = {
            "rows": rows,
            "wall_s": round(wall, 2),
            "runs": reps,
            "rows_per_s": round(rows / wall),
            "peak_rss_mb": round(max(rss[kind]) / 1e6),
            "cpu_s": round(statistics.median(cpu[kind]), 2),
            "ok": True,
        }
    return results


def check_full(project: Path, name: str, count: int, total: str) -> str:
    from lakeforge import Project

    got = Project(project).sql(f"select count(*) as n, sum(amount) as s from {name}").to_pylist()[0]
    if got["n"] != count or str(got["s"]) != str(total):
        return f"lake has {got['n']} rows, sum {got['s']}; source {count}, {total}"
    return ""


# -- CDC and maintenance ------------------------------------------------------------------------------------
def cdc(
    kinds: list[str], rows: int, changes: int, batch_changes: int, reps: int, work: Path, s3: Any
) -> dict[str, Any]:
    """``reps`` rounds: N changes in the source, then each lake's catch-up run, the lakes taking turns (rotated
    each round, as the full loads); median per lake."""
    results: dict[str, Any] = {}
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
            write_project(project, source, lake_config(kind, project, s3), {"cdc_commit_changes": batch_changes})
            run(project, "run")  # the snapshot
            projects[kind] = project
        runs: dict[str, list[Any]] = {k: [] for k in kinds}
        for rep in range(reps):
            started = time.perf_counter()
            make_changes(db, changes, rows, first_block=rep * (changes // 10_000))
            log(f"  round {rep}: {changes:,} changes committed in {time.perf_counter() - started:.1f} s")
            for kind in kinds[rep % len(kinds) :] + kinds[: rep % len(kinds)]:
                m = run(projects[kind], "run")
                applied = int(m.output["tables"][0]["rows"] or 0)
                problem = lake_matches(db, projects[kind]) or ("" if applied == changes else f"applied {applied}")
                log(
                    f"  cdc {kind} round {rep}: {m.seconds:.2f} s, {changes / m.seconds:,.0f} changes/s, "
                    f"CPU {m.cpu_seconds:.2f} s, load {os.getloadavg()[0]:.1f}, {problem or 'ok'}"
                )
                if problem:
                    raise RuntimeError(f"CDC into {kind}: {problem}")
                runs[kind].append(m)
        for kind, project in projects.items():
            wall = statistics.median(m.seconds for m in runs[kind])
            results[kind] = {
                "changes": changes,
                "wall_s": round(wall, 2),
                "runs": reps,
                "changes_per_s": round(changes / wall),
                "peak_rss_mb": round(max(m.peak_rss for m in runs[kind]) / 1e6),
                "cpu_s": round(statistics.median(m.cpu_seconds for m in runs[kind]), 2),
                "maintain": maintained(project, db),
            }
    return results


def maintained(project: Path, db: Db) -> dict[str, Any]:
    """Files and read time of the CDC table before and after ``lakeforge maintain`` (rows checked equal)."""
    from lakeforge import Project

    read_before, rows_before = read_time(project)
    started = time.perf_counter()
    p = Project(project)
    (result,) = p.maintain([LAKE_TABLE])
    seconds = time.perf_counter() - started
    p.lake.close()
    read_after, rows_after = read_time(project)
    if rows_after != rows_before or lake_matches(db, project):
        raise RuntimeError(f"{project.name}: maintain changed the rows")
    return {
        "files_before": result.before.files,
        "files_after": result.after.files,
        "bytes_before": result.before.bytes,
        "bytes_after": result.after.bytes,
        "read_s_before": round(read_before, 3),
        "read_s_after": round(read_after, 3),
        "maintain_s": round(seconds, 2),
    }


def read_time(project: Path) -> tuple[float, Any]:
    from lakeforge import Project

    best, rows = float("inf"), None
    for _ in range(3):
        p = Project(project)  # a fresh lake each time: listing and metadata count, as for a new reader
        started = time.perf_counter()
        rows = p.sql(f"select count(*) as n, sum(amount) as s, sum(k) as k from {LAKE_TABLE}").to_pylist()
        best = min(best, time.perf_counter() - started)
        p.lake.close()
    return best, rows


# -- report ------------------------------------------------------------------------------------------------
def ratios(section: dict[str, Any], key: str) -> dict[str, float]:
    out = {}
    for kind, figures in section.items():
        local = section.get(kind.split("-")[0] + "-local")
        if not kind.endswith("-local") and local:
            out[kind] = round(figures[key] / local[key], 2)
    return out


def render(result: dict[str, Any]) -> str:
    lines = [
        f"Run {result['started']}, load average before {result['load']}; command: `{result['command']}`",
        "",
        "| lake | full load s | M rows/s | CPU s | peak RSS MB | CDC s | changes/s | CDC CPU s | CDC RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kind in result["lakes"]:
        f, c = result["full"].get(kind, {}), result["cdc"].get(kind, {})
        lines.append(
            f"| {kind} | {f.get('wall_s', '')} | {f.get('rows_per_s', 0) / 1e6:.2f} | {f.get('cpu_s', '')} | "
            f"{f.get('peak_rss_mb', '')} | {c.get('wall_s', '')} | {c.get('changes_per_s', 0):,} | "
            f"{c.get('cpu_s', '')} | {c.get('peak_rss_mb', '')} |"
        )
    lines += ["", "| S3 / local (same format) | full load | CDC | target >= 0.7 |", "|---|---:|---:|---|"]
    full, cdc_ = result["ratios"]["full"], result["ratios"]["cdc"]
    for kind in sorted(set(full) | set(cdc_)):
        met = all(v >= S3_TARGET for v in (full.get(kind, 1), cdc_.get(kind, 1)))
        lines.append(f"| {kind} | {full.get(kind, '')} | {cdc_.get(kind, '')} | {'yes' if met else '**no**'} |")
    lines += [
        "",
        "| CDC table, before -> after maintain | data files | MB | read s (count+sum, best of 3) | maintain s |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind in result["lakes"]:
        m = result["cdc"].get(kind, {}).get("maintain")
        if m:
            lines.append(
                f"| {kind} | {m['files_before']} -> {m['files_after']} | {m['bytes_before'] / 1e6:.1f} -> "
                f"{m['bytes_after'] / 1e6:.1f} | {m['read_s_before']} -> {m['read_s_after']} | "
                f"{m['maintain_s']} |"
            )
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def object_store() -> Iterator[Any]:
    sys.path.insert(0, str(ROOT))
    from tests.seaweed import seaweedfs

    with seaweedfs() as s3:
        os.environ.update(S3_KEY=s3.key, S3_SECRET=s3.secret)
        yield s3


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.storage", description=__doc__.splitlines()[0])
    p.add_argument("--json", required=True, help="write the figures here (and the table beside it as .md)")
    p.add_argument("--lakes", default=",".join(LAKES), help="default %(default)s (also: iceberg-s3-rest)")
    p.add_argument("--rows", type=int, default=1_000_000, help="full load rows (default %(default)s)")
    p.add_argument("--repetitions", "-r", type=int, default=2, help="full loads and CDC rounds per lake (median)")
    p.add_argument("--cdc-rows", type=int, default=100_000, help="CDC snapshot rows (default %(default)s)")
    p.add_argument("--changes", type=int, default=100_000, help="CDC changes (default %(default)s)")
    p.add_argument("--batch-changes", type=int, default=5_000, help="CDC changes per micro-batch (default %(default)s)")
    p.add_argument("--quick", action="store_true", help="100,000 rows, 20,000 changes, one repetition")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import datetime as dt

    args = parse_args(argv)
    if args.quick:
        args.rows, args.changes, args.cdc_rows, args.repetitions = 100_000, 20_000, 20_000, 1
    kinds = [k.strip() for k in args.lakes.split(",") if k.strip()]
    result: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "load": round(os.getloadavg()[0], 1),
        "lakes": kinds,
        "command": "python -m bench.storage " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    with tempfile.TemporaryDirectory(prefix="lf-bench-storage-") as tmp, object_store() as s3:
        work = Path(tmp)
        log(f"full loads of {args.rows:,} rows into {', '.join(kinds)}")
        result["full"] = full_loads(kinds, args.rows, args.repetitions, work, s3)
        log(f"CDC: {args.changes:,} changes into {', '.join(kinds)}")
        result["cdc"] = cdc(kinds, args.cdc_rows, args.changes, args.batch_changes, args.repetitions, work, s3)
    result["ratios"] = {"full": ratios(result["full"], "rows_per_s"), "cdc": ratios(result["cdc"], "changes_per_s")}
    Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
    text = render(result)
    Path(args.json).with_suffix(".md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
