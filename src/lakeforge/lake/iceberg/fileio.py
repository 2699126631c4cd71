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

Chosen by ``py-io-impl`` in the catalog properties (``Storage.iceberg_properties``); other engines reading the
same catalog are unaffected. Measured in docs/benchmarks.md ("Object storage", S3 requests per commit).
"""

from __future__ import annotations

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


class _UniqueFile(PyArrowFile):
    """An output file whose name is unique: created without the existence check (one HEAD less)."""

    def create(self, overwrite: bool = False) -> OutputStream:
        return super().create(overwrite=True)
