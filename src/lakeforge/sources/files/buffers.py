"""Arrow arrays built from buffers: ``pa.array``/``pa.scalar`` on Python or numpy values make pyarrow import
pandas (about 1.5 s of CPU per process here), which the files source never needs."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa


def string_array(values: list[str]) -> pa.Array:
    import pyarrow as pa

    encoded = [v.encode() for v in values]
    offsets = [0]
    for item in encoded:
        offsets.append(offsets[-1] + len(item))
    buffers = [None, pa.py_buffer(struct.pack(f"<{len(offsets)}i", *offsets)), pa.py_buffer(b"".join(encoded))]
    return pa.Array.from_buffers(pa.string(), len(values), buffers)


def repeated_string(value: str, n: int) -> pa.Array:
    import numpy as np
    import pyarrow as pa

    raw = value.encode()
    offsets = np.arange(n + 1, dtype=np.int64) * len(raw)
    if offsets[-1] >= 2**31:
        return pa.nulls(n, pa.string()).fill_null(string_array([value])[0])
    buffers = [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(raw * n)]
    return pa.Array.from_buffers(pa.string(), n, buffers)


def int64_array(values: Any) -> pa.Array:
    """A numpy integer array (or a list) as an Arrow int64 array."""
    import numpy as np
    import pyarrow as pa

    data = np.ascontiguousarray(np.asarray(values, dtype=np.int64))
    return pa.Array.from_buffers(pa.int64(), len(data), [None, pa.py_buffer(data)])


def bool_array(values: Any) -> pa.Array:
    """A numpy bool array as an Arrow boolean array."""
    import numpy as np
    import pyarrow as pa

    packed = np.packbits(np.asarray(values, dtype=bool), bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(packed)])


def bool_values(array: pa.Array) -> Any:
    """A NULL-free Arrow boolean array as a numpy bool array."""
    import numpy as np

    bits = np.frombuffer(array.buffers()[1], dtype=np.uint8)
    return np.unpackbits(bits, bitorder="little")[array.offset : array.offset + len(array)].astype(bool)


def nullable_strings(values: list[str | None]) -> pa.Array:
    """A string array from Python strings and None."""
    import numpy as np
    import pyarrow as pa

    encoded = [b"" if v is None else v.encode() for v in values]
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    valid = np.fromiter((v is not None for v in values), dtype=bool, count=len(values))
    validity = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    data = pa.py_buffer(b"".join(encoded))
    small = offsets.astype(np.int32)  # a block of a file: far below 2 GiB
    return pa.Array.from_buffers(pa.string(), len(values), [validity, pa.py_buffer(small), data])


def read_after(stream: Any, head: bytes, size: int) -> tuple[bytearray, bool]:
    """``head`` then the stream's next bytes, ``size`` in all (fewer at its end), and whether it ended."""
    buffer = bytearray(max(size, len(head)))
    buffer[: len(head)] = head
    filled, eof = len(head), False
    readinto = getattr(stream, "readinto", None)
    with memoryview(buffer) as view:
        while filled < size:
            if readinto is not None:
                n = readinto(view[filled:])
            else:
                data = stream.read(size - filled)
                n = len(data)
                view[filled : filled + n] = data
            if not n:
                eof = True
                break
            filled += n
    del buffer[filled:]
    return buffer, eof


def holds_byte(buffer: pa.Buffer, start: int, stop: int, byte: int) -> bool:
    """Whether ``buffer[start:stop]`` holds ``byte``: C's ``memchr`` on the buffer's memory (no copy, no
    temporary array; about 4x numpy's ``in`` on the CSV reader's column data)."""
    if not 0 <= start <= stop <= buffer.size:
        raise ValueError(f"range {start}:{stop} outside a buffer of {buffer.size} bytes")
    if start == stop:
        return False
    return _memchr()(buffer.address + start, byte, stop - start) is not None


def _memchr() -> Any:
    global _MEMCHR
    if _MEMCHR is None:
        import ctypes

        memchr = ctypes.CDLL(None).memchr
        memchr.restype = ctypes.c_void_p
        memchr.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
        _MEMCHR = memchr
    return _MEMCHR


_MEMCHR: Any = None
