"""Query results on the wire: row descriptions and data rows (text or binary per column), portals, errors."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakeforge.serve.pgwire import types as t
from lakeforge.serve.pgwire.protocol import Wire

if TYPE_CHECKING:
    import pyarrow as pa


class QueryFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Portal:
    sql: str
    params: list[Any]
    formats: list[int]
    result: Result | None = None
    rows_sent: int = 0


@dataclass
class Result:
    tag: str
    schema: pa.Schema | None = None
    batches: Iterator[pa.RecordBatch] = field(default_factory=lambda: iter(()))
    pending: list[pa.RecordBatch] = field(default_factory=list)


def column_formats(schema: pa.Schema, requested: list[int]) -> list[tuple[t.PgType, int]]:
    out = []
    for i, f in enumerate(schema):
        typ = t.pg_type(f.type)
        want = requested[i] if len(requested) > 1 else (requested[0] if requested else 0)
        out.append((typ, 1 if want == 1 and t.has_binary(typ) else 0))
    return out


def describe_rows(wire: Wire, schema: pa.Schema, requested: list[int]) -> None:
    wire.row_description(
        [
            (f.name, typ.oid, typ.size, typ.typmod, fmt)
            for f, (typ, fmt) in zip(schema, column_formats(schema, requested), strict=True)
        ]
    )


def send_rows(wire: Wire, result: Result, requested: list[int], limit: int, already: int = 0) -> int:
    assert result.schema is not None
    formats = column_formats(result.schema, requested)
    sent = 0
    for batch in batches(result):
        if limit and sent + batch.num_rows > limit:
            batch, rest = batch.slice(0, limit - sent), batch.slice(limit - sent)
            result.pending.insert(0, rest)
        columns = [
            t.binary_column(batch.column(i), typ) if fmt else t.text_column(batch.column(i), typ)
            for i, (typ, fmt) in enumerate(formats)
        ]
        for row in zip(*columns, strict=True):
            wire.data_row(row)
        sent += int(batch.num_rows)
        if limit and sent >= limit:
            wire.send(b"s")
            return sent
    wire.complete(f"{result.tag} {already + sent}")
    return sent


def batches(result: Result) -> Iterator[pa.RecordBatch]:
    """The result's batches; an engine error while streaming (a cancel, a failing cast) is a QueryFailed."""
    while result.pending:
        yield result.pending.pop(0)
    stream = iter(result.batches)
    while True:
        try:
            batch = next(stream)
        except StopIteration:
            return
        except Exception as exc:  # DuckDB's errors arrive wrapped by Arrow's stream reader
            raise failed(exc) from None
        yield batch
        while result.pending:
            yield result.pending.pop(0)


def failed(exc: BaseException) -> QueryFailed:
    """The engine's error as a PostgreSQL error (a cancel reads as PostgreSQL's own message)."""
    code = sqlstate(exc)
    if code == "57014" or "INTERRUPT" in str(exc):
        return QueryFailed("57014", "canceling statement due to user request")
    return QueryFailed(code, message(exc))


def param(oid: int, fmt: int, data: bytes | None) -> Any:
    if data is None:
        return None
    try:
        return t.parse_binary_param(oid, data) if fmt == 1 else t.parse_text_param(oid, data.decode())
    except ValueError as exc:
        raise QueryFailed("22P02", str(exc)) from None


def message(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def sqlstate(exc: BaseException) -> str:
    name = type(exc).__name__
    return {
        "CatalogException": "42P01",
        "BinderException": "42703",
        "ParserException": "42601",
        "PermissionException": "42501",
        "InterruptException": "57014",
        "ConversionException": "22P02",
        "OutOfRangeException": "22003",
        "InvalidInputException": "22023",
    }.get(name, "XX000")
