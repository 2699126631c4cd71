"""``json_reader._shape`` (one numpy pass) against the byte counts it replaced."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lakeforge.sources.files.json_reader import _shape

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
