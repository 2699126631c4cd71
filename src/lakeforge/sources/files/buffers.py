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
    import pyarrow as pa

    return pa.nulls(n, pa.string()).fill_null(string_array([value])[0])


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
