"""One DuckDB connection for a build: lake tables as views ``layer.table``, pinned to the Delta version
read when the build starts (or re-registered when the build rewrites them), and model views.

With another model engine (``engine: {transforms: daft}``, :mod:`lakeforge.engines.base`) the same tables
are registered in that engine too (with their pinned files, which Daft reads on its workers); SQL models run
there. A ``table`` model's result is written by the engine's workers as files that one commit adds
(:mod:`lakeforge.transform.engine_write`), an ``scd2`` model's too (:mod:`lakeforge.transform.scd2_files`); other
results come back as Arrow into ``__lf_result`` on this connection, where quarantine, merges and writes run.

A model may see a narrowed input (rows past an incremental watermark, rows before an as-of date): the
input's view is swapped for a filtered one while the model runs, then restored.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

from lakeforge.errors import ModelError
from lakeforge.lake.naming import split_name
from lakeforge.transform import sqlgen

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    from sqlglot import exp

    from lakeforge.engines.base import EngineError, ModelEngine
    from lakeforge.lake.base import Lake
    from lakeforge.transform.engine_write import StagedResult
    from lakeforge.transform.model import Model

log = logging.getLogger(__name__)
RESULT = "__lf_result"
_LINE = re.compile(r"LINE (\d+):")


def quoted(name: str) -> str:
    layer, table = split_name(name)
    return f'"{layer}"."{table}"'


def hidden(name: str) -> str:
    layer, table = split_name(name)
    return f'"__lf_{layer}__{table}"'


def literal(value: Any) -> str:
    """A DuckDB literal for a watermark or as-of value."""
    return sqlgen.render(sqlgen.value(value))


class Session:
    def __init__(
        self,
        lake: Lake,
        *,
        versions: dict[str, int] | None = None,
        only: set[str] | None = None,
        engine: ModelEngine | None = None,
    ) -> None:
        import duckdb

        self.lake = lake
        self.engine = engine
        """Where SQL models run; None: on :attr:`con` (DuckDB)."""
        self.variables: dict[str, str] = {}
        self.fallbacks: dict[str, str] = {}
        """Models the engine could not run that ran on DuckDB instead (``engine.fallback``), with the reason."""
        self.ran_on: dict[str, str] = {}
        """Models the engine (not DuckDB) computed, with the engine's name."""
        self.con: duckdb.DuckDBPyConnection = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        self.versions: dict[str, int] = {}
        """Version of every registered lake table (what this session reads)."""
        self.staged: StagedResult | None = None
        """The model's result as files not yet committed, while quarantine runs on the engine over them."""
        names = only if only is not None else set(lake.names())
        for name in sorted(names):
            self.register(name, (versions or {}).get(name))

    def register(self, name: str, version: int | None = None) -> None:
        """(Re-)register a lake table at ``version`` (default: its newest, e.g. after this build wrote it)."""
        layer, table = split_name(name)
        snapshot = self.lake.snapshot(name, version)
        self.versions[name] = snapshot.version
        self.con.register(f"__lf_{layer}__{table}", snapshot.dataset)
        self.con.execute(f'CREATE SCHEMA IF NOT EXISTS "{layer}"')
        self.con.execute(f"CREATE OR REPLACE VIEW {quoted(name)} AS SELECT * FROM {hidden(name)}")
        if self.engine is not None:
            files = partial(self.lake.data_files, name, snapshot.version) if self.engine.READS_FILES else None
            self.engine.register(name, snapshot.dataset, files=files)

    def close(self) -> None:
        self.con.close()
        if self.engine is not None:
            self.engine.close()

    def set_as_of(self, as_of: dt.datetime) -> None:
        self.variables["as_of"] = literal(as_of)
        self.con.execute(f"SET VARIABLE as_of = {literal(as_of)}")

    def scalar(self, sql: str | exp.Expr) -> Any:
        """The first value of ``sql`` run on this session's DuckDB."""
        rows = self.con.execute(self.text(sql)).fetchall()
        return rows[0][0] if rows else None

    def count(self, source: str | exp.Expr, where: exp.Expr | None = None) -> int:
        return int(self.scalar(sqlgen.count(source, where)))

    def columns(self, source: str) -> list[str]:
        return list(self.con.sql(self.text(sqlgen.empty(source))).columns)

    @staticmethod
    def text(sql: str | exp.Expr) -> str:
        return sql if isinstance(sql, str) else sqlgen.render(sql)

    def query_scalar(self, tree: exp.Expr) -> Any:
        """The first value of ``tree`` run on the model engine (DuckDB when none): checks on stored tables.
        What the engine cannot run raises :class:`~lakeforge.engines.base.EngineError`."""
        if self.engine is None:
            return self.scalar(tree)
        table = self.engine.query(tree, variables=self.variables).read_all()
        return table.column(0)[0].as_py() if table.num_rows else None

    def engine_rows(self, tree: exp.Expr) -> pa.Table:
        """The rows of ``tree`` computed on the model engine (brought to this process: keep them few)."""
        assert self.engine is not None
        return self.engine.query(tree, variables=self.variables).read_all()

    def materialise(self, name: str, tree: exp.Expr) -> int:
        """Temporary table ``name`` (e.g. ``__lf_open``) := ``tree``, computed on the model engine (DuckDB
        when none) and kept in both; returns its row count."""
        if self.engine is None:
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sqlgen.render(tree)}")
        else:
            data = self.engine.query(tree, variables=self.variables).read_all()
            self.con.register("__lf_engine", data)
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM __lf_engine")
            self.con.unregister("__lf_engine")
            self.engine.register(name, data)
        return self.count(name)

    def on_engine(self, name: str, tree: exp.Expr) -> exp.Expr:
        """What to write for ``tree``: on DuckDB the query itself (streamed into the lake); on another engine
        its rows, computed there into temporary table ``name``."""
        if self.engine is None:
            return tree
        self.materialise(name, tree)
        return sqlgen.select_all(name)

    def share(self, name: str) -> None:
        """Give the model engine this session's temporary table ``name`` (e.g. ``__lf_result``)."""
        if self.engine is not None:
            self.engine.register(name, self.arrow(sqlgen.select_all(name)))

    def arrow(self, sql: str | exp.Expr) -> pa.Table:
        from lakeforge.engines.duckdb import to_arrow

        return to_arrow(self.con.sql(self.text(sql)))

    @contextmanager
    def narrowed(self, filters: dict[str, exp.Expr]) -> Iterator[None]:
        """Swap the view of each input for one filtered by ``filters[name]`` (a SQL condition)."""
        try:
            for name, condition in filters.items():
                self.con.execute(
                    f"CREATE OR REPLACE VIEW {quoted(name)} AS SELECT * FROM {hidden(name)} "
                    f"WHERE {sqlgen.render(condition)}"
                )
                if self.engine is not None:
                    self.engine.narrow(name, condition)
            yield
        finally:
            for name in filters:
                self.con.execute(f"CREATE OR REPLACE VIEW {quoted(name)} AS SELECT * FROM {hidden(name)}")
                if self.engine is not None:
                    self.engine.narrow(name, None)

    # -- running models -----------------------------------------------------------------------------
    def compute(self, model: Model) -> int:
        """Run the model into the temporary table ``__lf_result``; returns its row count."""
        import duckdb

        self.con.execute(f"DROP TABLE IF EXISTS {RESULT}")
        try:
            if model.kind == "python":
                from lakeforge.transform.python_model import run_python

                self.con.register("__lf_py", run_python(model, self))
                self.con.execute(f"CREATE TABLE {RESULT} AS SELECT * FROM __lf_py")
                self.con.unregister("__lf_py")
            elif self.engine is not None and (reader := self._on_engine(model)) is not None:
                self.con.register("__lf_engine", reader.read_all())
                self.con.execute(f"CREATE TABLE {RESULT} AS SELECT * FROM __lf_engine")
                self.con.unregister("__lf_engine")
            else:
                self.con.sql(strip_sql(model.sql)).create(RESULT)
        except duckdb.Error as exc:
            raise model_error(model, exc) from None
        return self.count(RESULT)

    def _on_engine(self, model: Model) -> pa.RecordBatchReader | None:
        """The model's rows from the engine; None when it cannot run it and falls back to DuckDB."""
        from lakeforge.engines.base import EngineError

        assert self.engine is not None
        try:
            reader = self.engine.query(strip_sql(model.sql), variables=self.variables)
        except EngineError as exc:
            self.cannot_run(model, exc)
            return None
        self.ran(model)
        return reader

    def cannot_run(self, model: Model, exc: EngineError) -> None:
        """The engine failed on ``model``: a ModelError, or (``engine.fallback: duckdb``) noted and logged."""
        assert self.engine is not None
        where = model.where(None)
        if self.engine.fallback != "duckdb":
            raise ModelError(f"model {model.name} failed ({where}) on {self.engine.NAME}: {exc}") from None
        self.fallbacks[model.name] = str(exc)
        self.ran_on.pop(model.name, None)
        log.warning(
            "model %s (%s) ran on duckdb (engine.fallback): %s cannot run it: %s",
            model.name,
            where,
            self.engine.NAME,
            exc,
        )

    def ran(self, model: Model) -> None:
        assert self.engine is not None
        self.fallbacks.pop(model.name, None)
        self.ran_on[model.name] = self.engine.NAME

    def stream_on_engine(self, model: Model) -> tuple[pa.Schema, Iterator[pa.RecordBatch], list[int]] | None:
        """SQL model ``model``'s rows as the engine computes them (Delta-ready batches, a running row count in
        the list): for a MERGE that streams its input, so the result never sits whole on the driver. None
        without an engine, or when it cannot run the model (fallback: compute into ``__lf_result``)."""
        from lakeforge.engines.base import EngineError
        from lakeforge.transform.write import conform, delta_schema

        if self.engine is None or model.kind != "sql":
            return None
        try:
            reader = self.engine.stream(strip_sql(model.sql), variables=self.variables)
        except EngineError as exc:
            self.cannot_run(model, exc)
            return None
        self.ran(model)
        schema, counted = delta_schema(reader.schema), [0]

        def batches() -> Iterator[pa.RecordBatch]:
            for batch in reader:
                counted[0] += batch.num_rows
                yield conform(batch, schema)

        return schema, batches(), counted

    def define_view(self, model: Model) -> None:
        import duckdb

        layer, table = split_name(model.name)
        self.con.execute(f'CREATE SCHEMA IF NOT EXISTS "{layer}"')
        reader = self._on_engine(model) if self.engine is not None else None
        if self.engine is not None and reader is not None:  # a view on another engine: rows computed once a build
            data = reader.read_all()
            self.con.register(f"__lf_view_{layer}__{table}", data)
            self.con.execute(
                f'CREATE OR REPLACE VIEW {quoted(model.name)} AS SELECT * FROM "__lf_view_{layer}__{table}"'
            )
            self.engine.register(model.name, data)
            return
        try:
            self.con.execute(f"CREATE OR REPLACE VIEW {quoted(model.name)} AS {strip_sql(model.sql)}")
            self.con.execute(f"SELECT * FROM {quoted(model.name)} LIMIT 0")
        except duckdb.Error as exc:
            raise model_error(model, exc) from None
        if self.engine is not None:  # fell back: the engine reads the view's rows
            self.engine.register(model.name, self.arrow(sqlgen.select_all(model.name)))


def strip_sql(sql: str) -> str:
    text = sql.rstrip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    return text


def _line_of_name(sql: str, message: str) -> int | None:
    """The line of the one identifier an engine message quotes, when the engine gives no line itself."""
    for name in re.findall(r'"([^"\n]+)"', message):
        pattern = re.compile(r"(?<![\w.])" + re.escape(name) + r"(?!\w)", re.I)
        lines = [i for i, text in enumerate(sql.splitlines(), 1) if pattern.search(text)]
        if len(lines) == 1:
            return lines[0]
    return None


def model_error(model: Model, exc: Exception) -> ModelError:
    message = str(exc).strip()
    match = _LINE.search(message)
    first = message.splitlines()[0] if message else type(exc).__name__
    where = model.where(int(match.group(1)) if match else _line_of_name(model.sql, first))
    return ModelError(f"model {model.name} failed ({where}): {first}")
