"""Which files a files source has, each with what tells a changed file from an unchanged one."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakeforge.errors import SourceError, SourceUnreachable

if TYPE_CHECKING:
    import pyarrow.fs as pafs

    from lakeforge.lake.storage import Storage


@dataclass(frozen=True)
class FileEntry:
    path: str
    """Under the source's ``path`` (``2024/orders-1.csv``), with ``/`` separators."""
    size: int
    mtime_ns: int
    etag: str | None = None

    def signature(self) -> dict[str, Any]:
        """What the position keeps of the file: a file whose signature changes is read again (once)."""
        sig: dict[str, Any] = {"size": self.size, "mtime_ns": self.mtime_ns}
        if self.etag:
            sig["etag"] = self.etag
        return sig


def list_files(source: str, storage: Storage, pattern: str, recursive: bool) -> list[FileEntry]:
    """Every file under the storage root matching ``pattern``, sorted by path (the order they are read in)."""
    if storage.is_local:
        return _local(source, storage, pattern, recursive)
    return _s3(source, storage, pattern, recursive)


def matches(relative: str, pattern: str) -> bool:
    name = relative.rsplit("/", 1)[-1]
    return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(relative, pattern)


def _local(source: str, storage: Storage, pattern: str, recursive: bool) -> list[FileEntry]:
    import os
    from pathlib import Path

    root = Path(storage.root.removeprefix("file://"))
    if not root.is_dir():
        raise SourceError(source, f"path {root} is not a folder (files source: path must be a folder or s3:// prefix)")
    found = []
    walker = os.walk(root) if recursive else [(str(root), [], os.listdir(root))]
    for folder, _dirs, names in walker:
        for name in names:
            full = Path(folder, name)
            relative = full.relative_to(root).as_posix()
            if name.startswith(".") or not full.is_file() or not matches(relative, pattern):
                continue
            stat = full.stat()
            found.append(FileEntry(relative, stat.st_size, stat.st_mtime_ns))
    return sorted(found, key=lambda f: f.path)


def _s3(source: str, storage: Storage, pattern: str, recursive: bool) -> list[FileEntry]:
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = storage.bucket_and_key()
    prefix = prefix.rstrip("/") + "/" if prefix else ""
    client = storage.s3_client()
    found = []
    token: str | None = None
    try:
        while True:
            kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
            if not recursive:
                kwargs["Delimiter"] = "/"
            if token:
                kwargs["ContinuationToken"] = token
            page = client.list_objects_v2(**kwargs)
            for item in page.get("Contents", []):
                relative = item["Key"][len(prefix) :]
                if not relative or relative.endswith("/") or not matches(relative, pattern):
                    continue
                mtime = int(item["LastModified"].timestamp() * 1_000_000_000)
                found.append(FileEntry(relative, int(item["Size"]), mtime, str(item.get("ETag", "")).strip('"')))
            token = page.get("NextContinuationToken")
            if not token:
                break
    except (BotoCoreError, ClientError) as exc:
        text = storage.scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        raise SourceUnreachable(source, f"cannot list {storage.root}: {text}") from None
    return sorted(found, key=lambda f: f.path)


def open_file(storage: Storage, relative: str, compression: str) -> pafs.NativeFile:
    """A streamed input of the file, decompressed (``auto``: by extension)."""
    import pyarrow as pa

    fs, root = storage.filesystem()
    kind = compression
    if kind == "auto":
        kind = "gzip" if relative.endswith(".gz") else "zstd" if relative.endswith(".zst") else "none"
    stream = fs.open_input_stream(f"{root.rstrip('/')}/{relative}", compression=None, buffer_size=1 << 20)
    if kind == "none":
        return stream
    return pa.CompressedInputStream(stream, kind)
