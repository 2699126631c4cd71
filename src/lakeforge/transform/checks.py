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
from lakeforge.transform.session import RESULT, Session, literal, quoted

if TYPE_CHECKING:
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


def row_filter(check: cfg.CheckBase) -> tuple[str, str]:
    """(clause, condition) selecting the failing rows: ``WHERE cond`` or ``QUALIFY cond``."""

    def q(column: str) -> str:
        return '"' + column.replace('"', '""') + '"'

    if isinstance(check, cfg.NotNull):
        return "WHERE", " OR ".join(f"{q(c)} IS NULL" for c in check.column)
    if isinstance(check, cfg.Unique):
        cols = ", ".join(q(c) for c in check.column)
        present = " AND ".join(f"{q(c)} IS NOT NULL" for c in check.column)
        return "QUALIFY", f"{present} AND count(*) OVER (PARTITION BY {cols}) > 1"
    if isinstance(check, cfg.AcceptedValues):
        values = ", ".join(literal(v) for v in check.values)
        return "WHERE", f"{q(check.column)} IS NOT NULL AND {q(check.column)} NOT IN ({values})"
    if isinstance(check, cfg.Relationships):
        other = q(check.field or check.column)
        return "WHERE", (
            f"{q(check.column)} IS NOT NULL AND {q(check.column)} NOT IN "
            f"(SELECT {other} FROM {quoted(check.to)} WHERE {other} IS NOT NULL)"
        )
    if isinstance(check, cfg.Expression):
        return "WHERE", f"NOT coalesce(({check.expression}), FALSE)"
    raise TypeError(f"{check.type} is not a row check")


def failing_count(check: cfg.CheckBase, table: str) -> str:
    """The failing rows of a row check on ``table``, counted in SQL every engine runs (DuckDB's dialect,
    rendered per engine by sqlglot): ``unique`` sums duplicate groups instead of ``count(*) OVER``."""
    if isinstance(check, cfg.Unique):
        cols = ", ".join('"' + c.replace('"', '""') + '"' for c in check.column)
        present = " AND ".join(f"{c} IS NOT NULL" for c in cols.split(", "))
        return (
            f"SELECT sum(n) FROM (SELECT count(*) AS n FROM {table} WHERE {present} "
            f"GROUP BY {cols} HAVING count(*) > 1) AS dup"
        )
    clause, condition = row_filter(check)
    return f"SELECT count(*) FROM (SELECT * FROM {table} {clause} {condition}) AS bad"


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


def run_quarantine(session: Session, model: Model, ctx: BuildContext) -> tuple[int, list[CheckResult]]:
    """Move failing rows out of ``__lf_result`` into the quarantine table; returns (rows left, results)."""
    import duckdb

    from lakeforge.transform import write

    results = []
    for check in quarantining(model):
        clause, condition = row_filter(check)
        try:
            session.con.execute(f"CREATE OR REPLACE TEMP TABLE __lf_bad AS SELECT * FROM {RESULT} {clause} {condition}")
            bad = int(session.scalar("SELECT count(*) FROM __lf_bad"))
            if bad:
                session.con.execute(
                    f"CREATE OR REPLACE TEMP TABLE __lf_good AS SELECT * FROM {RESULT} "
                    f"{clause} NOT coalesce(({condition}), FALSE)"
                )
                session.con.execute(f"DROP TABLE {RESULT}")
                session.con.execute(f"CREATE TABLE {RESULT} AS SELECT * FROM __lf_good")
                write.append(
                    session,
                    quarantine_table(model),
                    (
                        f"SELECT *, {literal(name_of(check))} AS _lf_check, "
                        f"{literal(ctx.started)} AS _lf_quarantined_at, {literal(ctx.build_id)} AS _lf_build_id "
                        "FROM __lf_bad"
                    ),
                )
            message = f"{bad} row(s) where {describe(check)} moved to {quarantine_table(model)}" if bad else ""
            results.append(_result(ctx, model, check, bad, message, quarantined=bad))
        except duckdb.Error as exc:
            results.append(_result(ctx, model, check, 0, _first_line(exc), status="error"))
    return int(session.scalar(f"SELECT count(*) FROM {RESULT}")), results


# -- checks on the stored table ------------------------------------------------------------------------
def run_checks(session: Session, model: Model, ctx: BuildContext, count_source: CountSource) -> list[CheckResult]:
    import duckdb

    from lakeforge.errors import LakeforgeError

    results = []
    for check in model.config.checks:
        if model.stored and check in quarantining(model):
            continue  # ran on the result before it was written (a view has no result: report instead)
        try:
            results.append(_one(session, model, ctx, check, count_source))
        except (duckdb.Error, LakeforgeError) as exc:
            results.append(_result(ctx, model, check, 0, _first_line(exc), status="error"))
    return results


def _one(
    session: Session, model: Model, ctx: BuildContext, check: cfg.CheckBase, count_source: CountSource
) -> CheckResult:
    table = quoted(model.name)
    if check.QUARANTINE:
        bad = int(session.query_scalar(failing_count(check, table)) or 0)
        return _result(ctx, model, check, bad, f"{bad} row(s) where {describe(check)}" if bad else "")
    if isinstance(check, cfg.Sql):
        sql = check.sql.replace("{this}", table)
        bad = int(session.query_scalar(f"SELECT count(*) FROM ({sql})"))
        return _result(ctx, model, check, bad, f"the check query returned {bad} row(s)" if bad else "")
    if isinstance(check, cfg.RowCount):
        return _row_count(session, model, ctx, check, count_source)
    if isinstance(check, cfg.Freshness):
        return _freshness(session, model, ctx, check)
    raise TypeError(check.type)


def _row_count(
    session: Session, model: Model, ctx: BuildContext, check: cfg.RowCount, count_source: CountSource
) -> CheckResult:
    where = f" WHERE {check.where}" if check.where else ""
    mine = int(session.query_scalar(f"SELECT count(*) FROM {quoted(model.name)}{where}"))
    if check.compare_to:
        other = int(session.query_scalar(f"SELECT count(*) FROM {quoted(check.compare_to)}{where}"))
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
    newest = session.query_scalar(f'SELECT max("{check.column}") FROM {quoted(model.name)}')
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
