"""Shared by the distributed-extraction tests (threads in this process, and Ray in a loopback namespace)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from lakeforge import Project
from lakeforge.distributed.executor import Executor
from lakeforge.distributed.extract import DistributedExtractor
from tests.contract.conftest import lake_rows
from tests.contract.kits import COMMON, Kit
from tests.contract.test_contract import ODD_COLUMNS, ODD_TABLE, UNICODE

META = ["_lf_source", "_lf_extracted_at", "_lf_run_id"]


def write(kit: Kit, folder: Path, extra: str, *, fmt: str = "delta", include: list[str] | None = None) -> Path:
    """``lakeforge.yml`` loading ``kit``'s database (only the tables in ``include`` when given)."""
    folder.mkdir(parents=True, exist_ok=True)
    only = f", include: {json.dumps(include)}" if include else ""
    (folder / "lakeforge.yml").write_text(
        f'sources:\n  src: {{type: {kit.source_type}, url: "{kit.url()}"{only}}}\n'
        f"lake: {{path: ./lake, format: {fmt}}}\n{extra}"
    )
    return folder


def project(
    kit: Kit,
    folder: Path,
    *,
    partitions: int,
    executor: Executor | None,
    fmt: str = "delta",
    include: list[str] | None = None,
) -> Project:
    """A project loading ``kit``'s database; with ``executor``, every table goes through range tasks."""
    extra = f"run: {{partitions: {partitions}, parallel_min_rows: 0, retries: 0}}\n"
    made = Project(write(kit, folder, extra, fmt=fmt, include=include))
    if executor is not None:
        made.extractor = DistributedExtractor(executor, retries=2)  # type: ignore[misc]
    return made


def contract_tables(kit: Kit) -> list[str]:
    """Create the contract suite's tables (every common type with NULLs, Unicode, empty, odd names, no key);
    returns their source names."""
    types = {c.column: c.types[kit.name] for c in COMMON}
    kit.create_table("types", {"id": "integer", **types}, primary_key=["id"])
    rows = [[str(i + 1)] + [c.literal(kit, i) for c in COMMON] for i in range(3)]
    rows.append(["4"] + ["NULL"] * len(COMMON))
    kit.insert("types", ["id", *types], rows)
    kit.create_table("unicode", {"id": "integer", "s": "varchar(50)", "t": "text"}, primary_key=["id"])
    kit.insert("unicode", ["id", "s", "t"], [[str(i), f"'{u}'", f"'{u * 3}'"] for i, u in enumerate(UNICODE)])
    kit.create_table("empty", {"id": "integer", "amount": "decimal(12,2)", "name": "varchar(10)"}, primary_key=["id"])
    kit.create_table(ODD_TABLE, ODD_COLUMNS, primary_key=["select"])
    kit.insert(
        ODD_TABLE,
        list(ODD_COLUMNS),
        [["1", "'a'", "'b'", "2", "'c'", "'d'"], ["2", "NULL", "'it''s'", "NULL", "'\"'", "NULL"]],
    )
    kit.create_table("no_pk", {"id": "integer", "v": "varchar(10)"})
    kit.insert("no_pk", ["id", "v"], [["1", "'x'"], ["1", "'x'"], ["1", "'x'"], ["NULL", "NULL"], ["2", "'y'"]])
    return ["types", "unicode", "empty", ODD_TABLE, "no_pk"]


def same_tables(local: Project, distributed: Project) -> dict[str, int]:
    """Every bronze table of both projects: the same Arrow schema and the same rows (metadata aside);
    returns rows per table."""
    names = local.lake.names(["bronze"])
    assert names == distributed.lake.names(["bronze"]) and names
    counts = {}
    for name in names:
        a, b = lake_rows(local, name, order=""), lake_rows(distributed, name, order="")
        assert a.schema.remove_metadata() == b.schema.remove_metadata(), name
        a, b = _sorted(a.drop_columns(META)), _sorted(b.drop_columns(META))
        assert a.to_pylist() == b.to_pylist(), name
        counts[name] = a.num_rows
    return counts


def _sorted(table: pa.Table) -> pa.Table:
    keys = [(n, "ascending") for n in table.column_names if not pa.types.is_nested(table.schema.field(n).type)]
    return table.sort_by(keys) if table.num_rows else table


def source_rows(kit: Kit, table: str, columns: str, order: str) -> list[tuple[Any, ...]]:
    return kit.execute(f"SELECT {columns} FROM {kit.quote(table)} ORDER BY {order}")
