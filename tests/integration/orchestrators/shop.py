"""A small two-source project for the orchestrator tests: customers in PostgreSQL, orders in MariaDB, a
silver model per source, a gold model joining both (with checks)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import MyDatabase, PgDatabase, write_project

BIN = Path(sys.executable).parent

CUSTOMERS = [(1, "Ada", "NO"), (2, "Bo", "IT"), (3, "Cy", "NO"), (4, "Di", "FR")]
ORDERS = [(10, 1, "12.50"), (11, 1, "7.50"), (12, 2, "100.00"), (13, 3, "1.25"), (14, 4, "3.00")]

MODELS = {
    "silver/customers.sql": """\
        /* lakeforge
        checks:
          - {type: unique, column: customer_id}
          - {type: not_null, column: name, severity: warn}
        */
        select id as customer_id, name, country from bronze.crm_customers
        """,
    "silver/orders.sql": "select id as order_id, customer_id, amount from bronze.shop_orders\n",
    "gold/revenue_by_country.sql": """\
        /* lakeforge
        checks:
          - {type: not_null, column: country}
          - {type: expression, name: revenue_positive, expression: revenue > 0}
        */
        select c.country, count(*) as orders, sum(o.amount) as revenue
        from silver.orders o join silver.customers c using (customer_id)
        group by all
        """,
}


def shop_project(path: Path, pg_db: PgDatabase, my_db: MyDatabase) -> Path:
    pg_db.execute("CREATE TABLE customers (id int PRIMARY KEY, name text, country text)")
    pg_db.execute("INSERT INTO customers VALUES " + ", ".join(f"({i}, '{n}', '{c}')" for i, n, c in CUSTOMERS))
    my_db.execute("CREATE TABLE orders (id int PRIMARY KEY, customer_id int, amount decimal(10,2))")
    my_db.execute("INSERT INTO orders VALUES " + ", ".join(f"({i}, {c}, {a})" for i, c, a in ORDERS))
    write_project(
        path,
        f"""\
        lake:
          path: ./lakehouse
        sources:
          crm: {{type: postgres, url: "{pg_db.url}"}}
          shop: {{type: mysql, url: "{my_db.url}"}}
        """,
    )
    for name, text in MODELS.items():
        file = path / "models" / name
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def revenue_expected() -> dict[str, tuple[int, float]]:
    country = {i: c for i, _, c in CUSTOMERS}
    found: dict[str, tuple[int, float]] = {}
    for _, customer, amount in ORDERS:
        n, total = found.get(country[customer], (0, 0.0))
        found[country[customer]] = (n + 1, total + float(amount))
    return found


def env_with(home: Path, **extra: str) -> dict[str, str]:
    """The test's environment with the venv's bin first on PATH (Airflow and Dagster start helpers by name)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "DAGSTER"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def dagster_home(path: Path) -> Path:
    """A DAGSTER_HOME with telemetry off (Dagster keeps its telemetry log and user id otherwise)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    return path


def run_cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
