"""Shared by the distributed-extraction tests (threads in this process, and Ray in a loopback namespace)."""

from __future__ import annotations

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


def project(kit: Kit, folder: Path, *, partitions: int, executor: Executor | None, fmt: str = "delta") -> Project:
    """A project loading ``kit``'s database; with ``executor``, every table goes through range tasks."""
    extra = f"run: {{partitions: {partitions}, parallel_min_rows: 0, retries: 0}}\n"
    kit.write_project(folder, extra)
    text = (folder / "lakeforge.yml").read_text().replace("path: ./lake", f"path: ./lake\n  format: {fmt}")
    (folder / "lakeforge.yml").write_text(text)
    made = Project(folder)
    if executor is not None:
        made.extractor = DistributedExtractor(executor, retries=2)  # type: ignore[misc]
    return made


def contract_tables(kit: Kit) -> list[str]:
    """The contract suite's tables (every common type with NULLs, Unicode, empty, odd names, no key)."""
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
    return ["bronze.src_types", "bronze.src_unicode", "bronze.src_empty", "bronze.src_no_pk"]


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
