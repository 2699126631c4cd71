"""``json_reader``: ``_shape`` (one numpy pass) against the byte counts it replaced, and blocks cut anywhere."""

from __future__ import annotations

import io
import json

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from lakeforge.sources.files.json_reader import _shape, read_json

PIECES = st.sampled_from([b"{", b"}", b"\n", b"\r\n", b"\n{", b"null", b" ", b'"a"', b"[1]", b"{\"x\": 1}"])


@given(st.lists(PIECES, min_size=1, max_size=40).map(b"".join))
def test_shape_counts_lines_and_object_starts_like_bytes_count(chunk: bytes) -> None:
    lines = chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)
    objects_only = chunk.startswith(b"{") and chunk.count(b"\n{") == lines - 1
    assert _shape(chunk) == (lines, objects_only)


def test_shape_of_plain_json_lines() -> None:
    assert _shape(b'{"a": 1}\n{"a": 2}\n') == (2, True)
    assert _shape(b'{"a": 1}\n{"a": 2}') == (2, True)
    assert _shape(b'{"a": 1}\nnull\n') == (2, False)
    assert _shape(b'{"a": 1}\n\n{"a": 2}\n') == (3, False)


LINE = st.one_of(
    st.dictionaries(st.sampled_from(["a", "b"]), st.integers(-5, 5), min_size=1).map(json.dumps),
    st.sampled_from(["", "  ", "null", "[1]", "{broken", '{"a": 1, "pad": "' + "y" * 70 + '"}']),
)


@given(st.lists(LINE, min_size=1, max_size=30), st.integers(1, 64), st.booleans())
def test_blocks_of_any_size_give_every_line_its_number(lines: list[str], block: int, final_newline: bool) -> None:
    """Lines cut across blocks (a block smaller than a line included): every object line is loaded with its
    line number, every other non-blank line is quarantined with its own, blank lines are skipped. (Each key
    keeps one type: a type that changes is quarantined by design: rows_to_batch, tested in test_python_source.py.)"""
    body = "\n".join(lines).encode() + (b"\n" if final_newline else b"")
    good: list[int] = []
    bad: list[int] = []
    for out in read_json(io.BytesIO(body), pa.schema([]), 1000, block_bytes=block):
        good += [int(n) for n in out.records]
        bad += [number for number, _line, _why, _raw in out.bad]
    expected_good = [i + 1 for i, x in enumerate(lines) if x.strip().startswith("{") and _is_object(x)]
    expected_bad = [i + 1 for i, x in enumerate(lines) if x.strip() and not _is_object(x)]
    assert (good, sorted(bad)) == (expected_good, expected_bad)


def _is_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False
