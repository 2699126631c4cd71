"""A ``table`` model's result written by the model engine's workers (Daft on Ray), never held by the driver.

The workers write Parquet files into the table's staging folder (``Lake.staging``); this process commits them
in ONE commit that replaces the table's rows and carries the checkpoint (``Lake.commit_files``), as
distributed extraction does. With ``on_fail: quarantine`` checks, the uncommitted files are first registered
on the engine as ``__lf_result`` and the checks run there (:func:`lakeforge.transform.checks.run_quarantine`):
the failing rows go to the quarantine table, the kept rows are written again as new staged files
(:func:`rewrite`), and those are committed. Files no commit names (a failed write or commit, the
intermediate files of quarantine) are removed; their names start with ``lf-<build id>-``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lakeforge.transform.session import RESULT, Session, strip_sql

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlglot import exp

    from lakeforge.engines.base import FileTarget
    from lakeforge.lake.base import DataFile
    from lakeforge.lake.checkpoint import Checkpoint
    from lakeforge.transform.model import Model


@dataclass
class StagedResult:
    """A model's result as files in its table's staging folder, not (yet) part of the table."""

    target: FileTarget
    schema: pa.Schema
    """The table's schema (Delta-ready types of the result)."""
    files: list[DataFile]

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)


def writes_files(session: Session, model: Model) -> bool:
    """Whether the model's engine writes its result as files the lake can commit (a SQL model on Daft)."""
    engine, lake = session.engine, session.lake
    return engine is not None and engine.WRITES_FILES and lake.SUPPORTS_COMMIT_FILES and model.kind == "sql"


def write_staged(
    session: Session, model: Model, prefix: str, *, folder_schema: Callable[[pa.Schema], pa.Schema] | None = None
) -> StagedResult | None:
    """SQL model ``model``'s result written by the engine's workers as files ``<prefix>-*`` into its table's
    staging folder (created for ``folder_schema(schema)`` when given: a dimension's schema), not committed.
    None when the engine does not write files (:func:`writes_files`) or cannot run the model: the fallback
    is told to the session and any file of the attempt deleted."""
    from lakeforge.engines.base import EngineError, FileTarget
    from lakeforge.transform.write import delta_schema

    if not writes_files(session, model):
        return None
    engine, lake = session.engine, session.lake
    assert engine is not None
    made: list[StagedResult] = []

    def target(result: pa.Schema) -> FileTarget:
        schema = delta_schema(result)
        folder = lake.staging(model.name, folder_schema(schema) if folder_schema else schema)
        made.append(StagedResult(FileTarget(folder, prefix, lake.file_storage(), lake.file_schema(schema)), schema, []))
        return made[0].target

    try:
        files = engine.write_files(strip_sql(model.sql), target, variables=session.variables)
    except EngineError as exc:
        if made:
            discard(session, made[0])
        session.cannot_run(model, exc)
        return None
    made[0].files = files
    return made[0]


def write_table(
    session: Session,
    model: Model,
    checkpoint: Callable[[], Checkpoint],
    token: str,
    *,
    before_commit: Callable[[Model], int] | None = None,
) -> int | None:
    """Write SQL model ``model``'s result from the engine's workers and commit it with ``checkpoint()``;
    ``before_commit`` (quarantine) runs on the staged files first and returns the rows left. Returns the
    rows committed; None when the engine does not write files (or the lake cannot commit them), or cannot
    run the model and falls back: the caller then computes it into ``__lf_result`` as before."""
    staged = write_staged(session, model, f"lf-{token}")
    if staged is None:
        return None
    committed: set[str] = set()
    try:
        if before_commit is not None:
            session.staged = staged
            share(session)
            before_commit(model)
        session.lake.commit_files(
            model.name, staged.files, schema=staged.schema, mode="overwrite", checkpoint=checkpoint()
        )
        committed = {f.path for f in staged.files}
    finally:
        session.staged = None
        discard(session, staged, keep=committed)
    session.ran(model)
    return staged.rows


def stage(session: Session, model: Model, token: str) -> StagedResult | None:
    """SQL model ``model``'s result written by the engine's workers into its table's staging folder, not
    committed (an incremental model's, whose quarantine runs over it before the MERGE reads it). None when the
    engine does not write files, the lake cannot take them, or the engine cannot run the model (fallback).
    The caller deletes the files (:func:`discard`)."""
    staged = write_staged(session, model, f"lf-{token}")
    if staged is not None:
        session.ran(model)
    return staged


def discard(session: Session, staged: StagedResult, *, keep: set[str] | None = None) -> None:
    """Delete every file of the staged result's attempt but those in ``keep`` (the ones a commit names)."""
    from lakeforge.lake.files import discard_orphans

    with suppress(Exception):
        discard_orphans(session.lake, staged.target.folder, staged.target.prefix, keep or set())


def share(session: Session) -> None:
    """Register the staged files on the engine as ``__lf_result`` (read from the files by its workers)."""
    from lakeforge.lake.base import TableFiles

    staged, engine = session.staged, session.engine
    assert staged is not None and engine is not None
    listed = TableFiles([f.path for f in staged.files], staged.target.storage)
    engine.register(RESULT, staged.target.schema.empty_table(), files=lambda: listed)


def rewrite(session: Session, tree: exp.Expr) -> None:
    """Replace the staged result by the rows of ``tree`` (a query over ``__lf_result``), written by the
    engine's workers into new staged files."""
    staged, engine = session.staged, session.engine
    assert staged is not None and engine is not None
    staged.files = engine.write_files(tree, lambda _: staged.target, variables=session.variables)
    share(session)
