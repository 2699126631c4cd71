"""The ``lakeforge`` process's memory allocators, set once when the command starts.

A load allocates and frees the same few hundred megabytes over and over (each block of a file, each commit
interval's Arrow data and Parquet pages). With the defaults, much of that memory goes back to the kernel as
soon as it is freed and comes back zeroed at the next allocation: a quarter of a CSV load's CPU was the
kernel's page faults and page clearing (``perf``, docs/benchmarks.md, "Session 10"). On Linux the command
therefore keeps that memory for reuse:

- Arrow's buffers come from jemalloc (``ARROW_DEFAULT_MEMORY_POOL=jemalloc``, set before pyarrow loads)
  instead of mimalloc, whose freed pages are returned to the kernel after 10 ms. x86-64 only: Arrow's ARM
  wheels are built without jemalloc since it crashed there (apache/arrow#44342, #44380);
- glibc's ``malloc`` (numpy's arrays, Python's byte buffers) serves blocks up to 32 MiB from its heap instead
  of a fresh ``mmap`` each, and keeps up to 128 MiB free at the top of its heap instead of 128 KiB.

Peak memory stays what the load holds at once (bounded by ``run.commit_bytes``); a long ``--follow`` run
keeps at most those 128 MiB more than it would. A choice the user made wins: ``ARROW_DEFAULT_MEMORY_POOL``,
``GLIBC_TUNABLES`` or ``MALLOC_*`` set in the environment leave the matching part alone. Library users of
:class:`lakeforge.Project` keep their process's allocators as they are; :func:`tune` is public for them.
"""

from __future__ import annotations

import os
import sys

MMAP_THRESHOLD = 32 << 20
"""glibc: a block this size or larger still gets its own ``mmap`` (the most glibc's dynamic threshold would reach,
``DEFAULT_MMAP_THRESHOLD_MAX`` on 64-bit)."""
TRIM_THRESHOLD = 128 << 20
"""glibc: free memory kept at the top of the heap before it is given back."""

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def tune() -> list[str]:
    """Set the allocators as the module docstring says; returns what was set."""
    if not sys.platform.startswith("linux"):
        return []
    done = []
    if _jemalloc_built() and "pyarrow" not in sys.modules and "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "jemalloc"
        done.append("arrow pool jemalloc")
    if not _user_tuned_malloc() and _glibc_mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD):
        _glibc_mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
        done.append("glibc mmap/trim thresholds 32/128 MiB")
    return done


def _jemalloc_built() -> bool:
    """Arrow's Linux wheels carry jemalloc on x86-64 only."""
    import platform

    return platform.machine().lower() in ("x86_64", "amd64")


def _user_tuned_malloc() -> bool:
    return "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", "") or any(
        name.startswith("MALLOC_") for name in os.environ
    )


def _glibc_mallopt(param: int, value: int) -> bool:
    """``mallopt`` where the C library is glibc (not musl, which has none); False where it is not."""
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        if not hasattr(libc, "gnu_get_libc_version"):
            return False
        return bool(libc.mallopt(param, value))
    except (OSError, AttributeError):
        return False
