"""`make demo` end to end, in a copy of demo/ with its own databases: the lake's cross-source figures must
equal the same figures computed directly from PostgreSQL and MariaDB (run_demo.py exits 1 otherwise), and
running it twice gives the same result. The second run includes the CDC part (demo/cdc_demo.py): changes made in
both sources while `lakeforge run --follow` runs appear in the lake, which then equals the sources."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path


def test_demo_twice_matches_sources(demo: tuple[Path, dict[str, str]]) -> None:
    folder, env = demo
    outputs = []
    for flags in (["--no-cdc"], []):
        done = subprocess.run([sys.executable, str(folder / "run_demo.py"), *flags], env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        outputs.append(done.stdout)
    for out in outputs:
        assert "lake and sources agree: 22 countries, total revenue 9,604,190.61" in out
        assert "published 17 tables" in out and "MISMATCH" not in out  # gold -> MariaDB, silver -> PostgreSQL
        assert "files: gold equals the drops joined with PostgreSQL for 12 customers" in out
        assert "quarantine.partners: 1 bad row(s): orders-2024-03-a.csv:14 column amount: 'n/a'" in out
        assert "open http://127.0.0.1:8080/d/sales" in out and "psql -h 127.0.0.1 -p 5433" in out
    # the figures table is identical on both runs (run ids and timings aside)
    table = [re.findall(r"│ (\w[\w ]*?) +│ ([\d,.]+) +│ (\d+) +│", o) for o in outputs]
    assert table[0] and table[0] == table[1]
    assert "CDC" not in outputs[0]
    cdc = outputs[1]
    assert "CDC: the lake equals both sources row for row" in cdc
    for line in ("bronze.crm_customers: 122 rows", "bronze.crm_payments: 274 rows", "bronze.shop_orders: 327 rows",
                 "bronze.shop_orderdetails: 2994 rows"):
        assert line in cdc, cdc[-3000:]
    assert "NOT SEEN" not in cdc
