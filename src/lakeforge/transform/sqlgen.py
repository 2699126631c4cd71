"""The SQL lakeforge itself generates (SCD2, incremental filters, checks, quarantine, exports), built once as
sqlglot expressions and rendered for the engine that runs it (:func:`render`).

Nothing here is DuckDB text: a statement is a tree, DuckDB gets ``tree.sql("duckdb")`` and another engine
renders the same tree in its own way (:meth:`lakeforge.engines.base.ModelEngine.render`; Daft's rewrites
are in :mod:`lakeforge.engines.daft`). Forms that only one engine has are avoided where a portable one gives
the same rows: ``GROUP BY`` lists its columns (no ``GROUP BY ALL``), unions list their columns in one order
(no ``UNION ALL BY NAME``), ``unique`` counts duplicate groups (no ``count(*) OVER``). ``IS DISTINCT FROM``
is :class:`sqlglot.exp.NullSafeNEQ`, which each engine renders its own way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lakeforge.lake.naming import split_name

if TYPE_CHECKING:
    from sqlglot import exp

DIALECT = "duckdb"
"""The dialect user models, check expressions and ``sql`` checks are written in (docs/transforms.md)."""


def render(tree: exp.Expr, dialect: str = DIALECT) -> str:
    return tree.sql(dialect=dialect)


def ident(name: str) -> exp.Identifier:
    from sqlglot import exp

    return exp.to_identifier(name, quoted=True)


def col(name: str, table: str | None = None) -> exp.Column:
    from sqlglot import exp

    return exp.Column(this=ident(name), table=exp.to_identifier(table) if table else None)


def table(name: str, alias: str | None = None) -> exp.Table:
    """Lake table ``layer.table`` (or a session table such as ``__lf_result``), optionally aliased."""
    from sqlglot import exp

    if "." in name:
        layer, tbl = split_name(name)
        node = exp.Table(this=ident(tbl), db=ident(layer))
    else:
        node = exp.Table(this=exp.to_identifier(name))
    if alias:
        node.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
    return node


def value(v: Any) -> exp.Expr:
    """A watermark, as-of or check value as a typed SQL literal."""
    from sqlglot import exp

    if v is None:
        return exp.null()
    if isinstance(v, bool):
        return exp.true() if v else exp.false()
    if isinstance(v, int | float):
        return exp.Literal.number(repr(v))
    if isinstance(v, dt.datetime):
        return exp.cast(exp.Literal.string(v.isoformat()), "TIMESTAMPTZ" if v.tzinfo else "TIMESTAMP")
    if isinstance(v, dt.date):
        return exp.cast(exp.Literal.string(v.isoformat()), "DATE")
    return exp.Literal.string(str(v))


def condition(text: str) -> exp.Expr:
    """A user's condition (a check's ``expression`` or ``where``), parsed from DuckDB's dialect."""
    from sqlglot import exp

    return exp.condition(text, dialect=DIALECT)


def query(text: str) -> exp.Query:
    """A user's query (an ``sql`` check), parsed from DuckDB's dialect."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(text, read=DIALECT)
    if not isinstance(tree, exp.Query):
        raise ValueError(f"not a query: {text}")
    return tree


def all_of(parts: Sequence[exp.Expr]) -> exp.Expr:
    from sqlglot import exp

    return exp.and_(*parts) if parts else exp.true()


def any_of(parts: Sequence[exp.Expr]) -> exp.Expr:
    from sqlglot import exp

    return exp.or_(*parts) if parts else exp.false()


def select_all(source: str, where: exp.Expr | None = None) -> exp.Select:
    from sqlglot import exp

    tree = exp.select(exp.Star()).from_(table(source))
    return tree.where(where) if where is not None else tree


def count(source: exp.Expr | str, where: exp.Expr | None = None) -> exp.Select:
    """``SELECT count(*) FROM source [WHERE ...]``; a query source becomes a subquery."""
    from sqlglot import exp

    frm = table(source) if isinstance(source, str) else source
    if isinstance(frm, exp.Query):
        frm = frm.subquery("q")
    tree = exp.select(exp.Count(this=exp.Star())).from_(frm)
    return tree.where(where) if where is not None else tree


def aggregate(func: str, column: str, source: str) -> exp.Select:
    """``SELECT max("column") FROM source`` (``func``: max, min)."""
    from sqlglot import exp

    node = {"max": exp.Max, "min": exp.Min}[func](this=col(column))
    return exp.select(node).from_(table(source))


def empty(source: str) -> exp.Select:
    """``SELECT * FROM source LIMIT 0``: the columns of a table."""
    return select_all(source).limit(0)


def distinct_from(left: exp.Expr, right: exp.Expr) -> exp.Expr:
    from sqlglot import exp

    return exp.NullSafeNEQ(this=left, expression=right)


def is_null(node: exp.Expr) -> exp.Expr:
    from sqlglot import exp

    return exp.Is(this=node, expression=exp.null())


def not_null(node: exp.Expr) -> exp.Expr:
    from sqlglot import exp

    return exp.not_(is_null(node))


def after(column: str, v: Any) -> exp.Expr:
    """``"column" > value``: an incremental input's rows past the committed watermark."""
    from sqlglot import exp

    return exp.GT(this=col(column), expression=value(v))


def before(column: str, v: Any) -> exp.Expr:
    """``"column" < value``: an as-of input's rows before the as-of date."""
    from sqlglot import exp

    return exp.LT(this=col(column), expression=value(v))
