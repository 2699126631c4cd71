"""Airflow 3 integration (extra ``airflow``): a DAG with one task per lake table and per model, and operators.

>>> from lakeforge.airflow import lakeforge_dag
>>> dag = lakeforge_dag("/srv/lakeforge/project", dag_id="lakehouse", schedule="0 * * * *")

Retries are Airflow's: a step whose failure is ``transient`` (a source that is down, another run holding the
lock for too long) raises an ordinary exception, which Airflow retries per the task's ``retries``; any other
failure raises ``AirflowFailException``, which fails the task at once without retrying. See
docs/orchestrators.md.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from lakeforge.errors import LakeforgeError, MissingExtraError
from lakeforge.integrations import steps
from lakeforge.project import Project

try:  # this module is the Airflow integration: importing it needs Airflow, nothing else in lakeforge does
    from airflow.sdk import DAG, BaseOperator
    from airflow.sdk.exceptions import AirflowFailException
except ImportError as exc:  # pragma: no cover - exercised by a test that hides airflow
    raise MissingExtraError("apache-airflow", "airflow") from exc

__all__ = [
    "LakeforgeBuildOperator",
    "LakeforgeModelOperator",
    "LakeforgeRunOperator",
    "LakeforgeTableOperator",
    "StepRetry",
    "lakeforge_dag",
    "task_id",
]


class StepRetry(LakeforgeError):
    """A transient lakeforge failure as Airflow sees it: any exception but ``AirflowFailException`` is retried
    per the task's ``retries``."""

    transient = True


def raise_for_airflow(exc: LakeforgeError) -> NoReturn:
    """Re-raise a lakeforge failure as Airflow should see it: retryable when ``transient``, else final."""
    if exc.transient:
        raise StepRetry(str(exc)) from exc
    raise AirflowFailException(str(exc)) from exc


class _LakeforgeOperator(BaseOperator):
    ui_color = "#cfe8f3"

    def __init__(self, *, project_dir: str | Path, lock_wait: float = steps.LOCK_WAIT, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.project_dir = str(project_dir)
        self.lock_wait = lock_wait

    def execute(self, context: Any) -> Any:
        try:
            return self.step()
        except LakeforgeError as exc:
            raise_for_airflow(exc)

    def step(self) -> Any:
        raise NotImplementedError


class LakeforgeRunOperator(_LakeforgeOperator):
    """``lakeforge run [--select ...]``: every selected table; fails if any table or source failed."""

    template_fields: Sequence[str] = ("select",)

    def __init__(self, *, project_dir: str | Path, select: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(project_dir=project_dir, **kwargs)
        self.select = select

    def step(self) -> dict[str, Any]:
        result = steps.run(self.project_dir, self.select, lock_wait=self.lock_wait)
        for table in result.tables:
            self.log.info("%s: %s, %s rows", table.table, table.status, table.rows)
        return {"run_id": result.run_id, "rows": sum(t.rows for t in result.tables), "tables": len(result.tables)}


class LakeforgeTableOperator(_LakeforgeOperator):
    """Load one lake table (``bronze.<name>``) from its source."""

    def __init__(self, *, project_dir: str | Path, table: str, source: str, **kwargs: Any) -> None:
        super().__init__(project_dir=project_dir, **kwargs)
        self.table = table
        self.source = source

    def step(self) -> dict[str, Any]:
        result = steps.load_table(self.project_dir, self.table, self.source, lock_wait=self.lock_wait)
        self.log.info(
            "%s: %s, %s rows, Delta version %s", result.table, result.status, result.rows, result.delta_version
        )
        return {"table": result.table, "status": result.status, "rows": result.rows}


class LakeforgeBuildOperator(_LakeforgeOperator):
    """``lakeforge build [--select ...]``: the selected models with their checks; fails if any model failed."""

    template_fields: Sequence[str] = ("select",)

    def __init__(self, *, project_dir: str | Path, select: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(project_dir=project_dir, **kwargs)
        self.select = select

    def step(self) -> dict[str, Any]:
        models = steps.build(self.project_dir, self.select, lock_wait=self.lock_wait)
        for model in models:
            self.log.info("%s: %s, %s rows", model.model, model.status, model.rows)
        return {"models": len(models), "rows": sum(m.rows for m in models)}


class LakeforgeModelOperator(_LakeforgeOperator):
    """Build one model and run its checks; a failed error-severity check fails the task (no retry)."""

    def __init__(self, *, project_dir: str | Path, model: str, **kwargs: Any) -> None:
        super().__init__(project_dir=project_dir, **kwargs)
        self.model = model

    def step(self) -> dict[str, Any]:
        result = steps.build_model(self.project_dir, self.model, lock_wait=self.lock_wait)
        for check in result.checks:
            self.log.info(
                "check %s: %s (%s failing rows) %s", check.check, check.status, check.failing_rows, check.message
            )
        if result.status == "failed":
            raise steps.StepFailed(f"model {self.model}: {result.error}")
        return {"model": result.model, "status": result.status, "rows": result.rows}


def task_id(name: str) -> str:
    """An Airflow task id for a lake table or model: its name, any character Airflow refuses as ``_``."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def lakeforge_dag(
    project_dir: str | Path,
    *,
    dag_id: str,
    schedule: Any = None,
    start_date: dt.datetime | None = None,
    select: list[str] | None = None,
    models: list[str] | None = None,
    tables: Mapping[str, str] | None = None,
    retries: int = 2,
    retry_delay: dt.timedelta = dt.timedelta(minutes=1),
    lock_wait: float = steps.LOCK_WAIT,
    **dag_kwargs: Any,
) -> DAG:
    """A DAG with one task per lake table to load and one per model, each model after what it reads.

    ``select`` narrows the tables as ``lakeforge run --select`` does, ``models`` the models as ``lakeforge
    build --select`` (``[]``: no model tasks). The tables come from the project's plan, which lists the
    sources each time the DAG file is parsed; ``tables`` (lake table -> source name) pins them instead, so
    parsing connects to nothing. ``retries``/``retry_delay`` go to every task (only transient failures are
    retried); ``schedule``, ``start_date`` (default 2024-01-01 UTC, ``catchup`` off) and other keywords go to
    ``DAG``."""
    project = Project(project_dir)
    path = str(project.path)
    plan = steps.plan_steps(project, select=select, models=models, tables=tables)
    default_args = {"retries": retries, "retry_delay": retry_delay, **dag_kwargs.pop("default_args", {})}
    dag_kwargs.setdefault("catchup", False)
    dag_kwargs.setdefault("tags", ["lakeforge"])
    with DAG(
        dag_id,
        schedule=schedule,
        start_date=start_date or dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        default_args=default_args,
        **dag_kwargs,
    ) as dag:
        tasks: dict[str, _LakeforgeOperator] = {}
        for step in plan:
            common: dict[str, Any] = {"task_id": task_id(step.name), "project_dir": path, "lock_wait": lock_wait}
            if step.kind == "load":
                assert step.source is not None
                tasks[step.name] = LakeforgeTableOperator(table=step.name, source=step.source, **common)
            else:
                tasks[step.name] = LakeforgeModelOperator(model=step.name, **common)
        for step in plan:
            for upstream in step.upstream:
                tasks[upstream] >> tasks[step.name]
    return dag
