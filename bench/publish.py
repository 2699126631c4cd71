"""``python -m bench.publish``: publishing a gold table from the lake into PostgreSQL and MariaDB, lakeforge against
pandas ``to_sql(method="multi")``, dlt's ``sqlalchemy`` destination and plain batched multi-row INSERTs (the
bulk path lakeforge did not choose for MariaDB), each in a fresh process, each checked afterwards (row count
and ``sum(amount)`` in the target equal the lake's). Results: ``bench/results/publish.json`` and ``.md``.

    python -m bench.publish --rows 1000000 --repetitions 2
    python -m bench.publish --worker CONTENDER TARGET LAKE_DIR URL   (one measured run; used by the runner)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import textwrap
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

TABLE = "gold.bench_sales"
TARGET_TABLE = "bench_sales"
CONTENDERS = ["lakeforge", "pandas", "dlt", "insert"]
PG_ADMIN = os.environ.get("LAKEFORGE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
MY = ("127.0.0.1", 3306)
DB = "lf_bench_publish"


# -- data ------------------------------------------------------------------------------------------------
def make_lake(folder: Path, rows: int) -> None:
    """A gold-like table: key, two dimension keys, a product code, an exact amount, a UTC time, a note, a flag."""
    import numpy as np
    import pyarrow as pa

    from lakeforge.lake.delta import DeltaLake

    shutil.rmtree(folder, ignore_errors=True)
    lake = DeltaLake(folder)
    rng = np.random.default_rng(7)
    chunk = 500_000

    def batches() -> Any:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            cents = rng.integers(100, 10_000_000, n)
            unscaled = np.zeros((n, 2), dtype=np.int64)  # decimal128's little-endian 128-bit unscaled value
            unscaled[:, 0] = cents
            yield pa.record_batch({
                "id": pa.array(np.arange(start, start + n, dtype=np.int64)),
                "customer_key": pa.array(rng.integers(1, 100_000, n).astype(np.int32)),
                "product_code": pa.array([f"S{v:04d}_{v % 97:02d}" for v in rng.integers(0, 10_000, n)]),
                "amount": pa.Array.from_buffers(pa.decimal128(18, 2), n, [None, pa.py_buffer(unscaled.tobytes())]),
                "ordered_at": pa.array(1_600_000_000_000_000 + cents * 1000, pa.timestamp("us", tz="UTC")),
                "note": pa.array([f"order note {v} with some text" for v in cents]),
                "shipped": pa.array(cents % 3 == 0),
            })

    first = next(iter(batches()))
    lake.write(TABLE, batches(), schema=first.schema, mode="overwrite")


def fresh_targets() -> dict[str, str]:
    import psycopg
    import pymysql

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")
    my = pymysql.connect(host=MY[0], port=MY[1], user="root", autocommit=True)
    with my.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DB}")
        cur.execute(f"CREATE DATABASE {DB} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    my.close()
    return {"postgres": PG_ADMIN.rsplit("/", 1)[0] + f"/{DB}", "mysql": f"mysql://root@{MY[0]}:{MY[1]}/{DB}"}


def truth(lake_dir: Path) -> tuple[int, Decimal]:
    from lakeforge.lake.delta import DeltaLake

    table = DeltaLake(lake_dir).read(TABLE)
    import pyarrow.compute as pc

    return table.num_rows, pc.sum(table.column("amount")).as_py()


def target_truth(target: str, url: str) -> tuple[int, Decimal]:
    sql = f"SELECT count(*), sum(CAST(amount AS DECIMAL(18,2))) FROM {TARGET_TABLE}"  # pandas stores it as text
    if target == "postgres":
        import psycopg

        with psycopg.connect(url) as conn:
            count, total = conn.execute(sql).fetchone()  # type: ignore[misc]
    else:
        import pymysql

        conn = pymysql.connect(host=MY[0], port=MY[1], user="root", database=DB)
        with conn.cursor() as cur:
            cur.execute(sql)
            count, total = cur.fetchone()  # type: ignore[misc]
        conn.close()
    return int(count), Decimal(total)


# -- contenders (each runs in its own process) -----------------------------------------------------------
def run_lakeforge(target: str, lake_dir: Path, url: str) -> None:
    from lakeforge import Project

    project = lake_dir.parent / "project"
    project.mkdir(exist_ok=True)
    (project / "lakeforge.yml").write_text(textwrap.dedent(f"""\
        lake: {{path: {lake_dir}}}
        publish:
          t: {{type: {target}, url: "{url}", tables: ["{TABLE}"], options: {{{TABLE}: {{primary_key: [id]}}}}}}
        """))
    [result] = Project(project).publish(force=True)
    if result.status != "published":
        raise SystemExit(result.error)


def _engine(target: str, url: str) -> Any:
    import sqlalchemy

    return sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1)
                                    .replace("mysql://", "mysql+pymysql://", 1) + ("?charset=utf8mb4"
                                                                                   if target == "mysql" else ""))


def run_pandas(target: str, lake_dir: Path, url: str) -> None:
    from lakeforge.lake.delta import DeltaLake

    frame = DeltaLake(lake_dir).read(TABLE).to_pandas()
    frame.to_sql(TARGET_TABLE, _engine(target, url), if_exists="replace", index=False, method="multi",
                 chunksize=5_000)  # 7 columns x 5,000 rows: PostgreSQL takes at most 65,535 parameters


def run_dlt(target: str, lake_dir: Path, url: str) -> None:
    import dlt

    from lakeforge.lake.delta import DeltaLake

    os.environ["DLT_DATA_DIR"] = str(lake_dir.parent / "dlt")
    os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    dataset = DeltaLake(lake_dir).dataset(TABLE)
    pipeline = dlt.pipeline(pipeline_name="bench_publish", destination=dlt.destinations.sqlalchemy(
        _engine(target, url).url.render_as_string(hide_password=False)), dataset_name=DB if target == "mysql"
        else "public", pipelines_dir=str(lake_dir.parent / "dlt"))
    pipeline.run(dataset.to_batches(batch_size=100_000), table_name=TARGET_TABLE, write_disposition="replace")


def run_insert(target: str, lake_dir: Path, url: str) -> None:
    """Batched multi-row INSERT through the driver (5,000 rows a statement): the alternative bulk path."""
    from lakeforge.lake.delta import DeltaLake
    from lakeforge.serve.config import PublishTarget
    from lakeforge.serve.destinations import create_destination
    from lakeforge.serve.publish import plan

    lake = DeltaLake(lake_dir)
    dest = create_destination("t", PublishTarget(type=target, url=url))
    dataset = lake.dataset(TABLE)
    with dest:
        spec = plan(dest, lake, TABLE, TARGET_TABLE, dest.config, None, 0, dataset.schema)
        conn = dest.conn  # type: ignore[attr-defined]
        q = '"' if target == "postgres" else "`"
        with conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {TARGET_TABLE}")
            cur.execute(dest._ddl(spec, TARGET_TABLE))  # type: ignore[attr-defined]
            cols = ", ".join(f"{q}{c}{q}" for c in spec.names)
            for batch in dataset.to_batches(batch_size=5_000):
                rows = [tuple(r.values()) for r in batch.to_pylist()]
                marks = "(" + ", ".join(["%s"] * len(spec.names)) + ")"
                cur.execute(f"INSERT INTO {TARGET_TABLE} ({cols}) VALUES " + ", ".join([marks] * len(rows)),
                            [v for row in rows for v in row])
        if target == "postgres":
            conn.commit() if not conn.autocommit else None


def worker(contender: str, target: str, lake_dir: Path, url: str) -> int:
    started = time.perf_counter()
    try:
        {"lakeforge": run_lakeforge, "pandas": run_pandas, "dlt": run_dlt, "insert": run_insert}[contender](
            target, lake_dir, url)
    except BaseException as exc:  # one short line: the runner does not read a huge traceback (a full pipe blocks)
        print(json.dumps({"error": f"{type(exc).__name__}: {str(exc)[:300]}"}))
        return 1
    print(json.dumps({"seconds": time.perf_counter() - started}))
    return 0


# -- runner ----------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.publish", description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--targets", default="postgres,mysql")
    p.add_argument("--contenders", default=",".join(CONTENDERS))
    p.add_argument("--repetitions", "-r", type=int, default=1)
    p.add_argument("--work", default="/tmp/lakeforge-bench-publish")
    p.add_argument("--results", default="bench/results")
    p.add_argument("--worker", nargs=4, metavar=("CONTENDER", "TARGET", "LAKE_DIR", "URL"))
    args = p.parse_args(argv)
    if args.worker:
        c, t, lake_dir, url = args.worker
        return worker(c, t, Path(lake_dir), url)
    from bench.measure import measure

    work = Path(args.work)
    lake_dir = work / "lake"
    print(f"making a {args.rows:,}-row lake table ...", file=sys.stderr)
    make_lake(lake_dir, args.rows)
    rows, total = truth(lake_dir)
    runs: list[dict[str, Any]] = []
    for rep in range(args.repetitions):
        for target in args.targets.split(","):
            for contender in args.contenders.split(","):
                url = fresh_targets()[target]
                m = measure([sys.executable, "-m", "bench.publish", "--worker", contender, target, str(lake_dir), url],
                            timeout=3600)
                ok = m.returncode == 0 and target_truth(target, url) == (rows, total)
                runs.append({"target": target, "contender": contender, "repetition": rep, "ok": ok,
                             "seconds": round(m.seconds, 2), "rows_per_s": round(rows / m.seconds),
                             "peak_rss_mb": round(m.peak_rss / 2**20), "error": m.error})
                print(json.dumps(runs[-1]), file=sys.stderr)
    write(Path(args.results), args.rows, runs)
    return 0 if all(r["ok"] for r in runs) else 1


def write(folder: Path, rows: int, runs: list[dict[str, Any]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "publish.json").write_text(json.dumps({"rows": rows, "runs": runs}, indent=2))
    lines = [f"# Publishing {rows:,} rows from the lake (median of runs; fresh process each)", "",
             "| target | contender | ok | seconds | rows/s | peak RSS MB | x pandas |", "|---|---|---|---|---|---|---|"]
    for target in sorted({r["target"] for r in runs}):
        mine = [r for r in runs if r["target"] == target]
        med = {c: statistics.median(r["seconds"] for r in mine if r["contender"] == c)
               for c in dict.fromkeys(r["contender"] for r in mine)}
        for c, seconds in med.items():
            rss = max(r["peak_rss_mb"] for r in mine if r["contender"] == c)
            ok = all(r["ok"] for r in mine if r["contender"] == c)
            ratio = f"{med['pandas'] / seconds:.1f}x" if "pandas" in med else ""
            lines.append(f"| {target} | {c} | {'yes' if ok else 'NO'} | {seconds:.2f} | {rows / seconds:,.0f} | "
                         f"{rss} | {ratio} |")
    (folder / "publish.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
