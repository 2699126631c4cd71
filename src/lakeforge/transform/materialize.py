"""Materialisations: how a model's result (``__lf_result``) lands in the lake.

- ``table``: the result replaces the table in one atomic commit.
- ``view``: not stored; a DuckDB view that later models of the same build (and exports) read.
- ``incremental``: reads only rows of its ``incremental_from`` inputs whose watermark column
  (``_lf_extracted_at`` on bronze tables) is past the one committed with the table's last build, and MERGEs
  the result by ``unique_key``. The new watermarks are committed in the same Delta commit as the data, so a
  crash re-reads the same rows and the merge makes that harmless: exactly once.
- ``scd2``: see :mod:`lakeforge.transform.scd2`.

Every stored model's commit carries a checkpoint with the Delta versions of the inputs it read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lakeforge.errors import EngineError, ModelError
from lakeforge.lake.checkpoint import Checkpoint, encode_value
from lakeforge.transform import engine_write, sqlgen, write
from lakeforge.transform.checks import quarantines_on_engine, quarantining
from lakeforge.transform.model import Model
from lakeforge.transform.session import RESULT, Session


@dataclass(frozen=True)
class BuildContext:
    build_id: str
    started: dt.datetime
    """Build time: ``valid_from``/``valid_to`` of SCD2 versions, quarantine time."""
    as_of: dt.datetime | None = None
    full_refresh: bool = False
    after_compute: Callable[[Model], int] | None = None
    """Runs on ``__lf_result`` before it is written (quarantine); returns the rows left."""


@dataclass
class Outcome:
    status: str = "success"
    """success or unchanged"""
    rows: int = 0
    delta_version: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def checkpoint(
    session: Session, model: Model, ctx: BuildContext, watermarks: dict[str, Any] | None = None
) -> Checkpoint:
    position: dict[str, Any] = {"inputs": {n: session.versions[n] for n in model.inputs if n in session.versions}}
    if watermarks is not None:
        position["watermarks"] = {n: encode_value(v) for n, v in watermarks.items()}
    if ctx.as_of is not None:
        position["as_of"] = ctx.as_of.isoformat()
    return Checkpoint(
        run_id=ctx.build_id,
        mode=model.config.materialized,
        sequence=session.lake.next_sequence(model.name),
        position=position,
        source="transform",
        source_table=str(model.path),
    )


def compute(session: Session, model: Model, ctx: BuildContext) -> int:
    rows = session.compute(model)
    return ctx.after_compute(model) if ctx.after_compute else rows


def run_table(session: Session, model: Model, ctx: BuildContext) -> Outcome:
    if quarantines_on_engine(model):  # else quarantine moves rows out of the result on the driver's DuckDB
        quarantine = ctx.after_compute if quarantining(model) else None
        marks = lambda: checkpoint(session, model, ctx)  # noqa: E731 - computed when the commit is made
        rows = engine_write.write_table(session, model, marks, ctx.build_id, before_commit=quarantine)
        if rows is not None:
            session.register(model.name)
            written_by = session.engine.NAME if session.engine is not None else "duckdb"
            return Outcome(rows=rows, delta_version=session.versions[model.name], detail={"written_by": written_by})
    rows = compute(session, model, ctx)
    return finish_table(session, model, ctx, rows)


def finish_table(
    session: Session, model: Model, ctx: BuildContext, rows: int, watermarks: dict[str, Any] | None = None
) -> Outcome:
    write.overwrite(session, model.name, sqlgen.select_all(RESULT), checkpoint(session, model, ctx, watermarks))
    session.register(model.name)
    return Outcome(rows=rows, delta_version=session.versions[model.name])


def run_view(session: Session, model: Model, ctx: BuildContext) -> Outcome:
    session.define_view(model)
    return Outcome(rows=session.count(model.name))


# -- incremental ------------------------------------------------------------------------------------
def incremental_inputs(model: Model) -> list[str]:
    chosen = model.config.incremental_from
    if chosen is None:
        if len(model.inputs) != 1:
            raise ModelError(
                f"{model.path}: incremental model {model.name} reads {len(model.inputs)} tables "
                f"({', '.join(model.inputs)}); say which ones bring new rows with incremental_from: [...]"
            )
        chosen = model.inputs
    unknown = [n for n in chosen if n not in model.inputs]
    if unknown:
        raise ModelError(f"{model.path}: incremental_from names {', '.join(unknown)}, which the model does not read")
    return list(chosen)


def run_incremental(session: Session, model: Model, ctx: BuildContext) -> Outcome:
    keys = model.config.unique_key
    if not keys:
        raise ModelError(f"{model.path}: materialized: incremental needs unique_key (the merge key)")
    sources = incremental_inputs(model)
    column = model.config.watermark
    upper: dict[str, Any] = {}
    for name in sources:
        if column not in session.columns(name):
            raise ModelError(f"{model.path}: input {name} has no watermark column '{column}'; set watermark:")
        upper[name] = session.scalar(sqlgen.aggregate("max", column, name))
    previous = session.lake.checkpoint(model.name) if session.lake.exists(model.name) else None
    lower = _previous_watermarks(previous, sources)
    if ctx.full_refresh or lower is None:
        return finish_table(session, model, ctx, compute(session, model, ctx), upper)
    if all(upper[n] == lower.get(n) for n in sources):
        return Outcome(status="unchanged")
    filters = {n: sqlgen.after(column, lower[n]) for n in sources if lower.get(n) is not None}
    staged = None
    with session.narrowed(filters):  # the engine plans the narrowed query here; its rows stream into the MERGE
        if quarantining(model) and quarantines_on_engine(model):
            staged = engine_write.stage(session, model, ctx.build_id)  # quarantined on the workers, below
        stream = None if quarantining(model) else session.stream_on_engine(model)
        if stream is None and staged is None:
            rows = session.compute(model)
    if staged is not None:
        try:
            stream, rows = _quarantined_stream(session, model, ctx, staged)
        except BaseException:
            engine_write.discard(session, staged)
            raise
    if stream is not None:
        schema, batches, counted = stream
        marks = checkpoint(session, model, ctx, upper)
        try:
            metrics = session.lake.merge(model.name, batches, schema=schema, keys=keys, checkpoint=marks)
        except EngineError as exc:  # raised by the engine while the MERGE read its rows
            raise ModelError(f"model {model.name} failed ({model.where(None)}): {exc}") from None
        finally:
            if staged is not None:
                engine_write.discard(session, staged)
        rows = counted[0]
    else:
        if ctx.after_compute:  # outside the narrowed views: checks see whole tables
            rows = ctx.after_compute(model)
        marks = checkpoint(session, model, ctx, upper)
        metrics = write.merge(session, model.name, sqlgen.select_all(RESULT), keys, marks)
    session.register(model.name)
    detail = {k: v for k, v in metrics.items() if k.startswith("num_target_rows")}
    if stream is not None and session.engine is not None:
        detail["streamed_from"] = session.engine.NAME  # the MERGE read the engine's rows as they came
    return Outcome(rows=rows, delta_version=session.versions[model.name], detail=detail)


def _quarantined_stream(
    session: Session, model: Model, ctx: BuildContext, staged: engine_write.StagedResult
) -> tuple[tuple[Any, Any, list[int]], int]:
    """Quarantine over the staged result on the engine (outside the narrowed views: checks see whole tables),
    then the kept rows streamed from the staged files, read by the workers, into the MERGE."""
    from lakeforge.transform.write import conform

    session.staged = staged
    try:
        engine_write.share(session)
        rows = ctx.after_compute(model) if ctx.after_compute else staged.rows
    finally:
        session.staged = None
    assert session.engine is not None
    reader = session.engine.stream(sqlgen.select_all(RESULT), variables=session.variables)
    counted = [0]

    def batches() -> Any:
        for batch in reader:
            counted[0] += batch.num_rows
            yield conform(batch, staged.schema)

    return (staged.schema, batches(), counted), rows


def _previous_watermarks(previous: Checkpoint | None, sources: list[str]) -> dict[str, Any] | None:
    from lakeforge.lake.checkpoint import decode_value

    if previous is None or previous.mode != "incremental":
        return None
    marks = previous.position.get("watermarks")
    if not isinstance(marks, dict) or set(marks) != set(sources):
        return None  # first incremental build, or incremental_from changed: rebuild in full
    return {n: decode_value(v) for n, v in marks.items()}
