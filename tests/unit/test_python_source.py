"""``type: python``: a user generator with its state committed with its records; failures name file and line."""

from __future__ import annotations

import datetime as dt
import decimal
import textwrap
from pathlib import Path

import pyarrow as pa

from lakeforge.project import Project

PIPELINE = """
import datetime as dt

import pandas as pd
import polars as pl
import pyarrow as pa

from lakeforge import State


def products(state, pages=3):
    page = state.get("page", 0)
    while page < pages:
        page += 1
        yield [{"id": page * 10 + i, "name": f"p{page}-{i}", "price": f"{page}.{i}5"} for i in range(2)]
        yield State({"page": page})
    return {"page": page, "done": True}


def mixed(state):
    if state.get("done"):
        return state
    yield {"id": 1, "name": "dict", "price": "1.50", "at": dt.datetime(2024, 1, 1, 12, tzinfo=dt.timezone.utc)}
    yield pa.table({"id": pa.array([2], pa.int64()), "name": ["arrow"], "price": ["2.25"]})
    yield pd.DataFrame({"id": [3], "name": ["pandas"], "price": ["3.00"]})
    yield pl.DataFrame({"id": [4], "name": ["polars"], "price": ["4.10"]})
    yield [{"id": 5, "name": "bad price", "price": "cheap"}, "not a record", {"id": "six", "name": "x"}]
    return {"done": True}


def broken(state):
    yield {"id": 1}
    raise ValueError("the site changed its layout")
"""


def _project(root: Path, function: str, options: str = "") -> Project:
    (root / "pipelines").mkdir(parents=True, exist_ok=True)
    (root / "pipelines" / "__init__.py").write_text("")
    (root / "pipelines" / "shop.py").write_text(PIPELINE)
    (root / "lakeforge.yml").write_text(
        textwrap.dedent(
            f"""
            sources:
              scraped:
                type: python
                function: pipelines.shop:{function}
                schema: {{price: "decimal(6,2)"}}
                {options}
            lake: {{path: lh}}
            """
        )
    )
    return Project(root)


def test_state_commits_with_the_records_and_the_next_run_starts_from_it(tmp_path: Path) -> None:
    project = _project(tmp_path, "products")
    first = project.run()
    assert [(t.table, t.mode, t.status, t.rows) for t in first.tables] == [("bronze.scraped", "append", "success", 6)]
    table = project.lake.read("bronze.scraped")
    assert table.schema.field("price").type == pa.decimal128(6, 2)
    assert table.schema.field("id").type == pa.int64() and table.schema.field("name").type == pa.string()
    rows = sorted(table.to_pylist(), key=lambda r: r["id"])
    assert [(r["id"], r["name"], r["price"]) for r in rows][:2] == [
        (10, "p1-0", decimal.Decimal("1.05")),
        (11, "p1-1", decimal.Decimal("1.15")),
    ]
    checkpoint = project.lake.checkpoint("bronze.scraped")
    assert checkpoint is not None and checkpoint.position == {"state": {"page": 3, "done": True}}

    more = _project(tmp_path, "products", "options: {pages: 5}").run()
    assert [(t.status, t.rows) for t in more.tables] == [("success", 4)]
    ids = sorted(r["id"] for r in project.lake.read("bronze.scraped").to_pylist())
    assert ids == [10, 11, 20, 21, 30, 31, 40, 41, 50, 51]


def test_dicts_arrow_pandas_polars_and_bad_records(tmp_path: Path) -> None:
    project = _project(tmp_path, "mixed")
    result = project.run()
    assert result.ok and result.tables[0].rows == 4, result.tables
    rows = {r["id"]: r for r in project.lake.read("bronze.scraped").to_pylist()}
    assert sorted(rows) == [1, 2, 3, 4]
    assert [rows[i]["name"] for i in (1, 2, 3, 4)] == ["dict", "arrow", "pandas", "polars"]
    assert rows[4]["price"] == decimal.Decimal("4.10") and rows[2]["at"] is None
    assert rows[1]["at"] == dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC)
    bad = sorted(project.quarantine(), key=lambda r: r["offset"])
    assert [(r["offset"], r["reason"]) for r in bad] == [
        (4, "column price: 'cheap' is not a valid decimal(6,2)"),
        (5, "a str is not a record (a dict)"),
        (6, 'column id: "six" is not a int64 like the column\'s first value'),
    ]
    assert bad[1]["raw"] == '"not a record"' and bad[0]["source"] == "scraped"
    again = project.run()
    assert again.tables[0].status == "unchanged" and len(project.quarantine()) == 3


def test_a_failing_function_names_its_file_and_line(tmp_path: Path) -> None:
    project = _project(tmp_path, "broken")
    result = project.run()
    failed = result.tables[0]
    assert failed.status == "failed"
    line = PIPELINE.splitlines().index('    raise ValueError("the site changed its layout")') + 1
    assert f"pipelines.shop:broken failed at {tmp_path / 'pipelines' / 'shop.py'}:{line} in broken" in (
        failed.error or ""
    )
    assert "ValueError: the site changed its layout" in (failed.error or "")
    assert not project.lake.exists("bronze.scraped")
