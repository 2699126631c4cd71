"""The demo's silver/gold models on Classic Models loaded from PostgreSQL + MariaDB: gold figures equal the
same figures computed directly from the two source databases; a customer change makes a new SCD2 version."""

from __future__ import annotations

import decimal
import subprocess
import sys
from pathlib import Path

import psycopg
import pymysql
import pytest

from lakeforge import Project
from tests.conftest import MY_HOST, MY_PORT, PG_ADMIN

REPO = Path(__file__).resolve().parents[2]
LAKEFORGE = str(Path(sys.executable).parent / "lakeforge")
REPORT = """
import sys
sys.path.insert(0, sys.argv[2])
import gold_report
from lakeforge import Project
project = Project(sys.argv[1])
build = project.build()
print("build", build.status, [(m.model, m.error) for m in build.models if m.status == "failed"])
sys.exit(gold_report.main(project) or (0 if build.ok else 3))
"""


def sh(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_gold_equals_sources(demo: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    folder, env = demo
    sh([sys.executable, str(folder / "setup_sources.py")], env)
    sh([LAKEFORGE, "run", "-p", str(folder / "project")], env)
    out = sh([sys.executable, "-c", REPORT, str(folder / "project"), str(folder)], env)
    assert "build success []" in out
    assert "gold and sources agree: 21 year x product line figures, total 9,604,190.61; top 5 customers equal" in out
    assert "0 fail, 0 error" in out

    pg = PG_ADMIN.rsplit("/", 1)[0] + "/" + env["LAKEFORGE_DEMO_CRM_DB"]
    my = pymysql.connect(host=MY_HOST, port=MY_PORT, user="root", database=env["LAKEFORGE_DEMO_SHOP_DB"])
    with my.cursor() as cur:
        cur.execute("SELECT count(*), sum(quantityOrdered * priceEach) FROM orderdetails")
        lines, revenue = cur.fetchone()  # type: ignore[misc]
        cur.execute("""SELECT o.customerNumber, count(DISTINCT o.orderNumber), sum(d.quantityOrdered * d.priceEach),
                              max(o.orderDate)
                       FROM orders o JOIN orderdetails d ON d.orderNumber = o.orderNumber
                       WHERE o.orderDate < '2005-01-01' GROUP BY 1""")
        before_2005 = {c: (int(n), m, last) for c, n, m, last in cur.fetchall()}
    my.close()
    for key in ("LAKEFORGE_DEMO_CRM_DB", "LAKEFORGE_DEMO_SHOP_DB"):
        monkeypatch.setenv(key, env[key])
    project = Project(folder / "project")
    fact = project.sql(
        "select count(*) as n, sum(amount) as revenue, count(distinct customer_key) as customers "
        "from gold.fact_order_line"
    ).to_pylist()[0]
    assert (fact["n"], fact["revenue"]) == (lines, revenue)
    with psycopg.connect(pg, autocommit=True) as conn:
        customers = conn.execute("SELECT count(*) FROM customers").fetchone()[0]  # type: ignore[index]
        conn.execute('UPDATE customers SET "creditLimit" = 1.00 WHERE "customerNumber" = 141')
    assert project.sql("select count(*) as n from gold.dim_customer").to_pylist() == [{"n": customers}]

    # features as of 2005-01-01 equal the same figures from MariaDB, orders after it invisible
    import datetime as dt

    train = folder / "train.parquet"
    project.export("gold.features_customer", to=train, as_of=dt.datetime(2005, 1, 1, tzinfo=dt.UTC))
    import pyarrow.parquet as pq

    feats = {r["customer_number"]: r for r in pq.read_table(train).to_pylist()}
    assert len(feats) == customers
    for number, (frequency, monetary, last) in before_2005.items():
        row = feats[number]
        assert (row["frequency"], row["monetary"]) == (frequency, monetary)
        assert row["recency_days"] == (dt.date(2005, 1, 1) - last).days
    assert all(r["frequency"] == 0 for n, r in feats.items() if n not in before_2005)

    # a changed customer: reload and rebuild, the dimension keeps both versions, facts still resolve
    sh([LAKEFORGE, "run", "-p", str(folder / "project")], env)
    build = project.build()
    assert build.ok, [(m.model, m.error) for m in build.models if m.error]
    assert build.model("gold.dim_customer").detail == {"opened": 1, "closed": 1}
    versions = project.sql(
        "select credit_limit, is_current from gold.dim_customer where customer_number = 141 order by valid_from"
    ).to_pylist()
    assert versions == [
        {"credit_limit": decimal.Decimal("227600.00"), "is_current": False},
        {"credit_limit": decimal.Decimal("1.00"), "is_current": True},
    ]
    assert project.sql("select count(*) as n from gold.fact_order_line").to_pylist() == [{"n": lines}]
