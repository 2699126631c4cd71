"""The CSV reader on every core: pieces of the file (``csv_split.py``) parsed at the same time, in order.

Each piece starts at a record, so pyarrow parses it alone (one thread per piece, which numbers its malformed
rows); its record numbers and lines are counted from the piece's start and shifted once the pieces before
it are known. A piece pyarrow refuses (bytes that are not text) is parsed again by the Python parser
(``csv_python.py``), that piece only. ``prepare`` (the types) runs on the piece's thread too. Where a cut
cannot be proven, the rest of the file is read by the serial reader, from the last record handed out.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from lakeforge.sources.files.config import CsvOptions
from lakeforge.sources.files.csv_reader import Block, read_fast
from lakeforge.sources.files.csv_split import Piece, Rest, pieces

Prepare = Callable[[Any], Any]


def read_parallel(
    stream: Any, options: CsvOptions, names: list[str], block_size: int, prepare: Prepare | None
) -> Iterator[Block]:
    """Blocks of ``stream`` in file order, record numbers and lines as the serial reader gives them."""
    workers = max(1, min(os.cpu_count() or 1, 8))
    shift = _Shift()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="csv-piece") as pool:
        waiting: deque[Future[tuple[list[Block], int]]] = deque()
        try:
            for item in pieces(stream, options, block_size):
                if isinstance(item, Rest):
                    while waiting:
                        yield from shift.apply(*waiting.popleft().result())
                    yield from _serial(item, options, names, block_size, prepare, shift)
                    return
                waiting.append(pool.submit(_parse, item, options, names, prepare))
                while len(waiting) > workers:
                    yield from shift.apply(*waiting.popleft().result())
            while waiting:
                yield from shift.apply(*waiting.popleft().result())
        finally:
            for future in waiting:
                future.cancel()


class _Shift:
    """Records and lines of the pieces handed out so far."""

    def __init__(self) -> None:
        self.records = 0
        self.line = 1
        """Physical line where the next piece starts."""

    def apply(self, blocks: list[Block], newlines: int) -> Iterator[Block]:
        """``blocks`` of the next piece, which holds ``newlines`` line ends."""
        start_line = self.line
        self.line += newlines
        return self.shifted(blocks, start_line, self.records)

    def shifted(self, blocks: list[Block], start_line: int, base: int) -> Iterator[Block]:
        """``blocks`` counted from ``base`` records and line ``start_line`` (a piece, or the serial rest)."""
        line_base = start_line - 1
        for block in blocks:
            if base or line_base:
                block.records = block.records + base
                block.lines = block.lines + line_base
                block.bad = [(n + base, line + line_base, why, raw) for n, line, why, raw in block.bad]
                block.last_record += base
            self.records = max(self.records, block.last_record)
            yield block


def _parse(piece: Piece, options: CsvOptions, names: list[str], prepare: Prepare | None) -> tuple[list[Block], int]:
    """The piece's blocks, numbered from the piece's start (its first record 1, its first line 1)."""
    import io

    import numpy as np
    import pyarrow as pa

    own = _piece_options(options, piece.first)
    try:
        blocks = list(read_fast(pa.BufferReader(piece.data), own, names, len(piece.data) + 1))
    except (pa.ArrowInvalid, UnicodeDecodeError):
        from lakeforge.sources.files.csv_python import read_csv_python

        blocks = list(read_csv_python(io.BytesIO(piece.data), own, names, len(piece.data) + 1))
        for block in blocks:
            block.records = np.asarray(block.records, dtype=np.int64)
            block.lines = np.asarray(block.lines, dtype=np.int64)
    _prepare_all(blocks, prepare)
    return blocks, piece.newlines()


def _serial(
    rest: Rest, options: CsvOptions, names: list[str], block_size: int, prepare: Prepare | None, shift: _Shift
) -> Iterator[Block]:
    """The rest of the file through the serial reader (its exceptions go to the caller's fallback)."""
    import pyarrow as pa

    stream = pa.PythonFile(rest.stream, mode="r")
    own = _piece_options(options, rest.first)
    base, start_line = shift.records, shift.line
    for block in read_fast(stream, own, names, block_size):
        _prepare_all([block], prepare)
        yield from shift.shifted([block], start_line, base)


def _prepare_all(blocks: list[Block], prepare: Prepare | None) -> None:
    if prepare is None:
        return
    for block in blocks:
        if block.batch is not None and block.batch.num_rows:
            block.prepared = prepare(block.batch)


def _piece_options(options: CsvOptions, first: bool) -> CsvOptions:
    """A piece after the first has no skipped rows and no header."""
    if first:
        return options
    return options.model_copy(update={"header": False, "skip_rows": 0})
