"""A commit interval's rows encoded into staged Parquet files while the interval is still being read.

On a lake that commits staged files (``Lake.STAGED_FULL_LOAD``), a bounded read's rows are stamped, cast and
handed to the staged writers (load/staged.py) as they arrive, so the encoding runs beside the parse instead of
after the interval is complete (the last interval's encoding no longer trails the read). The cast needs the
interval's schema before its last batch: it is the lake table's schema, evolved by the first batch. At the
commit the interval's schema is worked out as always; when it is the one the files were written with and the
table keeps its schema, the files are committed with the position (``Lake.commit_files``); otherwise (a
batch brought a new column or a wider type) they are deleted and the rows are written the usual way from the
interval's batches, which are kept until the commit. Files are never deleted once handed to the commit (an
ambiguous commit may have referenced them; vacuum removes them if it did not).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lakeforge.errors import SchemaDriftError
from lakeforge.lake.schema import evolve, wider
from lakeforge.load import killpoint
from lakeforge.load.batches import Constants, stamp_and_cast, with_meta
from lakeforge.load.staged import StagedWriter

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeforge.lake.base import DataFile
    from lakeforge.load.context import LoadContext
    from lakeforge.sources.base import TablePlan


def same_schema(lake: pa.Schema | None, target: pa.Schema) -> bool:
    """No table yet, or its columns are ``target``'s, in order, of the same types."""
    if lake is None:
        return True
    return [(f.name, f.type) for f in lake] == [(f.name, f.type) for f in target]


class IntervalFiles:
    """One table's load: makes a :class:`Staged` for each commit interval."""

    def __init__(self, ctx: LoadContext, plan: TablePlan, name: str, *, replace_first: bool) -> None:
        self.ctx, self.plan, self.name = ctx, plan, name
        self.replace_first = replace_first
        """``full`` mode: the first commit replaces the table, whatever its schema."""
        self.lake_schema: pa.Schema | None = None if replace_first else ctx.lake.schema(name)
        self.constants = Constants(ctx.stamp, dictionary=True)
        """The metadata columns, built once for the load (each batch is stamped on its own)."""

    def committed(self, schema: pa.Schema) -> None:
        """A commit landed with ``schema``: later intervals start from it (called by the committing thread)."""
        self.replace_first = False
        self.lake_schema = schema

    def start(self) -> Staged:
        return Staged(self)


class Staged:
    """One interval's staged files: :meth:`add` each batch as read; :meth:`files` at the commit."""

    def __init__(self, load: IntervalFiles) -> None:
        self.load = load
        self.base = None if load.replace_first else load.lake_schema
        self.schema: pa.Schema | None = None
        self.writer: StagedWriter | None = None
        self.off = False
        """A batch did not fit the schema the files are written with: this interval is written the usual way."""
        self.handed = False

    def add(self, batch: pa.RecordBatch) -> None:
        if self.off or not batch.num_rows:
            return
        load = self.load
        if self.writer is None:
            killpoint.kill_at("extract", load.name)  # read, nothing handed to the encoders yet
        try:
            fits = evolve(
                load.name, self.schema or self.base, with_meta(interval_schema(load.name, load.plan, [batch]))
            )
        except SchemaDriftError:
            fits = None  # the commit raises it, naming the column
        if fits is None or fits.rewrite or not same_schema(self.schema or self.base, fits.schema):
            self.abort()
            return
        if self.writer is None:
            self.schema = fits.schema
            self.writer = StagedWriter(load.ctx.lake, load.name, fits.schema)
        for stamped in stamp_and_cast([batch], fits.schema, load.ctx.stamp, load.constants):
            self.writer.add(stamped)
        killpoint.kill_at("write", load.name)  # the encoders hold rows of an interval not committed

    def files(self, schema: pa.Schema) -> tuple[list[DataFile], int] | None:
        """The interval's files and rows when they were written with ``schema`` (the commit's), else None
        (the files are deleted)."""
        if self.writer is None or self.off or self.schema is None or not same_schema(self.schema, schema):
            self.abort()
            return None
        self.handed = True
        return self.writer.finish(), self.writer.rows

    def abort(self) -> None:
        """Delete the files (unless they were handed to a commit) and write nothing more."""
        self.off = True
        if self.writer is not None and not self.handed:
            writer, self.writer = self.writer, None
            writer.abort()


def interval_schema(name: str, plan: TablePlan, batches: list[pa.RecordBatch]) -> pa.Schema:
    """Every column the batches have, in their order, each at its declared type or the widest type the batches
    bring; then the declared columns no batch had."""
    import pyarrow as pa

    declared: dict[str, pa.DataType] = {c.lake_name: c.arrow_type for c in plan.columns}
    fields: dict[str, pa.DataType] = {}
    for batch in batches:
        for f in batch.schema:
            if f.name in declared or f.type == pa.null():
                fields.setdefault(f.name, declared.get(f.name, f.type))
                continue
            if fields.get(f.name, pa.null()) == pa.null():
                fields[f.name] = f.type
                continue
            target = wider(fields[f.name], f.type)
            if target is None:
                raise SchemaDriftError(name, f.name, str(fields[f.name]), f"{f.type} (declare it under schema:)")
            fields[f.name] = target
    for column, kind in declared.items():
        fields.setdefault(column, kind)
    # a column that was NULL in every record read so far is a string (no format stores a NULL type)
    return pa.schema([pa.field(n, pa.string() if t == pa.null() else t, nullable=True) for n, t in fields.items()])
