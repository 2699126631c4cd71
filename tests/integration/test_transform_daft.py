"""The demo's models built on Daft (``engine: {type: local, transforms: daft}``) equal the same models built
on DuckDB: all 17 run on Daft (none falls back) and every table has the same rows, values and Arrow types as
DuckDB's. A model Daft 0.7 cannot run even after lakeforge's rewrites fails naming the model's file and Daft's
reason, or, with ``engine.fallback: duckdb``, runs on DuckDB and says so (docs/transforms.md, "Engines")."""

from __future__ import annotations

import datetime as dt
import decimal
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from lakeforge import Project
from lakeforge.transform.build import BuildResult
from tests.conftest import write_project

pytest.importorskip("daft")
LAKEFORGE = str(Path(sys.executable).parent / "lakeforge")


def sh(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def rows(project: Project, name: str) -> pa.Table:
    table = project.lake.read(name)
    return table.sort_by([(n, "ascending") for n in table.column_names])


def test_demo_on_daft_equals_duckdb(demo: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    folder, env = demo
    sh([sys.executable, str(folder / "setup_sources.py")], env)
    sh([LAKEFORGE, "run", "-p", str(folder / "project")], env)
    on_daft_folder = folder / "project_daft"
    shutil.copytree(folder / "project", on_daft_folder)  # the same bronze tables
    config = on_daft_folder / "lakeforge.yml"
    plain = config.read_text()
    config.write_text(plain + "engine: {type: local, transforms: daft, fallback: duckdb}\n")
    for key in ("LAKEFORGE_DEMO_CRM_DB", "LAKEFORGE_DEMO_SHOP_DB"):
        monkeypatch.setenv(key, env[key])

    on_duckdb = Project(folder / "project")
    built = on_duckdb.build()
    assert built.ok, [(m.model, m.error) for m in built.models if m.status != "success"]
    models = [m.model for m in built.models]
    assert len(models) == 17

    on_daft = Project(on_daft_folder)
    first = on_daft.build()
    assert first.ok, [(m.model, m.error) for m in first.models if m.status != "success"]
    # every model ran on Daft (detail.engine): none fell back to DuckDB, which the fallback would allow and
    # report with Daft's reason (dim_date, fact_order_line, features_customer and agg_customer_value are
    # written in SQL both engines run, docs/transforms.md)
    fell_back = {m.model: m.detail.get("fallback") for m in first.models if m.detail.get("engine") != "daft"}
    assert fell_back == {}

    # checks on the stored tables ran on Daft (row checks, row_count, the sql check), with DuckDB's results
    def checks(result: BuildResult) -> dict[tuple[str, str], tuple[str, int, str]]:
        return {(c.model, c.check): (c.status, c.failing_rows, c.message) for c in result.checks}

    assert len(checks(first)) == len(checks(built)) > 27
    assert checks(first) == checks(built)
    assert checks(first)[("gold.dim_customer", "one_current_version")] == ("pass", 0, "")

    for name in models:  # all 17 equal DuckDB's, row for row, with the same Arrow types (decimal scales)
        expected, got = rows(on_duckdb, name), rows(on_daft, name)
        assert got.schema == expected.schema, name
        assert got.num_rows == expected.num_rows > 0, name
        assert got.equals(expected), name


@pytest.mark.usefixtures("lake_format")
def test_incremental_and_view_models_on_daft_equal_duckdb(tmp_path: Path) -> None:
    """An incremental model reads only rows past its watermark on Daft too (the input narrowed there), a view
    model feeds a table model, ``getvariable('as_of')`` is the build's; both lakes end equal (Delta, Iceberg)."""
    lake = "lake:\n  path: ./lakehouse\n"
    projects = [
        Project(write_project(tmp_path / "duckdb", lake)),
        Project(write_project(tmp_path / "daft", lake + "engine: {type: local, transforms: daft}\n")),
    ]
    models = {
        "silver/events.sql": "/* lakeforge\nmaterialized: incremental\nunique_key: id\n*/\n"
        "select id, trim(name) as name, amount from bronze.events "
        "qualify row_number() over (partition by id order by _lf_extracted_at desc) = 1",
        "silver/big.sql": "/* lakeforge\nmaterialized: view\n*/\nselect * from silver.events where amount > 1",
        "gold/totals.sql": "select count(*) as n, sum(amount) as total, getvariable('as_of')::date as day "
        "from silver.big",
    }

    def put(rows: list[dict[str, object]], stamp: dt.datetime, mode: str) -> None:
        table = pa.table(
            {
                "id": pa.array([r["id"] for r in rows], pa.int64()),
                "name": [r["name"] for r in rows],
                "amount": pa.array([r["amount"] for r in rows], pa.decimal128(10, 2)),
                "_lf_extracted_at": pa.array([stamp] * len(rows), pa.timestamp("us", tz="UTC")),
            }
        )
        for project in projects:
            project.lake.write("bronze.events", table.to_batches(), schema=table.schema, mode=mode)  # type: ignore[arg-type]

    for project in projects:
        for name, text in models.items():
            (project.path / "models" / name).parent.mkdir(parents=True, exist_ok=True)
            (project.path / "models" / name).write_text(text)
    d = decimal.Decimal
    first = [{"id": i, "name": f" n{i} ", "amount": d(f"{i}.25")} for i in range(5)]
    put(first, dt.datetime(2024, 1, 1, tzinfo=dt.UTC), "overwrite")
    for project in projects:
        result = project.build(as_of=dt.datetime(2024, 6, 1, tzinfo=dt.UTC))
        assert result.ok, [(m.model, m.error) for m in result.models]
        assert result.model("silver.events").rows == 5
    put(
        [{"id": 1, "name": "changed", "amount": d("9.99")}, {"id": 7, "name": None, "amount": None}],
        dt.datetime(2024, 1, 2, tzinfo=dt.UTC),
        "append",
    )
    for project in projects:
        result = project.build(as_of=dt.datetime(2024, 6, 1, tzinfo=dt.UTC))
        assert result.ok, [(m.model, m.error) for m in result.models]
        assert result.model("silver.events").rows == 2  # only the new rows: the input was narrowed
    # on Daft the MERGE read the model's rows as Daft computed them (not via the driver's DuckDB)
    assert result.model("silver.events").detail["streamed_from"] == "daft"
    assert result.model("silver.events").detail["num_target_rows_inserted"] == 1
    duck, daft_ = projects
    for name in ("silver.events", "gold.totals"):
        assert rows(daft_, name).equals(rows(duck, name)), name
    assert rows(daft_, "gold.totals").to_pylist() == [{"n": 4, "total": d("19.74"), "day": dt.date(2024, 6, 1)}]
    events = rows(daft_, "silver.events")
    assert events.schema.field("amount").type == pa.decimal128(10, 2)
    assert events.to_pylist()[1] == {"id": 1, "name": "changed", "amount": d("9.99")}
    assert events.to_pylist()[-1] == {"id": 7, "name": None, "amount": None}


def test_failing_checks_on_daft_count_the_rows_duckdb_counts(tmp_path: Path) -> None:
    lake = "lake:\n  path: ./lakehouse\n"
    projects = [
        Project(write_project(tmp_path / "duckdb", lake)),
        Project(write_project(tmp_path / "daft", lake + "engine: {type: local, transforms: daft}\n")),
    ]
    table = pa.table(
        {"id": [1, 1, 1, 2, 3, None], "ref": [10, 10, 11, 12, None, 10], "s": ["a", "b", "a", "z", None, "a"]}
    )
    refs = pa.table({"ref": [10, 12]})
    text = """/* lakeforge
checks:
  - {type: unique, column: id, severity: warn}
  - {type: unique, column: [id, s], severity: warn}
  - {type: not_null, column: [id, ref], severity: warn}
  - {type: accepted_values, column: s, values: [a, b], severity: warn}
  - {type: relationships, column: ref, to: bronze.refs, severity: warn}
  - {type: expression, name: small, expression: ref < 12, severity: warn}
  - {type: row_count, compare_to: bronze.refs, severity: warn}
  - {type: sql, name: many_a, sql: "select s from {this} where s = 'a'", severity: warn}
*/
select * from bronze.t"""
    results = []
    for project in projects:
        project.lake.write("bronze.t", table.to_batches(), schema=table.schema, mode="overwrite")
        project.lake.write("bronze.refs", refs.to_batches(), schema=refs.schema, mode="overwrite")
        (project.path / "models" / "silver").mkdir(parents=True)
        (project.path / "models" / "silver" / "t.sql").write_text(text)
        built = project.build()
        assert built.ok
        results.append({c.check: (c.status, c.failing_rows, c.message) for c in built.checks})
    assert results[1] == results[0]
    assert {k: v[:2] for k, v in results[1].items()} == {
        "unique_id": ("warn", 3),
        "unique_id_s": ("warn", 2),
        "not_null_id_ref": ("warn", 2),
        "accepted_values_s": ("warn", 1),
        "relationships_ref_bronze_refs": ("warn", 1),
        "small": ("warn", 2),
        "row_count_bronze_refs": ("warn", 4),
        "many_a": ("warn", 3),
    }


def test_scd2_snapshots_on_daft_equal_duckdb(tmp_path: Path) -> None:
    """An SCD2 model on Daft: the model, its diff with the current versions (``__lf_open``/``__lf_close``) and
    the versions merged are generated by lakeforge as sqlglot trees and run on Daft; the dimension equals the
    one DuckDB builds (the build times differ, so ``valid_from``/``valid_to`` are compared by which build set
    them)."""
    lake = "lake:\n  path: ./lakehouse\n"
    projects = [
        Project(write_project(tmp_path / "duckdb", lake)),
        Project(write_project(tmp_path / "daft", lake + "engine: {type: local, transforms: daft}\n")),
    ]
    text = (
        "/* lakeforge\nmaterialized: scd2\nunique_key: id\nsurrogate_key: k\ninitial_valid_from: 1900-01-01\n*/\n"
        "select id, name, limit_ from bronze.people"
    )
    d = decimal.Decimal
    states = [
        {"id": [1, 2, 3], "name": ["a", "b", None], "limit_": [d("1.50"), None, d("3.00")]},
        {"id": [1, 2, 4], "name": ["a", "B", "d"], "limit_": [d("1.50"), None, d("4.25")]},  # 2 changed, 3 gone
        {"id": [1, 2, 3, 4], "name": ["a", "B", None, "d"], "limit_": [d("1.50"), d("2.00"), d("3.00"), d("4.25")]},
    ]
    tables = []
    for project in projects:
        (project.path / "models" / "gold").mkdir(parents=True)
        (project.path / "models" / "gold" / "people.sql").write_text(text)
        for state in states:
            data = pa.table({**state, "limit_": pa.array(state["limit_"], pa.decimal128(10, 2))})
            project.lake.write("bronze.people", data.to_batches(), schema=data.schema, mode="overwrite")
            built = project.build()
            assert built.ok, [(m.model, m.error) for m in built.models]
        table = rows(project, "gold.people")
        times = sorted({t for t in table.column("valid_from").to_pylist()})
        tables.append((table, times))
    (duck, duck_times), (on_daft, daft_times) = tables
    assert on_daft.schema == duck.schema
    assert on_daft.schema.field("k").type == pa.int64()
    assert on_daft.schema.field("valid_to").type == pa.timestamp("us", tz="UTC")

    def by_build(table: pa.Table, times: list[dt.datetime]) -> list[dict[str, object]]:
        out = []
        for row in table.to_pylist():
            row["valid_from"] = times.index(row["valid_from"])
            row["valid_to"] = None if row["valid_to"] is None else times.index(row["valid_to"])
            out.append(row)
        return sorted(out, key=lambda r: r["k"])  # type: ignore[arg-type,return-value]

    expected = by_build(duck, duck_times)
    assert by_build(on_daft, daft_times) == expected
    assert len(expected) == 7  # 3 first versions, 2 opened by the second build, 2 by the third
    assert [(r["id"], r["valid_from"], r["valid_to"], r["is_current"]) for r in expected] == [
        (1, 0, None, True),
        (2, 0, 1, False),
        (3, 0, 1, False),
        (2, 1, 2, False),
        (4, 1, None, True),
        (2, 2, None, True),
        (3, 2, None, True),
    ]


def test_fallback_runs_what_daft_cannot_on_duckdb_and_says_so(tmp_path: Path) -> None:
    """A view and a table model Daft cannot run: with ``fallback: duckdb`` they run on DuckDB (the view's rows
    handed to Daft for the model downstream, which runs on Daft), each reported; without it they fail."""
    lake = "lake:\n  path: ./lakehouse\n"
    models = {
        "silver/days.sql": "/* lakeforge\nmaterialized: view\n*/\n"
        "select unnest(generate_series(1, n)) as day from bronze.n",
        "gold/total.sql": "select count(*) as days, sum(day) as total from silver.days",
        "gold/series.sql": "select unnest(generate_series(1, n)) as i from bronze.n",
    }
    outcomes = {}
    for fallback in ("", ", fallback: duckdb"):
        project = Project(
            write_project(
                tmp_path / f"p{len(fallback)}", lake + f"engine: {{type: local, transforms: daft{fallback}}}\n"
            )
        )
        data = pa.table({"n": pa.array([4], pa.int64())})
        project.lake.write("bronze.n", data.to_batches(), schema=data.schema, mode="overwrite")
        for name, text in models.items():
            (project.path / "models" / name).parent.mkdir(parents=True, exist_ok=True)
            (project.path / "models" / name).write_text(text)
        outcomes[fallback] = (project, project.build())
    strict = outcomes[""][1]
    reason = "Daft: Unsupported SQL: 'Function `generate_series` not found'"
    days_sql = outcomes[""][0].path / "models" / "silver" / "days.sql"
    assert (strict.model("silver.days").status, strict.model("silver.days").error) == (
        "failed",
        f"model silver.days failed ({days_sql}) on daft: {reason}",
    )
    assert strict.model("gold.total").status == "skipped" and strict.model("gold.series").status == "failed"
    project, lenient = outcomes[", fallback: duckdb"]
    assert lenient.ok
    assert {m.model: m.detail.get("engine") for m in lenient.models} == {
        "silver.days": "duckdb",
        "gold.series": "duckdb",
        "gold.total": "daft",  # ran on Daft over the view's rows
    }
    assert lenient.model("gold.series").detail["fallback"] == reason
    assert project.lake.read("gold.total").to_pylist() == [{"days": 4, "total": 10}]
    assert project.lake.read("gold.series").column("i").to_pylist() == [1, 2, 3, 4]
