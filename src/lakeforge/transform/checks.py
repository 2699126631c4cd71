"""Data-quality checks: declared per model, run by every build, results kept per build.

Row checks (``not_null``, ``unique``, ``accepted_values``, ``relationships``, ``expression``) name failing
rows. With ``on_fail: quarantine`` they run on the model's result before it is written: failing rows go to
``quarantine.<layer>_<table>`` with the check's name and the time, the good rows are written. Every other
check runs on the model's table after it is written. A failing check of severity ``error`` fails the model
(its downstream models are skipped); ``warn`` only reports.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lakeforge.config.models import parse_lookback
from lakeforge.transform import config as cfg
from lakeforge.transform import sqlgen
from lakeforge.transform.session import RESULT, Session, quoted

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlglot import exp

    from lakeforge.transform.materialize import BuildContext
    from lakeforge.transform.model import Model

CountSource = Callable[[str, str | None], int]
"""Counts rows of a source table ``<source>.<table>`` (with an optional condition) in the source database."""


@dataclass
class CheckResult:
    build_id: str
    model: str
    check: str
    type: str
    severity: str
    status: str
    """pass, fail (severity error), warn (severity warn), quarantined, or error (the check itself failed)"""
    failing_rows: int
    quarantined_rows: int
    message: str
    checked_at: dt.datetime

    @property
    def blocking(self) -> bool:
        return self.status in ("fail", "error")


def quarantine_table(model: Model) -> str:
    return f"quarantine.{model.layer}_{model.table}"


def name_of(check: cfg.CheckBase) -> str:
    return check.name or check.default_name()


def failing_rows(check: cfg.CheckBase, source: str, *, failing: bool = True) -> exp.Select:
    """The rows of ``source`` a row check fails (``failing=False``: the rows it keeps). ``unique`` names its
    rows with a window (``QUALIFY``): it runs on the build's DuckDB (quarantine), never on another engine."""
    from sqlglot import exp

    qualify, cond = _condition(check)
    if not failing:
        cond = exp.not_(exp.Coalesce(this=exp.paren(cond), expressions=[exp.false()]))
    tree = sqlgen.select_all(source)
    return tree.qualify(cond) if qualify else tree.where(cond)


def _condition(check: cfg.CheckBase) -> tuple[bool, exp.Expr]:
    """(is a window condition, the condition a failing row meets)."""
    from sqlglot import exp

    col = sqlgen.col
    if isinstance(check, cfg.NotNull):
        return False, sqlgen.any_of([sqlgen.is_null(col(c)) for c in check.column])
    if isinstance(check, cfg.Unique):
        window = exp.Window(this=exp.Count(this=exp.Star()), partition_by=[col(c) for c in check.column])
        duplicated = exp.GT(this=window, expression=exp.Literal.number(1))
        return True, sqlgen.all_of([*(sqlgen.not_null(col(c)) for c in check.column), duplicated])
    if isinstance(check, cfg.AcceptedValues):
        column = col(check.column)
        outside = exp.not_(exp.In(this=column.copy(), expressions=[sqlgen.value(v) for v in check.values]))
        return False, sqlgen.all_of([sqlgen.not_null(column), outside])
    if isinstance(check, cfg.Relationships):
        column, other = col(check.column), col(check.field or check.column)
        known = exp.select(other).from_(sqlgen.table(check.to)).where(sqlgen.not_null(other.copy()))
        missing = exp.not_(exp.In(this=column.copy(), query=exp.Subquery(this=known)))
        return False, sqlgen.all_of([sqlgen.not_null(column), missing])
    if isinstance(check, cfg.Expression):
        return False, exp.not_(
            exp.Coalesce(this=exp.paren(sqlgen.condition(check.expression)), expressions=[exp.false()])
        )
    raise TypeError(f"{check.type} is not a row check")


def failing_count(check: cfg.CheckBase, source: str) -> exp.Select:
    """The failing rows of a row check on ``source``, counted in SQL every engine runs: ``unique`` sums
    duplicate groups (``GROUP BY ... HAVING``) instead of ``count(*) OVER``, which Daft lacks."""
    from sqlglot import exp

    if isinstance(check, cfg.Unique):
        cols = [sqlgen.col(c) for c in check.column]
        groups = (
            exp.select(exp.alias_(exp.Count(this=exp.Star()), "n"))
            .from_(sqlgen.table(source))
            .where(sqlgen.all_of([sqlgen.not_null(c.copy()) for c in cols]))
            .group_by(*cols)
            .having(exp.GT(this=exp.Count(this=exp.Star()), expression=exp.Literal.number(1)))
        )
        return exp.select(exp.Sum(this=exp.column("n"))).from_(groups.subquery("dup"))
    return sqlgen.count(failing_rows(check, source))


def describe(check: cfg.CheckBase) -> str:
    if isinstance(check, cfg.NotNull):
        return f"{', '.join(check.column)} is null"
    if isinstance(check, cfg.Unique):
        return f"{', '.join(check.column)} is not unique"
    if isinstance(check, cfg.AcceptedValues):
        return f"{check.column} not in {check.values}"
    if isinstance(check, cfg.Relationships):
        return f"{check.column} not found in {check.to}.{check.field or check.column}"
    if isinstance(check, cfg.Expression):
        return f"not ({check.expression})"
    return check.type


def _result(
    ctx: BuildContext,
    model: Model,
    check: cfg.CheckBase,
    failing: int,
    message: str,
    quarantined: int = 0,
    status: str | None = None,
) -> CheckResult:
    if status is None:
        if quarantined:
            status = "quarantined"
        elif failing == 0:
            status = "pass"
        else:
            status = "fail" if check.severity == "error" else "warn"
    return CheckResult(
        ctx.build_id,
        model.name,
        name_of(check),
        check.type,
        check.severity,
        status,
        failing,
        quarantined,
        message,
        dt.datetime.now(dt.UTC),
    )


# -- quarantine: on the result, before it is written -------------------------------------------------
def quarantining(model: Model) -> list[cfg.CheckBase]:
    return [c for c in model.config.checks if c.on_fail == "quarantine" and c.QUARANTINE]


def quarantines_on_engine(model: Model) -> bool:
    """Whether the model engine can run this model's quarantine over its staged result files: every check
    but ``unique``, whose failing rows are named with a window Daft 0.7 lacks (``count(*) OVER``), and
    ``relationships``, whose ``NOT IN (subquery)`` Daft 0.7.26 fails to plan over a scan ("IN <SUBQUERY>
    should be optimized away before evaluation")."""
    return not any(isinstance(c, cfg.Unique | cfg.Relationships) for c in quarantining(model))


def run_quarantine(session: Session, model: Model, ctx: BuildContext) -> tuple[int, list[CheckResult]]:
    """Move failing rows out of ``__lf_result`` into the quarantine table; returns (rows left, results).
    ``__lf_result`` is the build's DuckDB table, or, while the engine's workers hold the result as staged
    files (``session.staged``), the engine's table over them."""
    if session.staged is not None:
        return _quarantine_staged(session, model, ctx)
    import duckdb
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    from lakeforge.transform import write

    results = []
    for check in quarantining(model):
        try:
            session.con.execute(
                f"CREATE OR REPLACE TEMP TABLE __lf_bad AS {sqlgen.render(failing_rows(check, RESULT))}"
            )
            bad = session.count("__lf_bad")
            if bad:
                good = failing_rows(check, RESULT, failing=False)
                session.con.execute(f"CREATE OR REPLACE TEMP TABLE __lf_good AS {sqlgen.render(good)}")
                session.con.execute(f"DROP TABLE {RESULT}")
                session.con.execute(f"CREATE TABLE {RESULT} AS SELECT * FROM __lf_good")
                marks = {"_lf_check": name_of(check), "_lf_quarantined_at": ctx.started, "_lf_build_id": ctx.build_id}
                rows = exp.select(exp.Star(), *(exp.alias_(sqlgen.value(v), k) for k, v in marks.items()))
                write.append(session, quarantine_table(model), rows.from_("__lf_bad"))
            message = f"{bad} row(s) where {describe(check)} moved to {quarantine_table(model)}" if bad else ""
            results.append(_result(ctx, model, check, bad, message, quarantined=bad))
        except (duckdb.Error, SqlglotError) as exc:
            results.append(_result(ctx, model, check, 0, _first_line(exc), status="error"))
    return session.count(RESULT), results


def _quarantine_staged(session: Session, model: Model, ctx: BuildContext) -> tuple[int, list[CheckResult]]:
    """Quarantine on the engine: failing rows counted there and only they brought to this process (appended
    to the quarantine table with their marks); the kept rows written again by the workers."""
    from sqlglot.errors import SqlglotError

    from lakeforge.errors import LakeforgeError
    from lakeforge.transform import engine_write

    assert session.staged is not None
    results = []
    for check in quarantining(model):
        try:
            bad = int(session.query_scalar(sqlgen.count(failing_rows(check, RESULT))) or 0)
            if bad:
                rows = session.engine_rows(failing_rows(check, RESULT))  # before the rewrite, as on DuckDB
                engine_write.rewrite(session, failing_rows(check, RESULT, failing=False))
                _append_quarantined(session, model, ctx, check, rows)
            message = f"{bad} row(s) where {describe(check)} moved to {quarantine_table(model)}" if bad else ""
            results.append(_result(ctx, model, check, bad, message, quarantined=bad))
        except (LakeforgeError, SqlglotError) as exc:
            results.append(_result(ctx, model, check, 0, _first_line(exc), status="error"))
    return session.staged.rows, results


def _append_quarantined(
    session: Session, model: Model, ctx: BuildContext, check: cfg.CheckBase, rows: pa.Table
) -> None:
    """``rows`` with the quarantine marks (the types the DuckDB path gives them) appended to the model's
    quarantine table."""
    import pyarrow as pa

    from lakeforge.transform.write import conform, delta_schema

    n = rows.num_rows
    marked = rows.append_column("_lf_check", pa.array([name_of(check)] * n, pa.string()))
    marked = marked.append_column("_lf_quarantined_at", pa.array([ctx.started] * n, pa.timestamp("us", tz="UTC")))
    marked = marked.append_column("_lf_build_id", pa.array([ctx.build_id] * n, pa.string()))
    schema = delta_schema(marked.schema)
    batches = [conform(b, schema) for b in marked.to_batches()]
    session.lake.write(quarantine_table(model), batches, schema=schema, mode="append", schema_mode="merge")


# -- checks on the stored table ------------------------------------------------------------------------
def run_checks(session: Session, model: Model, ctx: BuildContext, count_source: CountSource) -> list[CheckResult]:
    import duckdb
    from sqlglot.errors import SqlglotError

    from lakeforge.errors import LakeforgeError

    results = []
    for check in model.config.checks:
        if model.stored and check in quarantining(model):
            continue  # ran on the result before it was written (a view has no result: report instead)
        try:
            results.append(_one(session, model, ctx, check, count_source))
        except (duckdb.Error, LakeforgeError, SqlglotError) as exc:
            results.append(_result(ctx, model, check, 0, _first_line(exc), status="error"))
    return results


def _one(
    session: Session, model: Model, ctx: BuildContext, check: cfg.CheckBase, count_source: CountSource
) -> CheckResult:
    from sqlglot.errors import SqlglotError

    if check.QUARANTINE:
        bad = int(session.query_scalar(failing_count(check, model.name)) or 0)
        return _result(ctx, model, check, bad, f"{bad} row(s) where {describe(check)}" if bad else "")
    if isinstance(check, cfg.Sql):
        sql = check.sql.replace("{this}", quoted(model.name))
        try:
            tree = sqlgen.count(sqlgen.query(sql))
        except SqlglotError:
            if session.engine is not None:
                raise
            tree = None  # DuckDB runs the user's text as written, where sqlglot cannot parse it
        bad = int(
            session.query_scalar(tree) if tree is not None else session.scalar(f"SELECT count(*) FROM ({sql}) AS q")
        )
        return _result(ctx, model, check, bad, f"the check query returned {bad} row(s)" if bad else "")
    if isinstance(check, cfg.RowCount):
        return _row_count(session, model, ctx, check, count_source)
    if isinstance(check, cfg.Freshness):
        return _freshness(session, model, ctx, check)
    raise TypeError(check.type)


def _row_count(
    session: Session, model: Model, ctx: BuildContext, check: cfg.RowCount, count_source: CountSource
) -> CheckResult:
    where = sqlgen.condition(check.where) if check.where else None
    mine = int(session.query_scalar(sqlgen.count(model.name, where)))
    if check.compare_to:
        other = int(session.query_scalar(sqlgen.count(check.compare_to, where)))
        label = check.compare_to
    elif check.source:
        other, label = count_source(check.source, check.where), f"source table {check.source}"
    else:
        return _result(ctx, model, check, 0, "row_count needs compare_to (a lake table) or source", status="error")
    allowed = check.tolerance * max(mine, other) if 0 < check.tolerance < 1 else check.tolerance
    diff = abs(mine - other)
    message = f"{model.name} has {mine} rows, {label} has {other}"
    return _result(ctx, model, check, diff if diff > allowed else 0, message)


def _freshness(session: Session, model: Model, ctx: BuildContext, check: cfg.Freshness) -> CheckResult:
    newest = session.query_scalar(sqlgen.aggregate("max", check.column, model.name))
    limit = dt.timedelta(seconds=parse_lookback(check.max_age))
    if newest is None:
        return _result(ctx, model, check, 1, f"{check.column} has no values")
    if not isinstance(newest, dt.datetime):
        newest = dt.datetime.combine(newest, dt.time())
    if newest.tzinfo is None:
        newest = newest.replace(tzinfo=dt.UTC)
    age = dt.datetime.now(dt.UTC) - newest
    message = f"newest {check.column} is {newest.isoformat()} ({_human(age)} old, limit {check.max_age})"
    return _result(ctx, model, check, 1 if age > limit else 0, message)


def _human(age: dt.timedelta) -> str:
    seconds = int(age.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds}s"


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return "check failed to run: " + (text.splitlines()[0] if text else type(exc).__name__)
