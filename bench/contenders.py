"""The contenders: each loads one source table into ``out`` (or only fetches it), in its own process.

Each ``run_*`` function is what a user of that tool would write. It is called by :mod:`bench.worker` in a
fresh interpreter, so imports, start-up and the whole process tree's memory count. Every function returns
what it wrote where; :mod:`bench.verify` reads the output back and checks it against the source.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.data import MY_URL, PG_URL

BATCH = 100_000
CONTENDERS = ("raw", "lakeforge", "lakeforge-iceberg", "lakeforge-unpaced", "duckdb", "sling", "dlt", "pandas")
"""``lakeforge-iceberg``: the same ``lakeforge run`` into an Iceberg lake (SQLite catalog), beside Delta.
``lakeforge-unpaced``: the same run with the MariaDB reader's flow control off (``pace: never``; PostgreSQL:
the same as ``lakeforge``).
``duckdb``: DuckDB's postgres/mysql scanner into ``write_deltalake``; ``sling``: the Sling CLI to Parquet."""


@dataclass(frozen=True)
class Job:
    contender: str
    source: str
    """postgres or mysql"""
    table: str
    out: str
    """Output folder (empty before the run)."""
    batch: int = BATCH

    @property
    def url(self) -> str:
        return PG_URL if self.source == "postgres" else MY_URL


def run(job: Job) -> dict[str, Any]:
    return {"raw": run_raw, "duckdb": run_duckdb, "sling": run_sling, "dlt": run_dlt, "pandas": run_pandas}[
        job.contender
    ](job)


# -- 3. the raw driver: fetch into Arrow, write nothing ---------------------------------------------------
def run_raw(job: Job) -> dict[str, Any]:
    """ADBC (PostgreSQL) or connectorx (MariaDB) streaming ``SELECT *`` into Arrow batches, discarded."""
    import pyarrow.compute as pc

    rows, total, nbytes = 0, None, 0
    for batch in _raw_batches(job):
        rows += batch.num_rows
        nbytes += batch.nbytes
        part = pc.sum(batch.column("amount")).as_py()
        if part is not None:
            total = part if total is None else total + part
    return {"rows": rows, "amount_sum": f"{total:.2f}" if total is not None else "0.00", "arrow_bytes": nbytes}


def _raw_batches(job: Job) -> Any:
    sql = f"SELECT * FROM {job.table}"
    if job.source == "postgres":
        # ADBC's low-level API: its DB-API module imports pandas and polars (~0.5 s of CPU per process),
        # which a ceiling should not pay (lakeforge does not either; docs/benchmarks.md, Profiles)
        import adbc_driver_manager as adbc
        import adbc_driver_postgresql
        import pyarrow as pa

        with adbc_driver_postgresql.connect(job.url) as db, adbc.AdbcConnection(db) as conn, \
                adbc.AdbcStatement(conn) as stmt:
            stmt.set_sql_query(sql)
            handle, _ = stmt.execute_query()
            with pa.RecordBatchReader.from_stream(handle) as reader:
                for batch in reader:
                    yield _decimal_amount(batch)
    else:
        import connectorx as cx

        reader = cx.read_sql(job.url, sql, return_type="arrow_stream", batch_size=job.batch)
        yield from reader


def _decimal_amount(batch: Any) -> Any:
    """ADBC returns numeric as an opaque extension over text: cast amount so it can be summed."""
    import pyarrow as pa

    i = batch.schema.get_field_index("amount")
    col = batch.column(i)
    if isinstance(col, pa.ExtensionArray):
        col = col.storage
    return batch.set_column(i, "amount", col.cast(pa.decimal128(12, 2)))


# -- 4. lakeforge run, full mode --------------------------------------------------------------------------
def project_yaml(
    job: Job, *, mode: str = "full", partitions: int | None = None, fmt: str = "delta", pace: str | None = None
) -> str:
    kind = "postgres" if job.source == "postgres" else "mysql"
    pacing = f"\n    pace: {pace}" if pace and kind == "mysql" else ""
    cursor = "\n        cursor: [updated_at]" if mode == "incremental" else ""
    run_opts = f"\nrun:\n  batch_size: {job.batch}\n" + (f"  partitions: {partitions}\n" if partitions else "")
    return (
        f"sources:\n  src:\n    type: {kind}\n    url: {job.url}{pacing}\n    include: [{job.table}]\n"
        f"    tables:\n      {job.table}:\n        mode: {mode}{cursor}\n"
        f"lake:\n  path: ./lakehouse\n  format: {fmt}\n{run_opts}"
    )


def lakeforge_command(job: Job, *, mode: str = "full", fmt: str = "delta", pace: str | None = None) -> list[str]:
    """``lakeforge run`` on a one-table project, exactly as a user runs it (the CLI, JSON output)."""
    project = Path(job.out)
    project.mkdir(parents=True, exist_ok=True)
    if not (project / "lakeforge.yml").exists():
        (project / "lakeforge.yml").write_text(project_yaml(job, mode=mode, fmt=fmt, pace=pace), encoding="utf-8")
    exe = Path(sys.executable).with_name("lakeforge")
    return [str(exe), "run", "--project", str(project), "--output", "json"]


def lakeforge_table(job: Job) -> str:
    return str(Path(job.out) / "lakehouse" / "bronze" / f"src_{job.table}")


def command(job: Job) -> list[str]:
    """The command line that runs ``job`` in a fresh process."""
    import json

    if job.contender == "lakeforge":
        return lakeforge_command(job)
    if job.contender == "lakeforge-iceberg":
        return lakeforge_command(job, fmt="iceberg")
    if job.contender == "lakeforge-unpaced":
        return lakeforge_command(job, pace="never")
    spec = json.dumps({k: getattr(job, k) for k in ("contender", "source", "table", "out", "batch")})
    return [python_for(job.contender), "-m", "bench.worker", spec]


SIDE_ENV = Path(__file__).resolve().parent.parent / ".venv-contenders"
"""``make bench-env``: DuckDB 1.5.5 with its scanner extensions, Sling (bench/contenders-env.txt)."""
SIDE_CONTENDERS = ("duckdb", "sling")


def python_for(contender: str) -> str:
    """The interpreter a contender runs in: the side environment for DuckDB 1.5.5 and Sling."""
    if contender in SIDE_CONTENDERS:
        return str(SIDE_ENV / "bin" / "python")
    return sys.executable


# -- 2. dlt: sql_database source, fastest backend, filesystem destination as Delta ------------------------
def run_dlt(job: Job) -> dict[str, Any]:
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    # with lakeforge[airflow] installed, dlt would import Airflow for its secrets (slower start, ~/airflow created)
    os.environ.setdefault("PROVIDERS__ENABLE_AIRFLOW_SECRETS", "false")
    os.environ["DLT_DATA_DIR"] = str(Path(job.out) / "dlt_data")
    import dlt
    from dlt.sources.sql_database import sql_table

    cx_url = job.url
    sa_url = job.url.replace("postgresql://", "postgresql+psycopg://").replace("mysql://", "mysql+pymysql://")
    resource = sql_table(
        credentials=sa_url,
        table=job.table,
        chunk_size=job.batch,
        reflection_level="full_with_precision",
        backend="connectorx",
        backend_kwargs={"conn": cx_url, "return_type": "arrow_stream", "batch_size": job.batch},
    )
    lake = Path(job.out) / "lake"
    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{job.source}",
        destination=dlt.destinations.filesystem(bucket_url=lake.as_uri()),
        dataset_name="bronze",
        pipelines_dir=str(Path(job.out) / "dlt_pipelines"),
    )
    info = pipeline.run(resource, table_format="delta", write_disposition="replace")
    info.raise_on_failed_jobs()
    return {"delta": str(lake / "bronze" / job.table)}


# -- 1. the classic script: pandas.read_sql over SQLAlchemy, then to_parquet ------------------------------
def run_pandas(job: Job) -> dict[str, Any]:
    """``read_sql`` in chunks (server-side cursor) and ``to_parquet`` per chunk: the memory-safe form."""
    import pandas as pd
    import sqlalchemy as sa

    sa_url = job.url.replace("postgresql://", "postgresql+psycopg://").replace("mysql://", "mysql+pymysql://")
    engine = sa.create_engine(sa_url)
    folder = Path(job.out) / "parquet"
    folder.mkdir(parents=True, exist_ok=True)
    with engine.connect().execution_options(stream_results=True) as conn:
        for i, chunk in enumerate(pd.read_sql(sa.text(f"SELECT * FROM {job.table}"), conn, chunksize=job.batch)):
            chunk.to_parquet(folder / f"part-{i:05d}.parquet", index=False)
    engine.dispose()
    return {"parquet": str(folder)}


# -- 5. DuckDB's scanner extensions: ATTACH the database, stream SELECT * into write_deltalake --------------
def duckdb_extension(name: str) -> Path:
    """The extension file shipped by the ``duckdb-extension-<name>`` wheel (DuckDB cannot download here)."""
    import duckdb

    module = __import__(f"duckdb_extension_{name}")
    folder = Path(module.__file__).parent / "extensions" / f"v{duckdb.__version__}"
    return folder / f"{name}.duckdb_extension"


def run_duckdb(job: Job) -> dict[str, Any]:
    """The short script of issue #14: the postgres (parallel, ctid ranges in one snapshot) or mysql scanner,
    ``fetch_record_batch`` into the same ``write_deltalake`` every Delta contender uses."""
    import duckdb
    from deltalake import write_deltalake

    con = duckdb.connect(config={"extension_directory": str(Path(job.out) / "extensions")})
    con.execute("SET TimeZone = 'UTC'")  # timestamptz leaves DuckDB in the session's zone
    kind = "postgres" if job.source == "postgres" else "mysql"
    con.execute(f"INSTALL '{duckdb_extension(kind)}'")  # from the wheel's file: copied, no download
    con.execute(f"LOAD {kind}")
    if job.source == "postgres":
        con.execute(f"ATTACH '{job.url}' AS src (TYPE postgres, READ_ONLY)")
        table = f"src.public.{job.table}"
    else:
        con.execute(f"ATTACH 'host=127.0.0.1 port=3306 user=root database={_database(job.url)}' AS src "
                    "(TYPE mysql, READ_ONLY)")
        table = f"src.{job.table}"
    reader = con.execute(f"SELECT * FROM {table}").fetch_record_batch(job.batch)
    path = str(Path(job.out) / "delta")
    write_deltalake(path, reader, mode="overwrite")
    return {"delta": path}


def _database(url: str) -> str:
    return url.rsplit("/", 1)[1]


# -- 6. Sling (Go binary from PyPI sling-linux-amd64) to Parquet, offline -----------------------------------
def sling_command(job: Job, home: Path) -> tuple[list[str], dict[str, str]]:
    """Sling writes Parquet through the DuckDB CLI, which it would download with its extensions: point it at
    the ``duckdb-cli`` wheel's binary and at httpfs/json installed from their wheels into a private HOME."""
    import duckdb_cli
    import sling_linux_amd64

    duck = Path(duckdb_cli.__file__).parent / "duckdb"
    home.mkdir(parents=True, exist_ok=True)
    ext = ";".join(f"INSTALL '{duckdb_extension(n)}'" for n in ("httpfs", "json"))
    import subprocess

    subprocess.run([str(duck), "-c", ext], env={**os.environ, "HOME": str(home)}, check=True, capture_output=True)
    version = subprocess.run([str(duck), "-c", "PRAGMA version"], capture_output=True, text=True, check=True)
    env = {**os.environ, "HOME": str(home), "SLING_HOME_DIR": str(home / "sling"), "DUCKDB_PATH": str(duck),
           "DUCKDB_USE_INSTALLED_EXTENSIONS": "true", "DUCKDB_VERSION": _duck_version(version.stdout),
           "SRC": job.url + ("?sslmode=disable" if job.source == "postgres" else "")}
    stream = f"public.{job.table}" if job.source == "postgres" else f"{_database(job.url)}.{job.table}"
    target = Path(job.out) / "parquet" / f"{job.table}.parquet"
    cmd = [sling_linux_amd64.SLING_BIN, "run", "--src-conn", "SRC", "--src-stream", stream,
           "--tgt-object", target.as_uri()]
    return cmd, env


def _duck_version(pragma: str) -> str:
    import re

    found = re.search(r"v(\d+\.\d+\.\d+)", pragma)
    return found.group(1) if found else ""


def run_sling(job: Job) -> dict[str, Any]:
    import subprocess

    cmd, env = sling_command(job, Path(job.out) / "home")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"sling failed: {done.stderr.strip()[-400:] or done.stdout.strip()[-400:]}")
    return {"parquet": str(Path(job.out) / "parquet")}
