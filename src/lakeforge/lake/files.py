"""Parquet files written outside a table commit (distributed workers): where they go, how they are written,
how orphans are removed. Used by the formats' ``commit_files`` and by the range tasks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow.fs as pafs

    from lakeforge.lake.base import Lake


def fs_path(location: str) -> str:
    """A lake location as a path inside its Arrow filesystem: ``s3://b/k`` -> ``b/k``, ``file:///x`` -> ``/x``."""
    if location.startswith("file://"):
        return location.removeprefix("file://")
    return location.split("://", 1)[1] if "://" in location else location


def delete_paths(fs_and_root: tuple[pafs.FileSystem, str], paths: Iterable[str]) -> int:
    fs, _ = fs_and_root
    removed = 0
    for path in paths:
        with contextlib.suppress(FileNotFoundError, OSError):
            fs.delete_file(fs_path(path))
            removed += 1
    return removed


def discard_orphans(lake: Lake, folder: str, prefix: str, keep: set[str]) -> int:
    """Remove the files under ``folder`` named ``prefix*`` that no commit references (``keep``: the committed
    ones): what a failed or killed writer left; returns how many were removed."""
    import pyarrow.fs as pafs

    fs, _ = lake.file_system()
    base = fs_path(folder).rstrip("/")
    infos = fs.get_file_info(pafs.FileSelector(base, allow_not_found=True))
    keep_names = {k.rsplit("/", 1)[-1] for k in keep}
    orphans = [
        f"{folder.rstrip('/')}/{i.base_name}"
        for i in infos
        if i.base_name.startswith(prefix) and i.base_name not in keep_names
    ]
    return lake.discard_files(orphans)
