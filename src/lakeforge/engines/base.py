"""The engine seam: where a build's SQL models run.

An engine knows lake tables by name (``layer.table``, registered from the Arrow dataset the lake gives for a
pinned version), runs one query into a stream of Arrow batches, and can narrow an input to the rows past a
watermark. The build's own bookkeeping (the model's result ``__lf_result``, checks, SCD2, merges, writes)
runs on an in-process DuckDB over that Arrow stream whatever the engine (docs/transforms.md, "Engines").

An engine that reads files itself (``READS_FILES``) gets, with each lake table, a way to list the pinned
version's Parquet files, and reads them on its workers; one that writes files (``WRITES_FILES``) writes a
``materialized: table`` model's result as Parquet files into the table's storage and hands back their names,
which the driver commits in one table commit with the checkpoint (docs/scale-out.md, "Transforms on Daft").

Built-ins (``engine: {transforms: ...}`` in ``lakeforge.yml``):

- ``duckdb`` (the default): models run on the build's DuckDB connection itself.
- ``daft``: models are transpiled from DuckDB's dialect with sqlglot (:mod:`lakeforge.engines.daft`) and
  run on Daft, locally or on a Ray cluster (``engine: {type: ray, transforms: daft}``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from lakeforge.errors import EngineError

__all__ = ["EngineError", "FileTarget", "ModelEngine", "model_engine"]

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as pads
    from sqlglot import exp

    from lakeforge.lake.base import DataFile, TableFiles
    from lakeforge.lake.storage import Storage

FilesOf = Callable[[], "TableFiles | None"]
"""Lists a pinned table version's Parquet files when called (None: they alone do not give its rows)."""


@dataclass(frozen=True)
class FileTarget:
    """Where an engine's workers write a model's result: Parquet files under ``folder`` named ``prefix-*``."""

    folder: str
    """The table's staging folder (``Lake.staging``): a local path or ``s3://`` URI."""
    prefix: str
    storage: Storage
    schema: pa.Schema
    """Every file's schema (``Lake.file_schema`` of the table's schema): each batch is cast to it."""
    file_rows: int = 1_000_000
    """Rows per file before a worker starts the next one."""


class ModelEngine(ABC):
    NAME: ClassVar[str]
    DIALECT: ClassVar[str]
    """The sqlglot dialect user models are written in (always DuckDB's: docs/transforms.md)."""
    READS_FILES: ClassVar[bool] = False
    """``register`` uses ``files`` to read lake tables on the engine's workers."""
    WRITES_FILES: ClassVar[bool] = False
    """``write_files`` writes a query's rows as Parquet files from the engine's workers."""
    fallback: str | None = None
    """``duckdb``: a model this engine cannot run runs on the build's DuckDB, reported (``engine.fallback``)."""

    @abstractmethod
    def register(self, name: str, data: pads.Dataset | pa.Table, *, files: FilesOf | None = None) -> None:
        """(Re-)register lake table or view ``name`` (``layer.table``), or a build's temporary table
        (``__lf_result``, ``__lf_open``...: a plain name), over ``data``; ``files`` (lake tables) lists the
        same pinned version's Parquet files, for an engine that reads them itself."""

    @abstractmethod
    def narrow(self, name: str, condition: exp.Expr | None) -> None:
        """Let queries see only rows of ``name`` where ``condition`` holds; None restores it."""

    @abstractmethod
    def render(self, tree: exp.Expr) -> str:
        """``tree`` (a query in DuckDB's dialect, user-written or built by :mod:`lakeforge.transform.sqlgen`)
        as SQL text this engine runs."""

    @abstractmethod
    def query(self, sql: str | exp.Expr, *, variables: dict[str, str] | None = None) -> pa.RecordBatchReader:
        """Run ``sql`` (text in DuckDB's dialect, or a sqlglot tree); ``variables`` replace
        ``getvariable(name)`` by a SQL literal.

        Raises :class:`EngineError` when the engine cannot run it (the session names the model's file).
        """

    def stream(self, sql: str | exp.Expr, *, variables: dict[str, str] | None = None) -> pa.RecordBatchReader:
        """Like :meth:`query`, but the rows may be computed while they are read (what cannot be planned raises
        :class:`EngineError` at once; a failure while running raises it from the reader)."""
        return self.query(sql, variables=variables)

    def write_files(
        self,
        sql: str | exp.Expr,
        target: Callable[[pa.Schema], FileTarget],
        *,
        variables: dict[str, str] | None = None,
    ) -> list[DataFile]:
        """Run ``sql`` and write its rows as Parquet files where ``target(result schema)`` says (called once,
        before any row is computed); returns the files written. Only when ``WRITES_FILES``."""
        raise EngineError(f"engine {self.NAME} does not write files")

    @abstractmethod
    def close(self) -> None:
        """Release the engine's resources."""


def model_engine(name: str, *, ray_address: str | None = None, fallback: str | None = None) -> ModelEngine | None:
    """The engine for ``engine.transforms``; None for DuckDB (models run on the build's own connection)."""
    if name == "duckdb":
        return None
    if name == "daft":
        from lakeforge.engines.daft import DaftEngine

        engine = DaftEngine(ray_address=ray_address)
        engine.fallback = fallback
        return engine
    from lakeforge.errors import ConfigError

    raise ConfigError(f"engine.transforms: unknown engine '{name}' (choose duckdb or daft)")
