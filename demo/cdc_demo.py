"""The CDC part of `make demo`: a change made in a source appears in the lake, from the database log.

The local servers run without a logical WAL or a binlog, so this part starts its own throwaway servers
(PostgreSQL with ``wal_level=logical``, MariaDB with a ROW binlog and GTIDs; ``tests/servers.py``) on free
loopback ports, and removes them at the end:

1. loads Classic Models split between them, as the main demo does;
2. ``lakeforge check`` (the servers are ready for CDC), then ``lakeforge run``: a consistent snapshot of every
   table, each table's log position committed with its data;
3. starts ``lakeforge run --follow`` and makes changes in both sources (an update, a new payment, a new order
   with its lines in one transaction, a delete), and times how long each takes to appear in the lake;
4. stops the follower with SIGTERM (it commits and stops cleanly), prints ``lakeforge cdc status``, and checks
   that every CDC table in the lake equals its source row for row. Exits 1 if anything differs.
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lakeforge

HERE = Path(__file__).resolve().parent
ROOT = Path(lakeforge.__file__).resolve().parents[2]
"""The checkout lakeforge is installed from (editable, as `make` installs it): tests/servers.py lives there."""
WORK = HERE / "cdc_project"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import setup_sources  # noqa: E402
from tests.servers import mariadb_server, postgres_server  # noqa: E402

LAKEFORGE = [sys.executable, "-m", "lakeforge"]
CRM_TABLES = ("customers", "payments")
SHOP_TABLES = ("orders", "orderdetails")


def project_file(pg_port: int, my_port: int) -> str:
    return f"""\
# Written by demo/cdc_demo.py: Classic Models tables in mode cdc, on throwaway servers.
lake:
  path: ./lakehouse
run:
  cdc_commit_seconds: 0.5
sources:
  crm:
    type: postgres
    url: postgresql://postgres@127.0.0.1:{pg_port}/crm
    include: [{", ".join(CRM_TABLES)}]
    defaults: {{mode: cdc}}
  shop:
    type: mysql
    url: mysql://root@127.0.0.1:{my_port}/shop
    include: [{", ".join(SHOP_TABLES)}]
    defaults: {{mode: cdc}}
"""


class Sources:
    """Autocommit connections to the two throwaway sources."""

    def __init__(self, pg_port: int, my_port: int) -> None:
        import psycopg
        import pymysql

        self.pg = psycopg.connect(f"postgresql://postgres@127.0.0.1:{pg_port}/crm", autocommit=True)
        self.my = pymysql.connect(host="127.0.0.1", port=my_port, user="root", database="shop", autocommit=True,
                                  init_command="SET time_zone = '+00:00'")

    def pg_rows(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.pg.execute(sql).fetchall()]

    def my_rows(self, sql: str) -> list[tuple[Any, ...]]:
        with self.my.cursor() as cur:
            cur.execute(sql)
            return [tuple(r) for r in cur.fetchall()]

    def following(self) -> bool:
        """Whether a log reader is attached to both servers: the slot is active, a binlog dump is running."""
        slot = self.pg_rows("SELECT count(*) FROM pg_replication_slots WHERE active AND slot_name = 'lakeforge_crm'")
        dumps = self.my_rows("SELECT count(*) FROM information_schema.processlist WHERE command LIKE 'Binlog Dump%'")
        return bool(slot[0][0]) and bool(dumps[0][0])

    def my_transaction(self, statements: list[str]) -> None:
        with self.my.cursor() as cur:
            cur.execute("START TRANSACTION")
            for statement in statements:
                cur.execute(statement)
            cur.execute("COMMIT")

    def close(self) -> None:
        self.pg.close()
        self.my.close()


def lake_rows(project: Any, table: str, columns: str, order: str) -> list[tuple[Any, ...]]:
    return [tuple(r.values()) for r in project.sql(f"SELECT {columns} FROM {table} ORDER BY {order}").to_pylist()]


def wait_for(check: Callable[[], bool], timeout: float = 30.0) -> float | None:
    """Seconds until ``check()`` holds (polled every 50 ms), None after ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.05)
    return None


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LAKEFORGE, *args, "--project", str(WORK)], text=True, capture_output=True)


def main() -> int:
    from lakeforge import Project
    from lakeforge.cli.common import print_rows

    print("\nCDC: starting throwaway PostgreSQL (wal_level=logical) and MariaDB (ROW binlog, GTID) servers...")
    with postgres_server() as pg, mariadb_server() as my:
        setup_sources.load_postgres(pg.admin_url, "crm")
        setup_sources.load_mariadb("127.0.0.1", my.port, "shop")
        shutil.rmtree(WORK, ignore_errors=True)
        WORK.mkdir(parents=True)
        (WORK / "lakeforge.yml").write_text(project_file(pg.port, my.port), encoding="utf-8")
        src = Sources(pg.port, my.port)
        try:
            return demo(Project(WORK), src, print_rows)
        finally:
            src.close()


def demo(project: Any, src: Sources, print_rows: Callable[..., None]) -> int:
    check = cli("check")
    print(check.stdout.strip() or check.stderr.strip())
    if check.returncode != 0:
        return 1
    first = cli("run")
    if first.returncode != 0:
        print(first.stdout, first.stderr, file=sys.stderr)
        return 1
    counts = {t: project.sql(f"SELECT count(*) n FROM bronze.{t}").to_pylist()[0]["n"]
              for t in ("crm_customers", "crm_payments", "shop_orders", "shop_orderdetails")}
    print("snapshot loaded: " + ", ".join(f"{t} {n} rows" for t, n in counts.items()))

    follower = subprocess.Popen([*LAKEFORGE, "run", "--follow", "--project", str(WORK)], text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        following = wait_for(lambda: src.following(), timeout=60)
        print("`lakeforge run --follow` is reading both logs" if following is not None
              else "`lakeforge run --follow` did not start reading within 60 s")
        timings = make_changes(project, src)
    finally:
        follower.send_signal(signal.SIGTERM)
        try:
            output, _ = follower.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            follower.kill()
            output, _ = follower.communicate()
    print_rows("Changes made in the sources while `lakeforge run --follow` ran",
               ["source", "change", "visible in the lake after"],
               [[s, what, "NOT SEEN" if sec is None else f"{sec:.2f} s"] for s, what, sec in timings])
    print(f"`lakeforge run --follow` stopped on SIGTERM with exit code {follower.returncode}")
    if follower.returncode != 0:
        print(output, file=sys.stderr)
    status = cli("cdc", "status")
    print(status.stdout.strip() or status.stderr.strip())
    same = compare(project, src)
    ok = follower.returncode == 0 and all(sec is not None for *_, sec in timings) and same
    print("CDC: the lake equals both sources row for row" if ok else "CDC: MISMATCH (see above)")
    return 0 if ok else 1


def make_changes(project: Any, src: Sources) -> list[tuple[str, str, float | None]]:
    timings: list[tuple[str, str, float | None]] = []

    def seen(sql: str, want: list[tuple[Any, ...]]) -> float | None:
        return wait_for(lambda: [tuple(r.values()) for r in project.sql(sql).to_pylist()] == want)

    limit = src.pg_rows('SELECT "creditLimit" + 5000 FROM customers WHERE "customerNumber" = 103')[0][0]
    src.pg.execute('UPDATE customers SET "creditLimit" = "creditLimit" + 5000 WHERE "customerNumber" = 103')
    timings.append(("crm", f"UPDATE customers 103 creditLimit -> {limit}",
                    seen("SELECT creditlimit FROM bronze.crm_customers WHERE customernumber = 103", [(limit,)])))

    today = dt.date.today()
    src.pg.execute("INSERT INTO payments VALUES (103, 'LF000001', %s, 1234.56)", (today,))
    timings.append(("crm", "INSERT payments (103, 'LF000001', 1234.56)",
                    seen("SELECT amount FROM bronze.crm_payments WHERE checknumber = 'LF000001'",
                         [(decimal.Decimal("1234.56"),)])))

    src.my_transaction([
        "INSERT INTO orders VALUES (10500, CURDATE(), CURDATE() + INTERVAL 7 DAY, NULL, 'In Process', "
        "'made by the lakeforge demo', 103)",
        "INSERT INTO orderdetails VALUES (10500, 'S10_1678', 10, 95.70, 1), (10500, 'S18_2248', 5, 55.09, 2)",
    ])
    timings.append(("shop", "one transaction: INSERT order 10500 + 2 orderdetails",
                    seen("SELECT count(*) FROM bronze.shop_orderdetails WHERE ordernumber = 10500", [(2,)])))

    src.my_rows("UPDATE orders SET status = 'Shipped', shippedDate = CURDATE() WHERE orderNumber = 10500")
    timings.append(("shop", "UPDATE orders 10500 status -> Shipped",
                    seen("SELECT status FROM bronze.shop_orders WHERE ordernumber = 10500", [("Shipped",)])))

    src.my_rows("DELETE FROM orderdetails WHERE orderNumber = 10100")
    timings.append(("shop", "DELETE orderdetails of order 10100 (4 lines)",
                    seen("SELECT count(*) FROM bronze.shop_orderdetails WHERE ordernumber = 10100", [(0,)])))
    return timings


def compare(project: Any, src: Sources) -> bool:
    pairs = [
        ("bronze.crm_customers", '"customerNumber", "creditLimit", country', "customernumber, creditlimit, country",
         "1", src.pg_rows),
        ("bronze.crm_payments", '"customerNumber", "checkNumber", "paymentDate", amount',
         "customernumber, checknumber, paymentdate, amount", "1, 2", src.pg_rows),
        ("bronze.shop_orders", "orderNumber, orderDate, status, comments, customerNumber",
         "ordernumber, orderdate, status, comments, customernumber", "1", src.my_rows),
        ("bronze.shop_orderdetails", "orderNumber, productCode, quantityOrdered, priceEach",
         "ordernumber, productcode, quantityordered, priceeach", "1, 2", src.my_rows),
    ]
    ok = True
    for table, source_cols, lake_cols, order, rows in pairs:
        source_table = table.split("_", 1)[1]
        want = rows(f"SELECT {source_cols} FROM {source_table} ORDER BY {order}")
        got = lake_rows(project, table, lake_cols, order)
        if got != want:
            padded = zip(got + [None] * len(want), want + [None] * len(got), strict=True)
            first = next((g, w) for g, w in padded if g != w)
            print(f"{table}: lake has {len(got)} rows, source {len(want)}; first difference (lake, source): {first}",
                  file=sys.stderr)
            ok = False
        else:
            print(f"{table}: {len(got)} rows, equal to the source")
    return ok


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
