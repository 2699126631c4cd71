"""Import ``pyarrow.dataset`` without importing pandas.

``pyarrow._dataset`` builds an expression from ``pa.scalar(True)`` when it is imported, and pyarrow's
pandas shim then imports pandas to check whether ``True`` is a pandas object: ~0.3 s of CPU per process
(docs/benchmarks.md, "Fixed cost of a run"). PyIceberg imports ``pyarrow.dataset`` at module load, so every
Iceberg run paid it, though nothing in lakeforge uses pandas.

:func:`import_dataset` imports the module while, in this thread only, ``import pandas`` fails: the shim
records "no pandas" (it catches the ImportError) and nothing else changes. So that pyarrow sees pandas again
the moment anything imports it for real (a user's pandas frame, ``to_pandas()``), a finder waits for that
import and, once pandas has loaded, has the shim import it again (``pandas_api.pd``; pyarrow retries a failed
pandas import whenever it is asked to). When pandas is already imported, or not installed, or
``pyarrow.dataset`` is already loaded, the module is imported as usual.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from types import ModuleType
from typing import Any


def import_dataset() -> None:
    """Import ``pyarrow.dataset`` (see the module docstring)."""
    if "pyarrow.dataset" in sys.modules or "pandas" in sys.modules or importlib.util.find_spec("pandas") is None:
        import pyarrow.dataset  # noqa: F401

        return
    blocker = _Blocker(threading.get_ident())
    sys.meta_path.insert(0, blocker)
    try:
        import pyarrow.dataset  # noqa: F401
    finally:
        sys.meta_path.remove(blocker)
    if "pandas" not in sys.modules and not any(isinstance(f, _Restorer) for f in sys.meta_path):
        sys.meta_path.insert(0, _Restorer())


def skip_pandas_check() -> None:
    """Have pyarrow's pandas shim look for pandas now, while ``import pandas`` fails in this thread, so that
    converting Python lists with ``pa.array`` (the CDC loaders do it for every micro-batch) does not import
    pandas (~0.4 s of CPU); pandas is seen again once anything really imports it (see the module docstring)."""
    if "pandas" in sys.modules or importlib.util.find_spec("pandas") is None:
        return
    import pyarrow as pa

    blocker = _Blocker(threading.get_ident())
    sys.meta_path.insert(0, blocker)
    try:
        pa.array([0])  # the shim's first (and only) look for pandas
    finally:
        sys.meta_path.remove(blocker)
    if "pandas" not in sys.modules and not any(isinstance(f, _Restorer) for f in sys.meta_path):
        sys.meta_path.insert(0, _Restorer())


class _Blocker:
    """``import pandas`` fails in the importing thread while ``pyarrow.dataset`` loads."""

    def __init__(self, thread: int) -> None:
        self.thread = thread

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if (name == "pandas" or name.startswith("pandas.")) and threading.get_ident() == self.thread:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


class _Restorer:
    """Once pandas is really imported, tell pyarrow's shim (then step aside)."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "pandas":
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec("pandas")
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)  # type: ignore[assignment]
        return spec


class _Loader:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def create_module(self, spec: Any) -> ModuleType | None:
        module: ModuleType | None = self.inner.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        self.inner.exec_module(module)
        module.__spec__.loader = self.inner  # type: ignore[union-attr]
        module.__loader__ = self.inner
        try:
            import pyarrow.lib

            pyarrow.lib._pandas_api.pd  # noqa: B018 (pyarrow imports pandas again and uses it from now on)
        except Exception:  # pragma: no cover - an older or newer pyarrow without the shim
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
