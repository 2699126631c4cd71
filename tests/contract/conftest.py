"""Contract-suite fixtures: a source kit per database, created once per test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from tests.contract.kits import KITS, Kit


@pytest.fixture(scope="module", params=sorted(KITS))
def kit(request: pytest.FixtureRequest) -> Iterator[Kit]:
    """A fresh database on one source server, shared by the tests of a module (loading is the slow part)."""
    made = KITS[request.param]()
    made.create_database()
    yield made
    made.drop_database()


@pytest.fixture(scope="module", params=["delta", "iceberg"])
def module_format(request: pytest.FixtureRequest) -> Iterator[str]:
    """The table format of every project a contract module opens (``LAKEFORGE__LAKE__FORMAT``)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAKEFORGE__LAKE__FORMAT", request.param)
        yield str(request.param)


def _iceberg_table(project: Any, table: str) -> Any:
    """The table through PyIceberg's own SQL catalog (not through lakeforge)."""
    from pyiceberg.catalog.sql import SqlCatalog

    root = project.lake.root
    catalog = SqlCatalog("lakeforge", uri=f"sqlite:///{root}/catalog.db", warehouse=f"file://{root}")
    return catalog.load_table(tuple(table.split(".")))


def lake_rows(project: Any, table: str, order: str = "id") -> pa.Table:
    """A lake table read with ``deltalake`` or PyIceberg directly (not through lakeforge), sorted."""
    if project.lake.FORMAT == "iceberg":
        data = _iceberg_table(project, table).scan().to_arrow()
    else:
        from deltalake import DeltaTable

        data = DeltaTable(project.lake.uri(table)).to_pyarrow_table()
    return data.sort_by(order) if order else data


def delta_types(project: Any, table: str) -> dict[str, str]:
    """Column -> the type recorded by the table format: Delta's log (``decimal(10,2)``, ``timestamp_ntz``, ...)
    or the Iceberg schema (``decimal(10, 2)``, ``timestamp``, ``timestamptz``, ...)."""
    if project.lake.FORMAT == "iceberg":
        return {f.name: str(f.field_type) for f in _iceberg_table(project, table).schema().fields}
    from deltalake import DeltaTable

    out: dict[str, str] = {}
    for f in DeltaTable(project.lake.uri(table)).schema().fields:
        out[f.name] = _delta_type_name(f.type)
    return out


def _delta_type_name(t: Any) -> str:
    if getattr(t, "type", None) == "array":
        return f"array<{_delta_type_name(t.element_type)}>"
    return str(t.type)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).name == "test_million_rows.py":
            item.add_marker(pytest.mark.slow)
