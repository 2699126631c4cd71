"""Dagster integration (extra ``dagster``): assets, asset checks, a schedule and a new-data sensor.

>>> # defs.py, loaded with: dagster asset materialize -f defs.py --select '*'
>>> from lakeforge.dagster import definitions
>>> defs = definitions("/srv/lakeforge/project", schedule="0 * * * *")

One asset per lake table to load (key ``["bronze", "<name>"]``) and per model (``["<layer>", "<name>"]``), each
model depending on the tables and models it reads; a model's checks are its asset checks, blocking when their
severity is ``error``. A transient failure (a source that is down) is retried per the assets' retry policy; any
other raises ``dagster.Failure(allow_retries=False)``. See docs/orchestrators.md.
"""

# no ``from __future__ import annotations``: Dagster reads the asset functions' return annotations at runtime
import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lakeforge.errors import ConfigError, LakeforgeError, MissingExtraError
from lakeforge.integrations import steps
from lakeforge.project import Project

try:  # this module is the Dagster integration: importing it needs Dagster, nothing else in lakeforge does
    import dagster as dg
except ImportError as exc:  # pragma: no cover - exercised by a test that hides dagster
    raise MissingExtraError("dagster", "dagster") from exc

__all__ = ["asset_key", "check_name", "definitions", "for_dagster"]


def asset_key(name: str) -> dg.AssetKey:
    """``layer.table`` -> ``AssetKey([layer, table])`` (characters Dagster refuses become ``_``)."""
    return dg.AssetKey([_safe(part) for part in name.split(".", 1)])


def check_name(name: str) -> str:
    return _safe(name)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def for_dagster(exc: LakeforgeError) -> dg.Failure:
    """The Failure to raise for a lakeforge failure: retried per the retry policy only when ``transient``."""
    return dg.Failure(description=str(exc), allow_retries=exc.transient)


def definitions(
    project_dir: str | Path,
    *,
    schedule: str | None = None,
    timezone: str = "UTC",
    select: list[str] | None = None,
    models: list[str] | None = None,
    tables: Mapping[str, str] | None = None,
    retries: int = 2,
    retry_delay: float = 60.0,
    sensor_interval: int = 60,
    name: str = "lakeforge",
    lock_wait: float = steps.LOCK_WAIT,
    executor: dg.ExecutorDefinition | None = None,
    running: bool = False,
) -> dg.Definitions:
    """Dagster definitions for a lakeforge project.

    ``select``/``models``/``tables`` choose the assets as in :func:`lakeforge.airflow.lakeforge_dag` (the
    tables come from the project's plan, which lists the sources when the definitions load; ``tables`` pins
    them). ``schedule``, a cron expression in ``timezone``, adds ``<name>_schedule`` materializing every
    asset. The sensor ``<name>_new_source_data`` asks each source for its tables' row counts and incremental
    cursors every ``sensor_interval`` seconds and requests the changed tables and everything downstream of
    them. Both start stopped, as Dagster's do, unless ``running``. Every job (``<name>_all`` and the one
    ``dagster asset materialize`` makes) runs its steps in one process, since lakeforge serializes loads on
    the lake's lock anyway, unless ``executor`` says otherwise (e.g. ``dagster.multiprocess_executor``)."""
    project = Project(project_dir)
    path = str(project.path)
    plan = steps.plan_steps(project, select=select, models=models, tables=tables)
    policy = dg.RetryPolicy(max_retries=retries, delay=retry_delay) if retries else None
    assets = [
        _table_asset(step, path, policy, lock_wait)
        if step.kind == "load"
        else _model_asset(step, path, policy, lock_wait)
        for step in plan
    ]
    job = dg.define_asset_job(f"{name}_all", selection=dg.AssetSelection.all())
    schedules = []
    if schedule is not None:
        try:
            schedules.append(
                dg.ScheduleDefinition(
                    name=f"{name}_schedule",
                    cron_schedule=schedule,
                    job=job,
                    execution_timezone=timezone,
                    default_status=dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED,
                )
            )
        except dg.DagsterInvalidDefinitionError as exc:
            raise ConfigError(f"schedule '{schedule}' (timezone {timezone}): {exc}") from None
    status = dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED
    sensor = _new_data_sensor(f"{name}_new_source_data", job, path, plan, sensor_interval, status)
    return dg.Definitions(
        assets=assets,
        jobs=[job],
        schedules=schedules,
        sensors=[sensor],
        executor=executor or dg.in_process_executor,
    )


def _table_asset(step: steps.Step, project_dir: str, policy: dg.RetryPolicy | None, lock_wait: float) -> Any:
    @dg.asset(
        key=asset_key(step.name),
        group_name=_safe(step.name.partition(".")[0]),
        retry_policy=policy,
        kinds={"delta"},
        description=f"Lake table {step.name}, loaded by lakeforge from source '{step.source}'.",
        metadata={"lakeforge/table": step.name, "lakeforge/source": step.source or ""},
    )
    def load() -> dg.MaterializeResult:  # type: ignore[type-arg]  # Dagster accepts only the bare class here
        assert step.source is not None
        try:
            result = steps.load_table(project_dir, step.name, step.source, lock_wait=lock_wait)
        except LakeforgeError as exc:
            raise for_dagster(exc) from exc
        return dg.MaterializeResult(
            metadata=_known(
                {
                    "status": result.status,
                    "rows": result.rows,
                    "seconds": round(result.seconds, 3),
                    "delta_version": result.delta_version,
                    "reason": result.reason,
                }
            )
        )

    return load


_SEVERITY = {"pass": None, "warn": "WARN", "quarantined": "WARN", "fail": "ERROR", "error": "ERROR"}
"""lakeforge check status -> the failed result's severity in Dagster (None: passed, reported with the check's
declared severity)."""


def _model_asset(step: steps.Step, project_dir: str, policy: dg.RetryPolicy | None, lock_wait: float) -> Any:
    key = asset_key(step.name)
    specs: dict[str, dg.AssetCheckSpec] = {}
    declared = {check_name(c.name): c.severity.upper() for c in reversed(step.checks)}
    for check in step.checks:
        specs.setdefault(
            check_name(check.name),
            dg.AssetCheckSpec(
                check_name(check.name),
                asset=key,
                blocking=check.severity == "error",
                description=f"lakeforge {check.type} check, severity {check.severity}",
            ),
        )

    @dg.asset(
        key=key,
        deps=[asset_key(name) for name in step.upstream],
        check_specs=list(specs.values()),
        group_name=_safe(step.name.partition(".")[0]),
        retry_policy=policy,
        kinds={"delta", "sql"},
        description=f"lakeforge model {step.name} ({step.path}).",
        metadata={"lakeforge/model": step.name, "lakeforge/path": step.path or ""},
    )
    def build() -> dg.MaterializeResult:  # type: ignore[type-arg]  # Dagster accepts only the bare class here
        try:
            result = steps.build_model(project_dir, step.name, lock_wait=lock_wait)
        except LakeforgeError as exc:
            raise for_dagster(exc) from exc
        found = {check_name(c.check): c for c in result.checks}
        check_results = []
        for name in specs:
            check = found.get(name)
            severity = _SEVERITY.get(check.status, "ERROR") if check else "ERROR"
            check_results.append(
                dg.AssetCheckResult(
                    check_name=name,
                    passed=check is not None and severity is None,
                    severity=dg.AssetCheckSeverity(severity or declared[name]),
                    description=(check.message or check.status) if check else "the check did not run",
                    metadata=_known(
                        {
                            "status": check.status if check else "not run",
                            "failing_rows": check.failing_rows if check else None,
                            "quarantined_rows": check.quarantined_rows if check else None,
                        }
                    ),
                )
            )
        return dg.MaterializeResult(
            metadata=_known(
                {
                    "status": result.status,
                    "rows": result.rows,
                    "seconds": result.seconds,
                    "delta_version": result.delta_version,
                    "error": result.error,
                }
            ),
            check_results=check_results,
        )

    return build


def _new_data_sensor(
    name: str, job: Any, project_dir: str, plan: list[steps.Step], interval: int, status: dg.DefaultSensorStatus
) -> dg.SensorDefinition:
    loads = [s for s in plan if s.kind == "load"]
    downstream = {s.name: s.downstream for s in loads}
    order = [s.name for s in plan]

    @dg.sensor(name=name, job=job, minimum_interval_seconds=interval, default_status=status)
    def new_source_data(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        marks = steps.source_marks(project_dir, [s.name for s in loads])
        before: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        changed = sorted(t for t, mark in marks.items() if before.get(t) != mark)
        cursor = json.dumps({**before, **marks}, sort_keys=True)
        if not changed:
            return dg.SensorResult(skip_reason="no new data in the sources", cursor=cursor)
        wanted = {t for table in changed for t in (table, *downstream[table])}
        run_key = hashlib.sha256(cursor.encode()).hexdigest()[:16]
        request = dg.RunRequest(
            run_key=run_key,
            asset_selection=[asset_key(n) for n in order if n in wanted],
            tags={"lakeforge/changed": ",".join(changed)[:200]},
        )
        return dg.SensorResult(run_requests=[request], cursor=cursor)

    return new_source_data


def _known(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}
