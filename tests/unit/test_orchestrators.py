"""The orchestrator integrations without servers: the step plan from pinned tables and model files, the DAG
and asset graph built from it, and how lakeforge's ``transient`` flag maps to each orchestrator's retry."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakeforge.errors import ConfigError, ModelError, SourceUnreachable
from lakeforge.integrations.steps import StepFailed, plan_steps
from lakeforge.project import Project
from tests.conftest import write_project


@pytest.fixture(autouse=True, scope="module")
def orchestrator_homes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Airflow and Dagster imported by these tests keep their state in temporary folders (never ~/airflow)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow")))
        dagster_home = tmp_path_factory.mktemp("dagster")
        (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        env.setenv("DAGSTER_HOME", str(dagster_home))
        yield


TABLES = {"bronze.crm_customers": "crm", "bronze.shop_orders": "shop", "bronze.shop_unused": "shop"}


@pytest.fixture
def project(tmp_path: Path) -> Project:
    path = write_project(
        tmp_path / "p",
        """\
        lake:
          path: ./lakehouse
        sources:
          crm: {type: postgres, url: "postgresql://postgres@127.0.0.1:9/crm"}
          shop: {type: mysql, url: "mysql://root@127.0.0.1:9/shop"}
        """,
    )
    models = {
        "silver/customers.sql": "/* lakeforge\nchecks:\n  - {type: unique, column: id}\n"
        "  - {type: not_null, column: name, severity: warn}\n*/\nselect * from bronze.crm_customers\n",
        "silver/orders.sql": "select * from bronze.shop_orders\n",
        "gold/revenue.sql": "select * from silver.orders join silver.customers using (id)\n",
    }
    for name, text in models.items():
        (path / "models" / name).parent.mkdir(parents=True, exist_ok=True)
        (path / "models" / name).write_text(text)
    return Project(path)


def test_plan_has_a_step_per_table_and_model_with_lineage(project: Project) -> None:
    steps = {s.name: s for s in plan_steps(project, tables=TABLES)}
    assert list(steps) == [*sorted(TABLES), "silver.customers", "silver.orders", "gold.revenue"]
    assert steps["bronze.shop_orders"].source == "shop"
    assert steps["silver.orders"].upstream == ("bronze.shop_orders",)
    assert steps["gold.revenue"].upstream == ("silver.customers", "silver.orders")
    assert steps["bronze.shop_orders"].downstream == ("silver.orders", "gold.revenue")
    assert steps["bronze.shop_unused"].downstream == ()
    assert [(c.name, c.severity) for c in steps["silver.customers"].checks] == [
        ("unique_id", "error"),
        ("not_null_name", "warn"),
    ]
    only_gold = plan_steps(project, tables=TABLES, models=["+gold.revenue"])
    assert len(only_gold) == 6
    assert [s.name for s in plan_steps(project, tables=TABLES, models=[])] == sorted(TABLES)


def test_a_model_reading_an_unplanned_table_or_an_unknown_source_is_refused(project: Project) -> None:
    with pytest.raises(ModelError, match="bronze.crm_customers"):
        plan_steps(project, tables={"bronze.shop_orders": "shop"}, models=["silver.customers"])
    with pytest.raises(ConfigError, match="unknown source.* shops; sources: crm, shop"):
        plan_steps(project, tables={"bronze.shop_orders": "shops"}, models=[])


def test_airflow_dag_tasks_and_retry_mapping(project: Project) -> None:
    import datetime as dt

    from airflow.sdk.exceptions import AirflowFailException

    from lakeforge.airflow import LakeforgeModelOperator, LakeforgeTableOperator, StepRetry, lakeforge_dag
    from lakeforge.integrations.airflow import raise_for_airflow

    dag = lakeforge_dag(project.path, dag_id="unit", tables=TABLES, retries=4, retry_delay=dt.timedelta(seconds=5))
    tasks = dag.task_dict
    assert set(tasks) == {*TABLES, "silver.customers", "silver.orders", "gold.revenue"}
    assert isinstance(tasks["bronze.crm_customers"], LakeforgeTableOperator)
    assert isinstance(tasks["gold.revenue"], LakeforgeModelOperator)
    assert tasks["gold.revenue"].upstream_task_ids == {"silver.customers", "silver.orders"}
    assert tasks["silver.orders"].upstream_task_ids == {"bronze.shop_orders"}
    assert (tasks["silver.orders"].retries, tasks["silver.orders"].retry_delay) == (4, dt.timedelta(seconds=5))

    with pytest.raises(StepRetry):
        raise_for_airflow(SourceUnreachable("crm", "connection refused", transient=True))
    with pytest.raises(AirflowFailException):
        raise_for_airflow(ModelError("model silver.x failed"))
    with pytest.raises(AirflowFailException):
        raise_for_airflow(StepFailed("load bronze.x failed: column changed type"))
    # a source that is down: the task raises the retryable exception, with the source's message
    with pytest.raises(StepRetry, match="source 'crm'"):
        tasks["bronze.crm_customers"].execute({})


def test_dagster_assets_checks_and_retry_mapping(project: Project) -> None:
    import dagster as dg

    from lakeforge.dagster import asset_key, definitions, for_dagster

    defs = definitions(project.path, tables=TABLES, retries=3)
    graph = defs.resolve_asset_graph()
    gold = graph.get(asset_key("gold.revenue"))
    assert gold.parent_keys == {asset_key("silver.customers"), asset_key("silver.orders")}
    checks = {(k.name, graph.get_check_spec(k).blocking) for k in graph.asset_check_keys}
    assert checks == {("unique_id", True), ("not_null_name", False)}
    assert not defs.schedules

    assert for_dagster(SourceUnreachable("crm", "refused", transient=True)).allow_retries
    assert not for_dagster(ModelError("broken")).allow_retries
    assert isinstance(for_dagster(ModelError("broken")), dg.Failure)
    with pytest.raises(ConfigError, match="not a cron"):
        definitions(project.path, tables=TABLES, schedule="not a cron")


@pytest.mark.parametrize(("module", "extra"), [("airflow", "airflow"), ("dagster", "dagster")])
def test_missing_extra_says_how_to_install_it(module: str, extra: str) -> None:
    code = (
        f"import sys; sys.modules[{module!r}] = None\n"
        f"try:\n    import lakeforge.{module}\nexcept Exception as exc:\n    print(type(exc).__name__, exc)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("MissingExtraError") and f"pip install 'lakeforge[{extra}]'" in out


def test_importing_lakeforge_does_not_import_an_orchestrator() -> None:
    code = (
        "import sys, lakeforge, lakeforge.integrations.steps; "
        "print([m for m in ('airflow', 'dagster') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_step_waits_for_the_lakes_lock_then_runs(tmp_path: Path) -> None:
    import threading
    import time

    from lakeforge.integrations.steps import wait_for_lock
    from lakeforge.state.lock import RunLock

    path = tmp_path / "run.lock"

    def step() -> str:
        with RunLock(path):
            return "ran"

    held = RunLock(path).__enter__()
    threading.Timer(1.5, held.__exit__, (None, None, None)).start()
    started = time.monotonic()
    assert wait_for_lock(step, 30) == "ran"
    assert 1.4 < time.monotonic() - started < 10
    with RunLock(path), pytest.raises(StepFailed, match="waited 1 s") as failed:
        wait_for_lock(step, 1)
    assert failed.value.transient
