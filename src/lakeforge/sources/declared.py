"""Column types a record source's ``schema:`` declares, spelled as in SQL, and their Arrow types.

``string``/``text``, ``int8/16/32/64`` (``smallint``, ``int``, ``integer``, ``bigint``), ``float32``/``float``,
``float64``/``double``, ``decimal(p,s)``, ``bool``/``boolean``, ``date``, ``timestamp`` (UTC: a value with an
offset is converted, a naive value is taken as UTC), ``timestamp_ntz`` (no time zone), ``binary``, ``json``
(the text kept as a string).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lakeforge.sources.base import ColumnPlan

_SIMPLE = {
    "string": "string",
    "text": "string",
    "varchar": "string",
    "json": "string",
    "int8": "int8",
    "tinyint": "int8",
    "int16": "int16",
    "smallint": "int16",
    "int32": "int32",
    "int": "int32",
    "integer": "int32",
    "int64": "int64",
    "bigint": "int64",
    "long": "int64",
    "float32": "float32",
    "float": "float32",
    "real": "float32",
    "float64": "float64",
    "double": "float64",
    "bool": "bool",
    "boolean": "bool",
    "date": "date32",
    "timestamp": "timestamp_utc",
    "timestamptz": "timestamp_utc",
    "timestamp_ntz": "timestamp_ntz",
    "binary": "binary",
}
_DECIMAL = re.compile(r"^(?:decimal|numeric)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)$")
VALID = ", ".join([*_SIMPLE, "decimal(p,s)"])


def check_type(column: str, spelled: str) -> None:
    """ValueError naming the column and the valid types when ``spelled`` is not one."""
    text = spelled.strip().lower()
    match = _DECIMAL.match(text)
    if match:
        precision, scale = int(match.group(1)), int(match.group(2) or 0)
        if not 1 <= precision <= 76 or scale > precision:
            raise ValueError(
                f"schema.{column}: '{spelled}': a decimal needs 1 <= precision <= 76 and scale <= precision"
            )
        return
    if text not in _SIMPLE:
        raise ValueError(f"schema.{column}: '{spelled}' is not a type; valid types: {VALID}")


def arrow_type(spelled: str) -> Any:
    """The Arrow type of a declared type (checked by :func:`check_type`)."""
    import pyarrow as pa

    text = spelled.strip().lower()
    match = _DECIMAL.match(text)
    if match:
        precision, scale = int(match.group(1)), int(match.group(2) or 0)
        return pa.decimal128(precision, scale) if precision <= 38 else pa.decimal256(precision, scale)
    kind = _SIMPLE[text]
    if kind == "timestamp_utc":
        return pa.timestamp("us", tz="UTC")
    if kind == "timestamp_ntz":
        return pa.timestamp("us")
    return {"date32": pa.date32(), "binary": pa.binary(), "bool": pa.bool_()}.get(kind) or pa.type_for_alias(kind)


def declared_columns(types: dict[str, str]) -> list[ColumnPlan]:
    from lakeforge.lake.naming import normalize
    from lakeforge.sources.base import ColumnPlan

    return [ColumnPlan(name, normalize(name), spelled, "", arrow_type(spelled)) for name, spelled in types.items()]
