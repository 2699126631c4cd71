"""Daft as the engine of SQL models (``engine: {transforms: daft}``), locally or on Ray.

User models are written in DuckDB's dialect. Each query is parsed once with sqlglot (``read="duckdb"``)
and rewritten where Daft 0.7's SQL differs, then rendered for Daft:

- ``QUALIFY`` becomes a subquery filter (:func:`_eliminate_qualify`);
- ``layer.table`` becomes ``layer__table`` (Daft has no schemas without a catalog), bound to a Daft
  DataFrame over the Parquet files of the table's pinned version, read on Daft's workers
  (:mod:`lakeforge.engines.daft_lake`), or over its Arrow dataset read on the driver when files alone do not
  give its rows;
- ``trim(x)`` becomes ``strip(x)``; ``row_number()`` is cast to BIGINT (Daft returns uint64, DuckDB int64);
- ``getvariable('as_of')`` becomes the literal of the build's ``as_of``.

Anything else Daft cannot run fails with Daft's reason; the session names the model's file
(docs/scale-out.md lists what the demo's models hit).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, cast

from lakeforge.engines.base import EngineError, FilesOf, FileTarget, ModelEngine
from lakeforge.errors import MissingExtraError

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as pads
    from sqlglot import exp

    from lakeforge.lake.base import DataFile


def bound_name(name: str) -> str:
    """The Daft binding of lake table ``layer.table`` (a build's temporary table keeps its plain name)."""
    layer, _, table = name.partition(".")
    return f"{layer}__{table}" if table else layer


def to_daft_sql(sql: str | exp.Expr, variables: dict[str, str] | None = None) -> tuple[str, set[str]]:
    """``sql`` (DuckDB's dialect, or a sqlglot tree) rendered for Daft, and the tables it reads (``layer.table``
    names, and the build's temporary ``__lf_*`` tables)."""
    import sqlglot
    from sqlglot import exp

    tree: exp.Expr
    if not isinstance(sql, str):
        tree = sql.copy()
    else:
        try:
            tree = sqlglot.parse_one(sql, read="duckdb")
        except sqlglot.errors.ParseError as exc:
            raise EngineError(f"sqlglot cannot parse it: {str(exc).splitlines()[0]}") from None
    for select in list(tree.find_all(exp.Select)):  # before QUALIFY adds the window's columns to the select
        _expand_group_by_all(select)
    # the copy makes every place of a node its own node (sqlglot's eliminate_qualify may share one)
    tree = tree.transform(_eliminate_qualify).copy()
    for node in reversed(list(tree.walk(bfs=False))):  # children first: a rewritten node keeps rewritten parts
        if not isinstance(node, exp.Expression):
            continue
        new = _rewrite(node, variables or {})
        if new is not node:
            tree = new if node is tree else tree
            node.replace(new)
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    names: set[str] = set()
    for table in tree.find_all(exp.Table):
        if not table.db and table.name.startswith("__lf_"):
            names.add(table.name)
        elif table.db and table.name.lower() not in ctes:
            name = f"{table.db}.{table.name}"
            names.add(name)
            alias = table.alias
            table.set("this", exp.to_identifier(bound_name(name)))
            table.set("db", None)
            if not alias:
                table.set("alias", exp.TableAlias(this=exp.to_identifier(name.partition(".")[2])))
    return tree.sql(dialect="duckdb"), names


def _rewrite(node: exp.Expression, variables: dict[str, str]) -> exp.Expression:
    from sqlglot import exp

    if isinstance(node, exp.Trim) and not node.args.get("expression") and not node.args.get("position"):
        return exp.Anonymous(this="strip", expressions=[node.this])
    if isinstance(node, exp.DPipe):
        return exp.Anonymous(this="concat", expressions=[node.this, node.expression])
    if isinstance(node, exp.NullSafeNEQ | exp.NullSafeEQ):  # Daft has no IS [NOT] DISTINCT FROM
        a, b = node.this, node.expression
        differ = (
            exp.case()
            .when(exp.Is(this=a.copy(), expression=exp.null()), exp.not_(exp.Is(this=b.copy(), expression=exp.null())))
            .when(exp.Is(this=b.copy(), expression=exp.null()), exp.true())
            .else_(exp.NEQ(this=a.copy(), expression=b.copy()))
        )
        return differ if isinstance(node, exp.NullSafeNEQ) else exp.not_(exp.paren(differ))
    if isinstance(node, exp.Nullif):
        return exp.case().when(exp.EQ(this=node.this.copy(), expression=node.expression), exp.null()).else_(node.this)
    if isinstance(node, exp.Window) and isinstance(node.this, exp.RowNumber):
        return exp.cast(node.copy(), exp.DataType.build("BIGINT"))
    if isinstance(node, exp.Count) and not isinstance(node.parent, exp.Window | exp.Cast):
        return exp.cast(node.copy(), exp.DataType.build("BIGINT"))  # Daft counts in uint64, DuckDB in int64
    if isinstance(node, exp.Select):
        _using_to_on(node)
        _name_columns(node)
    dated = _dates(node)
    if dated is not None:
        return dated
    if isinstance(node, exp.Greatest | exp.Least):
        return _extreme(node)
    if isinstance(node, exp.Cast) and node.to.is_type("decimal") and isinstance(node.this, exp.Coalesce):
        # CAST(coalesce(x, 0) AS DECIMAL(p, s)) as coalesce(CAST(x ...), CAST(0 ...)): the same value, and
        # Daft finds no supertype of a decimal and an integer literal
        parts = [node.this.this, *node.this.expressions]
        return exp.Coalesce(
            this=exp.cast(parts[0].copy(), node.to.copy()),
            expressions=[exp.cast(p.copy(), node.to.copy()) for p in parts[1:]],
        )
    if isinstance(node, exp.Cast) and node.to.is_type("timestamptz") and isinstance(node.this, exp.Null):
        # a NULL of type TIMESTAMPTZ (SCD2's valid_to): Daft folds CASE WHEN FALSE ... to the null type, not this
        epoch = exp.Anonymous(this="to_datetime", expressions=[exp.Literal.string(_EPOCH), exp.Literal.string("%+")])
        same = exp.EQ(this=epoch.copy(), expression=epoch.copy())
        return exp.case().when(same, exp.null()).else_(epoch)
    if isinstance(node, exp.Cast) and node.to.is_type("timestamptz") and node.this.is_string:
        # a watermark or as-of literal: Daft has no TIMESTAMPTZ cast; chrono's %+ reads ISO 8601 with offset
        return exp.Anonymous(this="to_datetime", expressions=[node.this.copy(), exp.Literal.string("%+")])
    name = node.name.lower() if isinstance(node, exp.Anonymous) else None
    if name == "getvariable" and len(node.expressions) == 1:
        key = node.expressions[0].name
        if key not in variables:
            raise EngineError(f"getvariable('{key}') is not set")
        return _rewrite(exp.maybe_parse(variables[key], dialect="duckdb"), {})  # a TIMESTAMPTZ literal
    return node


_EPOCH = "1970-01-01T00:00:00+00:00"
_FIRST_OF = {"MONTH": "%Y-%m-01", "YEAR": "%Y-01-01"}
_NAMES = {"Monthname": "%B", "Dayname": "%A"}


def _call(name: str, *args: exp.Expression) -> exp.Expression:
    from sqlglot import exp

    return exp.Anonymous(this=name, expressions=list(args))


def _dates(node: exp.Expression) -> exp.Expression | None:
    """DuckDB's date functions Daft lacks (or types differently), as Daft functions giving DuckDB's values
    and types: ``date_trunc('month'|'year', x)`` (a TIMESTAMP, as DuckDB gives for a DATE or TIMESTAMP),
    ``monthname``/``dayname``, ``isodow``, ``date_diff('day', a, b)`` (day boundaries crossed), and
    ``year``/``month``/``day``/``quarter`` as BIGINT."""
    from sqlglot import exp

    if isinstance(node, exp.TimestampTrunc | exp.DateTrunc) and node.text("unit").upper() in _FIRST_OF:
        first = _call("strftime", node.this.copy(), exp.Literal.string(_FIRST_OF[node.text("unit").upper()]))
        return exp.cast(_call("to_date", first, exp.Literal.string("%Y-%m-%d")), "TIMESTAMP")
    if type(node).__name__ in _NAMES:
        return _call("strftime", node.this.copy(), exp.Literal.string(_NAMES[type(node).__name__]))
    if isinstance(node, exp.DayOfWeekIso):  # Daft: Monday is 0
        return exp.cast(
            exp.Add(this=_call("day_of_week", node.this.copy()), expression=exp.Literal.number(1)), "BIGINT"
        )
    if isinstance(node, exp.DateDiff) and node.text("unit").upper() in ("DAY", ""):
        # Daft's DATE - DATE is mislabelled (days as a duration in seconds): subtract days since the epoch
        def epoch_days(x: exp.Expression) -> exp.Expression:
            return exp.cast(exp.cast(x.copy(), "DATE"), "BIGINT")

        return exp.Sub(this=epoch_days(node.this), expression=epoch_days(node.expression))
    if isinstance(node, exp.Year | exp.Month | exp.Day | exp.Quarter) and not isinstance(node.parent, exp.Cast):
        return exp.cast(node.copy(), "BIGINT")  # Daft: int32 or uint32; DuckDB: BIGINT
    return None


def _extreme(node: exp.Greatest | exp.Least) -> exp.Expression:
    """``greatest``/``least`` as nested CASEs that skip NULLs, as DuckDB's do."""
    from sqlglot import exp

    parts = [node.this, *node.expressions]
    best = parts[0].copy()
    for part in parts[1:]:
        a, b = best, part.copy()
        wins = (
            exp.GTE(this=a.copy(), expression=b.copy())
            if isinstance(node, exp.Greatest)
            else exp.LTE(this=a.copy(), expression=b.copy())
        )
        best = (
            exp.case()
            .when(exp.Is(this=a.copy(), expression=exp.null()), b.copy())
            .when(exp.Is(this=b.copy(), expression=exp.null()), a.copy())
            .when(wins, a.copy())
            .else_(b)
        )
    return cast("exp.Expression", best)


def _eliminate_qualify(node: exp.Expression) -> exp.Expression:
    """``SELECT ... QUALIFY cond`` as ``SELECT outputs FROM (SELECT ..., window AS _lf_w0) WHERE cond``.

    Unlike ``sqlglot.transforms.eliminate_qualify`` the windows are not rewritten: a name inside a window
    keeps meaning the input column, as in DuckDB, even where a select alias has the same name (``trim(name)
    AS name ... ORDER BY name``). With ``*``, ``DISTINCT``, ``ORDER BY`` or ``LIMIT`` sqlglot's rewrite is used.
    """
    from sqlglot import exp, transforms

    qualify = node.args.get("qualify") if isinstance(node, exp.Select) else None
    if not isinstance(node, exp.Select) or not isinstance(qualify, exp.Qualify):
        return node
    if node.is_star or any(node.args.get(k) for k in ("distinct", "order", "limit")):
        return cast("exp.Expression", transforms.eliminate_qualify(node))
    inner = node.copy()
    inner.set("qualify", None)
    outputs = [e.alias_or_name for e in inner.expressions]
    condition = qualify.this.copy()
    for i, window in enumerate(list(condition.find_all(exp.Window))):
        inner.append("expressions", exp.alias_(window.copy(), f"_lf_w{i}"))
        window.replace(exp.column(f"_lf_w{i}"))
    for i, column in enumerate(list(condition.find_all(exp.Column))):
        if column.name.startswith("_lf_w") or (column.name in outputs and not column.table):
            continue  # a window's value, or a select alias
        inner.append("expressions", exp.alias_(column.copy(), f"_lf_c{i}"))  # an input column, carried out
        column.replace(exp.column(f"_lf_c{i}"))
    return exp.select(*[exp.column(n) for n in outputs]).from_(inner.subquery("_lf_q")).where(condition)


def _expand_group_by_all(select: exp.Select) -> None:
    """``GROUP BY ALL``: every selected expression without an aggregate (what DuckDB groups by)."""
    from sqlglot import exp

    group = select.args.get("group")
    if isinstance(group, exp.Group) and group.args.get("all"):
        plain = [e.unalias().copy() for e in select.expressions if not e.find(exp.AggFunc)]
        select.set("group", exp.Group(expressions=plain))


def _using_to_on(select: exp.Select) -> None:
    """``JOIN t USING (k)`` as ``JOIN t ON left.k = t.k``, and an unqualified ``k`` as ``left.k`` (``left``:
    the FROM table), as DuckDB reads them for inner and left joins; Daft types a USING key as the supertype
    of both sides where DuckDB keeps the named side's (``c.k`` an INTEGER, not a BIGINT)."""
    from sqlglot import exp

    joins = select.args.get("joins") or []
    source = select.args.get("from_") or select.args.get("from")
    if not any(j.args.get("using") for j in joins) or select.is_star or not isinstance(source, exp.From):
        return
    if any(j.side.upper() in ("FULL", "RIGHT") for j in joins) or not source.this.alias_or_name:
        return
    left = source.this.alias_or_name
    keys: set[str] = set()
    for join in joins:
        using = [u.name for u in join.args.get("using") or []]
        if using:
            right = join.this.alias_or_name
            on = [exp.EQ(this=exp.column(k, left), expression=exp.column(k, right)) for k in using]
            join.set("using", None)
            join.set("on", exp.and_(*on))
            keys.update(using)
    for column in list(select.find_all(exp.Column)):
        if not column.table and column.name in keys and column.find_ancestor(exp.Select) is select:
            column.set("table", exp.to_identifier(left))


def _name_columns(select: exp.Select) -> None:
    """``SELECT o.x`` is column ``x`` in DuckDB but ``o.x`` in Daft: alias qualified columns by their name."""
    from sqlglot import exp

    for column in select.expressions:
        if isinstance(column, exp.Column) and column.table and column.name:
            column.replace(exp.alias_(column.copy(), column.name))


def _reason(exc: Exception) -> str:
    """One line: Daft's SQL errors put the reason on a ``REASON:`` line after the echoed query; plan errors
    end with the cause on a ``Due to:`` line."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    reason = next((line for line in lines if line.startswith("REASON:")), None)
    cause = next((line for line in reversed(lines) if line.startswith("Due to:")), None)
    if cause is not None:
        cause = cause.removeprefix("Due to:").strip()
    return reason or cause or (lines[0] if lines else type(exc).__name__)


class DaftEngine(ModelEngine):
    NAME = "daft"
    DIALECT = "duckdb"
    READS_FILES = True
    WRITES_FILES = True

    def __init__(self, *, ray_address: str | None = None) -> None:
        try:
            import daft
        except ImportError:
            raise MissingExtraError("daft", "scale") from None
        if ray_address is not None:
            # "auto" joins the cluster this host belongs to (never None: that would start a Ray on every
            # interface); a second build in the same process keeps the runner already set
            daft.set_runner_ray(address=ray_address, noop_if_initialized=True)
        self._data: dict[str, pads.Dataset | pa.Table] = {}
        self._files: dict[str, FilesOf] = {}
        self._frames: dict[str, Any] = {}
        self._filters: dict[str, exp.Expr] = {}
        self.read_by_workers: set[str] = set()
        """Lake tables Daft reads from their files (the others pass through the driver as Arrow)."""
        self.writers: set[int] = set()
        """Process ids that wrote the last ``write_files`` result (Daft's workers; this process on the local
        runner)."""

    def register(self, name: str, data: pads.Dataset | pa.Table, *, files: FilesOf | None = None) -> None:
        self._data[name] = data
        self._frames.pop(name, None)
        if files is None:
            self._files.pop(name, None)
        else:
            self._files[name] = files

    def narrow(self, name: str, condition: exp.Expr | None) -> None:
        if condition is None:
            self._filters.pop(name, None)
        else:
            self._filters[name] = condition

    def _frame(self, name: str) -> Any:
        import daft

        if name not in self._frames:
            self._frames[name] = self._read(name)
        frame = self._frames[name]
        condition = self._filters.get(name)
        if condition is None:
            return frame
        from sqlglot import exp

        sql, _ = to_daft_sql(exp.select(exp.Star()).from_("__lf_input").where(condition))
        return daft.sql(sql, __lf_input=frame)

    def _read(self, name: str) -> Any:
        """Table ``name`` as a Daft DataFrame: over its files when the lake lists them, else through the driver."""
        import daft
        import pyarrow as pa

        data = self._data[name]
        listing = self._files.get(name)
        files = listing() if listing is not None else None
        if files is not None:
            from lakeforge.engines.daft_lake import read_table

            self.read_by_workers.add(name)
            return read_table(files, data.schema)
        self.read_by_workers.discard(name)
        return daft.from_arrow(data if isinstance(data, pa.Table) else data.to_table())

    def render(self, tree: exp.Expr) -> str:
        return to_daft_sql(tree)[0]

    def _plan(self, sql: str | exp.Expr, variables: dict[str, str] | None) -> Any:
        """The Daft DataFrame of ``sql`` (planned, not run)."""
        import daft

        text, names = to_daft_sql(sql, variables)
        unknown = sorted(n for n in names if n not in self._data)
        if unknown:
            raise EngineError(f"unknown table {', '.join(unknown)}")
        try:
            frames = {bound_name(n): self._frame(n) for n in names}
            return daft.sql(text, **frames)
        except Exception as exc:  # Daft raises several unrelated types (DaftCoreException, ValueError, ...)
            raise EngineError(f"Daft: {_reason(exc)}") from None

    def query(self, sql: str | exp.Expr, *, variables: dict[str, str] | None = None) -> pa.RecordBatchReader:
        import pyarrow as pa

        frame = self._plan(sql, variables)
        try:
            table = frame.to_arrow()
        except Exception as exc:
            raise EngineError(f"Daft: {_reason(exc)}") from None
        return pa.RecordBatchReader.from_batches(table.schema, table.to_batches())

    def stream(self, sql: str | exp.Expr, *, variables: dict[str, str] | None = None) -> pa.RecordBatchReader:
        """The rows as Daft's workers compute them, a few partitions buffered (never the whole result)."""
        import pyarrow as pa

        frame = self._plan(sql, variables)
        schema = frame.schema().to_pyarrow_schema()

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                yield from frame.to_arrow_iter(results_buffer_size=2)
            except Exception as exc:
                raise EngineError(f"Daft: {_reason(exc)}") from None

        return pa.RecordBatchReader.from_batches(schema, (b.cast(schema) for b in batches()))

    def write_files(
        self,
        sql: str | exp.Expr,
        target: Callable[[pa.Schema], FileTarget],
        *,
        variables: dict[str, str] | None = None,
    ) -> list[DataFile]:
        from lakeforge.engines.daft_lake import LakeSink

        frame = self._plan(sql, variables)
        sink = LakeSink(target(frame.schema().to_pyarrow_schema()))
        try:
            frame.write_sink(sink)
        except Exception as exc:
            raise EngineError(f"Daft: {_reason(exc)}") from None
        self.writers = sink.writers
        return sink.files

    def close(self) -> None:
        self._frames.clear()
        self._data.clear()
        self._files.clear()
