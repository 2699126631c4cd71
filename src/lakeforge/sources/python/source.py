"""``type: python, function: pipelines.scrape:products``: records from a user's generator.

The function is imported from the project folder (``pipelines/scrape.py``) and called with the state the lake
committed last (``{}`` the first time). It yields records as dicts (one record), lists of dicts, Arrow tables
or record batches, or pandas/polars data frames; it yields ``lakeforge.State({...})`` whenever the records
before it are safe to commit with that state, and may ``return`` the final state. The state is committed in
the same lake commit as the records before it and handed back to the next run, so a crash repeats nothing:
the records after the last committed state are produced again from that state.

A failing function is reported with its file and line. A record that cannot be made into a row (not a
mapping, a value of the wrong type for a declared column) goes to quarantine with its text.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import field_validator

from lakeforge.config.models import SourceBase
from lakeforge.errors import ConfigError, SourceError
from lakeforge.sources.base import TablePlan
from lakeforge.sources.python.state import State
from lakeforge.sources.records import BadRecord, Chunk, ReadRequest, RecordSource, RecordSourceConfig

if TYPE_CHECKING:
    pass


class PythonSourceConfig(RecordSourceConfig):
    function: str
    """``package.module:function`` importable from the project folder, e.g. ``pipelines.scrape:products``."""
    options: dict[str, Any] = {}
    """Keyword arguments passed to the function besides ``state``."""

    @field_validator("function")
    @classmethod
    def _dotted(cls, value: str) -> str:
        module, sep, name = value.partition(":")
        if not sep or not module or not name.isidentifier():
            raise ValueError(f"'{value}' is not package.module:function (e.g. pipelines.scrape:products)")
        return value


class PythonSource(RecordSource):
    type_name: ClassVar[str] = "python"
    CONFIG: ClassVar[type[SourceBase]] = PythonSourceConfig
    config: PythonSourceConfig

    def check(self) -> dict[str, str]:
        function = self._function()
        return {"function": self.config.function, "file": _file_of(function)}

    def read(self, plan: TablePlan, request: ReadRequest) -> Iterator[Chunk]:
        function = self._function()
        state = dict(request.position.get("state") or {})
        items = function(state=state, **self.config.options)
        count = 0
        final: Any = None
        while True:
            try:
                item = next(items)
            except StopIteration as stop:
                final = stop.value
                break
            except Exception as exc:
                raise SourceError(self.name, _user_error(self.config.function, function, exc)) from None
            if isinstance(item, State):
                state = dict(item.values)
                yield Chunk(position={"state": state})
                continue
            chunk = self._chunk(plan, item, count)
            count += (chunk.batch.num_rows if chunk.batch is not None else 0) + len(chunk.bad)
            yield chunk
        if final is not None:
            if not isinstance(final, dict):
                raise SourceError(
                    self.name, f"{self.config.function} returned {type(final).__name__}, not a state dict"
                )
            state = dict(final)
        _check_json(self.name, state)
        yield Chunk(position={"state": state})

    def _chunk(self, plan: TablePlan, item: Any, first: int) -> Chunk:
        from lakeforge.sources.python.frames import to_batch
        from lakeforge.sources.typed import apply_types

        batch, bad = to_batch(item, first)
        if batch is None:
            return Chunk(bad=bad)
        typed, errors = apply_types(batch, plan.columns)
        for error in errors:
            row = batch.slice(error.row, 1).to_pylist()[0]
            bad.append(BadRecord(error.reason, json.dumps(row, default=str), offset=first + error.row))
        return Chunk(typed, bad)

    def _function(self) -> Callable[..., Iterator[Any]]:
        import importlib

        module_name, _, name = self.config.function.partition(":")
        folder = str(self.project_dir.resolve())
        if folder in sys.path:
            sys.path.remove(folder)
        sys.path.insert(0, folder)
        _forget_elsewhere(module_name, folder)
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise ConfigError(
                f"source '{self.name}': cannot import {module_name} (from {folder}): {type(exc).__name__}: {exc}"
            ) from None
        function = getattr(module, name, None)
        if not callable(function):
            raise ConfigError(f"source '{self.name}': {module_name} has no function '{name}'")
        return function  # type: ignore[no-any-return]


def _forget_elsewhere(module_name: str, folder: str) -> None:
    """Drop ``module_name`` and its parent packages from the import cache when they were imported from another
    folder (another project in the same process), so the project's own module is imported."""
    parts = module_name.split(".")
    for i in range(len(parts), 0, -1):
        loaded = sys.modules.get(".".join(parts[:i]))
        where = getattr(loaded, "__file__", None) or ""
        if loaded is not None and not where.startswith(folder + "/"):
            for name in [".".join(parts[:j]) for j in range(i, len(parts) + 1)]:
                sys.modules.pop(name, None)


def _file_of(function: Any) -> str:
    code = getattr(function, "__code__", None)
    return code.co_filename if code is not None else "?"


def _user_error(spec: str, function: Any, exc: BaseException) -> str:
    """``<spec> failed at <file>:<line> in <function>: <Error>: <message>``, the deepest frame in the user's
    file (or the deepest frame of all when the failure is inside a library it called)."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if f.filename == _file_of(function)] or frames
    where = f"{mine[-1].filename}:{mine[-1].lineno} in {mine[-1].name}" if mine else _file_of(function)
    return f"{spec} failed at {where}: {type(exc).__name__}: {exc}"


def _check_json(name: str, state: dict[str, Any]) -> None:
    try:
        json.dumps(state)
    except (TypeError, ValueError) as exc:
        raise SourceError(name, f"the state must be JSON (str, numbers, lists, dicts): {exc}") from None
