"""Integration fixtures shared by several test modules."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pymysql
import pytest

from tests.conftest import MY_HOST, MY_PORT, PG_ADMIN

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "classicmodels.sql"


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A copy of demo/ whose source databases have names of its own, dropped afterwards."""
    folder = tmp_path / "demo"
    shutil.copytree(REPO / "demo", folder, ignore=shutil.ignore_patterns("lakehouse", "__pycache__"))
    suffix = secrets.token_hex(3)
    env = {
        **os.environ,
        "LAKEFORGE_DEMO_CRM_DB": f"lft_tcrm_{suffix}",
        "LAKEFORGE_DEMO_SHOP_DB": f"lft_tshop_{suffix}",
        "LAKEFORGE_DEMO_OLAP_DB": f"lft_tolap_{suffix}",
        "LAKEFORGE_DEMO_STAGING_DB": f"lft_tstaging_{suffix}",
        "LAKEFORGE_DEMO_SQL": str(DATA),
    }
    try:
        yield folder, env
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS lft_tcrm_{suffix} WITH (FORCE)")
            conn.execute(f"DROP DATABASE IF EXISTS lft_tstaging_{suffix} WITH (FORCE)")
        my = pymysql.connect(host=MY_HOST, port=MY_PORT, user="root", autocommit=True)
        with my.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS lft_tshop_{suffix}")
            cur.execute(f"DROP DATABASE IF EXISTS lft_tolap_{suffix}")
        my.close()
