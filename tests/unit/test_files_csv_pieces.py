"""The CSV reader cut into pieces parsed at the same time (csv_split.py, csv_parallel.py), fuzzed with pieces of
a few bytes: every record is handed out once, in order, with its record number, its line and its exact values,
or quarantined with them, whatever the quoting (multi-line fields, doubled quotes, stray quotes that make the
rest of the file go serial), the line ends (``\\n``, ``\\r\\n``), bytes that are not UTF-8 and blank lines."""

from __future__ import annotations

import gzip
import io
import os
from typing import Any

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from lakeforge.sources.files.config import CsvOptions
from lakeforge.sources.files.csv_reader import read_csv
from lakeforge.sources.files.csv_split import Piece, Rest, pieces

SETTINGS = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")), deadline=None)
NAMES = ["a", "b", "c"]

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\x00"), max_size=8)
plain = st.text(alphabet="xyz019 .-", min_size=1, max_size=6)
field = st.one_of(text, plain, st.sampled_from([",", '"', '""', "a,b", "\n", "line\nbreak", "é", "12.5"]))
stray = st.sampled_from(['x"y', 'ab""c', '5"'])  # a quote inside an unquoted field: not RFC 4180
good = st.lists(field, min_size=3, max_size=3)
with_stray = st.tuples(stray, field, field).map(list)
wrong_count = st.lists(field.filter(lambda f: "\n" not in f), min_size=1, max_size=5).filter(lambda r: len(r) != 3)
not_utf8 = st.tuples(field, field).map(lambda p: [p[0], "bad\udcff", p[1]])
record = st.one_of(good, good, good, good, wrong_count, not_utf8, st.just(None))  # None: a blank line


def _field(value: str, stray_ok: bool) -> bytes:
    raw = value.encode("utf-8", "surrogateescape")
    if stray_ok and value in ('x"y', 'ab""c', '5"'):
        return raw
    if any(c in value for c in (",", '"', "\n")) or value == "" or value.startswith(" "):
        return b'"' + raw.replace(b'"', b'""') + b'"'
    return raw


def _body(records: list[list[str] | None], end: bytes) -> tuple[bytes, list[int]]:
    body = b"a,b,c" + end
    lines, line = [], 2
    for fields in records:
        lines.append(line)
        encoded = (b"" if fields is None else b",".join(_field(f, True) for f in fields)) + end
        line += encoded.count(b"\n")
        body += encoded
    return body, lines


def _read(body: bytes, block: int, options: CsvOptions) -> tuple[list[tuple[int, int, list[Any]]], list[Any], int]:
    rows, bad, blank = [], [], 0
    last = 0
    for out in read_csv(lambda: io.BytesIO(body), options, NAMES, block_size=block):
        assert out.last_record >= last  # handed out in file order
        last = out.last_record
        blank += out.blank
        bad += [(n, line) for n, line, _, _ in out.bad]
        if out.batch is not None:
            values = pa.Table.from_batches([out.batch]).to_pylist()
            for n, line, row in zip(list(out.records), list(out.lines), values, strict=True):
                rows.append((int(n), int(line), [row[c] for c in NAMES]))
    return rows, bad, blank


@SETTINGS
@given(
    records=st.lists(st.one_of(record, with_stray), min_size=1, max_size=40),
    block=st.integers(1, 120),
    crlf=st.booleans(),
    strays=st.booleans(),
)
def test_pieces_hand_out_every_record_once_with_its_number_and_line(
    records: list[list[str] | None], block: int, crlf: bool, strays: bool
) -> None:
    if not strays:
        records = [r for r in records if r is None or not any(f in ('x"y', 'ab""c', '5"') for f in r)] or [
            ["1", "2", "3"]
        ]
    body, lines = _body(records, b"\r\n" if crlf else b"\n")
    rows, bad, blank = _read(body, block, CsvOptions(null_values=[]))
    expected_rows, expected_bad, expected_blank = [], [], 0
    for i, fields in enumerate(records):
        if fields is None or (len(fields) == 3 and all(f == "" for f in fields)):
            expected_blank += 1
        elif len(fields) != 3 or any("\udcff" in f for f in fields):
            expected_bad.append((i + 1, lines[i]))
        else:
            expected_rows.append((i + 1, lines[i], fields))
    assert rows == expected_rows
    assert sorted(bad) == expected_bad
    assert blank == expected_blank


@SETTINGS
@given(records=st.lists(good, min_size=1, max_size=30), block=st.integers(1, 80))
def test_pieces_are_the_file_cut_between_records(records: list[list[str]], block: int) -> None:
    body, _ = _body([[f.replace("\udcff", "") for f in r] for r in records], b"\n")
    parts = list(pieces(io.BytesIO(body), CsvOptions(), block))
    assert all(isinstance(p, Piece) for p in parts)  # RFC 4180 data: never handed to the serial reader
    assert b"".join(p.data for p in parts if isinstance(p, Piece)) == body
    assert [p.first for p in parts] == [True] + [False] * (len(parts) - 1)
    assert [p.newlines() for p in parts if isinstance(p, Piece)] == [bytes(p.data).count(b"\n") for p in parts]


def test_a_stray_quote_hands_the_rest_to_the_serial_reader_from_the_record_after_the_last_piece() -> None:
    body = b"a,b,c\n" + b"".join(b"%d,x,y\n" % i for i in range(1, 50)) + b'50,x"y,z\n'
    body += b"".join(b"%d,u,v\n" % i for i in range(51, 80))
    parts = list(pieces(io.BytesIO(body), CsvOptions(), 64))
    assert isinstance(parts[-1], Rest) and all(isinstance(p, Piece) for p in parts[:-1])
    head = b"".join(p.data for p in parts[:-1] if isinstance(p, Piece))
    assert head + parts[-1].stream.read() == body
    assert all(isinstance(p.data, memoryview) for p in parts[:-1] if isinstance(p, Piece))  # not copied
    rows, bad, _ = _read(body, 64, CsvOptions())
    assert [r[0] for r in rows] == list(range(1, 80)) and not bad
    assert rows[49:51] == [(50, 51, ["50", 'x"y', "z"]), (51, 52, ["51", "u", "v"])]


def test_a_gzip_file_in_pieces_loads_like_the_plain_one() -> None:
    body = b"a,b,c\n" + b"".join(b'%d,"multi\nline ""%d""",%d\n' % (i, i, i) for i in range(1, 2001))
    plain = _read(body, 1000, CsvOptions())
    zipped = []
    packed = gzip.compress(body)
    for out in read_csv(lambda: gzip.GzipFile(fileobj=io.BytesIO(packed)), CsvOptions(), NAMES, block_size=1000):
        zipped += list(zip(list(out.records), list(out.lines), strict=True))
    assert [(n, line) for n, line, _ in plain[0]] == zipped
    assert plain[0][-1] == (2000, 2 + 2 * 1999, ["2000", 'multi\nline "2000"', "2000"])
