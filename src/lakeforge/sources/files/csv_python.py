"""The CSV reader's slow path: Python's ``csv`` module over the file's text, for what pyarrow refuses.

pyarrow stops at bytes that are not valid text in the file's encoding (it cannot convert the block, nor hand
such a malformed row to the row handler), so the fast reader (``csv_reader.py``) hands the file over to this
one, which reads it again from the start and gives out only the records after ``after`` (those not given out
yet). Bytes that are not valid text are decoded with ``surrogateescape``, so every byte stays known:

- a record with the wrong number of fields goes to quarantine with its text;
- a record with a field that is not valid text goes to quarantine with its text (bad bytes as ``\\xNN``);
- blank records and ``null_values`` are handled as on the fast path; lines are counted the same way
  (``\\n`` outside and inside quoted fields).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lakeforge.sources.files.config import CsvOptions
from lakeforge.sources.files.csv_reader import Block


def first_record(sample: bytes, options: CsvOptions) -> list[str]:
    """The fields of the first record after ``skip_rows`` (the header, when there is one)."""
    import io

    consumed: list[str] = []
    reader = _reader(io.BytesIO(sample), options, consumed)
    for _ in range(options.skip_rows):
        next(reader, None)
    return next(reader, [])


def read_csv_python(
    stream: Any, options: CsvOptions, names: list[str], block_size: int, after: int = 0
) -> Iterator[Block]:
    """Blocks of about ``block_size`` bytes of the records numbered above ``after`` (data records from 1)."""
    consumed: list[str] = []
    reader = _reader(stream, options, consumed)
    for _ in range(options.skip_rows + (1 if options.header else 0)):
        if next(reader, None) is None:
            return
    pending = _Pending(names, options, line=1 + sum(line.count("\n") for line in consumed))
    consumed.clear()
    for fields in reader:
        raw = "".join(consumed)
        consumed.clear()
        pending.add(fields, raw, given=pending.number >= after)
        if pending.size >= block_size:
            yield pending.block()
    if pending.number > after:
        yield pending.block()


def _reader(stream: Any, options: CsvOptions, consumed: list[str]) -> Iterator[list[str]]:
    """Records of ``stream``; the physical lines of each are appended to ``consumed`` as it is read."""
    import csv
    import io
    import sys

    csv.field_size_limit(sys.maxsize)  # a field is as long as the file says (pyarrow has no limit either)
    text = io.TextIOWrapper(stream, encoding=options.encoding, errors="surrogateescape", newline="")

    def lines() -> Iterator[str]:
        for line in text:
            consumed.append(line)
            yield line

    return csv.reader(
        lines(),
        delimiter=options.delimiter,
        quotechar=options.quote,
        escapechar=options.escape,
        doublequote=True,
        quoting=csv.QUOTE_MINIMAL if options.quote is not None else csv.QUOTE_NONE,
        strict=False,
    )


class _Pending:
    """Records read since the last block."""

    def __init__(self, names: list[str], options: CsvOptions, line: int) -> None:
        self.names, self.options, self.line = names, options, line
        self.nulls = set(options.null_values)
        self.number = 0
        self._clear()

    def _clear(self) -> None:
        self.columns: list[list[str | None]] = [[] for _ in self.names]
        self.records: list[int] = []
        self.lines: list[int] = []
        self.bad: list[tuple[int, int, str, str]] = []
        self.blank = 0
        self.size = 0

    def add(self, fields: list[str], raw: str, given: bool) -> None:
        self.number += 1
        line = self.line
        self.line += raw.count("\n")
        if not given:
            return
        self.size += len(raw)
        if not fields or (len(fields) == len(self.names) and not any(fields)):
            self.blank += 1
            return
        reason = _reason(fields, self.names, self.options.encoding)
        if reason:
            self.bad.append((self.number, line, reason, _escaped(raw.rstrip("\r\n"))))
            return
        for column, value in zip(self.columns, fields, strict=True):
            column.append(None if value in self.nulls else value)
        self.records.append(self.number)
        self.lines.append(line)

    def block(self) -> Block:
        import numpy as np
        import pyarrow as pa

        from lakeforge.sources.files.buffers import nullable_strings

        arrays = [nullable_strings(values) for values in self.columns]
        batch = pa.RecordBatch.from_arrays(arrays, names=self.names) if self.records else None
        records, lines = np.array(self.records, dtype=np.int64), np.array(self.lines, dtype=np.int64)
        block = Block(batch, records, lines, self.bad, self.number, self.blank)
        self._clear()
        return block


def _reason(fields: list[str], names: list[str], encoding: str) -> str:
    if len(fields) != len(names):
        return f"expected {len(names)} fields, found {len(fields)}"
    for name, value in zip(names, fields, strict=True):
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return f"column {name}: not valid {encoding}"
    return ""


def _escaped(raw: str) -> str:
    """The record's text, bytes that were not valid text as ``\\xNN``."""
    if raw.isascii():
        return raw
    return raw.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
