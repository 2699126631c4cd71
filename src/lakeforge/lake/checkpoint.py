"""The source position a lake table has reached, committed in the same Delta commit as the data.

A checkpoint travels in two places of that one commit: ``commitInfo`` carries the whole checkpoint as JSON
(``lakeforge.checkpoint``), and a Delta transaction identifier (``txn``, app id ``lakeforge:<table>``) carries
its sequence number, which survives Delta log checkpoints and so finds the commit again.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from dataclasses import asdict, dataclass, field
from typing import Any

METADATA_KEY = "lakeforge.checkpoint"
FORMAT = 1


@dataclass(frozen=True)
class Checkpoint:
    run_id: str
    mode: str
    sequence: int = 0
    """Monotonic per table; also stored as the Delta transaction version."""
    cursor: dict[str, Any] | None = None
    """``{"columns": [...], "values": [encoded...]}`` for incremental tables."""
    position: dict[str, Any] = field(default_factory=dict)
    """Log position for CDC (LSN, GTID set, binlog file/offset)."""
    source: str = ""
    source_table: str = ""

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, **asdict(self)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Checkpoint:
        data = json.loads(text)
        data.pop("format", None)
        return cls(**data)

    def cursor_values(self) -> list[Any] | None:
        if not self.cursor:
            return None
        return [decode_value(v) for v in self.cursor["values"]]


def encode_value(value: Any) -> dict[str, str] | None:
    """A cursor value as typed JSON, exact for decimals and microseconds."""
    if value is None:
        return None
    if isinstance(value, bool):
        return {"t": "bool", "v": str(value)}
    if isinstance(value, int):
        return {"t": "int", "v": str(value)}
    if isinstance(value, decimal.Decimal):
        return {"t": "decimal", "v": str(value)}
    if isinstance(value, float):
        return {"t": "float", "v": repr(value)}
    if isinstance(value, dt.datetime):
        return {"t": "datetime", "v": value.isoformat()}
    if isinstance(value, dt.date):
        return {"t": "date", "v": value.isoformat()}
    return {"t": "str", "v": str(value)}


def decode_value(data: dict[str, str] | None) -> Any:
    if data is None:
        return None
    kind, text = data["t"], data["v"]
    if kind == "bool":
        return text == "True"
    if kind == "int":
        return int(text)
    if kind == "decimal":
        return decimal.Decimal(text)
    if kind == "float":
        return float(text)
    if kind == "datetime":
        return dt.datetime.fromisoformat(text)
    if kind == "date":
        return dt.date.fromisoformat(text)
    return text
