"""What the results depend on: the machine, every contender's version, table sizes; the optional CDC figure."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import data

_NEEDS = {"raw": ["connectorx", "adbc_driver_postgresql"], "lakeforge": ["lakeforge"],
          "lakeforge-iceberg": ["lakeforge", "pyiceberg"], "lakeforge-unpaced": ["lakeforge"],
          "dlt": ["dlt", "sqlalchemy"], "pandas": ["pandas", "sqlalchemy"],
          "duckdb": ["duckdb", "duckdb_extension_postgres", "duckdb_extension_mysql"],
          "sling": ["sling_linux_amd64", "duckdb_cli", "duckdb_extension_httpfs", "duckdb_extension_json"]}
_PACKAGES = ["lakeforge", "deltalake", "pyiceberg", "pyarrow", "connectorx", "adbc-driver-postgresql", "psycopg",
             "pymysql",
             "dlt", "pandas", "sqlalchemy", "numpy", "psutil", "duckdb"]


def installed(contender: str) -> bool:
    from bench.contenders import SIDE_CONTENDERS, python_for

    if contender in SIDE_CONTENDERS:  # their own environment (make bench-env)
        probe = "import importlib.util, sys; sys.exit(any(importlib.util.find_spec(m) is None for m in sys.argv[1:]))"
        python = python_for(contender)
        return Path(python).exists() and subprocess.run([python, "-c", probe, *_NEEDS[contender]]).returncode == 0
    return all(importlib.util.find_spec(m) is not None for m in _NEEDS[contender])


def compile_bytecode(log: Any) -> None:
    """Compile the installed packages' bytecode once, as ``pip install`` does, lakeforge's own included.

    ``uv pip install`` (and ``PYTHONDONTWRITEBYTECODE``) leave none, and every fresh process would then
    compile pandas, pyarrow and friends from source: seconds of start-up that no real install pays.
    """
    import compileall
    import sysconfig

    import lakeforge

    started = __import__("time").perf_counter()
    compileall.compile_dir(sysconfig.get_paths()["purelib"], quiet=2, workers=os.cpu_count() or 1)
    for folder in lakeforge.__path__:  # an editable install (make install) is not under purelib
        compileall.compile_dir(folder, quiet=2, workers=os.cpu_count() or 1)
    log(f"bytecode compiled ({__import__('time').perf_counter() - started:.0f} s)")


def table_mb(source: str, table: str) -> float:
    """The table's size in the source (heap + TOAST, or InnoDB data length), in MB: the MB/s basis."""
    if source == "postgres":
        with data._pg(data.PG_URL) as conn:
            return float(conn.execute("SELECT pg_table_size(%s)", (table,)).fetchone()[0]) / 1e6
    conn = data._my()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT DATA_LENGTH FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
                        "AND TABLE_NAME = %s", (data.DATABASE, table))
            return float(cur.fetchone()[0]) / 1e6
    finally:
        conn.close()


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    found.update(_side_versions())
    try:
        with data._pg(data.PG_URL) as conn:
            found["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
        conn = data._my()
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            found["mariadb"] = cur.fetchone()[0]
        conn.close()
    except Exception as exc:  # noqa: BLE001 - versions are informative only
        found["servers"] = f"unknown ({exc})"
    return found


def _side_versions() -> dict[str, str]:
    """Versions in the DuckDB/Sling contenders' own environment (make bench-env)."""
    from bench.contenders import SIDE_CONTENDERS, python_for

    names = ["duckdb", "duckdb-extension-postgres", "duckdb-extension-mysql", "deltalake", "sling-linux-amd64",
             "duckdb-cli"]
    code = ("import importlib.metadata as m, json, sys\nout = {}\nfor n in sys.argv[1:]:\n"
            "    try: out[n] = m.version(n)\n    except m.PackageNotFoundError: pass\nprint(json.dumps(out))")
    python = python_for(SIDE_CONTENDERS[0])
    if not Path(python).exists():
        return {}
    done = subprocess.run([python, "-c", code, *names], capture_output=True, text=True, check=False)
    found: dict[str, str] = json.loads(done.stdout or "{}")
    return {f"{k} (contenders env)": v for k, v in found.items()}


def machine() -> str:
    import psutil

    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = psutil.virtual_memory().total / 2**30
    return f"{os.cpu_count()} cores ({model or platform.machine()}), {mem:.1f} GiB RAM, {platform.platform()}"


def describe(args: Any, started: str) -> dict[str, Any]:
    return {
        "started": started,
        "machine": machine(),
        "repetitions": args.repetitions,
        "long_run": args.long_run,
        "load": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
        "command": "python -m bench " + " ".join(sys.argv[1:]),
        "versions": versions(),
    }


def cdc_figures(args: Any, work: Path, log: Any) -> dict[str, Any]:
    """Run ``bench/cdc.py`` (written with the CDC feature) when it exists: ``python -m bench.cdc --json FILE``.

    It is expected to write ``{"<case>": {"changes_per_s": .., "delay_p50_s": .., "delay_p95_s": ..}}``.
    """
    if importlib.util.find_spec("bench.cdc") is None:
        log("CDC figures: bench/cdc.py does not exist yet, skipped")
        return {}
    out = work / "cdc.json"
    cmd = [sys.executable, "-m", "bench.cdc", "--json", str(out), "--sources", ",".join(args.sources_list)]
    if args.quick:
        cmd.append("--quick")
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not out.exists():
        log(f"CDC figures failed: {done.stderr.strip()[-500:]}")
        return {"cdc": {"error": (done.stderr.strip().splitlines() or ["no output"])[-1][:200]}}
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return result
