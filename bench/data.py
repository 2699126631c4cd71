"""Benchmark data, generated inside the local PostgreSQL and MariaDB (never committed).

Two shapes, the same values in both servers (row ``g`` is a pure function of ``g``):

- ``narrow_<n>``: id, customer_id, numeric(12,2) amount, status text, updated_at timestamptz/datetime(6),
  nullable note;
- ``wide_<n>``: 31 columns of mixed types (six decimals, JSON, text, timestamps, dates, nulls).

Tables live in the database ``lakeforge_bench`` of each server and are reused when they already hold the
right row count, so a second ``python -m bench`` run starts measuring at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bench.verify import Truth

DATABASE = "lakeforge_bench"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_URL = f"postgresql://postgres@127.0.0.1:5432/{DATABASE}"
MY_URL = f"mysql://root@127.0.0.1:3306/{DATABASE}"
_CHUNK = 1_000_000


@dataclass(frozen=True)
class Col:
    name: str
    pg_type: str
    pg_expr: str
    my_type: str
    my_expr: str


_TS = "timestamptz '2024-01-01 00:00:00+00'"
_MYTS = "TIMESTAMP '2024-01-01 00:00:00'"
_STATUS_PG = "(ARRAY['new','paid','shipped','cancelled'])[1 + g % 4]"
_STATUS_MY = "ELT(1 + g % 4, 'new','paid','shipped','cancelled')"

NARROW = [
    Col("id", "bigint", "g", "bigint", "g"),
    Col("customer_id", "integer", "(g * 7919) % 100000 + 1", "int", "(g * 7919) % 100000 + 1"),
    Col("amount", "numeric(12,2)", "((g * 37) % 1000000) / 100.0", "decimal(12,2)", "((g * 37) % 1000000) / 100"),
    Col("status", "text", _STATUS_PG, "varchar(16)", _STATUS_MY),
    Col("updated_at", "timestamptz", f"{_TS} + g * interval '1 second' + (g % 1000) * interval '1 microsecond'",
        "datetime(6)", f"{_MYTS} + INTERVAL g SECOND + INTERVAL (g % 1000) MICROSECOND"),
    Col("note", "text", "CASE WHEN g % 5 = 0 THEN NULL ELSE 'note ' || left(md5(g::text), 16) END",
        "text", "IF(g % 5 = 0, NULL, CONCAT('note ', LEFT(MD5(g), 16)))"),
]

WIDE = [
    *NARROW[:3],
    Col("price", "numeric(18,4)", "((g * 7717) % 100000000) / 10000.0", "decimal(18,4)",
        "((g * 7717) % 100000000) / 10000"),
    Col("tax_rate", "numeric(5,4)", "(g % 10000) / 10000.0", "decimal(5,4)", "(g % 10000) / 10000"),
    Col("discount", "numeric(10,3)", "CASE WHEN g % 3 = 0 THEN NULL ELSE (g % 100000) / 1000.0 END",
        "decimal(10,3)", "IF(g % 3 = 0, NULL, (g % 100000) / 1000)"),
    Col("quantity", "integer", "g % 50 + 1", "int", "g % 50 + 1"),
    Col("weight", "double precision", "g * 0.25", "double", "g * 0.25"),
    Col("score", "real", "(g % 1000) / 8.0", "float", "(g % 1000) / 8"),
    Col("is_active", "boolean", "g % 2 = 0", "boolean", "g % 2 = 0"),
    Col("priority", "smallint", "g % 10", "smallint", "g % 10"),
    Col("status", "varchar(16)", _STATUS_PG, "varchar(16)", _STATUS_MY),
    Col("country", "char(2)", "(ARRAY['DE','FR','US','GB','NL','ES','IT'])[1 + g % 7]", "char(2)",
        "ELT(1 + g % 7, 'DE','FR','US','GB','NL','ES','IT')"),
    Col("city", "varchar(40)", "'city_' || (g % 5000)", "varchar(40)", "CONCAT('city_', g % 5000)"),
    Col("email", "varchar(80)", "'user' || g || '@example.com'", "varchar(80)", "CONCAT('user', g, '@example.com')"),
    Col("sku", "varchar(20)", "'SKU-' || lpad((g % 1000000)::text, 7, '0')", "varchar(20)",
        "CONCAT('SKU-', LPAD(g % 1000000, 7, '0'))"),
    Col("description", "text", "md5(g::text) || ' ' || md5((g + 1)::text)", "text",
        "CONCAT(MD5(g), ' ', MD5(g + 1))"),
    Col("payload", "jsonb",
        """('{"id": ' || g || ', "kind": "order", "vals": [' || g % 10 || ', ' || g % 7 || ']}')::jsonb""",
        "json", """CONCAT('{"id": ', g, ', "kind": "order", "vals": [', g % 10, ', ', g % 7, ']}')"""),
    Col("tags", "text", "'tag' || g % 13 || ',tag' || g % 17", "varchar(64)", "CONCAT('tag', g % 13, ',tag', g % 17)"),
    Col("created_at", "timestamptz", f"{_TS} + g * interval '1 second'", "datetime(6)", f"{_MYTS} + INTERVAL g SECOND"),
    Col("updated_at", "timestamptz", f"{_TS} + g * interval '1 second' + interval '1 day'", "datetime(6)",
        f"{_MYTS} + INTERVAL g SECOND + INTERVAL 1 DAY"),
    Col("shipped_on", "date", "CASE WHEN g % 4 = 0 THEN NULL ELSE date '2024-01-01' + (g % 365)::int END", "date",
        "IF(g % 4 = 0, NULL, DATE '2024-01-01' + INTERVAL (g % 365) DAY)"),
    Col("event_ts", "timestamp", "timestamp '2024-06-01' + g * interval '1 millisecond'", "datetime(3)",
        "TIMESTAMP '2024-06-01 00:00:00' + INTERVAL (g * 1000) MICROSECOND"),
    Col("ref_code", "varchar(36)", "md5(g::text)::uuid::text", "char(36)",
        "CONCAT_WS('-', SUBSTR(MD5(g),1,8), SUBSTR(MD5(g),9,4), SUBSTR(MD5(g),13,4), SUBSTR(MD5(g),17,4), "
        "SUBSTR(MD5(g),21,12))"),
    Col("big_counter", "bigint", "g * 1000003", "bigint", "g * 1000003"),
    Col("ratio", "numeric(20,10)", "(g % 1000003) / 1024.0", "decimal(20,10)", "(g % 1000003) / 1024"),
    Col("note", "text", "CASE WHEN g % 5 = 0 THEN NULL ELSE 'note ' || left(md5(g::text), 16) END",
        "text", "IF(g % 5 = 0, NULL, CONCAT('note ', LEFT(MD5(g), 16)))"),
    Col("comment", "varchar(255)", "CASE WHEN g % 7 = 0 THEN NULL ELSE 'comment ' || g END", "varchar(255)",
        "IF(g % 7 = 0, NULL, CONCAT('comment ', g))"),
    Col("code", "integer", "CASE WHEN g % 11 = 0 THEN NULL ELSE g % 1000 END", "int", "IF(g % 11 = 0, NULL, g % 1000)"),
    Col("balance", "numeric(14,2)", "((g * 131) % 10000000) / 100.0 - 50000", "decimal(14,2)",
        "((g * 131) % 10000000) / 100 - 50000"),
    Col("version", "integer", "1", "int", "1"),
]
SHAPES = {"narrow": NARROW, "wide": WIDE}


def table_name(shape: str, rows: int) -> str:
    return f"{shape}_{size_label(rows)}"


def size_label(rows: int) -> str:
    if rows % 1_000_000 == 0:
        return f"{rows // 1_000_000}m"
    if rows % 1000 == 0:
        return f"{rows // 1000}k"
    return str(rows)


# -- PostgreSQL ------------------------------------------------------------------------------------
def _pg(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True)


def pg_ensure(shape: str, rows: int, *, log: Any = print) -> str:
    """Create ``<shape>_<size>`` in PostgreSQL unless it already holds ``rows`` rows."""
    with _pg(PG_ADMIN) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchall():
            admin.execute(f"CREATE DATABASE {DATABASE}")
    name = table_name(shape, rows)
    cols = SHAPES[shape]
    with _pg(PG_URL) as conn:
        if _pg_count(conn, name) == rows:
            return name
        started = time.perf_counter()
        log(f"generating PostgreSQL {name} ({rows:,} rows)...")
        conn.execute(f"DROP TABLE IF EXISTS {name}")
        conn.execute(f"CREATE TABLE {name} ({', '.join(f'{c.name} {c.pg_type}' for c in cols)})")
        conn.execute("SET synchronous_commit = off")
        select = ", ".join(c.pg_expr for c in cols)
        for low in range(1, rows + 1, _CHUNK):
            high = min(low + _CHUNK - 1, rows)
            conn.execute(f"INSERT INTO {name} SELECT {select} FROM generate_series({low}::bigint, {high}::bigint) AS g")
        conn.execute(f"ALTER TABLE {name} ADD PRIMARY KEY (id)")
        conn.execute(f"CREATE INDEX {name}_updated_at ON {name} (updated_at)")
        conn.execute(f"VACUUM ANALYZE {name}")
        log(f"  {name}: {time.perf_counter() - started:.0f} s")
    return name


def _pg_count(conn: Any, name: str) -> int | None:
    if not conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0]:
        return None
    return int(conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0])


# -- MariaDB ---------------------------------------------------------------------------------------
def _my(database: str | None = DATABASE) -> Any:
    import pymysql

    return pymysql.connect(host="127.0.0.1", port=3306, user="root", database=database, autocommit=True,
                           charset="utf8mb4", init_command="SET time_zone = '+00:00'")


def my_ensure(shape: str, rows: int, *, log: Any = print) -> str:
    """Create ``<shape>_<size>`` in MariaDB unless it already holds ``rows`` rows."""
    admin = _my(None)
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {DATABASE} CHARACTER SET utf8mb4")
    admin.close()
    name = table_name(shape, rows)
    cols = SHAPES[shape]
    conn = _my()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
                        (DATABASE, name))
            if cur.fetchone()[0]:
                cur.execute(f"SELECT COUNT(*) FROM {name}")
                if cur.fetchone()[0] == rows:
                    return name
            started = time.perf_counter()
            log(f"generating MariaDB {name} ({rows:,} rows)...")
            cur.execute(f"DROP TABLE IF EXISTS {name}")
            defs = ", ".join(f"{c.name} {c.my_type}" for c in cols)
            cur.execute(f"CREATE TABLE {name} ({defs}, PRIMARY KEY (id)) ENGINE=InnoDB")
            cur.execute("SET SESSION div_precision_increment = 30, unique_checks = 0")
            select = ", ".join(c.my_expr for c in cols)
            for low in range(1, rows + 1, _CHUNK):
                high = min(low + _CHUNK - 1, rows)
                cur.execute(f"INSERT INTO {name} SELECT {select} FROM (SELECT seq AS g FROM seq_{low}_to_{high}) s")
            cur.execute(f"CREATE INDEX {name}_updated_at ON {name} (updated_at)")
            cur.execute(f"ANALYZE TABLE {name}")
            cur.fetchall()
            log(f"  {name}: {time.perf_counter() - started:.0f} s")
    finally:
        conn.close()
    return name


def ensure(source: str, shape: str, rows: int, *, log: Any = print) -> str:
    return (pg_ensure if source == "postgres" else my_ensure)(shape, rows, log=log)


def truth(source: str, table: str) -> Truth:
    """The source's fingerprint of ``table`` (bench.verify.Truth), the reference every contender must match."""
    if source == "postgres":
        with _pg(PG_URL) as conn:
            row = conn.execute(
                f"SELECT count(*), sum(amount), sum(id), count(*) - count(note), "
                f"to_char(max(updated_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') FROM {table}"
            ).fetchone()
    else:
        conn = _my()
        try:
            with conn.cursor() as cur:
                cur.execute(f"SELECT COUNT(*), SUM(amount), SUM(id), COUNT(*) - COUNT(note), "
                            f"DATE_FORMAT(MAX(updated_at), '%Y-%m-%d %H:%i:%s.%f') FROM {table}")
                row = cur.fetchone()
        finally:
            conn.close()
    count, total, ids, nulls, latest = row
    return Truth(int(count), f"{total:.2f}", int(ids or 0), int(nulls), latest)
