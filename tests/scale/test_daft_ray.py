"""Models on Daft on a Ray cluster (``engine: {type: ray, transforms: daft}``) give DuckDB's results."""

from __future__ import annotations

import decimal
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lakeforge import Project
from tests.conftest import write_project


def spy(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """How lake tables reached Daft (``files``: scan tasks on the workers; ``driver``) and which processes
    wrote each ``table`` model's files."""
    from lakeforge.engines.daft import DaftEngine

    seen: dict[str, Any] = {"reads": {}, "writers": set()}
    read, write = DaftEngine._read, DaftEngine.write_files

    def spied_read(self: DaftEngine, name: str) -> Any:
        frame = read(self, name)
        seen["reads"][name] = "files" if name in self.read_by_workers else "driver"
        return frame

    def spied_write(self: DaftEngine, *args: Any, **kwargs: Any) -> Any:
        files = write(self, *args, **kwargs)
        seen["writers"] |= self.writers
        return files

    monkeypatch.setattr(DaftEngine, "_read", spied_read)
    monkeypatch.setattr(DaftEngine, "write_files", spied_write)
    return seen


def test_models_on_daft_on_ray_equal_duckdb(tmp_path: Path, ray_address: str, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = "lake:\n  path: ./lakehouse\n"
    ray = f"engine: {{type: ray, address: '{ray_address}', transforms: daft}}\n"
    projects = [Project(write_project(tmp_path / "duckdb", lake)), Project(write_project(tmp_path / "ray", lake + ray))]
    d = decimal.Decimal
    table = pa.table(
        {
            "id": pa.array(range(1000), pa.int64()),
            "grp": [f" g{i % 7} " for i in range(1000)],
            "amount": pa.array([d(i) / 4 for i in range(1000)], pa.decimal128(12, 2)),
        }
    )
    models = {
        "silver/items.sql": "/* lakeforge\nchecks:\n  - {type: expression, name: small, expression: amount < 200, "
        "on_fail: quarantine}\n*/\nselect id, trim(grp) as grp, amount from bronze.items "
        "qualify row_number() over (partition by id order by amount desc) = 1",
        "gold/by_group.sql": "/* lakeforge\nchecks:\n  - {type: unique, column: grp}\n*/\n"
        "select grp, count(*) as n, sum(amount) as total from silver.items group by all",
        # SCD2: its result is staged as files, the diff and the new dimension computed and written by Ray workers
        "gold/dim_group.sql": "/* lakeforge\nmaterialized: scd2\nunique_key: grp\ninitial_valid_from: 2000-01-01\n*/\n"
        "select grp, max(id) as top from silver.items group by grp",
    }
    seen = spy(monkeypatch)
    for project in projects:
        project.lake.write("bronze.items", table.to_batches(), schema=table.schema, mode="overwrite")
        for name, text in models.items():
            (project.path / "models" / name).parent.mkdir(parents=True, exist_ok=True)
            (project.path / "models" / name).write_text(text)
        result = project.build()
        assert result.ok, [(m.model, m.error) for m in result.models]
        assert [(c.check, c.status, c.quarantined_rows) for c in result.checks] == [
            ("small", "quarantined", 200),  # amounts 200.00-249.75 (on Ray: checked by the workers)
            ("unique_grp", "pass", 0),
        ]
    import daft
    import ray

    assert daft.get_or_infer_runner_type() == "ray" and ray.is_initialized()  # Daft ran on the cluster
    assert ray.get_runtime_context().gcs_address == ray_address
    # the lake tables were read by scan tasks over their files (gold.by_group by its check), the table models
    # and SCD2's staged result and dimension written by Ray workers; quarantine and SCD2 read the staged files
    assert seen["reads"] == {
        "bronze.items": "files",
        "silver.items": "files",
        "gold.by_group": "files",
        "__lf_result": "files",
    }
    assert seen["writers"] and os.getpid() not in seen["writers"]
    # a second build with a diff: g0 changes (a new top id), g6 is gone; computed and written on the workers
    changed = table.filter(pa.compute.not_equal(table.column("grp"), " g6 "))
    changed = pa.concat_tables(
        [changed, pa.table({"id": [999_999], "grp": [" g0 "], "amount": [d(1)]}, schema=table.schema)]
    )
    seen["reads"].clear()
    for project in projects:
        project.lake.write("bronze.items", changed.to_batches(), schema=table.schema, mode="overwrite")
        result = project.build()
        assert result.ok, [(m.model, m.error) for m in result.models]
        assert {k: v for k, v in result.model("gold.dim_group").detail.items() if k != "written_by"} == {
            "opened": 1,
            "closed": 2,
            **({"engine": "daft"} if project is projects[1] else {}),
        }
    assert result.model("gold.dim_group").detail["written_by"] == "daft"
    assert seen["reads"]["gold.dim_group"] == "files" and seen["reads"]["__lf_result"] == "files"
    duck, ray_ = (
        [
            p.lake.read(n).sort_by({"silver.items": "id", "gold.by_group": "grp"}.get(n, "dim_group_sk"))
            for n in ("silver.items", "gold.by_group", "gold.dim_group")
        ]
        for p in projects
    )
    assert ray_[:2] == duck[:2]
    # the dimension: the build times differ between the two projects, so valid_from/valid_to are compared by
    # which build set them (the first build: initial_valid_from; the second: its own time, the same for all)
    times = [sorted({t for t in dim.column("valid_from").to_pylist()}) for dim in (duck[2], ray_[2])]

    def by_build(dim: pa.Table, seen_times: list[Any]) -> list[dict[str, Any]]:
        rows = dim.to_pylist()
        for row in rows:
            row["valid_from"] = seen_times.index(row["valid_from"])
            row["valid_to"] = None if row["valid_to"] is None else seen_times.index(row["valid_to"])
        return rows

    assert ray_[2].schema == duck[2].schema and len(times[1]) == 2
    assert by_build(ray_[2], times[1]) == by_build(duck[2], times[0])
    quarantined = [
        p.lake.read("quarantine.silver_items").drop_columns(["_lf_quarantined_at", "_lf_build_id"]) for p in projects
    ]
    assert quarantined[1].sort_by("id") == quarantined[0].sort_by("id")
    assert quarantined[1].num_rows == 200 + 172  # the second build: the same rows but g6's 28
    assert ray_[2].num_rows == 8 and ray_[2].sort_by("dim_group_sk").column("dim_group_sk").to_pylist() == list(
        range(1, 9)
    )
    assert ray_[2].filter(pa.compute.field("is_current")).num_rows == 6  # g6 closed, g0 closed and reopened
    assert ray_[1].num_rows == 6 and ray_[1].schema.field("n").type == pa.int64()
    assert ray_[1].column("total").to_pylist()[0] == sum(d(i) / 4 for i in range(0, 800, 7)) + d(
        1
    )  # amounts >= 200 quarantined; the new row of g0


def test_contract_types_on_ray_equal_duckdb(tmp_path: Path, ray_address: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every contract type (decimal(38, x), timestamptz, binary, NULLs) read by Ray workers from the files and
    written back by them: the stored table equals DuckDB's column for column."""
    from tests.integration.test_daft_lake_files import contract_table

    lake = "lake:\n  path: ./lakehouse\n"
    ray = f"engine: {{type: ray, address: '{ray_address}', transforms: daft}}\n"
    duck, on_ray = Project(write_project(tmp_path / "d", lake)), Project(write_project(tmp_path / "r", lake + ray))
    seen = spy(monkeypatch)
    table = contract_table()
    for project in (duck, on_ray):
        project.lake.write("bronze.t", table.to_batches(), schema=table.schema, mode="overwrite")
        (project.path / "models" / "silver").mkdir(parents=True)
        (project.path / "models" / "silver" / "t.sql").write_text("select * from bronze.t where id > 0")
        result = project.build()
        assert result.ok, [(m.model, m.error) for m in result.models]
    assert seen["reads"] == {"bronze.t": "files"} and os.getpid() not in seen["writers"]
    got, expected = (p.lake.read("silver.t").sort_by("id") for p in (on_ray, duck))
    for column in table.column_names:
        assert got.schema.field(column).type == expected.schema.field(column).type, column
        assert got.column(column).to_pylist() == expected.column(column).to_pylist(), column
