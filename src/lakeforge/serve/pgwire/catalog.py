"""Enough of ``pg_catalog`` and ``information_schema`` for psql (``\\dt``, ``\\d table``, ``\\dn``) and drivers.

DuckDB's own ``pg_catalog`` lists lake tables as views with DuckDB type names and lacks functions psql calls
(``pg_get_userbyid``). So every session gets a schema ``lf_catalog`` with small tables describing the lake's
tables in PostgreSQL's terms (each layer a schema, each lake table a ``relkind = 'r'`` table, each column its
exact PostgreSQL type and typmod) and macros for the functions clients call; :func:`rewrite` points a
query's ``pg_catalog.x`` / ``information_schema.x`` at them and drops the syntax DuckDB does not parse
(``OPERATOR(pg_catalog.~)``, ``COLLATE pg_catalog.default``, ``::regclass``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from lakeforge.serve.pgwire import types as t

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

OWNER = "lakeforge"
NS_PG_CATALOG, NS_PUBLIC, NS_INFO = 11, 2200, 13_000
_TABLES = {
    "pg_namespace": "oid BIGINT, nspname VARCHAR, nspowner BIGINT, nspacl VARCHAR",
    "pg_class": "oid BIGINT, relname VARCHAR, relnamespace BIGINT, relkind VARCHAR, relowner BIGINT, relam BIGINT, "
    "reltuples DOUBLE, relpages INTEGER, relchecks INTEGER, relhasindex BOOLEAN, relhasrules BOOLEAN, "
    "relhastriggers BOOLEAN, relrowsecurity BOOLEAN, relforcerowsecurity BOOLEAN, relispartition BOOLEAN, "
    "reltablespace BIGINT, reloftype BIGINT, relpersistence VARCHAR, relreplident VARCHAR, relpartbound VARCHAR, "
    "reloptions VARCHAR[], relacl VARCHAR[], relnatts INTEGER, reltype BIGINT, reltoastrelid BIGINT, "
    "relhassubclass BOOLEAN, relfilenode BIGINT, relisshared BOOLEAN",
    "pg_attribute": "attrelid BIGINT, attname VARCHAR, atttypid BIGINT, atttypmod INTEGER, attnum INTEGER, "
    "attnotnull BOOLEAN, attisdropped BOOLEAN, atthasdef BOOLEAN, attidentity VARCHAR, attgenerated VARCHAR, "
    "attcollation BIGINT, attlen INTEGER, attstorage VARCHAR, attcompression VARCHAR, attstattarget INTEGER, "
    "attndims INTEGER, attislocal BOOLEAN, attinhcount INTEGER, attfdwoptions VARCHAR[], attoptions VARCHAR[]",
    "pg_type": "oid BIGINT, typname VARCHAR, typnamespace BIGINT, typowner BIGINT, typlen INTEGER, typtype VARCHAR, "
    "typcategory VARCHAR, typcollation BIGINT, typbasetype BIGINT, typelem BIGINT, typrelid BIGINT, "
    "typarray BIGINT, typdelim VARCHAR, typnotnull BOOLEAN, typtypmod INTEGER, typinput VARCHAR, "
    "typoutput VARCHAR, typreceive VARCHAR, typsend VARCHAR, typndims INTEGER, typdefault VARCHAR, typacl VARCHAR",
    "pg_am": "oid BIGINT, amname VARCHAR, amtype VARCHAR",
    "pg_database": "oid BIGINT, datname VARCHAR, datdba BIGINT, encoding INTEGER, datcollate VARCHAR, "
    "datctype VARCHAR, datallowconn BOOLEAN, datacl VARCHAR[], datistemplate BOOLEAN, datlocprovider VARCHAR, "
    "daticulocale VARCHAR, dattablespace BIGINT",
    "pg_roles": "oid BIGINT, rolname VARCHAR, rolsuper BOOLEAN, rolinherit BOOLEAN, rolcreaterole BOOLEAN, "
    "rolcreatedb BOOLEAN, rolcanlogin BOOLEAN, rolreplication BOOLEAN, rolconnlimit INTEGER, "
    "rolvaliduntil TIMESTAMP, rolbypassrls BOOLEAN, rolconfig VARCHAR[]",
    "pg_description": "objoid BIGINT, classoid BIGINT, objsubid INTEGER, description VARCHAR",
    "pg_attrdef": "oid BIGINT, adrelid BIGINT, adnum INTEGER, adbin VARCHAR",
    "pg_collation": "oid BIGINT, collname VARCHAR, collnamespace BIGINT",
    "pg_index": "indexrelid BIGINT, indrelid BIGINT, indisprimary BOOLEAN, indisunique BOOLEAN, "
    "indisclustered BOOLEAN, indisvalid BOOLEAN, indisreplident BOOLEAN, indkey INTEGER[], indnatts INTEGER, "
    "indnullsnotdistinct BOOLEAN, indisexclusion BOOLEAN, indimmediate BOOLEAN, indexprs VARCHAR, indpred VARCHAR",
    "pg_constraint": "oid BIGINT, conname VARCHAR, connamespace BIGINT, contype VARCHAR, conrelid BIGINT, "
    "confrelid BIGINT, conindid BIGINT, conkey INTEGER[], confkey INTEGER[], condeferrable BOOLEAN, "
    "condeferred BOOLEAN, convalidated BOOLEAN, conparentid BIGINT, conislocal BOOLEAN",
    "pg_policy": "oid BIGINT, polname VARCHAR, polrelid BIGINT, polpermissive BOOLEAN, polroles BIGINT[], "
    "polqual VARCHAR, polwithcheck VARCHAR, polcmd VARCHAR",
    "pg_statistic_ext": "oid BIGINT, stxrelid BIGINT, stxnamespace BIGINT, stxname VARCHAR, stxkind VARCHAR[], "
    "stxstattarget INTEGER, stxkeys INTEGER[]",
    "pg_publication": "oid BIGINT, pubname VARCHAR, puballtables BOOLEAN",
    "pg_publication_rel": "oid BIGINT, prpubid BIGINT, prrelid BIGINT, prqual VARCHAR, prattrs INTEGER[]",
    "pg_publication_namespace": "oid BIGINT, pnpubid BIGINT, pnnspid BIGINT",
    "pg_inherits": "inhrelid BIGINT, inhparent BIGINT, inhseqno INTEGER, inhdetachpending BOOLEAN",
    "pg_trigger": "oid BIGINT, tgrelid BIGINT, tgname VARCHAR, tgisinternal BOOLEAN, tgenabled VARCHAR, "
    "tgparentid BIGINT",
    "pg_rewrite": "oid BIGINT, rulename VARCHAR, ev_class BIGINT",
    "pg_foreign_table": "ftrelid BIGINT, ftserver BIGINT, ftoptions VARCHAR[]",
    "pg_partitioned_table": "partrelid BIGINT, partstrat VARCHAR",
    "pg_tablespace": "oid BIGINT, spcname VARCHAR",
    "pg_extension": "oid BIGINT, extname VARCHAR, extversion VARCHAR, extnamespace BIGINT",
    "pg_proc": "oid BIGINT, proname VARCHAR, pronamespace BIGINT, prokind VARCHAR, prorettype BIGINT",
    "pg_settings": "name VARCHAR, setting VARCHAR",
}
_MACROS = [
    f"pg_get_userbyid(x) AS '{OWNER}'",
    "pg_table_is_visible(x) AS true",
    "pg_type_is_visible(x) AS true",
    "pg_function_is_visible(x) AS true",
    "pg_get_expr(x, y, z := false) AS NULL::VARCHAR",
    "pg_get_indexdef(x, y := 0, z := false) AS NULL::VARCHAR",
    "pg_get_constraintdef(x, y := false) AS NULL::VARCHAR",
    "pg_get_statisticsobjdef_columns(x) AS NULL::VARCHAR",
    "pg_get_partkeydef(x) AS NULL::VARCHAR",
    "pg_get_viewdef(x, y := false) AS NULL::VARCHAR",
    "pg_relation_is_publishable(x) AS false",
    "pg_encoding_to_char(x) AS 'UTF8'",
    "has_table_privilege(x, y, z := NULL) AS true",
    "has_schema_privilege(x, y, z := NULL) AS true",
    "has_database_privilege(x, y, z := NULL) AS true",
    "obj_description(x, y := NULL) AS NULL::VARCHAR",
    "shobj_description(x, y) AS NULL::VARCHAR",
    "col_description(x, y) AS NULL::VARCHAR",
    "current_schemas(x) AS ['public']",
    "current_schema() AS 'public'",
    "pg_backend_pid() AS 1",
    "array_upper(a, d) AS len(a)",
    "array_lower(a, d) AS CASE WHEN len(a) > 0 THEN 1 END",
    "regclass_name(x) AS (SELECT relname FROM lf_catalog.pg_class WHERE oid = x)",
    "regclass_oid(x) AS (SELECT c.oid FROM lf_catalog.pg_class c JOIN lf_catalog.pg_namespace n ON "
    "n.oid = c.relnamespace WHERE c.relname = x OR n.nspname || '.' || c.relname = x)",
    "regnamespace_name(x) AS (SELECT nspname FROM lf_catalog.pg_namespace WHERE oid = x)",
    "format_type(type_oid, mod) AS CASE WHEN type_oid = 1700 AND mod > 4 THEN 'numeric(' || ((mod - 4) >> 16) || "
    "',' || ((mod - 4) & 65535) || ')' ELSE (SELECT CASE typname "
    + " ".join(
        f"WHEN '{n}' THEN '{name}'"
        for n, name in (
            ("int2", "smallint"),
            ("int4", "integer"),
            ("int8", "bigint"),
            ("float4", "real"),
            ("float8", "double precision"),
            ("bool", "boolean"),
            ("varchar", "character varying"),
            ("timestamp", "timestamp without time zone"),
            ("timestamptz", "timestamp with time zone"),
            ("time", "time without time zone"),
        )
    )
    + " ELSE typname END FROM lf_catalog.pg_type WHERE pg_type.oid = type_oid) END",
]
_TYPNAMES = {
    t.BOOL: "bool",
    t.BYTEA: "bytea",
    t.INT8: "int8",
    t.INT2: "int2",
    t.INT4: "int4",
    t.TEXT: "text",
    t.JSON: "json",
    t.FLOAT4: "float4",
    t.FLOAT8: "float8",
    t.DATE: "date",
    t.TIME: "time",
    t.TIMESTAMP: "timestamp",
    t.TIMESTAMPTZ: "timestamptz",
    t.INTERVAL: "interval",
    t.NUMERIC: "numeric",
    t.UUID: "uuid",
    t.VARCHAR: "varchar",
    19: "name",
    26: "oid",
    18: "char",
    1009: "_text",
    1007: "_int4",
}
_REWRITES: list[tuple[re.Pattern[str], Any]] = [
    (re.compile(r"OPERATOR\(pg_catalog\.([~!*=<>]+)\)"), r"\1"),
    (re.compile(r"\s+COLLATE\s+pg_catalog\.(\"?\w+\"?)", re.I), ""),
    (re.compile(r"('[^']*')::(pg_catalog\.)?regclass\b", re.I), r"lf_catalog.regclass_oid(\1)"),
    (re.compile(r"([\w.]+)::(pg_catalog\.)?regclass\b", re.I), r"lf_catalog.regclass_name(\1)"),
    (re.compile(r"([\w.]+)::(pg_catalog\.)?regtype\b", re.I), r"lf_catalog.format_type(\1, -1)"),
    (re.compile(r"([\w.]+)::(pg_catalog\.)?regnamespace\b", re.I), r"lf_catalog.regnamespace_name(\1)"),
    (re.compile(r"::(pg_catalog\.)?(oid|regproc|regprocedure|xid)\b", re.I), "::BIGINT"),
    (re.compile(r"::(pg_catalog\.)?(name|\"char\"|char)\b(?!\s*\()", re.I), "::VARCHAR"),
    (re.compile(r"::pg_catalog\.(\w+)", re.I), r"::\1"),
    (re.compile(r"\bpg_catalog\.(\w+)(\s*\()?", re.I), lambda m: _qualify(m.group(1), m.group(2))),
    (re.compile(r"\binformation_schema\.", re.I), "lf_information_schema."),
    (re.compile(r"\b(FROM|JOIN)\s+(" + "|".join(_TABLES) + r")\b", re.I), r"\1 lf_catalog.\2"),
]
_MACRO_NAMES = {m.split("(", 1)[0] for m in _MACROS}


def _qualify(name: str, call: str | None) -> str:
    """``pg_catalog.x`` -> ``lf_catalog.x`` for our tables and macros; DuckDB's own function otherwise."""
    if call is None:
        return f"lf_catalog.{name}"
    return f"lf_catalog.{name}{call}" if name.lower() in _MACRO_NAMES else f"{name}{call}"


_CATALOG_WORDS = re.compile(r"pg_catalog|information_schema|::\s*reg|\bpg_[a-z_]+\b", re.I)


def rewrite(sql: str) -> str:
    """Point catalog references at ``lf_catalog``; queries that touch no catalog pass through unchanged."""
    if not _CATALOG_WORDS.search(sql):
        return sql
    for pattern, replacement in _REWRITES:
        sql = pattern.sub(replacement, sql)
    return sql


def install(con: duckdb.DuckDBPyConnection, schemas: dict[str, pa.Schema], database: str) -> None:
    """Create ``lf_catalog`` and ``lf_information_schema`` describing ``schemas`` (``layer.table`` -> schema)."""
    con.execute("CREATE SCHEMA lf_catalog")
    con.execute("CREATE SCHEMA lf_information_schema")
    for name, columns in _TABLES.items():
        con.execute(f"CREATE TABLE lf_catalog.{name} ({columns})")
    for macro in _MACROS:
        con.execute(f"CREATE MACRO lf_catalog.{macro}")
    layers = sorted({n.partition(".")[0] for n in schemas})
    namespaces = [(NS_PG_CATALOG, "pg_catalog"), (NS_PUBLIC, "public"), (NS_INFO, "information_schema")]
    namespaces += [(16_384 + i, layer) for i, layer in enumerate(layers)]
    ns_oid = {n: o for o, n in namespaces}
    _insert(con, "pg_namespace", [(o, n, 10, None) for o, n in namespaces])
    _insert(con, "pg_am", [(2, "heap", "t")])
    _insert(con, "pg_roles", [(10, OWNER, False, True, False, False, True, False, -1, None, False, None)])
    _insert(con, "pg_database", [(1, database, 10, 6, "C.UTF-8", "C.UTF-8", True, None, False, "c", None, 1663)])
    _insert(
        con,
        "pg_type",
        [
            (
                oid,
                name,
                NS_PG_CATALOG,
                10,
                t.SIZES.get(oid, -1),
                "b",
                "S" if oid in (t.TEXT, t.VARCHAR) else "N",
                100 if oid in (t.TEXT, t.VARCHAR) else 0,
                0,
                0,
                0,
                0,
                ",",
                False,
                -1,
                None,
                None,
                None,
                None,
                0,
                None,
                None,
            )
            for oid, name in _TYPNAMES.items()
        ],
    )
    classes, attributes, tables, cols = [], [], [], []
    for i, (name, schema) in enumerate(sorted(schemas.items())):
        layer, _, table = name.partition(".")
        oid = 100_000 + i
        classes.append(
            (
                oid,
                table,
                ns_oid[layer],
                "r",
                10,
                2,
                -1.0,
                0,
                0,
                False,
                False,
                False,
                False,
                False,
                False,
                0,
                0,
                "p",
                "d",
                None,
                None,
                None,
                len(schema),
                0,
                0,
                False,
                oid,
                False,
            )
        )
        tables.append((database, layer, table, "BASE TABLE", None, None, None, None, None, "YES", "NO", None))
        for pos, field in enumerate(schema, start=1):
            typ = t.pg_type(field.type)
            attributes.append(
                (
                    oid,
                    field.name,
                    typ.oid,
                    typ.typmod,
                    pos,
                    False,
                    False,
                    False,
                    "",
                    "",
                    0,
                    typ.size,
                    "p",
                    "",
                    -1,
                    0,
                    True,
                    0,
                    None,
                    None,
                )
            )
            cols.append(_info_column(database, layer, table, field.name, pos, typ))
    _insert(con, "pg_class", classes)
    _insert(con, "pg_attribute", attributes)
    _info_schema(con, tables, cols, layers, database)


def _info_column(database: str, layer: str, table: str, column: str, pos: int, typ: t.PgType) -> tuple[Any, ...]:
    precision = ((typ.typmod - 4) >> 16) if typ.oid == t.NUMERIC and typ.typmod > 4 else None
    scale = ((typ.typmod - 4) & 0xFFFF) if precision is not None else None
    radix = 10 if precision is not None else None
    name = t.NAMES.get(typ.oid, "text")
    return (
        database,
        layer,
        table,
        column,
        pos,
        None,
        "YES",
        name,
        None,
        None,
        precision,
        radix,
        scale,
        6 if typ.oid in (t.TIMESTAMP, t.TIMESTAMPTZ, t.TIME) else None,
        database,
        "pg_catalog",
        _TYPNAMES.get(typ.oid, "text"),
        "NO",
        "NO",
    )


def _info_schema(
    con: duckdb.DuckDBPyConnection, tables: list[Any], cols: list[Any], layers: list[str], database: str
) -> None:
    con.execute(
        "CREATE TABLE lf_information_schema.tables (table_catalog VARCHAR, table_schema VARCHAR, table_name VARCHAR, "
        "table_type VARCHAR, self_referencing_column_name VARCHAR, reference_generation VARCHAR, "
        "user_defined_type_catalog VARCHAR, user_defined_type_schema VARCHAR, user_defined_type_name VARCHAR, "
        "is_insertable_into VARCHAR, is_typed VARCHAR, commit_action VARCHAR)"
    )
    con.execute(
        "CREATE TABLE lf_information_schema.columns (table_catalog VARCHAR, table_schema VARCHAR, table_name VARCHAR, "
        "column_name VARCHAR, ordinal_position INTEGER, column_default VARCHAR, is_nullable VARCHAR, "
        "data_type VARCHAR, character_maximum_length INTEGER, character_octet_length INTEGER, "
        "numeric_precision INTEGER, numeric_precision_radix INTEGER, numeric_scale INTEGER, "
        "datetime_precision INTEGER, udt_catalog VARCHAR, udt_schema VARCHAR, udt_name VARCHAR, "
        "is_identity VARCHAR, is_generated VARCHAR)"
    )
    con.execute(
        "CREATE TABLE lf_information_schema.schemata (catalog_name VARCHAR, schema_name VARCHAR, schema_owner VARCHAR)"
    )
    _insert(con, "tables", tables, "lf_information_schema")
    _insert(con, "columns", cols, "lf_information_schema")
    _insert(con, "schemata", [(database, s, OWNER) for s in ["public", *layers]], "lf_information_schema")


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[Any], schema: str = "lf_catalog") -> None:
    if rows:
        marks = ", ".join("?" * len(rows[0]))
        con.executemany(f"INSERT INTO {schema}.{table} VALUES ({marks})", rows)
