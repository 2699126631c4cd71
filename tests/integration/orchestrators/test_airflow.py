"""``lakeforge.airflow`` for real: ``airflow dags test`` (Airflow 3, SQLite metadata in a temporary
AIRFLOW_HOME, no webserver, no scheduler) runs DAGs built by ``lakeforge_dag``: the demo project over its
PostgreSQL and MariaDB sources, after which the lake equals the sources; and a project whose task states and
try numbers show a transient failure (a source that is down) retried and terminal ones (a broken model, a
failed check) failed at once."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from lakeforge import Project
from tests.conftest import MyDatabase, PgDatabase, write_project
from tests.integration.orchestrators.shop import (
    BIN,
    CUSTOMERS,
    ORDERS,
    env_with,
    revenue_expected,
    run_cli,
    shop_project,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def dags_test(
    tmp_path: Path, dag_id: str, dag_file: str, extra_env: dict[str, str] | None = None
) -> tuple[str, dict[str, tuple[str, int]]]:
    """Run ``airflow dags test dag_id`` with ``dag_file`` in a fresh AIRFLOW_HOME; its output and, per task,
    the (state, try number) Airflow recorded."""
    home = tmp_path / "airflow"
    (home / "dags").mkdir(parents=True)
    (home / "dags" / f"{dag_id}.py").write_text(textwrap.dedent(dag_file), encoding="utf-8")
    env = env_with(
        home,
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        **(extra_env or {}),
    )
    migrate = run_cli([str(BIN / "airflow"), "db", "migrate"], env, tmp_path, timeout=120)
    assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-2000:]
    done = run_cli([str(BIN / "airflow"), "dags", "test", dag_id], env, tmp_path, timeout=240)
    output = done.stdout + done.stderr
    with sqlite3.connect(home / "airflow.db") as db:
        rows = db.execute("SELECT task_id, state, try_number FROM task_instance WHERE dag_id = ?", (dag_id,))
        return output, {task: (state, tries) for task, state, tries in rows}


def test_transient_failure_is_retried_and_terminal_ones_are_not(tmp_path: Path, pg_db: PgDatabase) -> None:
    pg_db.execute("CREATE TABLE customers (id int PRIMARY KEY, name text)")
    pg_db.execute("INSERT INTO customers VALUES (1, 'Ada'), (2, 'Bo')")
    project_dir = write_project(
        tmp_path / "project",
        f"""\
        lake:
          path: ./lakehouse
        sources:
          crm: {{type: postgres, url: "{pg_db.url}"}}
          down: {{type: postgres, url: "postgresql://postgres@127.0.0.1:9/nowhere"}}
        """,
    )
    models = project_dir / "models" / "silver"
    models.mkdir(parents=True)
    (models / "broken.sql").write_text("select no_such_column from bronze.crm_customers\n")
    (models / "after_broken.sql").write_text("select * from silver.broken\n")
    (models / "checked.sql").write_text(
        "/* lakeforge\nchecks:\n  - {type: expression, name: id_over_100, expression: id > 100}\n*/\n"
        "select id from bronze.crm_customers\n"
    )
    (models / "fine.sql").write_text("select id, name from bronze.crm_customers\n")
    # the tables are pinned (lake table -> source): parsing the DAG file connects to no source
    output, tasks = dags_test(
        tmp_path,
        "lf_fail",
        f"""\
        import datetime as dt
        from lakeforge.airflow import lakeforge_dag

        dag = lakeforge_dag({str(project_dir)!r}, dag_id="lf_fail", retries=2, retry_delay=dt.timedelta(seconds=1),
                            tables={{"bronze.crm_customers": "crm", "bronze.down_things": "down"}})
        """,
    )
    assert tasks == {
        "bronze.crm_customers": ("success", 1),
        "bronze.down_things": ("failed", 3),  # source down: transient, tried 1 + retries times
        "silver.broken": ("failed", 1),  # a query error: terminal, no retry
        "silver.after_broken": ("upstream_failed", 0),
        "silver.checked": ("failed", 1),  # a failed error-severity check: terminal, no retry
        "silver.fine": ("success", 1),
    }, output[-6000:]
    assert "source 'down'" in output and "127.0.0.1:9" in output
    assert "no_such_column" in output
    assert "check id_over_100 fail" in output
    project = Project(project_dir)
    assert project.sql("select count(*) as n from silver.fine").to_pylist() == [{"n": 2}]
    assert "bronze.down_things" not in project.lake.names()


def test_demo_dag_loads_the_demo_sources_and_builds_gold(tmp_path: Path, demo: tuple[Path, dict[str, str]]) -> None:
    """The issue's acceptance test: the demo project (Classic Models split across PostgreSQL and MariaDB, 16
    silver and gold models) as one DAG; every task succeeds and the lake equals the sources."""
    import psycopg
    import pymysql

    from tests.conftest import MY_HOST, MY_PORT, PG_ADMIN

    folder, env = demo
    setup = subprocess.run([sys.executable, str(folder / "setup_sources.py")], env=env, capture_output=True,
                           text=True, timeout=300)
    assert setup.returncode == 0, setup.stdout[-2000:] + setup.stderr[-2000:]
    demo_env = {k: v for k, v in env.items() if k.startswith("LAKEFORGE_DEMO_")}
    output, tasks = dags_test(
        tmp_path,
        "lf_demo",
        f"""\
        from lakeforge.airflow import lakeforge_dag

        dag = lakeforge_dag({str(folder / "project")!r}, dag_id="lf_demo", schedule="0 * * * *")
        """,
        demo_env,
    )
    project = Project(folder / "project")
    models = sorted(f"{p.parent.name}.{p.stem}" for p in (folder / "project" / "models").glob("*/*.sql"))
    assert len(models) == 17  # the 16 Classic Models models and the partner files one
    loads = {t for t in tasks if t.startswith("bronze.")}
    assert len(loads) == 10  # 8 database tables and the 2 partner file drops
    assert tasks == {t: ("success", 1) for t in [*loads, *models]}, output[-4000:]

    pg = PG_ADMIN.rsplit("/", 1)[0] + "/" + env["LAKEFORGE_DEMO_CRM_DB"]
    with psycopg.connect(pg) as conn:
        for table in ("customers", "employees", "offices", "payments"):
            (n,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone() or (None,)
            assert project.sql(f"select count(*) as n from bronze.crm_{table}").to_pylist() == [{"n": n}], table
    my = pymysql.connect(host=MY_HOST, port=MY_PORT, user="root", database=env["LAKEFORGE_DEMO_SHOP_DB"])
    try:
        with my.cursor() as cur:
            for table in ("orders", "orderdetails", "products", "productlines"):
                cur.execute(f"SELECT count(*) FROM {table}")
                (n,) = cur.fetchone() or (None,)
                assert project.sql(f"select count(*) as n from bronze.shop_{table}").to_pylist() == [{"n": n}]
            cur.execute("SELECT count(*), sum(quantityOrdered * priceEach) FROM orderdetails")
            lines, revenue = cur.fetchone() or (None, None)
    finally:
        my.close()
    assert revenue == Decimal("9604190.61")
    fact = project.sql("select count(*) as n, sum(amount) as revenue from gold.fact_order_line").to_pylist()
    assert fact == [{"n": lines, "revenue": revenue}]
    monthly = project.sql("select sum(revenue) as revenue from gold.agg_sales_monthly").to_pylist()
    assert monthly == [{"revenue": revenue}]
    # each task started after every table and model it reads (the DAG's dependencies are the lineage)
    started = [line.split("task_id=")[1].split()[0] for line in output.splitlines() if "[DAG TEST] starting" in line]
    edges = project.lineage().edges
    assert len(edges) > 20
    for upstream, model in edges:
        assert started.index(upstream) < started.index(model), (upstream, model)
    statuses = {(c["model"], c["check"]): c["status"] for c in project.checks()}
    assert statuses and not {k: v for k, v in statuses.items() if v in ("fail", "error")}


def test_run_and_build_operators(
    tmp_path: Path, pg_db: PgDatabase, my_db: MyDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The coarse operators, executed directly (Airflow's runtime calls ``execute`` the same way)."""
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    from airflow.sdk.exceptions import AirflowFailException

    from lakeforge.airflow import LakeforgeBuildOperator, LakeforgeRunOperator

    project_dir = shop_project(tmp_path / "project", pg_db, my_db)
    loaded = LakeforgeRunOperator(task_id="run", project_dir=project_dir).execute({})
    assert (loaded["tables"], loaded["rows"]) == (2, len(CUSTOMERS) + len(ORDERS))
    built = LakeforgeBuildOperator(task_id="build", project_dir=project_dir, select=["+gold.*"]).execute({})
    assert built["models"] == 3
    gold = Project(project_dir).sql("select country, orders, revenue::double as revenue from gold.revenue_by_country")
    assert {r["country"]: (r["orders"], r["revenue"]) for r in gold.to_pylist()} == revenue_expected()

    my_db.execute("DROP TABLE orders")  # the run now fails on a table its source no longer has: terminal
    with pytest.raises(AirflowFailException, match="bronze.shop_orders.*matches no table"):
        LakeforgeRunOperator(task_id="run", project_dir=project_dir, select=["bronze.shop_orders"]).execute({})
