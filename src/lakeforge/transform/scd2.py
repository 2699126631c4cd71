"""SCD2: a dimension that keeps every version of each business key.

Columns added to the model's own: the surrogate key (``<table>_sk`` unless ``surrogate_key`` names it),
``valid_from``, ``valid_to`` (NULL while current) and ``is_current``. Each build compares the model's result
with the current versions by ``unique_key``:

- a new key opens a version (``valid_from`` = build time, or ``initial_valid_from`` on the first build);
- a key whose ``check_cols`` (default: every non-key column) changed closes its current version
  (``valid_to`` = build time, ``is_current`` = false) and opens a new one;
- an unchanged key writes nothing;
- a key gone from the result is closed (it reopens as a new version if it comes back).

Closing and opening land in one Delta MERGE (on the surrogate key) carrying the checkpoint. On an engine whose
workers write files (Daft), the diff runs there over the lake files and the staged result, and the workers write
the whole new dimension, committed once with the checkpoint (:mod:`lakeforge.transform.scd2_files`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlglot import exp

from lakeforge.errors import ModelError
from lakeforge.transform import sqlgen, write
from lakeforge.transform.materialize import BuildContext, Outcome, checkpoint, compute
from lakeforge.transform.model import Model
from lakeforge.transform.session import RESULT, Session

VALID_FROM, VALID_TO, IS_CURRENT = "valid_from", "valid_to", "is_current"


def surrogate_key(model: Model) -> str:
    return model.config.surrogate_key or f"{model.table}_sk"


def run_scd2(session: Session, model: Model, ctx: BuildContext) -> Outcome:
    keys = model.config.unique_key
    if not keys:
        raise ModelError(f"{model.path}: materialized: scd2 needs unique_key (the business key)")
    sk = surrogate_key(model)
    from lakeforge.transform.scd2_files import run_on_workers

    done = run_on_workers(session, model, ctx, keys, sk)
    if done is not None:
        return done
    compute(session, model, ctx)
    columns = session.columns(RESULT)
    validate(session.count, model, columns, keys, sk)
    session.share(RESULT)
    if not session.lake.exists(model.name) or ctx.full_refresh:
        return _first(session, model, ctx, columns, keys, sk)
    opened, closed = _diff(session, model, columns, keys, sk)
    if opened == 0 and closed == 0:
        return Outcome(status="unchanged", detail={"opened": 0, "closed": 0})
    versions = session.on_engine("__lf_versions", _versions(session, model, ctx, columns, keys, sk))
    write.merge(session, model.name, versions, [sk], checkpoint(session, model, ctx))
    session.register(model.name)
    return Outcome(rows=opened, delta_version=session.versions[model.name], detail={"opened": opened, "closed": closed})


def _first(session: Session, model: Model, ctx: BuildContext, columns: list[str], keys: list[str], sk: str) -> Outcome:
    """The first build (or a full refresh): every key opens a version."""
    tree = first_versions(model, ctx, columns, keys, sk)
    write.overwrite(session, model.name, session.on_engine("__lf_versions", tree), checkpoint(session, model, ctx))
    session.register(model.name)
    rows = session.count(model.name)
    return Outcome(rows=rows, delta_version=session.versions[model.name], detail={"opened": rows})


def first_versions(model: Model, ctx: BuildContext, columns: list[str], keys: list[str], sk: str) -> exp.Select:
    """Every row of ``__lf_result`` as a first version (surrogate keys numbered from 1)."""
    start = _initial(model) if model.config.initial_valid_from else ctx.started
    return exp.select(
        exp.alias_(numbered(keys), sk, quoted=True),
        *(sqlgen.col(c) for c in columns),
        exp.alias_(sqlgen.value(start), VALID_FROM),
        exp.alias_(no_time(), VALID_TO),
        exp.alias_(exp.true(), IS_CURRENT),
    ).from_(sqlgen.table(RESULT))


def numbered(keys: list[str], top: int = 0) -> exp.Expr:
    """``(top + row_number() OVER (ORDER BY keys))::BIGINT``: new surrogate keys."""
    number: exp.Expr = exp.Window(this=exp.RowNumber(), order=exp.Order(expressions=_cols(keys)))
    if top:
        number = exp.Add(this=exp.Literal.number(top), expression=number)
    return exp.cast(exp.paren(number) if top else number, "BIGINT")


def no_time() -> exp.Expr:
    return exp.cast(exp.null(), "TIMESTAMPTZ")


def _diff(session: Session, model: Model, columns: list[str], keys: list[str], sk: str) -> tuple[int, int]:
    """Fill ``__lf_open`` (result rows that open a version) and ``__lf_close`` (current versions to close)."""
    parts = diff_parts(model, columns, session.columns(model.name), keys, sk)
    return session.materialise("__lf_open", parts.opening), session.materialise("__lf_close", parts.closing)


@dataclass
class DiffParts:
    """The trees comparing ``__lf_result`` (alias ``r``) with the current versions (subquery ``t``, columns
    renamed ``_lf_t_<name>``, so no name is on both sides: Daft 0.7 resolves ``r.x``/``t.x`` of a join to one
    side when both have ``x``)."""

    opening: exp.Select
    """Result rows that open a version (new key, or a compared column changed)."""
    closing: exp.Select
    """Current versions to close (key gone, or changed), with the table's column names."""
    staying: exp.Select
    """Current versions that stay current, with the table's column names."""


def mine(c: str) -> exp.Column:
    """A current version's column inside the diff (renamed ``_lf_t_<c>``)."""
    return sqlgen.col(f"_lf_t_{c}")


def diff_parts(model: Model, columns: list[str], target_cols: list[str], keys: list[str], sk: str) -> DiffParts:
    compared = [c for c in (model.config.check_cols or [c for c in columns if c not in keys]) if c in target_cols]
    col = sqlgen.col
    same_key = sqlgen.all_of([exp.EQ(this=col(k), expression=mine(k)) for k in keys])
    changed = sqlgen.any_of([sqlgen.distinct_from(col(c), mine(c)) for c in compared])
    current = (
        exp.select(*(exp.alias_(col(c), f"_lf_t_{c}", quoted=True) for c in target_cols))
        .from_(sqlgen.table(model.name))
        .where(col(IS_CURRENT))
        .subquery("t")
    )
    result = sqlgen.table(RESULT, "r")
    opening = (
        exp.select(*(col(c) for c in columns))
        .from_(result)
        .join(current.copy(), on=same_key.copy(), join_type="left")
        .where(exp.or_(sqlgen.is_null(mine(sk)), changed.copy()))
    )
    closes = exp.or_(sqlgen.is_null(col(keys[0])), changed.copy())

    def current_versions(where: exp.Expr) -> exp.Select:
        return (
            exp.select(*(exp.alias_(mine(c), c, quoted=True) for c in target_cols))
            .from_(current.copy())
            .join(result.copy(), on=same_key.copy(), join_type="left")
            .where(where)
        )

    return DiffParts(opening, current_versions(closes), current_versions(exp.not_(exp.paren(closes.copy()))))


def _versions(
    session: Session, model: Model, ctx: BuildContext, columns: list[str], keys: list[str], sk: str
) -> exp.Expr:
    """Closed versions (valid_to = now) and opened ones (new surrogate keys), in the table's column order."""
    picks = version_columns(session.query_scalar, model, ctx, columns, session.columns(model.name), keys, sk)
    return exp.union(
        exp.select(*picks.closed).from_("__lf_close"), exp.select(*picks.opened).from_("__lf_open"), distinct=False
    )


@dataclass
class VersionColumns:
    """Select lists in the table's column order (columns new in the model last)."""

    opened: list[exp.Expr]
    """An opened version from a result row: new surrogate key, valid from now, current."""
    closed: list[exp.Expr]
    """A closed version from a current one: valid to now, not current; NULL in the model's new columns."""
    kept: list[exp.Expr]
    """Any stored version as it is; NULL in the model's new columns."""


def version_columns(
    scalar: Callable[[exp.Expr], object],
    model: Model,
    ctx: BuildContext,
    columns: list[str],
    ordered: list[str],
    keys: list[str],
    sk: str,
) -> VersionColumns:
    """``scalar`` runs a query for one value (the highest surrogate key so far)."""
    now = sqlgen.value(ctx.started)
    highest = exp.select(exp.func("coalesce", exp.Max(this=sqlgen.col(sk)), 0)).from_(sqlgen.table(model.name))
    top = int(scalar(highest))  # type: ignore[call-overload]
    opening: dict[str, exp.Expr] = {
        sk: numbered(keys, top),
        VALID_FROM: now,
        VALID_TO: no_time(),
        IS_CURRENT: exp.true(),
    }
    closing: dict[str, exp.Expr] = {VALID_TO: now, IS_CURRENT: exp.false()}
    added = [c for c in columns if c not in ordered and c not in opening]  # columns new in the model

    def pick(c: str, chosen: dict[str, exp.Expr], present: bool) -> exp.Expr:
        node = chosen.get(c) or (sqlgen.col(c) if present else exp.null())
        return node if isinstance(node, exp.Column) else exp.alias_(node.copy(), c, quoted=True)

    return VersionColumns(
        opened=[pick(c, opening, c in columns) for c in ordered] + [sqlgen.col(c) for c in added],
        closed=[pick(c, closing, True) for c in ordered] + [pick(c, {}, False) for c in added],
        kept=[pick(c, {}, True) for c in ordered] + [pick(c, {}, False) for c in added],
    )


def _cols(keys: list[str]) -> list[exp.Expr]:
    return [sqlgen.col(k) for k in keys]


Counter = Callable[..., int]
"""``count(source, where=None)``: rows of a table or query, on DuckDB or on the model engine."""


def validate(count: Counter, model: Model, columns: list[str], keys: list[str], sk: str) -> None:
    missing = [k for k in keys if k not in columns]
    if missing:
        raise ModelError(f"{model.path}: unique_key {', '.join(missing)} is not a column of the result")
    clash = [c for c in (sk, VALID_FROM, VALID_TO, IS_CURRENT) if c in columns]
    if clash:
        raise ModelError(f"{model.path}: scd2 adds column(s) {', '.join(clash)}; the model must not return them")
    nulls = count(RESULT, sqlgen.any_of([sqlgen.is_null(c) for c in _cols(keys)]))
    if nulls:
        raise ModelError(f"model {model.name} ({model.path}): {nulls} row(s) have a NULL business key")
    repeated = (
        exp.select(*_cols(keys))
        .from_(sqlgen.table(RESULT))
        .group_by(*_cols(keys))
        .having(exp.GT(this=exp.Count(this=exp.Star()), expression=exp.Literal.number(1)))
    )
    dupes = count(repeated)
    if dupes:
        raise ModelError(
            f"model {model.name} ({model.path}): {dupes} business key(s) appear more than once "
            f"in the result; an SCD2 source needs one row per {', '.join(keys)}"
        )


def _initial(model: Model) -> dt.datetime:
    value = model.config.initial_valid_from
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value or dt.date.min, dt.time())
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
