"""JSON files: JSON lines streamed in blocks, JSON arrays read whole; every line loaded or reported.

JSON lines: each block (``block_bytes``, cut at a line end) is parsed by pyarrow's JSON reader; a block it
refuses (a broken line, a value whose type changes within the block, a line that is not an object) is parsed
again line by line, so only the bad lines go to quarantine with their line number. Blank lines are skipped.
A JSON array (a file whose first character is ``[``) is read whole: memory grows with the file (limit).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from lakeforge.sources.files.csv_reader import Block

if TYPE_CHECKING:
    import pyarrow as pa


def read_json(stream: Any, declared: pa.Schema, batch_size: int, block_bytes: int = 8 << 20) -> Iterator[Block]:
    import pyarrow as pa

    head = stream.read(1 << 16)
    if head.lstrip()[:1] == b"[":
        data = head + stream.read()
        values = _whole(data)
        if isinstance(values, list):
            leading = data[: len(data) - len(data.lstrip())].count(b"\n")  # blank lines before the array
            yield from _array(values, batch_size, line=leading + 1 if b"\n" not in data.strip() else 0)
            return
        head, stream = b"", pa.BufferReader(data)  # not one JSON array: JSON lines whose first is an array
    yield from _lines(head, stream, declared, block_bytes)


def _whole(data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None


def _lines(head: bytes, stream: Any, declared: pa.Schema, block_bytes: int) -> Iterator[Block]:
    """Blocks of whole lines: each read goes into a fresh buffer after the previous block's unfinished line,
    and the block is a view of it (the bytes are copied once, by the read)."""
    from lakeforge.sources.files.buffers import read_after

    carry = head
    line = 1
    while True:
        buffer, eof = read_after(stream, carry, len(carry) + block_bytes)
        cut = len(buffer) - 1 if eof else buffer.rfind(b"\n")
        if cut < 0 and not eof:
            carry = bytes(buffer)  # a line longer than the block: read on
            continue
        carry = bytes(buffer[cut + 1 :])
        chunk = memoryview(buffer)[: cut + 1]
        if len(chunk):
            lines, objects_only = _shape(chunk)
            yield _block(chunk, line, declared, lines, objects_only)
            line += lines
        if eof:
            return


def _block(chunk: memoryview, first_line: int, declared: pa.Schema, lines: int, objects_only: bool) -> Block:
    """One block of ``lines`` lines: fast when pyarrow takes it whole and every line is a record
    (``objects_only``), line by line otherwise."""
    import pyarrow as pa
    import pyarrow.json as pajson

    if objects_only:
        try:
            table = pajson.read_json(
                pa.BufferReader(chunk),
                read_options=pajson.ReadOptions(use_threads=True, block_size=1 << 20),  # blocks parse in parallel
                parse_options=pajson.ParseOptions(explicit_schema=declared, unexpected_field_behavior="infer"),
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            table = None
        if table is not None and table.num_rows == lines:
            import numpy as np

            numbers = np.arange(first_line, first_line + lines, dtype=np.int64)
            batches = table.combine_chunks().to_batches()
            batch = batches[0] if batches else None
            return Block(batch, numbers, numbers, [], first_line + lines - 1)
    return _slow(bytes(chunk), first_line)


def _shape(chunk: bytes | memoryview) -> tuple[int, bool]:
    """The chunk's lines (the last one may lack its ``\\n``) and whether every line starts with ``{``: only
    such blocks go to pyarrow's reader. pyarrow 26 crashes the process (segmentation fault) on a line that is
    a bare ``null``; a line that is not an object is a bad record anyway, so the line-by-line path takes those
    blocks (found by tests/unit/test_files_fuzz.py). One numpy pass over the bytes (``bytes.count`` is a plain
    loop: three of them were a fifth of a JSON-lines load's CPU, docs/benchmarks.md)."""
    import numpy as np

    data = np.frombuffer(chunk, dtype=np.uint8)
    ends = np.flatnonzero(data == 10)
    inner = ends[:-1] if len(ends) and ends[-1] == len(data) - 1 else ends
    lines = len(inner) + 1
    objects_only = chunk[:1] == b"{" and bool((data[inner + 1] == 123).all())
    return lines, objects_only


def _slow(chunk: bytes, first_line: int) -> Block:
    from lakeforge.sources.python.frames import rows_to_batch

    good: list[dict[str, Any]] = []
    numbers: list[int] = []
    bad: list[tuple[int, int, str, str]] = []
    blank = 0
    parts = chunk.split(b"\n")
    if chunk.endswith(b"\n"):
        parts.pop()
    for i, raw in enumerate(parts):
        number = first_line + i
        if not raw.strip():
            blank += 1
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad.append(
                (number, number, f"not valid UTF-8 at byte {exc.start}", raw.decode("utf-8", "backslashreplace"))
            )
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            bad.append((number, number, f"invalid JSON: {exc.msg} at column {exc.colno}", text))
            continue
        if not isinstance(value, dict):
            bad.append((number, number, f"a JSON {type(value).__name__} is not a record (an object)", text))
            continue
        good.append(value)
        numbers.append(number)
    batch, refused = rows_to_batch(good)
    for index, reason in refused:
        bad.append((numbers[index], numbers[index], reason, json.dumps(good[index], default=str)))
    kept = [n for i, n in enumerate(numbers) if i not in {r for r, _ in refused}]
    bad.sort()
    return Block(batch, kept, kept, bad, first_line + len(parts) - 1, blank)


def _array(values: list[Any], batch_size: int, *, line: int) -> Iterator[Block]:
    """The elements of a JSON array; each object is a record, numbered from 1; ``line``: the array's when it is
    on one line (0: unknown)."""
    from lakeforge.sources.python.frames import rows_to_batch

    for start in range(0, max(len(values), 1), batch_size):
        part = values[start : start + batch_size]
        objects = [(start + i + 1, v) for i, v in enumerate(part) if isinstance(v, dict)]
        bad = [
            (start + i + 1, line, f"a JSON {type(v).__name__} is not a record (an object)", json.dumps(v))
            for i, v in enumerate(part)
            if not isinstance(v, dict)
        ]
        batch, refused = rows_to_batch([v for _, v in objects])
        refused_rows = {r for r, _ in refused}
        for index, reason in refused:
            bad.append((objects[index][0], line, reason, json.dumps(objects[index][1], default=str)))
        kept = [n for i, (n, _) in enumerate(objects) if i not in refused_rows]
        bad.sort()
        yield Block(batch, kept, [line] * len(kept), bad, start + len(part))


def _head(data: bytes, size: int = 2000) -> str:
    text = data[:size].decode("utf-8", "backslashreplace")
    return text if len(data) <= size else text + f"... ({len(data)} bytes)"
