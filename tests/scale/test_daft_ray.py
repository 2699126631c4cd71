"""Models on Daft on a Ray cluster (``engine: {type: ray, transforms: daft}``) give DuckDB's results."""

from __future__ import annotations

import decimal
from pathlib import Path

import pyarrow as pa

from lakeforge import Project
from tests.conftest import write_project


def test_models_on_daft_on_ray_equal_duckdb(tmp_path: Path, ray_address: str) -> None:
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
        "silver/items.sql": "select id, trim(grp) as grp, amount from bronze.items "
        "qualify row_number() over (partition by id order by amount desc) = 1",
        "gold/by_group.sql": "/* lakeforge\nchecks:\n  - {type: unique, column: grp}\n*/\n"
        "select grp, count(*) as n, sum(amount) as total from silver.items group by all",
    }
    for project in projects:
        project.lake.write("bronze.items", table.to_batches(), schema=table.schema, mode="overwrite")
        for name, text in models.items():
            (project.path / "models" / name).parent.mkdir(parents=True, exist_ok=True)
            (project.path / "models" / name).write_text(text)
        result = project.build()
        assert result.ok, [(m.model, m.error) for m in result.models]
        assert [c.status for c in result.checks] == ["pass"]
    import daft
    import ray

    assert daft.get_or_infer_runner_type() == "ray" and ray.is_initialized()  # Daft ran on the cluster
    assert ray.get_runtime_context().gcs_address == ray_address
    duck, ray_ = (
        [p.lake.read(n).sort_by("grp" if n == "gold.by_group" else "id") for n in ("silver.items", "gold.by_group")]
        for p in projects
    )
    assert ray_ == duck
    assert ray_[1].num_rows == 7 and ray_[1].schema.field("n").type == pa.int64()
    assert ray_[1].column("total").to_pylist()[0] == sum(d(i) / 4 for i in range(0, 1000, 7))
