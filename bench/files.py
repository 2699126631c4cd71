"""``python -m bench.files``: a CSV file and a JSON-lines file into a Delta table, lakeforge (``type: files``)
against DuckDB (``read_csv``/``read_json`` + ``write_deltalake``), Polars (``scan_csv``/``scan_ndjson`` +
``write_delta``) and pandas (``read_csv``/``read_json`` + ``write_deltalake``), each in a fresh process, the
order rotating each repetition; every output is read back (row count and ``sum(amount)`` must equal the
generated data's). Every contender gets the same types: ``amount`` decimal(12,2), ``ordered_at`` a UTC
timestamp. Results: ``bench/results/files.json`` and ``files.md`` (rows/s, ratios, peak RSS).

    python -m bench.files --mb 1024 --repetitions 2
    python -m bench.files --worker CONTENDER FORMAT FILE OUT   (one measured run; used by the runner)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

CONTENDERS = ["lakeforge", "duckdb", "polars", "pandas"]
FORMATS = ["csv", "jsonl"]
ROW_BYTES = {"csv": 72, "jsonl": 130}
"""About this many bytes per generated row, to size the files."""


# -- data ------------------------------------------------------------------------------------------------
def make_file(path: Path, fmt: str, rows: int) -> Decimal:
    """Orders: id, customer, amount (2 decimals), ordered_at (UTC, ISO 8601), status; returns sum(amount)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rng = np.random.default_rng(11)
    total = 0
    chunk = 1_000_000
    statuses = np.array(["shipped", "pending", "cancelled", "returned"])
    with open(path, "w", encoding="utf-8") as out:
        if fmt == "csv":
            out.write("id,customer,amount,ordered_at,status\n")
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            ids = np.arange(start, start + n)
            cents = rng.integers(100, 10_000_000, n)
            total += int(cents.sum())
            seconds = 1_700_000_000 + rng.integers(0, 30_000_000, n)
            when = pc.strftime(pa.array(seconds * 1_000_000, pa.timestamp("us", tz="UTC")), "%Y-%m-%dT%H:%M:%SZ")
            customer = np.char.add("customer-", (ids % 50_000).astype(str))
            whole = np.char.add((cents // 100).astype(str), ".")
            amount = np.char.add(whole, np.char.zfill((cents % 100).astype(str), 2))
            status = statuses[rng.integers(0, 4, n)]
            when_list = when.to_pylist()
            fields = zip(ids, customer, amount, when_list, status, strict=True)
            if fmt == "csv":
                lines = [f"{i},{c},{a},{w},{s}\n" for i, c, a, w, s in fields]
            else:
                lines = [f'{{"id": {i}, "customer": "{c}", "amount": {a}, "ordered_at": "{w}", "status": "{s}"}}\n'
                         for i, c, a, w, s in fields]
            out.write("".join(lines))
    return Decimal(total) / 100


def make_copies(path: Path, fmt: str, rows: int, copies: int) -> Decimal:
    """``copies`` copies of one generated part (ids repeat), one header; returns sum(amount)."""
    if copies <= 1:
        return make_file(path, fmt, rows)
    part = path.with_name("part-" + path.name)
    total = make_file(part, fmt, rows // copies)
    with open(part, "rb") as f:
        header = f.readline() if fmt == "csv" else b""
        body = f.read()
    part.unlink()
    with open(path, "wb") as out:
        out.write(header)
        for _ in range(copies):
            out.write(body)
    return total * copies


# -- workers (one contender, one run, in its own process) ------------------------------------------------
def worker(contender: str, fmt: str, file: str, out: str) -> dict[str, Any]:
    started = time.perf_counter()
    globals()[f"_run_{contender}"](fmt, Path(file), Path(out))
    return {"seconds": time.perf_counter() - started}


def _run_lakeforge(fmt: str, file: Path, out: Path) -> None:
    """``lakeforge run`` (the command, in this process: what a user runs, its process settings included)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "drops").mkdir()
    (out / "drops" / file.name).symlink_to(file)
    (out / "lakeforge.yml").write_text(
        "sources:\n  orders:\n    type: files\n    path: drops\n"
        f"    format: {'csv' if fmt == 'csv' else 'json'}\n"
        '    schema: {amount: "decimal(12,2)", ordered_at: timestamp}\n'
        "lake: {path: lake}\n"
    )
    from lakeforge.cli.main import cli

    sys.argv = ["lakeforge", "run", "--project", str(out), "--output", "json"]
    try:
        cli()
    except SystemExit as exc:
        if exc.code:
            raise SystemExit(f"lakeforge run failed: exit {exc.code}") from None


def _target(out: Path) -> str:
    return str(out / "lake" / "bronze" / "orders")


def _run_duckdb(fmt: str, file: Path, out: Path) -> None:
    import duckdb
    from deltalake import write_deltalake

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    columns = (
        "{'id': 'BIGINT', 'customer': 'VARCHAR', 'amount': 'DECIMAL(12,2)', 'ordered_at': 'TIMESTAMPTZ', "
        "'status': 'VARCHAR'}"
    )
    if fmt == "csv":
        rel = con.sql(f"SELECT * FROM read_csv('{file}', header = true, columns = {columns})")
    else:
        rel = con.sql(f"SELECT * FROM read_json('{file}', format = 'newline_delimited', columns = {columns})")
    reader = rel.to_arrow_reader(131_072)
    import pyarrow as pa

    utc = pa.timestamp("us", tz="UTC")
    schema = pa.schema([f.with_type(utc) if pa.types.is_timestamp(f.type) else f for f in reader.schema])

    def batches() -> Any:
        for batch in reader:
            yield batch.cast(schema)

    write_deltalake(_target(out), pa.RecordBatchReader.from_batches(schema, batches()), mode="overwrite")


def _run_polars(fmt: str, file: Path, out: Path) -> None:
    import polars as pl

    schema = {"id": pl.Int64, "customer": pl.String, "amount": pl.Decimal(12, 2),
              "ordered_at": pl.Datetime("us", "UTC"), "status": pl.String}
    if fmt == "csv":
        frame = pl.scan_csv(file, schema=schema).collect(engine="streaming")
    else:  # scan_ndjson cannot build a Decimal from a JSON number: read its text, then cast exactly
        text = {**schema, "amount": pl.String, "ordered_at": pl.String}
        frame = (
            pl.scan_ndjson(file, schema=text)
            .with_columns(
                pl.col("amount").cast(pl.Decimal(12, 2)),
                pl.col("ordered_at").str.to_datetime(time_unit="us", time_zone="UTC"),
            )
            .collect(engine="streaming")
        )
    frame.write_delta(_target(out), mode="overwrite")


def _run_pandas(fmt: str, file: Path, out: Path) -> None:
    import pandas as pd
    from deltalake import write_deltalake

    if fmt == "csv":
        frame = pd.read_csv(file, dtype={"customer": "string", "status": "string", "amount": "string"})
    else:
        frame = pd.read_json(file, lines=True, dtype={"amount": "string"})
    frame["amount"] = frame["amount"].astype(str).map(Decimal)
    frame["ordered_at"] = pd.to_datetime(frame["ordered_at"], utc=True)
    write_deltalake(_target(out), frame, mode="overwrite")


# -- runner ----------------------------------------------------------------------------------------------
def read_back(out: Path) -> tuple[int, Decimal]:
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    table = DeltaTable(_target(out)).to_pyarrow_table(columns=["amount"])
    total = pc.sum(table.column("amount")).as_py()
    return table.num_rows, Decimal(total)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.files", description=__doc__.splitlines()[0])
    p.add_argument("--mb", type=int, default=256, help="size of each generated file in MB; default %(default)s")
    p.add_argument("--formats", default="csv,jsonl")
    p.add_argument("--contenders", default=",".join(CONTENDERS))
    p.add_argument("--repetitions", "-r", type=int, default=2)
    p.add_argument("--copies", type=int, default=1, help="the file is N copies of one part (a 5 GB file is quick)")
    p.add_argument("--work", default=os.environ.get("LAKEFORGE_BENCH_WORK", "/tmp/lakeforge-bench-files"))
    p.add_argument("--results", default="bench/results")
    p.add_argument("--worker", nargs=4, metavar=("CONTENDER", "FORMAT", "FILE", "OUT"))
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return 0
    from bench.measure import measure

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    contenders = [c for c in args.contenders.split(",") if c]
    results: list[dict[str, Any]] = []
    for fmt in [f for f in args.formats.split(",") if f]:
        rows = args.mb * 1_000_000 // ROW_BYTES[fmt] // args.copies * args.copies
        data = work / f"orders-{args.mb}mb.{fmt}"
        expected = make_copies(data, fmt, rows, args.copies)
        size = data.stat().st_size
        print(f"{fmt}: {rows:,} rows, {size / 1e6:.0f} MB", file=sys.stderr, flush=True)
        for rep in range(args.repetitions):
            order = contenders[rep % len(contenders):] + contenders[: rep % len(contenders)]
            for contender in order:
                out = work / f"out-{contender}"
                shutil.rmtree(out, ignore_errors=True)
                cmd = [sys.executable, "-m", "bench.files", "--worker", contender, fmt, str(data), str(out)]
                m = measure(cmd, timeout=1800)
                count, total = read_back(out) if m.returncode == 0 else (0, Decimal(0))
                ok = m.returncode == 0 and count == rows and total == expected
                results.append({"format": fmt, "contender": contender, "rep": rep, "rows": rows, "bytes": size,
                                "seconds": round(m.seconds, 2), "cpu_seconds": round(m.cpu_seconds, 2),
                                "load": round(os.getloadavg()[0], 1), "peak_rss_mb": round(m.peak_rss / 2**20),
                                "ok": ok, "error": m.error or ("" if ok else f"read back {count} rows, {total}")})
                print(f"  {contender:9} {m.seconds:7.2f} s {m.cpu_seconds:7.2f} cpu s {m.peak_rss / 2**20:6.0f} MB "
                      f"load {os.getloadavg()[0]:.1f} {'ok' if ok else 'WRONG'}",
                      file=sys.stderr, flush=True)
                shutil.rmtree(out, ignore_errors=True)
        data.unlink()
    write_results(Path(args.results), args, results)
    return 0


def write_results(folder: Path, args: argparse.Namespace, results: list[dict[str, Any]]) -> None:
    """files.json/.md; the runs of formats not measured this time are kept from the previous file (same size)."""
    folder.mkdir(parents=True, exist_ok=True)
    previous = folder / "files.json"
    if previous.is_file():
        old = json.loads(previous.read_text())
        measured = {r["format"] for r in results}
        if old.get("mb") == args.mb:
            results = [r for r in old["runs"] if r["format"] not in measured] + results
    (folder / "files.json").write_text(json.dumps({"mb": args.mb, "runs": results}, indent=2))
    lines = [f"# Files into the lake ({args.mb} MB per file, median of {args.repetitions} runs)", "",
             "| format | contender | rows | median s | median CPU s | M rows/s | vs best of DuckDB/Polars "
             "| peak RSS MB | load | checked |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for fmt in sorted({r["format"] for r in results}):
        mine = [r for r in results if r["format"] == fmt]
        med = {c: statistics.median([r["seconds"] for r in mine if r["contender"] == c])
               for c in {r["contender"] for r in mine}}
        peers = [med[c] for c in ("duckdb", "polars") if c in med and all(r["ok"] for r in mine if r["contender"] == c)]
        best = min(peers) if peers else None
        for c in [c for c in CONTENDERS if c in med]:
            runs = [r for r in mine if r["contender"] == c]
            rows = runs[0]["rows"]
            ratio = f"{best / med[c]:.2f}x" if best else "-"
            rss = max(r["peak_rss_mb"] for r in runs)
            ok = "yes" if all(r["ok"] for r in runs) else "NO: " + runs[0]["error"][:60]
            rate = rows / med[c] / 1e6
            cpu = statistics.median([r.get("cpu_seconds", 0.0) for r in runs])
            loads = [r.get("load", 0.0) for r in runs]
            load = f"{min(loads):.0f}-{max(loads):.0f}"
            lines.append(
                f"| {fmt} | {c} | {rows:,} | {med[c]:.2f} | {cpu:.2f} | {rate:.2f} | {ratio} | {rss} | {load} | {ok} |"
            )
    (folder / "files.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
