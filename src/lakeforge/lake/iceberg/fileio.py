"""PyIceberg's ``PyArrowFileIO`` with fewer object-store round trips per file written.

Every file PyIceberg writes (data file, manifest, manifest list, metadata JSON) cost four requests on S3: a HEAD
to refuse an existing file (``PyArrowFile.create(overwrite=False)``), then a multipart upload (start, one part,
complete) however small the file. Here:

- **one PUT for a small file**: the S3 filesystem is opened with ``allow_delayed_open``, so Arrow starts a
  multipart upload only once a file outgrows one part; smaller files go up in a single ``PutObject``. (An error
  such as a missing bucket then surfaces when the file is closed, still inside the write that made it.)
- **no existence check**: the files PyIceberg names carry a fresh UUID (data files, manifests, manifest lists,
  ``NNNNN-<uuid>.metadata.json``), so the check could only fail on a UUID collision, and it was never atomic
  anyway (PyIceberg's own note: a file created between check and write is truncated). The catalog's
  conditional commit is what keeps two writers apart.
- **manifests and manifest lists read once per process**: Avro files are immutable (a new name per write), and
  PyIceberg reads the same manifest list and manifests several times per commit (a MERGE plans its scan, its
  delete and its append from them; the next commit reads the list the last one wrote). They are kept in a
  bounded in-process cache (``CACHE_BYTES``), filled by the reads (one GET, no HEAD: PyIceberg reads the whole
  file anyway) and by this process's own writes, whose length is then known without a HEAD.

Chosen by ``py-io-impl`` in the catalog properties (``Storage.iceberg_properties``); other engines reading the
same catalog are unaffected. Measured in docs/benchmarks.md ("Object storage", S3 requests per commit).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

# Imported only when an S3 Iceberg lake opens its FileIO (by name, through ``py-io-impl``).
from pyiceberg.io import OutputStream  # noqa: TID253
from pyiceberg.io.pyarrow import PyArrowFile, PyArrowFileIO  # noqa: TID253


class LakeFileIO(PyArrowFileIO):
    def _initialize_s3_fs(self, netloc: str | None) -> Any:
        import pyarrow.fs as pafs

        fs = super()._initialize_s3_fs(netloc)
        rebuild, (options, *rest) = fs.__reduce__()  # S3FileSystem has no setter: same options, one changed
        if not isinstance(fs, pafs.S3FileSystem) or not isinstance(options, dict) or rest:
            return fs
        return rebuild({**options, "allow_delayed_open": True})

    def new_output(self, location: str) -> PyArrowFile:
        file = super().new_output(location)
        file.__class__ = _UniqueFile
        return file

    def new_input(self, location: str) -> PyArrowFile:
        file = super().new_input(location)
        if location.endswith(".avro"):
            file.__class__ = _CachedFile
        return file


CACHE_BYTES = 64 * 2**20
"""Avro metadata (manifests, manifest lists) kept in memory per process, least recently used dropped first."""


class _Cache:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._files: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, location: str) -> bytes | None:
        with self._lock:
            data = self._files.get(location)
            if data is not None:
                self._files.move_to_end(location)
            return data

    def put(self, location: str, data: bytes) -> None:
        if len(data) > self.limit // 4:
            return
        with self._lock:
            if location in self._files:
                return
            self._files[location] = data
            self._bytes += len(data)
            while self._bytes > self.limit:
                _, dropped = self._files.popitem(last=False)
                self._bytes -= len(dropped)


AVRO = _Cache(CACHE_BYTES)


class _UniqueFile(PyArrowFile):
    """An output file whose name is unique: created without the existence check (one HEAD less); an Avro file
    is kept in the cache as written, and its length known without a HEAD."""

    def create(self, overwrite: bool = False) -> OutputStream:
        stream = super().create(overwrite=True)
        return _Kept(stream, self.location) if self.location.endswith(".avro") else stream

    def __len__(self) -> int:
        data = AVRO.get(self.location)
        return len(data) if data is not None else super().__len__()


class _Kept:
    """An output stream that also keeps what is written (a small Avro file), cached when it is closed."""

    def __init__(self, stream: OutputStream, location: str) -> None:
        self._stream = stream
        self._location = location
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return self._stream.write(data)

    def close(self) -> None:
        self._stream.close()
        AVRO.put(self._location, b"".join(self._parts))

    def __enter__(self) -> _Kept:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _CachedFile(PyArrowFile):
    """An Avro input file read whole with one GET (no HEAD) and kept in the cache."""

    def open(self, seekable: bool = True) -> Any:
        import pyarrow as pa

        data = AVRO.get(self.location)
        if data is None:
            try:
                with self._filesystem.open_input_stream(self._path) as stream:
                    data = stream.read()
            except FileNotFoundError:
                raise
            except OSError as exc:
                if exc.errno == 2 or "Path does not exist" in str(exc):
                    raise FileNotFoundError(f"Cannot open file, does not exist: {self.location}") from exc
                raise
            AVRO.put(self.location, data)
        return pa.BufferReader(data)

    def __len__(self) -> int:
        data = AVRO.get(self.location)
        return len(data) if data is not None else super().__len__()
