"""What builds leave behind for ``lakeforge checks``, ``lakeforge lineage`` and the dashboard: lake tables in
the internal layer ``_lakeforge`` (like run history), in the lake's own format and storage.

- ``_lakeforge.model_runs``: one row per model per build (status, rows, Delta version, error);
- ``_lakeforge.check_results``: one row per check per build;
- ``_lakeforge.lineage``: the table-level edges (upstream table -> model) of the newest build.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Literal

from lakeforge.lake.base import INTERNAL, Lake

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeforge.transform.checks import CheckResult

MODEL_RUNS = f"{INTERNAL}.model_runs"
CHECK_RESULTS = f"{INTERNAL}.check_results"
LINEAGE = f"{INTERNAL}.lineage"


def _ts() -> Any:
    import pyarrow as pa

    return pa.timestamp("us", tz="UTC")


def model_runs_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            ("build_id", pa.string()),
            ("model", pa.string()),
            ("path", pa.string()),
            ("materialized", pa.string()),
            ("status", pa.string()),
            ("rows", pa.int64()),
            ("seconds", pa.float64()),
            ("delta_version", pa.int64()),
            ("error", pa.string()),
            ("started_at", _ts()),
            ("finished_at", _ts()),
        ]
    )


def check_results_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            ("build_id", pa.string()),
            ("model", pa.string()),
            ("check", pa.string()),
            ("type", pa.string()),
            ("severity", pa.string()),
            ("status", pa.string()),
            ("failing_rows", pa.int64()),
            ("quarantined_rows", pa.int64()),
            ("message", pa.string()),
            ("checked_at", _ts()),
        ]
    )


def lineage_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            ("upstream", pa.string()),
            ("model", pa.string()),
            ("path", pa.string()),
            ("materialized", pa.string()),
            ("build_id", pa.string()),
            ("recorded_at", _ts()),
        ]
    )


def _write(
    lake: Lake, name: str, rows: list[dict[str, Any]], schema: pa.Schema, mode: Literal["append", "overwrite"]
) -> None:
    import pyarrow as pa

    from lakeforge.state.history import append_retrying

    table = pa.Table.from_pylist(rows, schema=schema)
    if mode == "append":
        append_retrying(lambda: lake.write(name, table.to_batches(), schema=schema, mode=mode))
    else:
        lake.write(name, table.to_batches(), schema=schema, mode=mode)


def record_model_runs(lake: Lake, rows: list[dict[str, Any]]) -> None:
    if rows:
        _write(lake, MODEL_RUNS, rows, model_runs_schema(), "append")


def record_checks(lake: Lake, results: list[CheckResult]) -> None:
    if results:
        _write(lake, CHECK_RESULTS, [asdict(r) for r in results], check_results_schema(), "append")


def record_lineage(lake: Lake, rows: list[dict[str, Any]]) -> None:
    _write(lake, LINEAGE, rows, lineage_schema(), "overwrite")


def read(lake: Lake, name: str) -> list[dict[str, Any]]:
    if not lake.exists(name):
        return []
    return list(lake.read(name).to_pylist())


def latest_checks(lake: Lake) -> list[dict[str, Any]]:
    """The newest result of every (model, check), sorted by model and check."""
    newest: dict[tuple[str, str], dict[str, Any]] = {}
    for row in sorted(read(lake, CHECK_RESULTS), key=lambda r: (r["checked_at"], r["build_id"])):
        newest[(row["model"], row["check"])] = row
    return [newest[k] for k in sorted(newest)]


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
