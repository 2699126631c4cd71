"""CSV files, streamed with pyarrow's CSV reader, every record either loaded or reported with its line.

A file is cut into pieces parsed on every core (``csv_parallel.py``, where ``csv_split.py`` can prove the
cuts); each piece, or the whole file where it cannot be cut, is read as below, on one thread.

Fields are read as text by pyarrow (which checks that it is valid UTF-8), then:

- a row with the wrong number of fields is reported by pyarrow's ``invalid_row_handler`` (with its record
  number) and goes to quarantine with its text;
- a field equal to one of ``null_values`` (exactly; default only the empty field) becomes NULL;
- a row whose fields are all empty (a blank line) is skipped and counted, not loaded.

Bytes that are not valid text stop pyarrow (a block with such a field cannot be converted, and a malformed row
with such bytes cannot be handed to the row handler): the file is then read on from the first record not yet
given out by a Python parser (``csv_python.py``) that quarantines just those rows. Valid files never pay for it.

Types are applied afterwards by the files source (declared, or inferred from the first ``sample_bytes``).
Each record's physical line is computed from the record numbers and the newlines inside quoted fields.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakeforge.sources.files.config import CsvOptions

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass
class Block:
    """Records of a part of a file, in file order."""

    batch: pa.RecordBatch | None
    """Good records, every column a string (NULL where a null value was)."""
    records: Any
    """Record number (1-based, data records only) of each good row (a numpy int64 array or a list)."""
    lines: Any
    """Physical line where each good row starts (0: unknown), like ``records``."""
    bad: list[tuple[int, int, str, str]] = field(default_factory=list)
    """(record number, line, reason, raw text) of each bad record."""
    last_record: int = 0
    blank: int = 0
    prepared: Any = None
    """What the reader's ``prepare`` made of ``batch`` (the typed batch), where it ran beside the parse."""


@dataclass
class _Invalid:
    number: int
    text: str
    expected: int
    actual: int


def header_and_types(sample: bytes, options: CsvOptions) -> tuple[list[str], dict[str, Any]]:
    """Column names and the types pyarrow infers from ``sample`` (the first bytes of the file, cut at a line
    end); types are only what a lake can keep exactly or nearly so: int64, float64, bool, date, timestamp (UTC)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    text_opts = _read_options(options, None, 1 << 20)
    _quiet_undecodable_rows()
    try:
        table = pacsv.read_csv(
            pa.BufferReader(sample),
            read_options=text_opts,
            parse_options=_parse_options(options, _skip_row),
            convert_options=pacsv.ConvertOptions(
                null_values=options.null_values, strings_can_be_null=True, quoted_strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError, LookupError):
        names = _names_only(sample, options)
        utf8 = options.encoding.lower().replace("_", "-") in ("utf-8", "utf8")
        cleaned = sample.decode("utf-8", "replace").encode() if utf8 else sample
        if cleaned != sample:  # bytes that are not text (their rows go to quarantine): infer from the rest
            clean_names, types = header_and_types(cleaned, options)
            if clean_names == names:
                return names, types
        return names, {}
    inferred: dict[str, Any] = {}
    for f in table.schema:
        t = f.type
        if t in (pa.int64(), pa.float64(), pa.bool_(), pa.date32()):
            inferred[f.name] = t
        elif pa.types.is_timestamp(t):
            inferred[f.name] = pa.timestamp("us", tz="UTC")
    return table.schema.names, inferred


def _names_only(sample: bytes, options: CsvOptions) -> list[str]:
    """The column names when pyarrow cannot read the sample (bytes that are not text in its first records)."""
    from lakeforge.sources.files.csv_python import first_record

    if not options.header and options.columns:
        return list(options.columns)
    fields = first_record(sample, options)
    if options.header:
        return [f.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace") for f in fields]
    return [f"f{i}" for i in range(len(fields))]


def read_csv(
    open_stream: Callable[[], Any],
    options: CsvOptions,
    names: list[str],
    block_size: int = 4 << 20,
    prepare: Callable[[Any], Any] | None = None,
) -> Iterator[Block]:
    """Blocks of the records of the stream ``open_stream()`` opens (see the module docstring); ``names`` from
    :func:`header_and_types`. The stream is opened a second time when the Python parser takes over.
    ``prepare(batch)`` (if given) is kept in each block's ``prepared``: it runs on the parsing threads."""
    import pyarrow as pa

    from lakeforge.sources.files.csv_parallel import read_parallel
    from lakeforge.sources.files.csv_python import read_csv_python
    from lakeforge.sources.files.csv_split import splittable

    _quiet_undecodable_rows()
    given = 0
    try:
        with open_stream() as stream:
            if splittable(options):
                blocks = read_parallel(stream, options, names, block_size, prepare)
            else:
                blocks = _prepared(read_fast(stream, options, names, block_size), prepare)
            for block in blocks:
                yield block
                given = block.last_record
        return
    except (pa.ArrowInvalid, UnicodeDecodeError):
        pass  # not valid text, or anything else pyarrow refuses: records after ``given`` go through Python
    with open_stream() as stream:
        yield from _prepared(read_csv_python(stream, options, names, block_size, after=given), prepare)


def _prepared(blocks: Iterator[Block], prepare: Callable[[Any], Any] | None) -> Iterator[Block]:
    for block in blocks:
        if prepare is not None and block.batch is not None and block.batch.num_rows:
            block.prepared = prepare(block.batch)
        yield block


def read_fast(stream: Any, options: CsvOptions, names: list[str], block_size: int) -> Iterator[Block]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    invalid: list[_Invalid] = []

    def on_invalid(row: Any) -> str:
        number = row.number if row.number is not None else -1
        invalid.append(_Invalid(number, row.text, row.expected_columns, row.actual_columns))
        return "skip"

    on_invalid.lakeforge_csv_handler = True  # type: ignore[attr-defined]
    _quiet_undecodable_rows()

    native_nulls = options.null_values == [""]  # else NULLs are applied after (a blank row must stay visible)
    reader = pacsv.open_csv(
        stream,
        read_options=_read_options(options, names, block_size),
        parse_options=_parse_options(options, on_invalid),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names},
            null_values=[""] if native_nulls else [],
            strings_can_be_null=native_nulls,
            quoted_strings_can_be_null=True,
        ),
    )
    state = _State(first_line=1 + options.skip_rows + (1 if options.header else 0), offset=_offset(options))
    for batch in reader:
        yield state.block(batch, invalid, options, final=False)
    if invalid:
        yield state.block(None, invalid, options, final=True)


@dataclass
class _State:
    first_line: int
    """Physical line of data record 1."""
    offset: int
    """pyarrow's record numbers count the header and skipped rows: subtract this."""
    last_record: int = 0
    newlines_before: int = 0

    def block(self, batch: pa.RecordBatch | None, invalid: list[_Invalid], options: CsvOptions, final: bool) -> Block:
        import numpy as np

        n = batch.num_rows if batch is not None else 0
        if not invalid and batch is not None:
            return self._all_good(batch, options)
        pending = sorted(invalid, key=lambda r: r.number)
        numbers = [r.number - self.offset for r in pending]
        window = np.arange(self.last_record + 1, self.last_record + 1 + n + len(numbers), dtype=np.int64)
        good_numbers = np.setdiff1d(window, np.array(numbers, dtype=np.int64), assume_unique=True)[:n]
        top = int(good_numbers[-1]) if n else self.last_record
        mine = [r for r, num in zip(pending, numbers, strict=True) if final or num <= top or num < 0]
        invalid[:] = [r for r in pending if r not in mine]
        good_nl = _newlines(batch) if batch is not None else None
        if good_nl is None:
            good_nl = np.zeros(n, dtype=np.int64)
        bad_numbers = np.array([r.number - self.offset for r in mine], dtype=np.int64)
        all_numbers = np.concatenate([good_numbers, bad_numbers])
        all_nl = np.concatenate([good_nl, np.array([r.text.count("\n") for r in mine], dtype=np.int64)])
        order = np.argsort(all_numbers, kind="stable")
        before = np.cumsum(all_nl[order]) - all_nl[order] + self.newlines_before
        lines_sorted = self.first_line + (all_numbers[order] - 1) + before
        lines = np.empty_like(lines_sorted)
        lines[order] = lines_sorted
        self.newlines_before += int(all_nl.sum())
        if len(all_numbers):
            self.last_record = max(self.last_record, int(all_numbers.max()))
        bad = [
            (int(num), int(line), _field_count_reason(r), r.text)
            for r, num, line in zip(mine, bad_numbers, lines[n:], strict=True)
        ]
        block = Block(None, np.zeros(0, np.int64), np.zeros(0, np.int64), bad, self.last_record)
        if batch is None or n == 0:
            return block
        return self._good_rows(block, batch, good_numbers, lines[:n], options)

    def _all_good(self, batch: pa.RecordBatch, options: CsvOptions) -> Block:
        """A block with no malformed row pending (the usual case): its records follow the last one given,
        and a row's line is its record's shifted by the newlines inside the fields before it."""
        import numpy as np

        n = batch.num_rows
        numbers = np.arange(self.last_record + 1, self.last_record + 1 + n, dtype=np.int64)
        lines = numbers + (self.first_line - 1 + self.newlines_before)
        inside = _newlines(batch)
        if inside is not None:
            before = np.cumsum(inside)
            lines[1:] += before[:-1]
            self.newlines_before += int(before[-1])  # a newline was found: n > 0
        if n:
            self.last_record = int(numbers[-1])
        block = Block(None, np.zeros(0, np.int64), np.zeros(0, np.int64), [], self.last_record)
        if n == 0:
            return block
        return self._good_rows(block, batch, numbers, lines, options)

    def _good_rows(self, block: Block, batch: pa.RecordBatch, numbers: Any, lines: Any, options: CsvOptions) -> Block:
        """``block`` with the good rows of ``batch``: NULL markers applied, blank rows dropped and counted."""
        import pyarrow.compute as pc

        blank = _blank(batch, native_nulls=options.null_values == [""])
        if options.null_values and options.null_values != [""]:
            batch = _with_nulls(batch, options.null_values)
        block.batch, block.records, block.lines = batch, numbers, lines
        if blank is not None:
            from lakeforge.sources.files.buffers import bool_array

            keep = ~blank
            block.blank = int(blank.sum())
            block.batch = pc.filter(batch, bool_array(keep))
            block.records, block.lines = numbers[keep], lines[keep]
        block.bad.sort()
        return block


def _with_nulls(batch: pa.RecordBatch, null_values: list[str]) -> pa.RecordBatch:
    """Fields equal to one of ``null_values`` as NULL."""
    import pyarrow as pa
    import pyarrow.compute as pc

    # no pa.scalar(): building a scalar from a Python value imports pandas (~1.5 s, docs/benchmarks.md)
    from lakeforge.sources.files.buffers import string_array

    values = string_array(null_values)
    columns = []
    for text in batch.columns:
        is_null = pc.is_in(text, value_set=values)
        if pc.any(is_null).as_py():
            text = pc.if_else(is_null, pa.nulls(len(text), pa.string()), text)
        columns.append(text)
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def _newlines(batch: pa.RecordBatch) -> Any:
    """Newlines inside each row's fields, None when there is none (the usual case: one scan a column)."""
    import numpy as np
    import pyarrow.compute as pc

    total = None
    for column in batch.columns:
        if _data_has_newline(column):
            if total is None:
                total = np.zeros(batch.num_rows, dtype=np.int64)
            counts = _ints(pc.count_substring(column, "\n"))
            if column.null_count:
                from lakeforge.sources.files.buffers import bool_values

                counts = np.where(bool_values(pc.is_valid(column)), counts, 0)
            total += counts
    return total


def _data_has_newline(column: pa.Array) -> bool:
    import numpy as np

    from lakeforge.sources.files.buffers import holds_byte

    buffers = column.buffers()
    if len(column) == 0 or len(buffers) < 3 or buffers[2] is None:
        return False
    offsets = np.frombuffer(buffers[1], dtype=np.int32)
    start, stop = int(offsets[column.offset]), int(offsets[column.offset + len(column)])
    return holds_byte(buffers[2], start, stop, 10)


def _ints(array: pa.Array) -> Any:
    """A NULL-free integer array as numpy, from its buffer (``to_numpy`` makes pyarrow import pandas)."""
    import numpy as np

    dtype = np.int32 if array.type.bit_width == 32 else np.int64
    return np.frombuffer(array.buffers()[1], dtype=dtype)[array.offset : array.offset + len(array)]


def _blank(batch: pa.RecordBatch, native_nulls: bool) -> Any:
    """Rows whose fields are all empty (None when there is none): with ``native_nulls`` pyarrow made every
    empty field NULL (and nothing else), otherwise an empty field is an empty string."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if native_nulls:
        if any(c.null_count == 0 for c in batch.columns):
            return None
        flags = [pc.is_null(c) for c in batch.columns]
    else:
        if any(c.null_count == 0 and pc.min(pc.binary_length(c)).as_py() for c in batch.columns):
            return None
        flags = [pc.invert(pc.binary_length(c).cast(pa.bool_())) for c in batch.columns]
    mask = flags[0]
    for flag in flags[1:]:
        mask = pc.and_(mask, flag)
    if not pc.any(mask).as_py():
        return None
    from lakeforge.sources.files.buffers import bool_values

    return bool_values(mask)


def _skip_row(row: Any) -> str:
    return "skip"


_skip_row.lakeforge_csv_handler = True  # type: ignore[attr-defined]


def _quiet_undecodable_rows() -> None:
    """pyarrow decodes a malformed row's text as UTF-8 before it calls the row handler; bytes that are not UTF-8
    make that fail inside pyarrow, which prints it as "Exception ignored" and then fails the read (which the
    Python parser then takes over). Keep that one report off stderr; every other unraisable exception goes to
    the hook in place, as before."""
    import sys

    hook = sys.unraisablehook
    if getattr(hook, "lakeforge_csv_filter", False):
        return

    def filtered(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, UnicodeDecodeError) and getattr(
            unraisable.object, "lakeforge_csv_handler", False
        ):
            return
        hook(unraisable)

    filtered.lakeforge_csv_filter = True  # type: ignore[attr-defined]
    sys.unraisablehook = filtered


def _field_count_reason(row: _Invalid) -> str:
    return f"expected {row.expected} fields, found {row.actual}"


def _offset(options: CsvOptions) -> int:
    return options.skip_rows + (1 if options.header else 0)


def _read_options(options: CsvOptions, names: list[str] | None, block_size: int) -> Any:
    import pyarrow.csv as pacsv

    # one thread: pyarrow numbers invalid rows only then (their line in quarantine)
    kwargs: dict[str, Any] = {"skip_rows": options.skip_rows, "block_size": block_size, "use_threads": False}
    if options.encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
        kwargs["encoding"] = options.encoding
    if names is not None:
        kwargs["column_names"] = names
        kwargs["skip_rows_after_names"] = 1 if options.header else 0
    elif not options.header:
        if options.columns:
            kwargs["column_names"] = options.columns
        else:
            kwargs["autogenerate_column_names"] = True
    return pacsv.ReadOptions(**kwargs)


def _parse_options(options: CsvOptions, handler: Any) -> Any:
    import pyarrow.csv as pacsv

    return pacsv.ParseOptions(
        delimiter=options.delimiter,
        quote_char=options.quote if options.quote is not None else False,
        escape_char=options.escape if options.escape is not None else False,
        double_quote=True,
        newlines_in_values=True,
        ignore_empty_lines=False,
        invalid_row_handler=handler,
    )
