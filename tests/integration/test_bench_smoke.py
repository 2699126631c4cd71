"""The benchmark runner end to end on a few thousand rows: every installed contender, checked for correctness.

Not a timed test: it asserts that each contender's output was read back and matched the source's row count
and ``sum(amount)``, and that the results files carry the figures the report is made of.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench import data
from bench.__main__ import main
from bench.environment import installed

ROWS = 3000


@pytest.mark.timeout(300)
@pytest.mark.slow
def test_bench_smoke(tmp_path: Path) -> None:
    # duckdb and sling need their own environment (make bench-env): checked end to end when it exists
    contenders = [c for c in ("raw", "lakeforge", "duckdb", "sling", "dlt", "pandas") if installed(c)]
    assert "lakeforge" in contenders and "raw" in contenders
    results = tmp_path / "results"
    code = main([
        "--sizes", str(ROWS), "--shapes", "narrow", "--sources", "postgres,mysql", "-r", "1",
        "--contenders", ",".join(contenders), "--results", str(results), "--work", str(tmp_path / "work"),
        "--no-cdc", "--no-compile",
    ])
    assert code == 0
    report = json.loads((results / "latest.json").read_text(encoding="utf-8"))
    summaries = {(s["source"], s["contender"]): s for s in report["summaries"]}
    table = data.table_name("narrow", ROWS)
    for source in ("postgres", "mysql"):
        assert data.truth(source, table).rows == ROWS
        for contender in contenders:
            s = summaries[(source, contender)]
            assert s["ok"], (source, contender, s["problem"])
            assert s["rows"] == ROWS and s["seconds"] > 0 and s["peak_rss_mb"] > 20
        for run in report["runs"]:
            if run["source"] == source and run["contender"] == "lakeforge":
                assert run["amount_type"] == "decimal128(12, 2)"
    inc = report["figures"]["incremental"]
    for source in ("postgres", "mysql"):
        figures = inc[f"{source} {table}"]
        assert figures["ok"], figures
        assert figures["changed_rows"] == ROWS // 100
        for kind in ("spread", "newest"):  # each 1% run beside the raw read of the same changed rows
            assert figures[f"{kind}_rows"] == ROWS // 100
            assert figures[f"{kind}_read_seconds"] > 0 and figures[f"{kind}_ratio"] > 0
    names = {t["name"] for t in report["targets"]}
    assert "full load >= 0.8x raw driver rate" in names and "no-op incremental run <= 2 s" in names
    assert "1% change (spread) merged in <= 2x reading it" in names
    assert "| lakeforge |" in (results / "latest.md").read_text(encoding="utf-8")


