"""`make demo` end to end, in a copy of demo/ with its own databases: the lake's cross-source figures must
equal the same figures computed directly from PostgreSQL and MariaDB (run_demo.py exits 1 otherwise), and
running it twice gives the same result."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pymysql

from tests.conftest import MY_HOST, MY_PORT, PG_ADMIN

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "classicmodels.sql"


def test_demo_twice_matches_sources(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    shutil.copytree(REPO / "demo", demo, ignore=shutil.ignore_patterns("lakehouse", "__pycache__"))
    suffix = secrets.token_hex(3)
    env = {**os.environ, "LAKEFORGE_DEMO_CRM_DB": f"lft_demo_crm_{suffix}",
           "LAKEFORGE_DEMO_SHOP_DB": f"lft_demo_shop_{suffix}", "LAKEFORGE_DEMO_SQL": str(DATA)}
    try:
        outputs = []
        for _ in range(2):
            done = subprocess.run([sys.executable, str(demo / "run_demo.py")], env=env, capture_output=True,
                                  text=True, timeout=600)
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
            outputs.append(done.stdout)
        for out in outputs:
            assert "lake and sources agree: 22 countries, total revenue 9,604,190.61" in out
        # the figures table is identical on both runs (run ids and timings aside)
        table = [re.findall(r"│ (\w[\w ]*?) +│ ([\d,.]+) +│ (\d+) +│", o) for o in outputs]
        assert table[0] and table[0] == table[1]
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS lft_demo_crm_{suffix} WITH (FORCE)")
        conn2 = pymysql.connect(host=MY_HOST, port=MY_PORT, user="root", autocommit=True)
        with conn2.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS lft_demo_shop_{suffix}")
        conn2.close()
