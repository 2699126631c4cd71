"""The public API: what ``lakeforge`` exports, and that importing it stays cheap."""

from __future__ import annotations

import subprocess
import sys

import lakeforge


def test_all_names_exist_and_are_sorted() -> None:
    for name in lakeforge.__all__:
        assert hasattr(lakeforge, name), name
    assert lakeforge.__all__ == sorted(lakeforge.__all__)


def test_errors_share_one_root() -> None:
    for name in lakeforge.__all__:
        obj = getattr(lakeforge, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, lakeforge.LakeforgeError), name


def test_import_does_not_load_heavy_libraries() -> None:
    code = ("import sys, lakeforge, lakeforge.cli.main; "
            "heavy = [m for m in ('pyarrow', 'deltalake', 'duckdb', 'connectorx', 'psycopg', 'pymysql', "
            "'adbc_driver_postgresql') if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""
