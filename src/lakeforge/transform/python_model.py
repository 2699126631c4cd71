"""Python models: ``model(**inputs)`` over Arrow tables (or Polars frames), for what SQL does badly."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from lakeforge.errors import MissingExtraError, ModelError

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeforge.transform.model import Model
    from lakeforge.transform.session import Session


def run_python(model: Model, session: Session) -> pa.Table:
    import pyarrow as pa

    from lakeforge.transform.session import quoted

    spec = importlib.util.spec_from_file_location(f"lakeforge_model_{model.layer}_{model.table}", model.path)
    if spec is None or spec.loader is None:
        raise ModelError(f"{model.path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        fmt = getattr(module, "FORMAT", "arrow")
        inputs: dict[str, Any] = {}
        for arg, name in model.python_inputs.items():
            table = session.arrow(f"SELECT * FROM {quoted(name)}")
            inputs[arg] = _polars(table) if fmt == "polars" else table
        result = module.model(**inputs)
    except ModelError:
        raise
    except Exception as exc:  # the error boundary around user code: name the model's file
        line = _user_line(exc, str(model.path))
        raise ModelError(f"model {model.name} failed ({model.where(line)}): {type(exc).__name__}: {exc}") from exc
    try:
        return pa.table(result)
    except (TypeError, ValueError, pa.ArrowException) as exc:
        raise ModelError(
            f"model {model.name} ({model.path}): model() returned {type(result).__name__}, not a table "
            f"Arrow can read: {exc}"
        ) from None


def _polars(table: pa.Table) -> Any:
    try:
        import polars as pl
    except ImportError:
        raise MissingExtraError("polars", "polars") from None
    return pl.from_arrow(table)


def _user_line(exc: BaseException, path: str) -> int | None:
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
