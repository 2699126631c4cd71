"""`make demo`: Classic Models from PostgreSQL + MariaDB into a fresh lakehouse, end to end.

1. checks that both local servers answer (and says how to start the one that does not);
2. loads the sample database split between them (demo/setup_sources.py);
3. runs lakeforge into a fresh lakehouse (demo/project/lakehouse) with progress bars;
4. prints revenue by customer country read from the lake (PostgreSQL customers joined to MariaDB orders)
   and the same figures computed directly from the two source databases; exits 1 if they differ;
5. builds the silver/gold models and prints the gold report, when the project has models;
   then publishes gold to MariaDB and silver to PostgreSQL (demo/serve_demo.py) and prints where the SQL
   endpoint and the dashboards are reached;
6. operations: starts the scheduler once (``lakeforge serve --once``: the due ``refresh`` job runs and builds)
   and prints ``lakeforge status`` (jobs, last and next runs, late tables);
   files: partner order drops (CSV) and deliveries (JSON lines) joined with PostgreSQL customers in gold
   (demo/files_demo.py), checked against the drops;
7. unless ``--no-streams``: events from a NATS JetStream stream into bronze and gold (demo/stream_demo.py);
8. unless ``--no-cdc``: change data capture on throwaway CDC-enabled servers (demo/cdc_demo.py).
"""

from __future__ import annotations

import decimal
import importlib.util
import shutil
import socket
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT = HERE / "project"
sys.path.insert(0, str(HERE))

import setup_sources  # noqa: E402

START_HINTS = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "MariaDB": "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd",
}
REVENUE_SQL = """
SELECT c.country, sum(d.quantityordered * d.priceeach) AS revenue, count(DISTINCT o.ordernumber) AS orders
FROM bronze.crm_customers c
JOIN bronze.shop_orders o ON o.customernumber = c.customernumber
JOIN bronze.shop_orderdetails d ON d.ordernumber = o.ordernumber
GROUP BY c.country ORDER BY revenue DESC, c.country
"""


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=3):
            return True
    except OSError:
        return False


def check_servers() -> bool:
    ok = True
    for name, port in (("PostgreSQL", 5432), ("MariaDB", 3306)):
        if not reachable("127.0.0.1", port):
            print(f"{name} is not reachable at 127.0.0.1:{port}; start it with: {START_HINTS[name]}",
                  file=sys.stderr)
            ok = False
    return ok


def revenue_from_sources() -> dict[str, tuple[decimal.Decimal, int]]:
    """The same figures, computed without lakeforge: customers from PostgreSQL, orders from MariaDB."""
    import psycopg
    import pymysql

    pg = setup_sources.PG_ADMIN.rsplit("/", 1)[0] + "/" + setup_sources.PG_DB
    with psycopg.connect(pg) as conn:
        country = dict(conn.execute('SELECT "customerNumber", country FROM customers').fetchall())
    my = pymysql.connect(host=setup_sources.MY_HOST, port=setup_sources.MY_PORT, user="root",
                         database=setup_sources.MY_DB)
    with my.cursor() as cur:
        cur.execute(
            "SELECT o.customerNumber, o.orderNumber, SUM(d.quantityOrdered * d.priceEach) FROM orders o "
            "JOIN orderdetails d ON d.orderNumber = o.orderNumber GROUP BY o.customerNumber, o.orderNumber"
        )
        lines = cur.fetchall()
    my.close()
    totals: dict[str, tuple[decimal.Decimal, int]] = {}
    for customer, _order, amount in lines:
        if customer in country:
            revenue, orders = totals.get(country[customer], (decimal.Decimal(0), 0))
            totals[country[customer]] = (revenue + amount, orders + 1)
    return totals


def main() -> int:
    from lakeforge import Project
    from lakeforge.cli.common import print_rows
    from lakeforge.cli.load import _RichProgress

    if not check_servers():
        return 1
    if setup_sources.main() != 0:
        return 1
    shutil.rmtree(PROJECT / "lakehouse", ignore_errors=True)
    project = Project(PROJECT)
    bars = _RichProgress()
    try:
        result = project.run(progress=bars)
    finally:
        bars.stop()
    print_rows(f"lakeforge run {result.run_id}: {result.status}", ["table", "mode", "status", "rows", "seconds"],
               [[r.table, r.mode, r.status, r.rows, f"{r.seconds:.2f}"] for r in result.tables])
    if not result.ok:
        for message in result.errors + [r.error or "" for r in result.tables if r.error]:
            print(message, file=sys.stderr)
        return 1

    lake = {r["country"]: (r["revenue"], r["orders"]) for r in project.sql(REVENUE_SQL).to_pylist()}
    direct = revenue_from_sources()
    rows = [[country, f"{rev:,.2f}", orders, f"{direct.get(country, (0, 0))[0]:,.2f}",
             "yes" if direct.get(country) == (rev, orders) else "NO"]
            for country, (rev, orders) in sorted(lake.items(), key=lambda kv: (-kv[1][0], kv[0]))]
    print_rows("Revenue by customer country (PostgreSQL customers x MariaDB orders, read from the lake)",
               ["country", "revenue (lake)", "orders", "revenue (sources)", "equal"], rows)
    if lake != direct:
        print("MISMATCH: the lake's figures differ from the sources'", file=sys.stderr)
        return 1
    total = sum(v[0] for v in lake.values())
    print(f"lake and sources agree: {len(lake)} countries, total revenue {total:,.2f}")

    code = build_and_report(project) if (PROJECT / "models").is_dir() else 0
    if not code:
        import files_demo

        code = files_demo.report(project)
    if not code and project.config.publish:
        import serve_demo

        code = serve_demo.main(project)
    code = code or operations()
    if not code and "--no-streams" not in sys.argv:
        import stream_demo

        code = stream_demo.main()
    if code or "--no-cdc" in sys.argv:
        return code
    import cdc_demo

    return int(cdc_demo.main())


def operations() -> int:
    """The scheduler, once: the due job runs (load + build) as it would under ``lakeforge serve``."""
    import subprocess

    print("\n== operations: lakeforge serve --once, then lakeforge status ==", flush=True)
    lakeforge = [sys.executable, "-m", "lakeforge"]
    (PROJECT / "lineage.jsonl").unlink(missing_ok=True)
    serve = subprocess.run([*lakeforge, "serve", "--once", "--project", str(PROJECT)], check=False)
    subprocess.run([*lakeforge, "status", "--project", str(PROJECT)], check=False)
    events = (PROJECT / "lineage.jsonl").read_text().splitlines() if (PROJECT / "lineage.jsonl").exists() else []
    print(f"OpenLineage events written to {PROJECT / 'lineage.jsonl'}: {len(events)}")
    return serve.returncode


def build_and_report(project: object) -> int:
    build = project.build()  # type: ignore[attr-defined]
    if getattr(build, "ok", True) is False:
        print("build failed", file=sys.stderr)
    report = HERE / "gold_report.py"
    if report.is_file():
        spec = importlib.util.spec_from_file_location("gold_report", report)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        code = int(module.main(project))
        if code:
            return code
    return 0 if getattr(build, "ok", True) is not False else 1


if __name__ == "__main__":
    sys.exit(main())
