"""Shared by the publish tests: a project whose lake holds a table of every contract type, published into the
test's PostgreSQL and MariaDB databases."""

from __future__ import annotations

import datetime as dt
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from lakeforge import Project
from tests.contract.kits import COMMON

TYPES_TABLE = "gold.types"
# Delta holds no time, unsigned or nanosecond types, so the lake cannot carry them to a publish.
EXTRA: list[tuple[str, pa.DataType, list[Any]]] = [
    ("c_bool", pa.bool_(), [True, False, True]),
]


def types_table() -> pa.Table:
    """Row i (0..2) holds each case's value i; row 3 is NULL in every column but the key."""
    columns: dict[str, pa.Array] = {"id": pa.array([0, 1, 2, 3], pa.int64())}
    for case in COMMON:
        columns[case.column] = pa.array([*case.values, None], case.arrow)
    for name, arrow, values in EXTRA:
        columns[name] = pa.array([*values, None], arrow)
    return pa.table(columns)


def write_project(path: Path, pg_url: str, my_url: str, *, mode: str = "replace", tables: str = "gold.*",
                  extra: str = "") -> Project:
    path.mkdir(parents=True, exist_ok=True)
    body = f"""\
        lake:
          path: ./lake
        publish:
          pg:
            type: postgres
            url: {pg_url}
            tables: ["{tables}"]
            mode: {mode}
            options:
              gold.types: {{primary_key: [id], json_columns: [c_json]}}
          my:
            type: mysql
            url: {my_url}
            tables: ["{tables}"]
            mode: {mode}
            options:
              gold.types: {{primary_key: [id], json_columns: [c_json]}}
        """
    (path / "lakeforge.yml").write_text(textwrap.dedent(body) + textwrap.dedent(extra), encoding="utf-8")
    return Project(path)


def write_lake(project: Project, name: str, table: pa.Table, mode: str = "overwrite") -> None:
    project.lake.write(name, table.to_batches(), schema=table.schema, mode=mode)  # type: ignore[arg-type]


def comparable(value: Any, arrow: pa.DataType, target: str) -> Any:
    """A lake value as the target's driver returns it (the documented mappings, nothing lossy)."""
    if value is None:
        return None
    if pa.types.is_float32(arrow):
        return float(np.float32(value))
    if pa.types.is_timestamp(arrow) and target == "my" and arrow.tz:
        return value.replace(tzinfo=None)  # DATETIME(6) holding UTC
    if pa.types.is_timestamp(arrow) and arrow.unit == "ns":
        return value.to_pydatetime() if hasattr(value, "to_pydatetime") else value
    if pa.types.is_boolean(arrow) and target == "my":
        return int(value)
    if pa.types.is_time(arrow) and target == "my":
        return dt.timedelta(hours=value.hour, minutes=value.minute, seconds=value.second,
                            microseconds=value.microsecond)
    if pa.types.is_uint64(arrow) and target == "pg":
        return Decimal(value)
    return value


def target_value(value: Any, arrow: pa.DataType) -> Any:
    if value is None:
        return None
    if pa.types.is_float32(arrow):
        return float(np.float32(value))
    if isinstance(value, memoryview):
        return bytes(value)
    return value
