"""The ``lakeforge`` command's allocator settings (``cli/allocators.py``), each in a fresh interpreter."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.machine() != "x86_64", reason="set on x86-64 Linux only"
)

PROBE = (
    "import json; from lakeforge.cli.allocators import tune; done = tune(); import pyarrow as pa; "
    "print(json.dumps({'done': done, 'pool': pa.default_memory_pool().backend_name}))"
)


def _probe(**env: str) -> dict[str, object]:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("ARROW_DEFAULT_MEMORY_POOL", "GLIBC_TUNABLES") and not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True,
                         check=True)
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_arrow_pool_is_jemalloc_and_glibc_thresholds_are_set() -> None:
    result = _probe()
    assert result["pool"] == "jemalloc"
    assert result["done"] == ["arrow pool jemalloc", "glibc mmap/trim thresholds 32/128 MiB"]


def test_the_users_choices_win() -> None:
    result = _probe(ARROW_DEFAULT_MEMORY_POOL="system", GLIBC_TUNABLES="glibc.malloc.trim_threshold=1048576")
    assert result["pool"] == "system"
    assert result["done"] == []
    assert _probe(MALLOC_TRIM_THRESHOLD_="1048576")["done"] == ["arrow pool jemalloc"]


def test_pyarrow_already_loaded_keeps_its_pool() -> None:
    code = "import pyarrow as pa; " + PROBE
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"})
    result = json.loads(out.stdout)
    assert result["pool"] == "mimalloc"
    assert "arrow pool jemalloc" not in result["done"]
