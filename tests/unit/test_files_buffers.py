"""``holds_byte``: memchr over a part of an Arrow buffer, checked against Python's ``in``."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lakeforge.sources.files.buffers import holds_byte


@given(st.binary(max_size=300), st.data())
def test_holds_byte_agrees_with_python(data: bytes, draw: st.DataObject) -> None:
    start = draw.draw(st.integers(0, len(data)))
    stop = draw.draw(st.integers(start, len(data)))
    byte = draw.draw(st.integers(0, 255))
    assert holds_byte(pa.py_buffer(data), start, stop, byte) is (bytes([byte]) in data[start:stop])


def test_a_range_outside_the_buffer_is_refused() -> None:
    with pytest.raises(ValueError, match="outside a buffer of 3 bytes"):
        holds_byte(pa.py_buffer(b"a\nb"), 1, 4, 10)
