"""``lakeforge build``: run the selected models in dependency order, each followed by its checks.

A model that fails (its SQL, its Python, or an ``error`` check) is reported with its file and the engine's
message; every model downstream of it is skipped and says which upstream failed; independent models still
build. Results go to ``_lakeforge.model_runs`` / ``check_results`` / ``lineage``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from lakeforge.errors import LakeforgeError
from lakeforge.transform import sqlgen, state
from lakeforge.transform.checks import CheckResult, run_checks, run_quarantine
from lakeforge.transform.graph import Graph
from lakeforge.transform.materialize import BuildContext, Outcome, run_incremental, run_table, run_view
from lakeforge.transform.model import Model, discover
from lakeforge.transform.scd2 import run_scd2
from lakeforge.transform.session import Session, model_error

if TYPE_CHECKING:
    from pathlib import Path

    from lakeforge.engines.base import ModelEngine
    from lakeforge.lake.base import Lake
    from lakeforge.sources.base import Source

SourceCounter = Callable[[str, str | None], int]
"""``row_count`` checks against a source: ``("source.table", where) -> rows``."""

MATERIALIZERS: dict[str, Callable[[Session, Model, BuildContext], Outcome]] = {
    "table": run_table,
    "view": run_view,
    "incremental": run_incremental,
    "scd2": run_scd2,
}


@dataclass
class ModelResult:
    model: str
    path: str
    materialized: str
    status: str
    """success, unchanged, failed or skipped"""
    rows: int = 0
    seconds: float = 0.0
    delta_version: int | None = None
    error: str | None = None
    checks: list[CheckResult] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class BuildResult:
    build_id: str
    status: str
    models: list[ModelResult]

    @property
    def ok(self) -> bool:
        return self.status == "success"

    @property
    def checks(self) -> list[CheckResult]:
        return [c for m in self.models for c in m.checks]

    def model(self, name: str) -> ModelResult:
        return next(m for m in self.models if m.model == name)


def new_build_id() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)


def load_graph(models_dir: Path, lake: Lake) -> Graph:
    """The models under ``models_dir`` and the lake tables they may read."""
    return Graph(discover(models_dir), lake.names())


def build(
    lake: Lake,
    graph: Graph,
    *,
    count_source: SourceCounter,
    select: list[str] | None = None,
    as_of: dt.datetime | None = None,
    full_refresh: bool = False,
    engine: ModelEngine | None = None,
) -> BuildResult:
    """Build ``graph``'s selected models into ``lake``; ``count_source`` answers ``row_count`` checks that
    name a source table; SQL models run on ``engine`` (None: DuckDB; the build closes it)."""
    chosen = set(graph.select(select))
    with _build_lock(lake):
        session = Session(lake, engine=engine)
        try:
            ctx = BuildContext(new_build_id(), dt.datetime.now(dt.UTC), as_of, full_refresh)
            session.set_as_of(as_of or ctx.started)
            results = _run_models(count_source, session, graph, chosen, ctx)
            _record(lake, graph, ctx, results)
        finally:
            session.close()
    status = "failed" if any(r.status in ("failed", "skipped") for r in results) else "success"
    return BuildResult(ctx.build_id, status, results)


def _run_models(
    count_source: SourceCounter, session: Session, graph: Graph, chosen: set[str], ctx: BuildContext
) -> list[ModelResult]:
    quarantined: list[CheckResult] = []

    def quarantine(model: Model) -> int:
        rows, results = run_quarantine(session, model, current)
        quarantined.extend(results)
        return rows

    current = replace(ctx, after_compute=quarantine)
    results: list[ModelResult] = []
    failed: set[str] = set()
    for name in graph.order:
        model = graph.models[name]
        if name not in chosen:
            if model.config.materialized == "view":
                _quiet_view(session, model, current)
            continue
        blocked = [u for u in graph.upstream[name] if u in failed]
        if blocked:
            failed.add(name)
            error = f"skipped: upstream {', '.join(blocked)} failed"
            results.append(ModelResult(name, str(model.path), model.config.materialized, "skipped", error=error))
            continue
        quarantined.clear()
        result = _run_one(count_source, session, model, current, quarantined)
        if result.status == "failed":
            failed.add(name)
        results.append(result)
    return results


def _build_lock(lake: Lake) -> contextlib.AbstractContextManager[object]:
    """One build at a time per lakehouse (loads may run meanwhile: a build reads pinned Delta versions)."""
    from lakeforge.state.lock import lake_lock

    return lake_lock(lake, "build")


def _run_one(
    count_source: SourceCounter, session: Session, model: Model, ctx: BuildContext, quarantined: list[CheckResult]
) -> ModelResult:
    import duckdb

    clock = time.perf_counter()
    result = ModelResult(model.name, str(model.path), model.config.materialized, "success")
    try:
        filters = {}
        if ctx.as_of is not None:
            filters = {t: sqlgen.before(c, ctx.as_of) for t, c in model.config.as_of.items()}
        with session.narrowed(filters):
            outcome = MATERIALIZERS[model.config.materialized](session, model, ctx)
        result.status, result.rows = outcome.status, outcome.rows
        result.delta_version, result.detail = outcome.delta_version, outcome.detail
        if model.name in session.fallbacks:  # the engine could not run it: it ran on DuckDB (engine.fallback)
            result.detail = {**result.detail, "engine": "duckdb", "fallback": session.fallbacks[model.name]}
        elif model.name in session.ran_on:  # computed on the configured engine (engine.transforms)
            result.detail = {**result.detail, "engine": session.ran_on[model.name]}
        result.checks = [*quarantined, *run_checks(session, model, ctx, count_source)]
        blocking = [c for c in result.checks if c.blocking]
        if blocking:
            result.status = "failed"
            result.error = "; ".join(f"check {c.check} {c.status}: {c.message}" for c in blocking)
    except (LakeforgeError, duckdb.Error) as exc:
        error = exc if isinstance(exc, LakeforgeError) else model_error(model, exc)
        result.status, result.error = "failed", str(error)
        result.checks = list(quarantined)
    result.seconds = round(time.perf_counter() - clock, 3)
    return result


def _quiet_view(session: Session, model: Model, ctx: BuildContext) -> None:
    """Define an unselected view model so selected models can read it (its errors show when it is built)."""
    with contextlib.suppress(LakeforgeError):
        run_view(session, model, ctx)


def source_counter(open_source: Callable[[str], Source]) -> SourceCounter:
    """A :data:`SourceCounter` over the sources ``open_source(name)`` returns (each closed after use)."""

    def count(spec: str, where: str | None) -> int:
        from lakeforge.errors import ConfigError
        from lakeforge.sources.sql import SqlSource

        source_name, _, table = spec.partition(".")
        source = open_source(source_name)
        try:
            refs = [r for r in source.list_tables() if table.lower() in (r.name.lower(), r.qualified.lower())]
            if not refs:
                raise ConfigError(f"row_count: source '{source_name}' has no table '{table}'")
            if not isinstance(source, SqlSource):
                raise ConfigError(f"row_count: source '{source_name}' is not read with SQL ({source.type_name})")
            sql = f"SELECT count(*) FROM {source.table_sql(refs[0])}" + (f" WHERE {where}" if where else "")
            return int(source.query(sql)[0][0])
        finally:
            source.close()

    return count


def _record(lake: Lake, graph: Graph, ctx: BuildContext, results: list[ModelResult]) -> None:
    finished = state.now()
    state.record_model_runs(
        lake,
        [
            {
                "build_id": ctx.build_id,
                "model": r.model,
                "path": r.path,
                "materialized": r.materialized,
                "status": r.status,
                "rows": r.rows,
                "seconds": r.seconds,
                "delta_version": r.delta_version,
                "error": r.error,
                "started_at": ctx.started,
                "finished_at": finished,
            }
            for r in results
        ],
    )
    state.record_checks(lake, [c for r in results for c in r.checks])
    edges = [
        {
            "upstream": up,
            "model": model,
            "path": str(graph.models[model].path),
            "materialized": graph.models[model].config.materialized,
            "build_id": ctx.build_id,
            "recorded_at": finished,
        }
        for up, model in graph.edges()
    ]
    state.record_lineage(lake, edges)
