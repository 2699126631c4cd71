"""``lakeforge export``: a training set from a (feature) model, reproducible by time travel.

The model's query runs as of a date (``--as-of``: its ``as_of`` inputs lose every row at or after it, and
``getvariable('as_of')`` returns it) over the lake tables at their current Delta versions, and the rows are
written sorted, to Parquet. A manifest beside the file (``<file>.manifest.json``) records the model, its SQL
(and that of the view models it reads), the as-of date and the Delta version of every table read, so
``--from-manifest`` runs the same query over the same versions later and writes an identical file, whatever
the sources and the lake did since (until those versions are vacuumed).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeforge.errors import LakeError, ModelError
from lakeforge.transform import sqlgen
from lakeforge.transform.config import ModelConfig
from lakeforge.transform.model import Model
from lakeforge.transform.session import RESULT, Session, model_error

if TYPE_CHECKING:
    from lakeforge.lake.base import Lake
    from lakeforge.transform.graph import Graph

FORMAT = 1


@dataclass
class ExportResult:
    model: str
    path: str
    manifest: str
    rows: int
    as_of: str
    inputs: dict[str, int]
    """Delta version of every lake table read."""
    sha256: str


def manifest_path(path: Path) -> Path:
    return path.with_name(path.name + ".manifest.json")


def export(
    lake: Lake,
    load_graph: Callable[[], Graph],
    model_name: str | None,
    *,
    to: str | Path | None = None,
    as_of: dt.datetime | None = None,
    from_manifest: str | Path | None = None,
) -> ExportResult:
    """Export ``model_name`` of the models ``load_graph()`` reads (not needed to replay a manifest)."""
    if from_manifest is not None:
        return _replay(lake, Path(from_manifest), Path(to) if to else None)
    if not model_name or to is None:
        raise ModelError("export needs a model and --to FILE (or --from-manifest FILE)")
    graph = load_graph()
    if model_name not in graph.models:
        raise ModelError(f"export: no model {model_name}; models: {', '.join(graph.order)}")
    model = graph.models[model_name]
    views = [
        graph.models[n]
        for n in graph.order
        if n in graph.closure(model_name, "up") and graph.models[n].config.materialized == "view"
    ]
    tables = {n for v in [model, *views] for n in v.inputs if n not in {w.name for w in views}}
    missing = [n for n in sorted(tables) if not lake.exists(n)]
    if missing:
        raise LakeError(f"export {model_name}: {', '.join(missing)} not in the lake yet; run lakeforge build first")
    return _run(lake, model, views, tables, None, as_of or dt.datetime.now(dt.UTC), Path(to))


def _run(
    lake: Lake,
    model: Model,
    views: list[Model],
    tables: set[str],
    versions: dict[str, int] | None,
    as_of: dt.datetime,
    path: Path,
) -> ExportResult:
    import duckdb
    import pyarrow.parquet as pq

    session = Session(lake, versions=versions, only=tables)
    try:
        session.set_as_of(as_of)
        filters = {t: sqlgen.before(c, as_of) for t, c in model.config.as_of.items()}
        with session.narrowed({t: f for t, f in filters.items() if t in tables}):
            for view in views:
                session.define_view(view)
            rows = session.compute(model)
        data = session.arrow(sqlgen.select_all(RESULT).order_by(*(sqlgen.col(c) for c in session.columns(RESULT))))
        read = dict(session.versions)
    except duckdb.Error as exc:
        raise model_error(model, exc) from None
    finally:
        session.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(data, path, compression="zstd")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    result = ExportResult(model.name, str(path), str(manifest_path(path)), rows, as_of.isoformat(), read, digest)
    manifest = {
        "format": FORMAT,
        **asdict(result),
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "sql": model.sql,
        "kind": model.kind,
        "model_path": str(model.path),
        "config": model.config.model_dump(mode="json"),
        "views": [{"name": v.name, "sql": v.sql, "path": str(v.path), "inputs": v.inputs} for v in views],
    }
    manifest_path(path).write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    return result


def _replay(lake: Lake, manifest_file: Path, to: Path | None) -> ExportResult:
    try:
        data: dict[str, Any] = json.loads(manifest_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{manifest_file}: not a readable export manifest: {exc}") from None
    if data.get("format") != FORMAT:
        raise ModelError(f"{manifest_file}: manifest format {data.get('format')} is not supported")
    config = ModelConfig.model_validate(data["config"])
    model = Model(
        data["model"], Path(data["model_path"]), data["kind"], config, sql=data["sql"], inputs=sorted(data["inputs"])
    )
    if model.kind == "python":
        from lakeforge.transform.model import discover

        model.python_inputs = next(
            m.python_inputs for m in discover(Path(data["model_path"]).parent.parent) if m.name == model.name
        )
    views = [
        Model(v["name"], Path(v["path"]), "sql", ModelConfig(materialized="view"), sql=v["sql"], inputs=v["inputs"])
        for v in data["views"]
    ]
    versions = {k: int(v) for k, v in data["inputs"].items()}
    as_of = dt.datetime.fromisoformat(data["as_of"])
    try:
        result = _run(lake, model, views, set(versions), versions, as_of, to or Path(data["path"]))
    except LakeError as exc:
        raise LakeError(f"{manifest_file}: cannot time-travel to the recorded versions: {exc}") from None
    if result.sha256 != data["sha256"]:
        raise ModelError(
            f"{manifest_file}: the rebuilt file differs from the recorded one (sha256 "
            f"{result.sha256[:12]} != {data['sha256'][:12]})"
        )
    return result
