"""Cut a CSV byte stream into pieces that each start at a record, so pieces can be parsed at the same time.

A cut is made only where it is certain to fall between two records as pyarrow's parser reads them:

- after a ``\\n`` outside quotes. Outside or inside is the parity of the quote characters before it, which
  is exact when every quote of the piece is well placed (RFC 4180): an opening quote starts a field (after
  the delimiter, a line end or the piece's start), a closing quote ends one (before the delimiter or a line
  end), and a quote inside a quoted field is doubled. The piece is checked for that (numpy, a few passes
  over its bytes; a piece without quotes needs none);
- only for UTF-8 text, one-byte delimiter and quote, no escape character, and ``\\r`` only in ``\\r\\n``.

Anything else (a stray quote, an escape character, another encoding, a quoted field longer than
``MAX_PIECE``) makes :func:`pieces` hand the rest of the stream back untouched (a :class:`Rest`): the
caller reads it with the serial reader, which numbers every record itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from lakeforge.sources.files.buffers import read_after
from lakeforge.sources.files.config import CsvOptions

MAX_PIECE = 64 << 20
"""A piece grows past the block size only to hold a whole quoted field; beyond this the rest goes serial."""


@dataclass
class Piece:
    data: bytes | memoryview
    """The piece's bytes (a view of the buffer it was read into: not copied again)."""
    first: bool
    """The piece starts the file (it holds the skipped rows and the header)."""

    def newlines(self) -> int:
        """How many ``\\n`` the piece holds (its first line is 1 + the newlines of the pieces before it);
        counted by the thread that parses it, not by the one that cuts the file."""
        return bytes_count(self.data, 10)


@dataclass
class Rest:
    """The stream from the end of the last piece on, not cut: read it serially."""

    stream: Any
    first: bool


def splittable(options: CsvOptions) -> bool:
    """Whether a file with these options can be cut at all (else it is read serially from the start)."""
    utf8 = options.encoding.lower().replace("_", "-") in ("utf-8", "utf8")
    one_byte = all(c is None or (len(c.encode()) == 1 and c not in "\r\n") for c in (options.delimiter, options.quote))
    return utf8 and one_byte and options.escape is None


def pieces(stream: Any, options: CsvOptions, block_size: int) -> Iterator[Piece | Rest]:
    """Pieces of about ``block_size`` bytes, each ending after a record's ``\\n`` (the last one at the end of
    the stream); a :class:`Rest` last when a cut cannot be proven.

    Each buffer is read once into a fresh ``bytearray`` after the previous one's unfinished record, and the
    piece is a view of it: the bytes are copied once (by the read), not three times (docs/benchmarks.md)."""
    first = True
    headed = options.skip_rows + (1 if options.header else 0)
    buffer, eof = read_after(stream, b"", block_size)
    while True:
        if eof:
            if buffer:
                if not _clean(buffer, options, len(buffer)):
                    yield Rest(_Chained(bytes(buffer), stream), first)
                    return
                yield Piece(memoryview(buffer), first)
            return
        cut = _cut(buffer, options, at_least=headed if first else 0)
        if cut is None or cut == 0:
            if cut is None or len(buffer) >= MAX_PIECE:
                yield Rest(_Chained(bytes(buffer), stream), first)
                return
            more = stream.read(block_size)  # a record longer than the buffer: read on
            eof = not more
            buffer = buffer + more
            continue
        rest = bytes(buffer[cut:])  # the next record's start (less than a record)
        yield Piece(memoryview(buffer)[:cut], first)
        first = False
        buffer, eof = read_after(stream, rest, block_size)


def bytes_count(data: bytes | bytearray | memoryview, byte: int) -> int:
    """How many times ``byte`` occurs in ``data`` (no copy of a view)."""
    import numpy as np

    return int(np.count_nonzero(np.frombuffer(data, dtype=np.uint8) == byte))


def _cut(buffer: bytes | bytearray, options: CsvOptions, at_least: int) -> int | None:
    """Where to cut ``buffer`` (which starts at a record): after its last record-ending ``\\n`` and after at
    least ``at_least`` records; 0 when it holds no such place yet, None when no cut can be proven."""
    import numpy as np

    quote = options.quote.encode() if options.quote is not None else None
    if quote is None or quote not in buffer:
        if not _clean(buffer, options, len(buffer)):
            return None
        if at_least and buffer.count(b"\n") < at_least:
            return 0
        return buffer.rfind(b"\n") + 1
    data = np.frombuffer(buffer, dtype=np.uint8)
    quotes = np.flatnonzero(data == quote[0])
    newlines = np.flatnonzero(data == 10)
    outside = newlines[np.searchsorted(quotes, newlines) % 2 == 0]
    if len(outside) < max(at_least, 1):
        return 0 if _well_placed(data, quotes, options) else None
    cut = int(outside[-1]) + 1
    if not _clean(buffer, options, cut) or not _well_placed(data, quotes[quotes < cut], options):
        return None
    return cut


def _clean(buffer: bytes | bytearray, options: CsvOptions, end: int) -> bool:
    """No ``\\r`` but in ``\\r\\n`` (a lone ``\\r`` ends a record for pyarrow, not for the line count)."""
    return b"\r" not in buffer or buffer.count(b"\r", 0, end) == buffer.count(b"\r\n", 0, end)


def _well_placed(data: Any, quotes: Any, options: CsvOptions) -> bool:
    """Every quote in ``quotes`` (positions in ``data``, which starts at a record outside quotes) is an
    opening quote at a field start, a closing quote before a field end, or one of a doubled pair inside."""
    import numpy as np

    if not len(quotes):
        return True
    ends = np.array([ord(options.delimiter), 10, 13], dtype=np.uint8)
    opening, closing = quotes[0::2], quotes[1::2]
    before = data[np.maximum(opening - 1, 0)]
    pair_before = np.zeros(len(opening), dtype=bool)
    pair_before[1:] = closing[: len(opening) - 1] == opening[1:] - 1
    opens_ok = (opening == 0) | np.isin(before, ends) | pair_before
    after_pos = np.minimum(closing + 1, len(data) - 1)
    after = data[after_pos]
    pair_after = np.zeros(len(closing), dtype=bool)
    following = opening[1:]
    pair_after[: len(following)] = following[: len(closing)] == closing[: len(following)] + 1
    closes_ok = (closing + 1 == len(data)) | np.isin(after, ends) | pair_after
    return bool(opens_ok.all() and closes_ok.all())


class _Chained:
    """``head`` then the rest of ``stream``, as one readable stream."""

    def __init__(self, head: bytes, stream: Any) -> None:
        self.head, self.stream = head, stream
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        if self.head:
            if size is None or size < 0:
                whole: bytes = self.head + bytes(self.stream.read())
                self.head = b""
                return whole
            data, self.head = self.head[:size], self.head[size:]
            return data
        return bytes(self.stream.read(size))

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True
