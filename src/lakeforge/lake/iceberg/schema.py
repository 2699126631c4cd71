"""Iceberg schemas from Arrow: create tables, evolve them through Iceberg's schema updates (field ids, not
names), and refuse to put an Iceberg table where a Delta table lives.

Types: Iceberg has no 8/16-bit integers (stored as ``int``, read back as int32: a widening, values exact),
no unsigned integers and no time with a zone (lakeforge's source plans never produce those: unsigned
BIGINT is decimal(20,0), times are text; an Arrow type Iceberg cannot hold fails the write). Every column is
optional, like Delta's: a NOT NULL source column still reads back non-null, but the lake does not enforce it.
A type change Iceberg cannot promote in place (a decimal whose scale grows, int -> decimal) is a rewrite:
the column is dropped and added again (new field id) in the same commit as the rewritten data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lakeforge.errors import LakeError
from lakeforge.lake.base import INTERNAL

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.table import Table, Transaction

    from lakeforge.lake.iceberg.lake import IcebergLake


STREAM_TARGET = 64 * 2**20
"""``write.target-file-size-bytes`` of the tables lakeforge creates when ``lake.target_file_size`` is unset.
PyIceberg's streaming append buffers this many *uncompressed Arrow* bytes before it writes a file, so it is
the write's memory bound: Iceberg's default (512 MiB) made a 10M-row load peak at 1.08 GB against Delta's
0.43 GB (docs/benchmarks.md). The files come out at roughly a third of it compressed; ``maintain`` compacts
them to ``maintenance.target_file_mb``."""


DICT_SIZE = 256 * 2**10
"""``write.parquet.dict-size-bytes`` of the tables lakeforge creates: the dictionary page size past which a column
chunk falls back to plain encoding. PyIceberg's default (2 MiB, passed to pyarrow as ``dictionary_pagesize_limit``)
keeps dictionary-encoding a high-cardinality column (ids, names, amounts) long after it stops paying: on 3M
rows of ids, text, decimals and timestamps pyarrow took 1.22 s CPU at 2 MiB, 0.72 s at 1 MiB (pyarrow's and
delta-rs's default), 0.52 s at 256 KiB, and the file was 11% smaller. A column of few distinct values (a
status) still fits the dictionary and stays dictionary-encoded (docs/benchmarks.md, "Third pass")."""
CODEC = "snappy"
"""Parquet compression of the tables lakeforge creates: delta-rs's default, so both formats write the same
files (Iceberg's default, zstd, took ~8% more CPU on a 1M-row load here; docs/benchmarks.md)."""


def small_types(f: pa.Field) -> pa.Field:
    """``f`` as Iceberg stores and returns it: large_string/large_binary/large_list as their 32-bit offset forms,
    8/16-bit integers as int32, nested types field by field."""
    import pyarrow as pa

    t = f.type
    if t in (pa.int8(), pa.int16()):
        t = pa.int32()  # what Iceberg's int holds and gives back
    elif t == pa.large_string():
        t = pa.string()
    elif t == pa.large_binary():
        t = pa.binary()
    elif pa.types.is_large_list(t) or pa.types.is_list(t):
        t = pa.list_(small_types(t.value_field).with_name("element").remove_metadata())
    elif pa.types.is_struct(t):
        t = pa.struct([small_types(t.field(i)).remove_metadata() for i in range(t.num_fields)])
    elif pa.types.is_map(t):
        t = pa.map_(small_types(t.key_field).type, small_types(t.item_field).type)
    return pa.field(f.name, t, nullable=True)


def optional(schema: pa.Schema) -> pa.Schema:
    import pyarrow as pa

    return pa.schema([small_types(f) for f in schema])


def check_types(name: str, schema: pa.Schema) -> None:
    """Refuse an Arrow type Iceberg cannot hold exactly (nothing is cast silently)."""
    import pyarrow as pa

    for f in schema:
        t = f.type
        why = None
        if pa.types.is_unsigned_integer(t):
            why = "Iceberg has no unsigned integers (plan it as decimal(20,0) or a wider signed int)"
        elif pa.types.is_timestamp(t) and t.unit != "us":
            why = "Iceberg v2 timestamps have microseconds"
        elif pa.types.is_time(t) and t.unit != "us":
            why = "Iceberg time has microseconds"
        elif pa.types.is_decimal(t) and t.precision > 38:
            why = "Iceberg decimals hold at most 38 digits"
        elif pa.types.is_duration(t) or pa.types.is_interval(t) or pa.types.is_dictionary(t):
            why = "Iceberg has no such type"
        if why:
            raise LakeError(
                f"lake table {name}: column '{f.name}' has Arrow type {t}, which Iceberg cannot hold exactly: {why}"
            )


def create_table(lake: IcebergLake, name: str, schema: pa.Schema, properties: dict[str, str] | None) -> Table:
    from pyiceberg.exceptions import TableAlreadyExistsError

    from lakeforge.config.models import RestCatalogConfig
    from lakeforge.lake.iceberg.lake import iceberg_error

    refuse_delta(lake, name)
    namespace, table = lake.identifier(name)
    props = {"format-version": "2", **(properties or {})}
    props["write.target-file-size-bytes"] = str(lake.target_file_size or STREAM_TARGET)
    props.setdefault("write.parquet.compression-codec", CODEC)
    props.setdefault("write.parquet.dict-size-bytes", str(DICT_SIZE))
    if name.startswith(INTERNAL + "."):
        from lakeforge.lake.iceberg.trim import METADATA_PROPERTIES

        props.update(METADATA_PROPERTIES)
    location = None if isinstance(lake.catalog_config, RestCatalogConfig) else lake.uri(name)
    try:
        try:
            lake.catalog.create_namespace_if_not_exists(namespace)
        except Exception:  # SqlCatalog: a concurrent writer's insert of the namespace won (an IntegrityError)
            if not lake.catalog.namespace_exists(namespace):
                raise
        return lake.catalog.create_table(
            (namespace, table), schema=optional(schema), location=location, properties=props
        )
    except TableAlreadyExistsError:  # created by a concurrent writer meanwhile
        return lake.catalog.load_table((namespace, table))
    except Exception as exc:
        raise iceberg_error(name, "create", exc) from exc


def evolve_in(tx: Transaction, schema: pa.Schema, *, replace: bool) -> None:
    """Make the table's schema hold ``schema`` (already evolved by ``lake.schema.evolve``) in ``tx``: new
    columns added, promotions applied; with ``replace`` (an overwrite that may change types or drop columns)
    columns absent from ``schema`` or of another type are dropped first, then added again."""
    import pyarrow as pa

    wanted = optional(schema)
    current = pa.schema([small_types(f) for f in tx.table_metadata.schema().as_arrow()])
    if current.equals(wanted, check_metadata=False) or (
        not replace and all(n in current.names and current.field(n).type == wanted.field(n).type for n in wanted.names)
    ):
        return
    drop = [f.name for f in current if f.name not in wanted.names or f.type != wanted.field(f.name).type]
    if not replace:
        drop = [n for n in drop if n in wanted.names and not _promotable(current.field(n).type, wanted.field(n).type)]
        if drop:
            raise LakeError(
                f"columns {', '.join(drop)} change type in a way Iceberg cannot promote in place; "
                "the table must be rewritten (schema_mode=overwrite)"
            )
    if drop:
        with tx.update_schema(allow_incompatible_changes=True) as update:
            for column in drop:
                update.delete_column(column)
    with tx.update_schema() as update:
        update.union_by_name(wanted)


def _promotable(old: pa.DataType, new: pa.DataType) -> bool:
    """Iceberg's in-place promotions: int -> long, float -> double, decimal(P,S) -> decimal(P',S) P' >= P."""
    import pyarrow as pa

    if str(old) in ("int8", "int16", "int32") and str(new) in ("int8", "int16", "int32", "int64"):
        return True
    if str(old) == "float" and str(new) == "double":
        return True
    return bool(
        pa.types.is_decimal(old)
        and pa.types.is_decimal(new)
        and old.scale == new.scale
        and new.precision >= old.precision
    )


def refuse_delta(lake: IcebergLake, name: str) -> None:
    """Switching a table's format is not done in place: a Delta table where this Iceberg table would go."""
    import pyarrow.fs as pafs

    fs, root = lake.storage.filesystem()
    layer, table = name.split(".", 1)
    log = "/".join([root.rstrip("/"), layer, table, "_delta_log"])
    try:
        found = fs.get_file_info(log).type != pafs.FileType.NotFound
    except OSError:
        return
    if found:
        from lakeforge.lake.base import format_switch

        raise LakeError(format_switch(name, "Delta", "iceberg", lake.storage.join(layer, table)))
