"""What an orchestrator runs, whichever it is: one step per lake table to load and one per model.

:func:`plan_steps` lists the steps with their dependencies (a model waits for the tables and models it reads);
:func:`load_table`, :func:`run` and :func:`build_model` do one step through the public :class:`Project` API
and raise :class:`StepFailed` when it fails. ``StepFailed.transient`` says whether trying again can help; the
orchestrator turns that into its own retry decision (Airflow retries, Dagster retry policies).

A failed load is classified by asking its source again (one cheap query): a source that is still down with a
``transient`` error (refused connection, timeout) makes the failure transient; a source that answers means
the failure is the table's own (a type the lake cannot follow, a missing table), which a retry will not fix.
lakeforge's own per-table retries (``run.retries``) still run inside the step first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar

from lakeforge.errors import ConfigError, LakeforgeError, RunInProgress
from lakeforge.project import Project

if TYPE_CHECKING:
    from lakeforge.load.table import TableResult
    from lakeforge.project import RunResult
    from lakeforge.transform.build import ModelResult

T = TypeVar("T")

LOCK_WAIT = 600.0
"""Seconds a step waits for another lakeforge run or build holding the project's lock before it fails
(transient, so the orchestrator retries it)."""


class StepFailed(LakeforgeError):
    """A load or build step failed; ``transient`` says whether trying again can help."""


@dataclass(frozen=True)
class CheckSpec:
    """A model's data-quality check, as declared in its file."""

    name: str
    type: str
    severity: str
    """``error`` (fails the model) or ``warn``."""


@dataclass(frozen=True)
class Step:
    name: str
    """The lake table it writes, ``layer.table``."""
    kind: Literal["load", "build"]
    upstream: tuple[str, ...] = ()
    """Steps it waits for: the planned tables and models it reads (and its checks read)."""
    source: str | None = None
    """Load steps: the source it reads."""
    checks: tuple[CheckSpec, ...] = ()
    """Build steps: the model's checks."""
    path: str | None = None
    """Build steps: the model's file."""
    downstream: tuple[str, ...] = field(default=(), compare=False)
    """Every step that reads it, directly or not."""


def plan_steps(
    project: Project,
    *,
    select: list[str] | None = None,
    models: list[str] | None = None,
    tables: Mapping[str, str] | None = None,
) -> list[Step]:
    """The load steps (the project's plan, narrowed by ``select`` as ``lakeforge run --select``; or ``tables``,
    lake table -> source, to skip connecting to the sources) then the model steps (all, or ``models`` as
    ``lakeforge build --select``; ``[]`` for none), in build order."""
    from lakeforge.transform.checks import name_of
    from lakeforge.transform.graph import Graph
    from lakeforge.transform.model import discover

    loads = dict(tables) if tables is not None else planned_tables(project, select)
    unknown = sorted({source for source in loads.values() if source not in project.config.sources})
    if unknown:
        valid = ", ".join(project.config.sources) or "(none configured)"
        raise ConfigError(f"{project.path}: tables name unknown source(s) {', '.join(unknown)}; sources: {valid}")
    existing = project.lake.names() if project.lake.is_local else []
    graph = Graph(discover(project.path / project.config.models_path), [*loads, *existing])
    chosen = [] if models == [] else graph.select(models)
    steps = [Step(table, "load", source=source) for table, source in sorted(loads.items())]
    names = set(loads) | set(chosen)
    for name in chosen:
        model = graph.models[name]
        reads = sorted(n for n in {*model.inputs, *model.check_inputs} - {name} if n in names)
        checks = tuple(CheckSpec(name_of(c), c.type, c.severity) for c in model.config.checks)
        steps.append(Step(name, "build", tuple(reads), checks=checks, path=str(model.path)))
    return _with_downstream(steps)


def planned_tables(project: Project, select: list[str] | None = None) -> dict[str, str]:
    """Lake table -> source for every table ``lakeforge run --select`` would load (the sources are listed)."""
    from lakeforge.load.plan import apply_select

    return {p.table: p.source for p in apply_select(project.plan(), select, allow_empty=False)}


def _with_downstream(steps: list[Step]) -> list[Step]:
    children: dict[str, set[str]] = {}
    for step in steps:
        for up in step.upstream:
            children.setdefault(up, set()).add(step.name)
    result = []
    for step in steps:
        seen: set[str] = set()
        stack = list(children.get(step.name, ()))
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                stack.extend(children.get(node, ()))
        order = [s.name for s in steps if s.name in seen]
        result.append(Step(step.name, step.kind, step.upstream, step.source, step.checks, step.path, tuple(order)))
    return result


# -- doing one step ---------------------------------------------------------------------------------------
def load_table(project_dir: str | Path, table: str, source: str, *, lock_wait: float = LOCK_WAIT) -> TableResult:
    """Load one lake table (``lakeforge run --select <table>``); StepFailed unless it succeeded."""
    project = Project(project_dir)
    probe(project, [source])  # a source that is down fails here with its own error and transient flag
    result = wait_for_lock(lambda: project.run(select=[table]), lock_wait)
    mine = [t for t in result.tables if t.table == table]
    if mine and mine[0].status != "failed":
        return mine[0]
    reason = mine[0].error if mine else "; ".join(result.errors) or "it was not loaded"
    # not loaded at all: another source's failure stopped the run (run.on_error: stop), so ask every source
    asked = [source] if mine else list(project.config.sources)
    raise StepFailed(f"load {table} failed: {reason}", transient=_still_down(project, asked))


def run(project_dir: str | Path, select: list[str] | None = None, *, lock_wait: float = LOCK_WAIT) -> RunResult:
    """``lakeforge run [--select ...]``; StepFailed naming every failure unless the whole run succeeded."""
    project = Project(project_dir)
    result = wait_for_lock(lambda: project.run(select=select), lock_wait)
    if result.ok:
        return result
    failed = [t for t in result.tables if t.status == "failed"]
    reasons = [*result.errors, *(f"{t.table}: {t.error}" for t in failed)]
    sources = list(project.config.sources) if result.errors else sorted({t.source for t in failed})
    raise StepFailed("run failed: " + "; ".join(reasons), transient=_still_down(project, sources))


def build_model(project_dir: str | Path, model: str, *, lock_wait: float = LOCK_WAIT) -> ModelResult:
    """Build one model and run its checks (``lakeforge build --select <model>``). A model whose query failed
    raises StepFailed (terminal); one whose error-severity checks failed is returned with status ``failed``
    and its checks, so the orchestrator can report each check (see :func:`failed_checks`)."""
    project = Project(project_dir)
    result = wait_for_lock(lambda: project.build(select=[model]), lock_wait).model(model)
    if result.status == "failed" and not failed_checks(result):
        raise StepFailed(f"model {model} failed: {result.error}")
    return result


def build(
    project_dir: str | Path, select: list[str] | None = None, *, lock_wait: float = LOCK_WAIT
) -> list[ModelResult]:
    """``lakeforge build [--select ...]``; StepFailed naming every failed model unless all succeeded."""
    result = wait_for_lock(lambda: Project(project_dir).build(select=select), lock_wait)
    if result.ok:
        return result.models
    failed = [f"{m.model}: {m.error}" for m in result.models if m.status in ("failed", "skipped")]
    raise StepFailed("build failed: " + "; ".join(failed))


def failed_checks(result: ModelResult) -> list[str]:
    """Names of the model's checks that fail it (severity error failed, or the check itself errored)."""
    return [c.check for c in result.checks if c.blocking]


def probe(project: Project, sources: Iterable[str]) -> None:
    """Connect to each source and ask it one cheap question; its own error (transient or not) if it fails."""
    for name in sources:
        source = project.source(name)
        try:
            source.check()
        finally:
            source.close()


def _still_down(project: Project, sources: Iterable[str]) -> bool:
    try:
        probe(project, sources)
    except LakeforgeError as exc:
        return exc.transient
    return False


def wait_for_lock(call: Callable[[], T], wait: float) -> T:
    """``call()``, tried again every second while another run or build holds the project's lock (it raises
    before doing anything then), for up to ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return call()
        except RunInProgress as exc:
            if time.monotonic() >= deadline:
                raise StepFailed(f"{exc} (waited {wait:g} s)", transient=True) from exc
            time.sleep(1.0)


def source_marks(project_dir: str | Path, tables: Iterable[str]) -> dict[str, str]:
    """A cheap mark of each table's data in its source: its row count, and for an incremental table the
    highest value of its cursor columns (so appended and updated rows show). A table whose source cannot be
    read is left out. A sensor compares marks between ticks to see new data without loading anything."""
    from lakeforge.sources.sql import SqlSource

    project = Project(project_dir)
    wanted = set(tables)
    sources, planned, _errors = project._plan()
    marks: dict[str, str] = {}
    try:
        for item in planned:
            if item.table not in wanted:
                continue
            source = sources[item.source]
            if not isinstance(source, SqlSource):
                continue  # a record source's news shows as new files or messages only when it is read
            cursor = item.options.cursor if item.mode == "incremental" else None
            columns = ["count(*)", *(f"max({source.quote(c)})" for c in cursor or [])]
            try:
                row = source.query(f"SELECT {', '.join(columns)} FROM {source.table_sql(item.ref)}")[0]
            except LakeforgeError:
                continue
            marks[item.table] = "|".join(str(v) for v in row)
    finally:
        for source in sources.values():
            source.close()
    return marks
