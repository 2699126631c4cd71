"""The files part of `make demo`: a partner's order drops (CSV, one of them gzipped, one row malformed) and a
carrier's delivery drops (JSON lines) land in bronze through ``type: files`` sources, and the gold model
``gold.partner_customer_totals`` joins them with the CRM customers from PostgreSQL into per-customer totals.

``write_drops()`` writes the drops close to the seeds (orders for the first 12 Classic Models customers);
``report(project)`` prints the gold table and checks every figure against the same totals computed directly
from the files and PostgreSQL, and that the malformed row is in quarantine; returns 1 on any difference.
"""

from __future__ import annotations

import decimal
import gzip
import json
import shutil
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import setup_sources  # noqa: E402

DROPS = HERE / "project" / "drops"
D = decimal.Decimal


def customers() -> dict[int, str]:
    import psycopg

    url = setup_sources.PG_ADMIN.rsplit("/", 1)[0] + "/" + setup_sources.PG_DB
    with psycopg.connect(url) as conn:
        rows = conn.execute('SELECT "customerNumber", "customerName" FROM customers ORDER BY 1 LIMIT 12').fetchall()
    return {int(n): str(name) for n, name in rows}


def orders_and_deliveries(numbers: list[int]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    orders, deliveries = [], []
    for i, customer in enumerate(numbers):
        for k in range(1 + i % 3):
            order_id = 9000 + i * 10 + k
            amount = D(100 + 17 * i + 3 * k) + D(i * 7 % 100) / 100
            orders.append(
                {
                    "order_id": order_id,
                    "customer_number": customer,
                    "amount": amount,
                    "ordered_at": f"2024-03-{1 + i:02d}T09:{k:02d}:00Z",
                }
            )
            if (i + k) % 4:
                deliveries.append(
                    {
                        "order_id": order_id,
                        "carrier": ["DHL", "UPS", "Post"][k % 3],
                        "fee": f"{4 + k}.{(i * 3) % 100:02d}",
                        "delivered_at": f"2024-03-{2 + i:02d}T16:00:00+01:00",
                    }
                )
    return orders, deliveries


def write_drops() -> None:
    numbers = sorted(customers())
    orders, deliveries = orders_and_deliveries(numbers)
    shutil.rmtree(DROPS, ignore_errors=True)
    (DROPS / "orders").mkdir(parents=True)
    (DROPS / "deliveries").mkdir(parents=True)
    header = "order_id,customer_number,amount,ordered_at\n"
    lines = [f"{o['order_id']},{o['customer_number']},{o['amount']},{o['ordered_at']}\n" for o in orders]
    half = len(lines) // 2
    (DROPS / "orders" / "orders-2024-03-a.csv").write_text(header + "".join(lines[:half]) + "9999,103,n/a,2024-03-31\n")
    (DROPS / "orders" / "orders-2024-03-b.csv.gz").write_bytes(gzip.compress((header + "".join(lines[half:])).encode()))
    with open(DROPS / "deliveries" / "deliveries-2024-03.jsonl", "w") as out:
        for d in deliveries:
            out.write(json.dumps(d) + "\n")


def expected() -> dict[int, tuple[str, int, D, int, D]]:
    names = customers()
    orders, deliveries = orders_and_deliveries(sorted(names))
    by_order = {o["order_id"]: o["customer_number"] for o in orders}
    totals: dict[int, list[Any]] = {}
    for o in orders:
        t = totals.setdefault(o["customer_number"], [names[o["customer_number"]], 0, D(0), 0, D(0)])
        t[1] += 1
        t[2] += o["amount"]
    for d in deliveries:
        t = totals[by_order[d["order_id"]]]
        t[3] += 1
        t[4] += D(d["fee"])
    return {k: (v[0], v[1], v[2], v[3], v[4]) for k, v in totals.items()}


def report(project: Any) -> int:
    from lakeforge.cli.common import print_rows

    rows = project.sql(
        "SELECT customer_number, customer_name, partner_orders, ordered_amount, deliveries, delivery_fees "
        "FROM gold.partner_customer_totals ORDER BY customer_number"
    ).to_pylist()
    lake = {
        r["customer_number"]: (
            r["customer_name"],
            r["partner_orders"],
            r["ordered_amount"],
            r["deliveries"],
            r["delivery_fees"],
        )
        for r in rows
    }
    print_rows(
        "Partner orders (CSV drops) and deliveries (JSON drops) per PostgreSQL customer, from gold",
        ["customer", "name", "orders", "amount", "deliveries", "fees"],
        [[k, *v] for k, v in lake.items()],
    )
    bad = project.quarantine(["partners"])
    print(
        f"quarantine.partners: {len(bad)} bad row(s): "
        + "; ".join(f"{r['file']}:{r['line']} {r['reason']}" for r in bad)
    )
    if lake != expected() or [r["line"] for r in bad] != [_bad_line()]:
        print("MISMATCH: the files' gold totals differ from the drops and PostgreSQL", file=sys.stderr)
        return 1
    print(f"files: gold equals the drops joined with PostgreSQL for {len(lake)} customers")
    return 0


def _bad_line() -> int:
    text = (DROPS / "orders" / "orders-2024-03-a.csv").read_text().splitlines()
    return next(i + 1 for i, line in enumerate(text) if ",n/a," in line)
