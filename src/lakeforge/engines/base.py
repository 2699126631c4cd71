"""The engine seam: where a build's SQL models run.

An engine knows lake tables by name (``layer.table``, registered from the Arrow dataset the lake gives for a
pinned version), runs one query into a stream of Arrow batches, and can narrow an input to the rows past a
watermark. The build's own bookkeeping (the model's result ``__lf_result``, checks, SCD2, merges, writes)
runs on an in-process DuckDB over that Arrow stream whatever the engine (docs/transforms.md, "Engines").

Built-ins (``engine: {transforms: ...}`` in ``lakeforge.yml``):

- ``duckdb`` (the default): models run on the build's DuckDB connection itself.
- ``daft``: models are transpiled from DuckDB's dialect with sqlglot (:mod:`lakeforge.engines.daft`) and
  run on Daft, locally or on a Ray cluster (``engine: {type: ray, transforms: daft}``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

from lakeforge.errors import EngineError

__all__ = ["EngineError", "ModelEngine", "model_engine"]

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as pads
    from sqlglot import exp


class ModelEngine(ABC):
    NAME: ClassVar[str]
    DIALECT: ClassVar[str]
    """The sqlglot dialect user models are written in (always DuckDB's: docs/transforms.md)."""
    fallback: str | None = None
    """``duckdb``: a model this engine cannot run runs on the build's DuckDB, reported (``engine.fallback``)."""

    @abstractmethod
    def register(self, name: str, data: pads.Dataset | pa.Table) -> None:
        """(Re-)register lake table or view ``name`` (``layer.table``), or a build's temporary table
        (``__lf_result``, ``__lf_open``...: a plain name), over ``data``."""

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
