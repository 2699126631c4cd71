"""SCD2 on Daft with the workers reading and writing the files (docs/scale-out.md, "Transforms on Daft"): the
model's result is staged as files, the diff runs on Daft over them and the dimension's files, the workers write
the new dimension and the driver commits it once with the checkpoint. The driver's DuckDB never holds the
result (``Session.compute`` and ``Session.materialise`` are made to fail here). Local Daft runner; the same
tasks run on Ray workers in tests/scale/test_daft_ray.py."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lakeforge import Project
from lakeforge.errors import LakeError
from lakeforge.lake.files import fs_path
from lakeforge.transform.session import Session
from tests.conftest import write_project

pytest.importorskip("daft")
D = decimal.Decimal
HEADER = (
    "/* lakeforge\nmaterialized: scd2\nunique_key: id\nsurrogate_key: k\ninitial_valid_from: 1900-01-01\n{extra}*/\n"
)
STATES: list[dict[str, list[Any]]] = [
    {"id": [1, 2, 3, 5], "name": ["a", "b", None, "e"], "limit_": [D("1.50"), None, D("3.00"), D("5")]},
    {"id": [1, 2, 4, 5], "name": ["a", "B", "d", "e"], "limit_": [D("1.50"), None, D("4.25"), D("5")]},
    {"id": [1, 2, 4, 5], "name": ["a", "B", "d", "e"], "limit_": [D("1.50"), None, D("4.25"), D("5")]},  # same
    {"id": [1, 2, 3, 4], "name": ["a", "B", None, "d"], "limit_": [D("1.50"), D("2.00"), D("3.00"), D("4.25")]},
]


def no_driver_result(monkeypatch: pytest.MonkeyPatch) -> None:
    """The driver's DuckDB must not compute the model or the diff."""

    def refuse(self: Session, *args: Any) -> int:
        raise AssertionError("the SCD2 result reached the driver's DuckDB")

    monkeypatch.setattr(Session, "compute", refuse)
    monkeypatch.setattr(Session, "materialise", refuse)


def write_state(project: Project, state: dict[str, list[Any]]) -> None:
    """The source table as one file per row (a multi-file input for the scan tasks)."""
    data = pa.table({**state, "limit_": pa.array(state["limit_"], pa.decimal128(10, 2))})
    project.lake.write("bronze.people", iter(()), schema=data.schema, mode="overwrite")
    for batch in data.to_batches(max_chunksize=1):
        project.lake.write("bronze.people", iter([batch]), schema=data.schema, mode="append")


def by_build(table: pa.Table) -> list[dict[str, object]]:
    """Rows by surrogate key, ``valid_from``/``valid_to`` as the index of the build that set them."""
    times: list[dt.datetime] = sorted(set(table.column("valid_from").to_pylist()))
    out = []
    for row in table.to_pylist():
        row["valid_from"] = times.index(row["valid_from"])
        row["valid_to"] = None if row["valid_to"] is None else times.index(row["valid_to"])
        out.append(row)
    return sorted(out, key=lambda r: r["k"])  # type: ignore[arg-type,return-value]


def projects(tmp_path: Path) -> tuple[Project, Project]:
    lake = "lake:\n  path: ./lakehouse\n"
    daft = "engine: {type: local, transforms: daft}\n"
    return Project(write_project(tmp_path / "duckdb", lake)), Project(write_project(tmp_path / "daft", lake + daft))


def model(project: Project, sql: str, extra: str = "") -> None:
    (project.path / "models" / "gold").mkdir(parents=True, exist_ok=True)
    (project.path / "models" / "gold" / "people.sql").write_text(HEADER.format(extra=extra) + sql)


def staged_files(project: Project, name: str, build_id: str) -> tuple[set[str], set[str]]:
    """(files of the build in the table's folder, files of the build the table's version names)."""
    files = project.lake.data_files(name, project.lake.version(name))
    assert files is not None
    named = {Path(fs_path(p)).name for p in files.paths if Path(fs_path(p)).name.startswith(f"lf-{build_id}")}
    folder = Path(fs_path(files.paths[0])).parent
    return {p.name for p in folder.glob(f"lf-{build_id}*")}, named


@pytest.mark.usefixtures("lake_format")
def test_scd2_written_by_the_workers_equals_duckdb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Four builds (keys changed, gone, back, new; one build with no change; a column added by the model in the
    last, not compared as it is not in the table yet) give the DuckDB path's dimension row for row and type for
    type; each build with a change is one commit carrying the checkpoint, whose files are the only ones the
    build leaves in the table's folder."""
    duck, on_daft = projects(tmp_path)
    sqls = ["select id, name, limit_ from bronze.people"] * 3 + [
        "select id, name, limit_, id * 10 as tier from bronze.people"
    ]
    results: dict[str, list[Any]] = {"duckdb": [], "daft": []}
    for project in (duck, on_daft):
        if project is on_daft:
            no_driver_result(monkeypatch)
        for state, sql in zip(STATES, sqls, strict=True):
            model(project, sql)
            write_state(project, state)
            before = project.lake.version("gold.people") if project.lake.exists("gold.people") else None
            built = project.build()
            assert built.ok, [(m.model, m.error) for m in built.models]
            results[project.path.name].append((built, before, project.lake.version("gold.people")))
    expected, got = duck.lake.read("gold.people"), on_daft.lake.read("gold.people")
    assert got.schema == expected.schema
    assert got.schema.field("k").type == pa.int64() and got.schema.field("tier").type == pa.int64()
    assert got.schema.field("valid_to").type == pa.timestamp("us", tz="UTC")
    assert by_build(got) == by_build(expected)
    assert [(r["id"], r["valid_from"], r["valid_to"], r["is_current"], r["tier"]) for r in by_build(got)] == [
        (1, 0, None, True, None),  # unchanged all along: the column new in the last build is NULL
        (2, 0, 1, False, None),
        (3, 0, 1, False, None),
        (5, 0, 2, False, None),  # gone in the last build
        (2, 1, 2, False, None),
        (4, 1, None, True, None),
        (2, 2, None, True, 20),  # changed, with the new column
        (3, 2, None, True, 30),  # back
    ]
    for (d_built, _, _), (built, before, after) in zip(results["duckdb"], results["daft"], strict=True):
        result, d_result = built.model("gold.people"), d_built.model("gold.people")
        assert (result.status, result.rows) == (d_result.status, d_result.rows)
        if result.status == "unchanged":
            assert after == before and result.detail.get("opened") == 0
            continue
        assert result.detail["written_by"] == "daft" and result.detail["engine"] == "daft"
        assert {k: v for k, v in result.detail.items() if k in ("opened", "closed")} == d_result.detail
        if on_daft.lake.FORMAT == "delta":
            assert before is None or after == before + 1  # one commit per build
        checkpoint = on_daft.lake.checkpoint("gold.people")
        assert checkpoint is not None and checkpoint.mode == "scd2"
    last = results["daft"][-1][0]
    assert on_daft.lake.checkpoint("gold.people").run_id == last.build_id  # type: ignore[union-attr]
    in_folder, named = staged_files(on_daft, "gold.people", last.build_id)
    assert named and in_folder == named  # the staged result's files are gone


def test_scd2_quarantine_on_daft_over_the_staged_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A not_null quarantine on an SCD2 model runs on Daft over the staged result: the same dimension, the same
    quarantine table and check results as DuckDB's."""
    duck, on_daft = projects(tmp_path)
    extra = "checks:\n  - {type: not_null, column: name, on_fail: quarantine}\n"
    built = {}
    for project in (duck, on_daft):
        if project is on_daft:
            no_driver_result(monkeypatch)
        model(project, "select id, name, limit_ from bronze.people", extra)
        for state in STATES[:2]:
            write_state(project, state)
            built[project.path.name] = project.build()
            assert built[project.path.name].ok, [(m.model, m.error) for m in built[project.path.name].models]
    assert built["daft"].model("gold.people").detail["written_by"] == "daft"
    checks = {n: [(c.check, c.status, c.failing_rows, c.quarantined_rows) for c in b.checks] for n, b in built.items()}
    assert checks["daft"] == checks["duckdb"]
    assert by_build(on_daft.lake.read("gold.people")) == by_build(duck.lake.read("gold.people"))
    assert 3 not in on_daft.lake.read("gold.people").column("id").to_pylist()  # its name is NULL: quarantined
    marks = ["_lf_quarantined_at", "_lf_build_id"]
    got, expected = (p.lake.read("quarantine.gold_people").drop_columns(marks).sort_by("id") for p in (on_daft, duck))
    assert got.schema == expected.schema and got.equals(expected) and got.num_rows == 1


def test_a_failed_scd2_commit_leaves_the_dimension_and_no_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commit of the new dimension fails: the table keeps its version and rows, and every file the build
    wrote (the staged result, the new dimension) is removed."""
    _, project = projects(tmp_path)
    model(project, "select id, name, limit_ from bronze.people")
    write_state(project, STATES[0])
    assert project.build().ok
    before = project.lake.version("gold.people"), project.lake.read("gold.people")
    folder = Path(project.lake.uri("gold.people"))
    files_before = sorted(p.name for p in folder.glob("*.parquet"))
    attempted: list[Path] = []

    def refuse(lake: Any, name: str, files: list[Any], **kwargs: Any) -> None:
        attempted.extend(Path(f.path) for f in files)
        raise LakeError("lake table gold.people: commit failed: simulated", transient=True)

    monkeypatch.setattr(type(project.lake), "commit_files", refuse)
    write_state(project, STATES[1])
    failed = project.build()
    assert not failed.ok and "simulated" in (failed.model("gold.people").error or "")
    assert (project.lake.version("gold.people"), project.lake.read("gold.people")) == before
    assert attempted and not any(p.exists() for p in attempted)
    assert sorted(p.name for p in folder.glob("*.parquet")) == files_before


def test_a_null_business_key_fails_on_daft_as_on_duckdb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The business-key checks run on Daft over the staged result, with DuckDB's messages."""
    errors = []
    for project in projects(tmp_path):
        model(project, "select case when id = 2 then null else id end as id, name from bronze.people")
        write_state(project, STATES[0])
        failed = project.build()
        assert not failed.ok
        errors.append((failed.model("gold.people").error or "").replace(str(project.path), ""))
    assert errors[0] == errors[1] and "1 row(s) have a NULL business key" in errors[0]


@pytest.mark.usefixtures("lake_format")
def test_incremental_quarantine_on_daft_over_staged_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An incremental model with quarantine checks: its narrowed result is staged as files, the checks run on
    Daft over them, and the MERGE reads the kept rows from the files; the model, the quarantine table and
    the check results equal DuckDB's, and no staged file stays."""
    duck, on_daft = projects(tmp_path)
    text = (
        "/* lakeforge\nmaterialized: incremental\nunique_key: id\nchecks:\n"
        "  - {type: not_null, column: name, on_fail: quarantine}\n"
        "  - {type: expression, name: known_grp, expression: grp <= 2, on_fail: quarantine}\n*/\n"
        "select id, name, grp, amount from bronze.events"
    )
    stamp = [dt.datetime(2024, 1, d, tzinfo=dt.UTC) for d in (1, 2)]
    loads = [
        {"id": [1, 2, 3], "name": ["a", None, "c"], "grp": [1, 1, 2], "amount": [D("1.10"), D("2.20"), None]},
        {"id": [3, 4, 5], "name": ["C", "d", None], "grp": [2, 9, 1], "amount": [D("3.30"), D("4.40"), D("5")]},
    ]
    built = {}
    for project in (duck, on_daft):
        (project.path / "models" / "silver").mkdir(parents=True, exist_ok=True)
        (project.path / "models" / "silver" / "events.sql").write_text(text)
        for i, load in enumerate(loads):
            data = pa.table(
                {
                    **load,
                    "grp": pa.array(load["grp"], pa.int64()),
                    "amount": pa.array(load["amount"], pa.decimal128(10, 2)),
                    "_lf_extracted_at": pa.array([stamp[i]] * 3, pa.timestamp("us", tz="UTC")),
                }
            )
            project.lake.write("bronze.events", data.to_batches(), schema=data.schema, mode="append")
            if i == 1 and project is on_daft:
                no_driver_result(monkeypatch)  # the second build: narrowed, quarantined, merged on the workers' rows
            built[project.path.name] = project.build()
            assert built[project.path.name].ok, [(m.model, m.error) for m in built[project.path.name].models]
    result = built["daft"].model("silver.events")
    assert result.detail["streamed_from"] == "daft" and result.rows == built["duckdb"].model("silver.events").rows == 1
    checks = {n: [(c.check, c.status, c.failing_rows, c.quarantined_rows) for c in b.checks] for n, b in built.items()}
    assert checks["daft"] == checks["duckdb"]
    assert [c[2] for c in checks["daft"]] == [1, 1]  # id 5: NULL name; id 4: group 9
    got, expected = (p.lake.read("silver.events").sort_by("id") for p in (on_daft, duck))
    assert got.schema == expected.schema and got.equals(expected)
    assert got.column("id").to_pylist() == [1, 3] and got.column("name").to_pylist() == ["a", "C"]
    marks = ["_lf_quarantined_at", "_lf_build_id"]
    q = [p.lake.read("quarantine.silver_events").drop_columns(marks).sort_by("id") for p in (on_daft, duck)]
    assert q[0].schema == q[1].schema and q[0].equals(q[1]) and q[0].column("id").to_pylist() == [2, 4, 5]
    files = on_daft.lake.data_files("silver.events", on_daft.lake.version("silver.events"))
    assert files is not None
    folder = Path(fs_path(files.paths[0])).parent
    assert not list(folder.glob(f"lf-{built['daft'].build_id}*"))  # the staged result is gone


def test_a_relationships_quarantine_on_daft_runs_on_the_driver(tmp_path: Path) -> None:
    """Daft 0.7.26 cannot plan a relationships check's ``NOT IN (subquery)`` over a scan: such a quarantine runs
    on the driver's DuckDB (as ``unique`` does), with DuckDB's results, instead of failing the check."""
    duck, on_daft = projects(tmp_path)
    text = (
        "/* lakeforge\nchecks:\n"
        "  - {type: relationships, column: grp, to: bronze.groups, field: grp, on_fail: quarantine}\n*/\n"
        "select id, grp from bronze.events"
    )
    events = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "grp": pa.array([1, 9, None], pa.int64())})
    groups = pa.table({"grp": pa.array([1, 2], pa.int64())})
    built = {}
    for project in (duck, on_daft):
        (project.path / "models" / "silver").mkdir(parents=True, exist_ok=True)
        (project.path / "models" / "silver" / "events.sql").write_text(text)
        project.lake.write("bronze.groups", groups.to_batches(), schema=groups.schema, mode="overwrite")
        project.lake.write("bronze.events", events.to_batches(), schema=events.schema, mode="overwrite")
        built[project.path.name] = project.build()
        assert built[project.path.name].ok, [(m.model, m.error) for m in built[project.path.name].models]
    assert "written_by" not in built["daft"].model("silver.events").detail
    checks = {n: [(c.check, c.status, c.failing_rows, c.quarantined_rows) for c in b.checks] for n, b in built.items()}
    assert checks["daft"] == checks["duckdb"] and checks["daft"][0][1:] == ("quarantined", 1, 1)
    got, expected = (p.lake.read("silver.events").sort_by("id") for p in (on_daft, duck))
    assert got.equals(expected) and got.column("id").to_pylist() == [1, 3]


@pytest.mark.usefixtures("lake_format")
def test_a_failed_first_build_leaves_a_first_build_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first build's commit fails (staging may have created the table empty, as Iceberg's does): the next
    build is still a first build, every version valid from ``initial_valid_from``, as on DuckDB."""
    _, project = projects(tmp_path)
    model(project, "select id, name, limit_ from bronze.people")
    write_state(project, STATES[0])
    lake_type = type(project.lake)

    def refuse(lake: Any, name: str, files: list[Any], **kwargs: Any) -> None:
        raise LakeError(f"lake table {name}: commit failed: simulated", transient=True)

    with monkeypatch.context() as patched:
        patched.setattr(lake_type, "commit_files", refuse)
        assert not project.build().ok
    built = project.build()
    assert built.ok and built.model("gold.people").detail["written_by"] == "daft"
    dim = project.lake.read("gold.people")
    assert dim.num_rows == 4 and set(dim.column("valid_from").to_pylist()) == {dt.datetime(1900, 1, 1, tzinfo=dt.UTC)}
    assert sorted(dim.column("k").to_pylist()) == [1, 2, 3, 4]
