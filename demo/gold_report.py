"""The gold report of the demo: sales by year and product line, top customers, data-quality checks.

Every figure read from the gold tables is also computed directly from the two source databases (orders in
MariaDB, customers in PostgreSQL) with psycopg/pymysql; ``main(project)`` returns 1 if any differs.
"""

from __future__ import annotations

import decimal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import setup_sources  # noqa: E402

TOP = 5
LAKE_SALES = """
SELECT year(month) AS year, product_line, sum(revenue) AS revenue, sum(quantity) AS quantity
FROM gold.agg_sales_monthly GROUP BY ALL ORDER BY year, product_line
"""
LAKE_TOP = f"""
SELECT customer_name, country, orders, revenue FROM gold.agg_customer_value
ORDER BY revenue DESC, customer_name LIMIT {TOP}
"""
SOURCE_SALES = """
SELECT YEAR(o.orderDate), p.productLine, SUM(d.quantityOrdered * d.priceEach), SUM(d.quantityOrdered)
FROM orders o JOIN orderdetails d ON d.orderNumber = o.orderNumber
JOIN products p ON p.productCode = d.productCode GROUP BY 1, 2
"""
SOURCE_CUSTOMER_SALES = """
SELECT o.customerNumber, COUNT(DISTINCT o.orderNumber), SUM(d.quantityOrdered * d.priceEach)
FROM orders o JOIN orderdetails d ON d.orderNumber = o.orderNumber GROUP BY 1
"""

Figures = dict[Any, tuple[Any, ...]]


def from_sources() -> tuple[Figures, Figures]:
    """(sales by (year, product line), top customers by name) straight from PostgreSQL and MariaDB."""
    import psycopg
    import pymysql

    pg = setup_sources.PG_ADMIN.rsplit("/", 1)[0] + "/" + setup_sources.PG_DB
    with psycopg.connect(pg) as conn:
        customers = {
            n: (name, country)
            for n, name, country in conn.execute(
                'SELECT "customerNumber", trim("customerName"), trim(country) FROM customers'
            ).fetchall()
        }
    my = pymysql.connect(
        host=setup_sources.MY_HOST, port=setup_sources.MY_PORT, user="root", database=setup_sources.MY_DB
    )
    try:
        with my.cursor() as cur:
            cur.execute(SOURCE_SALES)
            sales = {(int(y), line.strip()): (rev, int(qty)) for y, line, rev, qty in cur.fetchall()}
            cur.execute(SOURCE_CUSTOMER_SALES)
            per_customer = cur.fetchall()
    finally:
        my.close()
    ranked = sorted(
        ((customers[n][0], customers[n][1], int(orders), rev) for n, orders, rev in per_customer if n in customers),
        key=lambda r: (-r[3], r[0]),
    )[:TOP]
    return sales, {r[0]: r[1:] for r in ranked}


def from_gold(project: Any) -> tuple[Figures, Figures]:
    sales = {
        (r["year"], r["product_line"]): (r["revenue"], int(r["quantity"])) for r in project.sql(LAKE_SALES).to_pylist()
    }
    top = {
        r["customer_name"]: (r["country"], int(r["orders"]), r["revenue"]) for r in project.sql(LAKE_TOP).to_pylist()
    }
    return sales, top


def main(project: Any) -> int:
    from lakeforge.cli.common import print_rows

    lake_sales, lake_top = from_gold(project)
    src_sales, src_top = from_sources()
    years = sorted({y for y, _ in lake_sales})
    lines = sorted({line for _, line in lake_sales})
    rows = [[line, *[f"{lake_sales.get((y, line), (decimal.Decimal(0), 0))[0]:,.2f}" for y in years]] for line in lines]
    rows.append(["total", *[f"{sum(v[0] for k, v in lake_sales.items() if k[0] == y):,.2f}" for y in years]])
    print_rows("Sales by year and product line (gold.agg_sales_monthly)", ["product line", *map(str, years)], rows)
    print_rows(
        f"Top {TOP} customers (gold.agg_customer_value)",
        ["customer", "country", "orders", "revenue", "equal to sources"],
        [
            [name, c, o, f"{r:,.2f}", "yes" if src_top.get(name) == (c, o, r) else "NO"]
            for name, (c, o, r) in lake_top.items()
        ],
    )
    statuses = Counter(r["status"] for r in project.checks())
    print("checks: " + ", ".join(f"{statuses.get(s, 0)} {s}" for s in ("pass", "warn", "quarantined", "fail", "error")))
    ok = True
    if lake_sales != src_sales:
        ok = False
        diff = sorted(k for k in set(lake_sales) | set(src_sales) if lake_sales.get(k) != src_sales.get(k))
        print(f"MISMATCH: sales by year and product line differ for {diff[:5]}", file=sys.stderr)
    if lake_top != src_top:
        ok = False
        print("MISMATCH: top customers differ from the sources", file=sys.stderr)
    if ok:
        total = sum(v[0] for v in lake_sales.values())
        print(
            f"gold and sources agree: {len(lake_sales)} year x product line figures, total {total:,.2f}; "
            f"top {TOP} customers equal"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    from lakeforge import Project

    sys.exit(main(Project(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "project")))
