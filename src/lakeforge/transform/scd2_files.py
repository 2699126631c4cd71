"""SCD2 on an engine whose workers read and write the lake's files (Daft, locally or on Ray): the driver holds
plans, counts and file lists, never the model's result or the dimension.

1. The workers write the model's result as Parquet files into the dimension's staging folder (not committed);
   they are registered on the engine as ``__lf_result`` (:func:`lakeforge.transform.engine_write.share`), so
   the business-key checks and an ``on_fail: quarantine`` (:func:`lakeforge.transform.checks.run_quarantine`)
   run there over them.
2. The first build (or a full refresh) writes every row as a first version. A later build counts the diff on
   the engine (the same trees as the DuckDB path: :func:`lakeforge.transform.scd2.diff_parts`), and when
   something opens or closes, the workers write the whole new dimension: the stored history as it is, the
   current versions that stay, the closed ones (``valid_to`` = build time) and the opened ones (new surrogate
   keys after the highest so far).
3. The driver commits those files in ONE commit that replaces the table's rows and carries the checkpoint
   (``Lake.commit_files``); the staged result's files and any other file of the attempt are deleted.

The rows equal the DuckDB path's MERGE (on the surrogate key); the difference is that every build with a
change rewrites the dimension's files instead of only the files holding closed versions (docs/scale-out.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlglot import exp

from lakeforge.transform import sqlgen
from lakeforge.transform.materialize import BuildContext, Outcome, checkpoint
from lakeforge.transform.model import Model
from lakeforge.transform.scd2 import (
    IS_CURRENT,
    VALID_FROM,
    VALID_TO,
    diff_parts,
    first_versions,
    validate,
    version_columns,
)
from lakeforge.transform.session import Session

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeforge.engines.base import FileTarget
    from lakeforge.lake.base import DataFile


def run_on_workers(session: Session, model: Model, ctx: BuildContext, keys: list[str], sk: str) -> Outcome | None:
    """Build SCD2 model ``model`` with the engine's workers; None when the engine does not write files, the
    lake cannot commit them, a quarantine check needs the driver (``unique``), or the engine cannot run the
    model and falls back: the caller then builds it on the driver's DuckDB."""
    from lakeforge.transform.checks import quarantines_on_engine, quarantining
    from lakeforge.transform.engine_write import discard, share, write_staged, writes_files

    if not writes_files(session, model) or not quarantines_on_engine(model):
        return None
    # before staging, which may create the table empty (Iceberg); a table no build committed to is new too
    lake = session.lake
    first = ctx.full_refresh or not lake.exists(model.name) or lake.checkpoint(model.name) is None
    staged = write_staged(session, model, f"lf-{ctx.build_id}", folder_schema=lambda s: _dimension_schema(s, sk))
    if staged is None:
        return None
    committed: set[str] = set()
    try:
        session.staged = staged
        share(session)
        if ctx.after_compute is not None and quarantining(model):
            ctx.after_compute(model)  # moves failing rows out of the staged result
        outcome, written = _build(session, model, ctx, keys, sk, staged.target, first=first)
        committed = {f.path for f in written}
    finally:
        session.staged = None
        discard(session, staged, keep=committed)
    session.ran(model)
    assert session.engine is not None
    outcome.detail["written_by"] = session.engine.NAME
    return outcome


def _build(
    session: Session, model: Model, ctx: BuildContext, keys: list[str], sk: str, staged: FileTarget, *, first: bool
) -> tuple[Outcome, list[DataFile]]:
    """Validate the staged result, write the new dimension from the workers and commit it once."""
    assert session.staged is not None
    columns = session.staged.schema.names

    def count(source: str | exp.Expr, where: exp.Expr | None = None) -> int:
        return int(session.query_scalar(sqlgen.count(source, where)) or 0)

    validate(count, model, columns, keys, sk)
    stored = None if first else session.lake.schema(model.name)
    if stored is None:
        tree: exp.Expr = first_versions(model, ctx, columns, keys, sk)
        detail: dict[str, Any] = {}
        rows = None
    else:
        ordered = stored.names
        parts = diff_parts(model, columns, ordered, keys, sk)
        opened, closed = count(parts.opening), count(parts.closing)
        if opened == 0 and closed == 0:
            return Outcome(status="unchanged", detail={"opened": 0, "closed": 0}), []
        picks = version_columns(session.query_scalar, model, ctx, columns, ordered, keys, sk)
        tree = exp.union(
            exp.select(*picks.kept).from_(sqlgen.table(model.name)).where(exp.not_(sqlgen.col(IS_CURRENT))),
            exp.select(*picks.kept).from_(parts.staying.subquery("s")),
            exp.select(*picks.closed).from_(parts.closing.subquery("c")),
            exp.select(*picks.opened).from_(parts.opening.subquery("o")),
            distinct=False,
        )
        detail, rows = {"opened": opened, "closed": closed}, opened
    written = _write_dimension(session, model, ctx, tree, staged, stored)
    session.register(model.name)
    if rows is None:
        rows = sum(f.rows for f in written)
        detail = {"opened": rows}
    return Outcome(rows=rows, delta_version=session.versions[model.name], detail=detail), written


def _write_dimension(
    session: Session, model: Model, ctx: BuildContext, tree: exp.Expr, staged: FileTarget, stored: pa.Schema | None
) -> list[DataFile]:
    """The rows of ``tree`` written by the workers beside the staged result, committed as the table's rows;
    columns the table has (``stored``) keep their stored types, as a MERGE keeps them."""
    import pyarrow as pa

    from lakeforge.engines.base import FileTarget
    from lakeforge.transform.write import delta_schema

    assert session.engine is not None
    lake, chosen = session.lake, []

    def target(result: pa.Schema) -> FileTarget:
        schema = delta_schema(result)
        if stored is not None:
            schema = pa.schema([stored.field(f.name) if f.name in stored.names else f for f in schema])
        chosen.append(schema)
        return FileTarget(staged.folder, staged.prefix, staged.storage, lake.file_schema(schema))

    files = session.engine.write_files(tree, target, variables=session.variables)
    marks = checkpoint(session, model, ctx)
    lake.commit_files(model.name, files, schema=chosen[0], mode="overwrite", checkpoint=marks)
    return files


def _dimension_schema(result: pa.Schema, sk: str) -> pa.Schema:
    """The dimension's schema for a result schema (what ``Lake.staging`` creates a new table with)."""
    import pyarrow as pa

    utc = pa.timestamp("us", tz="UTC")
    return pa.schema(
        [
            pa.field(sk, pa.int64()),
            *result,
            pa.field(VALID_FROM, utc),
            pa.field(VALID_TO, utc),
            pa.field(IS_CURRENT, pa.bool_()),
        ]
    )
