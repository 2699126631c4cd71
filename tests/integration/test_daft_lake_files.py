"""Daft reads lake tables from the pinned version's Parquet files and writes a ``table`` model's result as files
that the driver commits once with the checkpoint (docs/scale-out.md, "Transforms on Daft"). Local Daft runner
here (the same scan tasks and sink run on Ray workers: tests/scale/test_daft_ray.py); Delta and Iceberg, on a
local folder and on S3 (SeaweedFS)."""

from __future__ import annotations

import decimal
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlglot

from lakeforge import Project
from lakeforge.errors import LakeError
from lakeforge.transform.session import Session
from tests.conftest import write_project
from tests.contract.kits import COMMON

pytest.importorskip("daft")
D = decimal.Decimal


def contract_table() -> pa.Table:
    """Every contract type (decimals up to 38 digits, timestamptz, binary ...) with a NULL row, plus int8/bool."""
    columns: dict[str, pa.Array] = {"id": pa.array([1, 2, 3, 4], pa.int64())}
    for case in COMMON:
        columns[case.column] = pa.array([*case.values, None], case.arrow)
    columns["c_int8"] = pa.array([1, -128, 127, None], pa.int8())
    columns["c_bool"] = pa.array([True, False, None, True])
    return pa.table(columns)


def sorted_rows(project: Project, name: str) -> pa.Table:
    return project.lake.read(name).sort_by("id")


def spy_reads(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Records how each lake table reached Daft: ``files`` (scan tasks over its Parquet files) or ``driver``."""
    from lakeforge.engines.daft import DaftEngine

    seen: dict[str, str] = {}
    original = DaftEngine._read

    def read(self: DaftEngine, name: str) -> Any:
        frame = original(self, name)
        seen[name] = "files" if name in self.read_by_workers else "driver"
        return frame

    monkeypatch.setattr(DaftEngine, "_read", read)
    return seen


def two_projects(tmp_path: Path, lake: str) -> tuple[Project, Project]:
    daft = "engine: {type: local, transforms: daft}\n"
    return Project(write_project(tmp_path / "duckdb", lake)), Project(write_project(tmp_path / "daft", lake + daft))


def models_of(models: dict[str, str]) -> list[str]:
    return [name.removesuffix(".sql").replace("/", ".") for name in models]


def write_models(project: Project, models: dict[str, str]) -> None:
    for name, text in models.items():
        (project.path / "models" / name).parent.mkdir(parents=True, exist_ok=True)
        (project.path / "models" / name).write_text(text)


@pytest.mark.usefixtures("lake_format")
def test_contract_types_read_from_files_equal_the_driver_path(tmp_path: Path) -> None:
    """Per column, the file scan gives the driver path's Arrow type and values (decimal precision and scale,
    timestamptz in UTC, NULLs), for a plain write and for a table rewritten by a MERGE (delta-rs writes view
    types into the Parquet footer, which Daft's own Parquet reader refuses)."""
    from lakeforge.engines.daft import DaftEngine

    project = Project(write_project(tmp_path / "p", "lake:\n  path: ./lakehouse\n"))
    table = contract_table()
    project.lake.write("bronze.t", table.to_batches(), schema=table.schema, mode="overwrite")
    project.lake.write("bronze.m", table.to_batches(), schema=table.schema, mode="overwrite")
    changed = table.slice(0, 2).set_column(1, "c_int16", pa.array([7, 8], pa.int16()))
    project.lake.merge("bronze.m", changed.to_batches(), schema=table.schema, keys=["id"])
    for name in ("bronze.t", "bronze.m"):
        snap = project.lake.snapshot(name)
        on_files, on_driver = DaftEngine(), DaftEngine()
        on_files.register(name, snap.dataset, files=partial(project.lake.data_files, name, snap.version))
        on_driver.register(name, snap.dataset)
        sql = f"select * from {name}"
        got, expected = (e.query(sql).read_all().sort_by("id") for e in (on_files, on_driver))
        assert on_files.read_by_workers == {name} and on_driver.read_by_workers == set()
        assert got.column_names == expected.column_names == table.column_names
        for column in table.column_names:
            assert got.schema.field(column).type == expected.schema.field(column).type, (name, column)
            assert got.column(column).to_pylist() == expected.column(column).to_pylist(), (name, column)
        assert got.schema.field("c_dec_38_20").type == pa.decimal128(38, 20)
        assert got.schema.field("c_tstz").type == pa.timestamp("us", tz="UTC")
        assert got.column("c_tstz").to_pylist()[3] is None
        assert got.column("c_dec_38_10").to_pylist()[0] == D("1234567890123456789012345678.0123456789")
        # a filter and a projection (pushed into the scan tasks) give the driver's answer too
        sql = f"select id, c_dec_10_2 from {name} where c_int32 >= 0 and c_varchar in ('', 'héllo wörld')"
        got, expected = (e.query(sql).read_all().sort_by("id") for e in (on_files, on_driver))
        assert got.equals(expected) and got.column("id").to_pylist() == [2]
    assert project.lake.read("bronze.m").sort_by("id").column("c_int16").to_pylist() == [7, 8, 0, None]


@pytest.mark.usefixtures("lake_format")
def test_table_model_written_by_daft_equals_duckdb_and_commits_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``table`` model on Daft: inputs read from files, the result written as files and committed in ONE
    commit carrying the checkpoint (the input versions it read); identical to DuckDB's table, types included."""
    seen = spy_reads(monkeypatch)
    duck, daft = two_projects(tmp_path, "lake:\n  path: ./lakehouse\n")
    models = {
        "silver/t.sql": "select * from bronze.t",
        "gold/by_flag.sql": "select c_bool, count(*) as n, sum(c_dec_10_2) as total, max(c_tstz) as newest "
        "from silver.t group by all",
    }
    table = contract_table()
    for project in (duck, daft):
        project.lake.write("bronze.t", table.to_batches(), schema=table.schema, mode="overwrite")
        write_models(project, models)
        result = project.build()
        assert result.ok, [(m.model, m.error) for m in result.models]
    names = models_of(models)
    versions = {p.path.name: {n: p.lake.version(n) for n in names} for p in (duck, daft)}
    assert duck.build().ok
    built = daft.build()  # a second build over the same inputs: one more commit per table, same rows
    assert built.ok
    assert seen == {"bronze.t": "files", "silver.t": "files"}
    for name in ("silver.t", "gold.by_flag"):
        model = built.model(name)
        assert model.detail == {"written_by": "daft", "engine": "daft"}, name
        expected = duck.lake.read(name)
        got = daft.lake.read(name)
        order = "id" if name == "silver.t" else "c_bool"
        assert got.schema == expected.schema, name
        assert got.sort_by(order).equals(expected.sort_by(order)), name
        checkpoint = daft.lake.checkpoint(name)
        assert checkpoint is not None and checkpoint.run_id == built.build_id
        assert checkpoint.position["inputs"] == {
            n: daft.lake.version(n) for n in ({"bronze.t"} if name == "silver.t" else {"silver.t"})
        }
    assert daft.lake.read("gold.by_flag").num_rows == 3
    # one commit per build, as the DuckDB path makes (Delta: one log entry; Iceberg: one catalog transaction
    # of a delete and an append snapshot)
    steps = {p.path.name: {n: p.lake.version(n) - versions[p.path.name][n] for n in names} for p in (duck, daft)}
    assert steps["daft"] == steps["duckdb"]
    if daft.lake.FORMAT == "delta":
        assert set(steps["daft"].values()) == {1}


def test_a_failed_commit_leaves_the_table_and_no_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The commit fails (a concurrent writer, a storage error): the table keeps its version and rows, and
    the files Daft wrote for it are removed."""
    project = Project(
        write_project(tmp_path / "p", "lake:\n  path: ./lakehouse\nengine: {type: local, transforms: daft}\n")
    )
    table = contract_table()
    project.lake.write("bronze.t", table.to_batches(), schema=table.schema, mode="overwrite")
    write_models(project, {"silver/t.sql": "select id, c_dec_10_2 from bronze.t"})
    assert project.build().ok
    before = project.lake.version("silver.t"), project.lake.read("silver.t")
    folder = Path(project.lake.uri("silver.t"))
    files_before = sorted(p.name for p in folder.glob("*.parquet"))

    attempted: list[Path] = []

    def refuse(lake: Any, name: str, files: list[Any], **kwargs: Any) -> None:
        attempted.extend(Path(f.path) for f in files)
        assert attempted and all(p.exists() for p in attempted)  # written by Daft before the commit
        raise LakeError("lake table silver.t: commit failed: simulated", transient=True)

    monkeypatch.setattr(type(project.lake), "commit_files", refuse)
    failed = project.build()
    assert not failed.ok and "simulated" in (failed.model("silver.t").error or "")
    assert (project.lake.version("silver.t"), project.lake.read("silver.t")) == before
    assert attempted and not any(p.exists() for p in attempted)  # the attempt's files are gone
    assert sorted(p.name for p in folder.glob("*.parquet")) == files_before


@pytest.mark.usefixtures("lake_format")
def test_engine_reads_the_pinned_version(tmp_path: Path) -> None:
    """A build reads the versions pinned when it started, from files too, whatever is committed meanwhile."""
    from lakeforge.engines.daft import DaftEngine

    project = Project(write_project(tmp_path / "p", "lake:\n  path: ./lakehouse\n"))
    first = pa.table({"id": pa.array([1, 2], pa.int64())})
    project.lake.write("bronze.t", first.to_batches(), schema=first.schema, mode="overwrite")
    pinned = project.lake.version("bronze.t")
    more = pa.table({"id": pa.array([3, 4, 5], pa.int64())})
    project.lake.write("bronze.t", more.to_batches(), schema=more.schema, mode="append")
    engine = DaftEngine()
    session = Session(project.lake, versions={"bronze.t": pinned}, engine=engine)
    try:
        assert session.query_scalar(sqlglot.parse_one("select sum(id) from bronze.t")) == 3
        assert engine.read_by_workers == {"bronze.t"}
    finally:
        session.close()
    assert project.lake.read("bronze.t").num_rows == 5


@pytest.mark.parametrize("kind", ["delta", "iceberg-sql"])
def test_on_s3_daft_reads_and_writes_the_files(
    kind: str, tmp_path: Path, s3_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lake on S3 (SeaweedFS): scan tasks and the sink open their own S3 filesystem from ``lake.storage``."""
    from tests.integration.test_s3 import lake_yaml

    seen = spy_reads(monkeypatch)
    lake = lake_yaml(kind, s3_env, tmp_path) + "\n"
    duck, daft = two_projects(tmp_path, lake)
    models = {"gold/g.sql": "select c_bool, count(*) as n, sum(c_dec_38_10) as total from bronze.t group by all"}
    table = contract_table()
    for project in (duck, daft):
        project.lake.write("bronze.t", table.to_batches(), schema=table.schema, mode="overwrite")
        write_models(project, models)
        result = project.build()
        assert result.ok, [(m.model, m.error) for m in result.models]
    assert seen == {"bronze.t": "files"}
    assert daft.build().model("gold.g").detail["written_by"] == "daft"
    got, expected = (p.lake.read("gold.g").sort_by("c_bool") for p in (daft, duck))
    assert got.schema == expected.schema and got.equals(expected)
    big = "1234567890123456789012345678.0123456789"
    assert got.column("total").to_pylist() == [D("-" + big), D(big), D(0)]  # false, true, NULL
    for project in (duck, daft):
        project.lake.close()


@pytest.fixture
def s3_env(seaweed: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("S3_KEY", seaweed.key)
    monkeypatch.setenv("S3_SECRET", seaweed.secret)
    return seaweed


@pytest.mark.usefixtures("lake_format")
def test_a_changed_model_replaces_the_table_schema(tmp_path: Path) -> None:
    """The model's SQL changes between builds (a column dropped, one retyped, one added): the workers' files
    replace the table with the new schema, as the DuckDB path's overwrite does."""
    duck, daft = two_projects(tmp_path, "lake:\n  path: ./lakehouse\n")
    table = contract_table()
    versions = [
        "select id, c_int32, c_varchar from bronze.t",
        "select id, cast(c_int32 as bigint) as c_int32, c_dec_10_2 as amount from bronze.t",
    ]
    for project in (duck, daft):
        project.lake.write("bronze.t", table.to_batches(), schema=table.schema, mode="overwrite")
        for sql in versions:
            write_models(project, {"silver/t.sql": sql})
            result = project.build()
            assert result.ok, [(m.model, m.error) for m in result.models]
    assert daft.build().model("silver.t").detail["written_by"] == "daft"
    got, expected = sorted_rows(daft, "silver.t"), sorted_rows(duck, "silver.t")
    assert got.schema == expected.schema and got.equals(expected)
    assert got.schema.names == ["id", "c_int32", "amount"] and got.schema.field("c_int32").type == pa.int64()


def test_a_partitioned_delta_table_reaches_daft_through_the_driver(tmp_path: Path) -> None:
    """Partition values live in Delta's paths, not in the files: such a table is not listed as files and Daft
    gets it as Arrow from the driver, with the same rows."""
    from lakeforge.engines.daft import DaftEngine

    project = Project(write_project(tmp_path / "p", "lake:\n  path: ./lakehouse\n"))
    table = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "grp": ["a", "b", "a"]})
    project.lake.write("bronze.p", table.to_batches(), schema=table.schema, mode="overwrite", partition_by=["grp"])
    snap = project.lake.snapshot("bronze.p")
    assert project.lake.data_files("bronze.p", snap.version) is None
    engine = DaftEngine()
    engine.register("bronze.p", snap.dataset, files=partial(project.lake.data_files, "bronze.p", snap.version))
    got = engine.query("select grp, count(*) as n from bronze.p group by grp").read_all().sort_by("grp")
    assert got.to_pylist() == [{"grp": "a", "n": 2}, {"grp": "b", "n": 1}]
    assert engine.read_by_workers == set()


@pytest.mark.usefixtures("lake_format")
def test_quarantine_runs_on_daft_over_the_staged_files(tmp_path: Path) -> None:
    """Quarantine on Daft: the result is staged as files, the checks run over them on the engine, the failing
    rows go to the quarantine table and the kept rows are committed; the same tables, check results and
    types as DuckDB's. A ``unique`` quarantine (a window Daft lacks) keeps the DuckDB path, also equal."""
    duck, daft = two_projects(tmp_path, "lake:\n  path: ./lakehouse\n")
    header = (
        "/* lakeforge\nchecks:\n  - {type: not_null, column: c_varchar, on_fail: quarantine}\n"
        "  - {type: accepted_values, column: c_int16, values: [-32768, 0], on_fail: quarantine}\n"
        "  - {type: expression, name: positive, expression: c_dec_10_2 >= 0, on_fail: quarantine}\n"
    )
    models = {
        "silver/q.sql": header + "*/\nselect * from bronze.t",
        "silver/u.sql": "/* lakeforge\nchecks:\n  - {type: unique, column: grp, on_fail: quarantine}\n*/\n"
        "select id, case when id in (2, 3) then 0 else id end as grp, c_dec_10_2 from bronze.t",
    }
    table = contract_table()
    results = {}
    for project in (duck, daft):
        project.lake.write("bronze.t", table.to_batches(), schema=table.schema, mode="overwrite")
        write_models(project, models)
        results[project.path.name] = project.build()
        assert results[project.path.name].ok, [(m.model, m.error) for m in results[project.path.name].models]
    built = results["daft"]
    assert built.model("silver.q").detail == {"written_by": "daft", "engine": "daft"}
    assert "written_by" not in built.model("silver.u").detail  # unique: computed into the driver's DuckDB

    def checks(name: str) -> list[tuple[str, str, int, int]]:
        return [(c.check, c.status, c.failing_rows, c.quarantined_rows) for c in results[name].checks]

    assert checks("daft") == checks("duckdb")
    assert [c[1:] for c in checks("daft") if c[0].startswith(("not_null", "accepted", "positive"))] == [
        ("quarantined", 1, 1),  # row 4: c_varchar NULL
        ("quarantined", 1, 1),  # row 2: c_int16 32767
        ("quarantined", 1, 1),  # row 1: c_dec_10_2 < 0
    ]
    assert built.model("silver.q").rows == 1 and built.model("silver.u").rows == 2
    for name in ("silver.q", "silver.u", "quarantine.silver_q", "quarantine.silver_u"):
        got, expected = (p.lake.read(name) for p in (daft, duck))
        if name.startswith("quarantine."):  # the build's own time and id differ
            got, expected = (t.drop_columns(["_lf_quarantined_at", "_lf_build_id"]) for t in (got, expected))
        assert got.schema == expected.schema, name
        assert got.sort_by("id").equals(expected.sort_by("id")), name
    stamped = daft.lake.read("quarantine.silver_q")
    assert stamped.schema.field("_lf_quarantined_at").type == pa.timestamp("us", tz="UTC")
    assert set(stamped.column("_lf_build_id").to_pylist()) == {built.build_id}
