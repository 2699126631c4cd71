"""Source kits: what the contract suite needs from each source database, so one suite runs against all.

A kit creates a uniquely named database on the local server, creates tables from a spec (column name ->
SQL type in that dialect), inserts rows given as SQL literals, and writes the ``lakeforge.yml`` that loads
them. Types every source has are spelled once in :data:`COMMON` with the type and literal for each dialect.
"""

from __future__ import annotations

import datetime as dt
import secrets
import textwrap
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pymysql

from tests.conftest import MY_HOST, MY_PORT, PG_ADMIN

UTC = dt.UTC


class Kit:
    """One source database for a test module."""

    name: str
    source_type: str

    def __init__(self) -> None:
        self.database = "lft_" + secrets.token_hex(4)

    # -- database ------------------------------------------------------------------------------------
    def create_database(self) -> None: ...
    def drop_database(self) -> None: ...
    def execute(self, sql: str) -> list[tuple[Any, ...]]: ...
    def quote(self, identifier: str) -> str: ...
    def url(self) -> str: ...
    def bytes_literal(self, value: bytes) -> str: ...

    def string_literal(self, value: str) -> str:
        return "'" + value.replace("'", "''") + "'"

    def create_table(self, table: str, columns: dict[str, str], *, primary_key: list[str] | None = None) -> None:
        cols = [f"{self.quote(c)} {t}" for c, t in columns.items()]
        if primary_key:
            cols.append("PRIMARY KEY (" + ", ".join(self.quote(c) for c in primary_key) + ")")
        self.execute(f"CREATE TABLE {self.quote(table)} ({', '.join(cols)})")

    def insert(self, table: str, columns: list[str], rows: list[list[str]]) -> None:
        names = ", ".join(self.quote(c) for c in columns)
        values = ", ".join("(" + ", ".join(row) + ")" for row in rows)
        self.execute(f"INSERT INTO {self.quote(table)} ({names}) VALUES {values}")

    # -- project -------------------------------------------------------------------------------------
    def write_project(self, path: Path, extra: str = "") -> Path:
        path.mkdir(parents=True, exist_ok=True)
        body = f"""\
            sources:
              src:
                type: {self.source_type}
                url: {self.url()}
            lake:
              path: ./lake
            """
        (path / "lakeforge.yml").write_text(textwrap.dedent(body) + extra, encoding="utf-8")
        return path


class PostgresKit(Kit):
    name = "postgres"
    source_type = "postgres"

    def url(self) -> str:
        return f"{PG_ADMIN.rsplit('/', 1)[0]}/{self.database}"

    def create_database(self) -> None:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')

    def drop_database(self) -> None:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn, conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
            cur.execute(sql.encode())
            return list(cur.fetchall()) if cur.description else []

    def quote(self, identifier: str) -> str:
        return '"' + identifier.replace('"', '""') + '"'

    def bytes_literal(self, value: bytes) -> str:
        return f"'\\x{value.hex()}'::bytea"


class MySQLKit(Kit):
    name = "mysql"
    source_type = "mysql"

    def url(self) -> str:
        return f"mysql://root@{MY_HOST}:{MY_PORT}/{self.database}"

    def _connect(self, database: str | None) -> Any:
        return pymysql.connect(
            host=MY_HOST,
            port=MY_PORT,
            user="root",
            database=database,
            autocommit=True,
            charset="utf8mb4",
            init_command="SET time_zone = '+00:00'",
        )

    def create_database(self) -> None:
        conn = self._connect(None)
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{self.database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        conn.close()

    def drop_database(self) -> None:
        conn = self._connect(None)
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{self.database}`")
        conn.close()

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        conn = self._connect(self.database)
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                return list(cur.fetchall()) if cur.description else []
        finally:
            conn.close()

    def quote(self, identifier: str) -> str:
        return "`" + identifier.replace("`", "``") + "`"

    def bytes_literal(self, value: bytes) -> str:
        return f"X'{value.hex()}'" if value else "''"

    def string_literal(self, value: str) -> str:
        return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


KITS: dict[str, type[Kit]] = {"postgres": PostgresKit, "mysql": MySQLKit}


@dataclass
class Case:
    """A column type both sources have: its SQL type per dialect, the lake type, and values that round-trip.

    ``values`` pairs the expected Python value with its SQL literal (``literals`` overrides per dialect);
    bytes are rendered by the kit.
    """

    column: str
    types: dict[str, str]
    arrow: pa.DataType
    values: list[Any]
    literals: dict[str, list[str]] = field(default_factory=dict)

    def literal(self, kit: Kit, i: int) -> str:
        if kit.name in self.literals:
            return self.literals[kit.name][i]
        value = self.values[i]
        if isinstance(value, bytes):
            return kit.bytes_literal(value)
        if isinstance(value, str):
            return kit.string_literal(value)
        if isinstance(value, dt.datetime):
            return f"'{value.replace(tzinfo=None).isoformat(sep=' ')}'"
        if isinstance(value, dt.date):
            return f"'{value.isoformat()}'"
        return str(value)


def _both(sql_type: str) -> dict[str, str]:
    return {"postgres": sql_type, "mysql": sql_type}


BIG = Decimal("1234567890123456789012345678.0123456789")  # 38 digits: never use -BIG (rounds to 28)
COMMON: list[Case] = [
    Case("c_int16", _both("smallint"), pa.int16(), [-32768, 32767, 0]),
    Case("c_int32", _both("integer"), pa.int32(), [-2147483648, 2147483647, 0]),
    Case("c_int64", _both("bigint"), pa.int64(), [-9223372036854775808, 9223372036854775807, 0]),
    Case(
        "c_float32",
        {"postgres": "real", "mysql": "float"},
        pa.float32(),
        [1.100000023841858, -3.4028234663852886e38, 0.0],
        literals={"postgres": ["1.1", "-3.4028234e38", "0"], "mysql": ["1.1", "-3.4028234e38", "0"]},
    ),
    Case(
        "c_float64",
        {"postgres": "double precision", "mysql": "double"},
        pa.float64(),
        [0.1, -1.7976931348623157e308, 5e-324],
    ),
    Case(
        "c_dec_10_2",
        _both("decimal(10,2)"),
        pa.decimal128(10, 2),
        [Decimal("-12345678.91"), Decimal("0.01"), Decimal("0.00")],
    ),
    Case(
        "c_dec_38_10", _both("decimal(38,10)"), pa.decimal128(38, 10), [BIG, Decimal("-" + str(BIG)), Decimal("0E-10")]
    ),
    Case(
        "c_dec_38_20",
        _both("decimal(38,20)"),
        pa.decimal128(38, 20),
        [
            Decimal("123456789012345678.12345678901234567890"),
            Decimal("-0.00000000000000000001"),
            Decimal("1.00000000000000000000"),
        ],
    ),
    Case(
        "c_dec_30_0",
        _both("decimal(30,0)"),
        pa.decimal128(30, 0),
        [Decimal("999999999999999999999999999999"), Decimal("-1"), Decimal("0")],
    ),
    Case("c_varchar", _both("varchar(200)"), pa.string(), ["héllo wörld", "", "tab\there, quote ' \" \\ ;"]),
    Case("c_text", _both("text"), pa.string(), ["x" * 5000, "line1\nline2\r\n", "NULL"]),
    Case("c_date", _both("date"), pa.date32(), [dt.date(1969, 7, 20), dt.date(9999, 12, 31), dt.date(1000, 1, 1)]),
    Case(
        "c_ts",
        {"postgres": "timestamp(6)", "mysql": "datetime(6)"},
        pa.timestamp("us"),
        [
            dt.datetime(1969, 7, 20, 20, 17, 40, 123456),
            dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
            dt.datetime(2000, 2, 29, 0, 0, 0, 1),
        ],
    ),
    Case(
        "c_tstz",
        {"postgres": "timestamptz", "mysql": "timestamp(6) NULL"},
        pa.timestamp("us", tz="UTC"),
        [
            dt.datetime(2038, 1, 19, 3, 14, 7, 999999, tzinfo=UTC),
            dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC),
            dt.datetime(2024, 10, 27, 1, 30, 0, 500000, tzinfo=UTC),
        ],
        literals={
            "postgres": ["'2038-01-19 04:14:07.999999+01'", "'1970-01-01 00:00:01+00'", "'2024-10-26 21:30:00.5-04'"]
        },
    ),
    Case(
        "c_binary",
        {"postgres": "bytea", "mysql": "varbinary(64)"},
        pa.binary(),
        [b"\x00\xff\x10", b"", bytes(range(256))[:64]],
    ),
    Case(
        "c_blob", {"postgres": "bytea", "mysql": "longblob"}, pa.binary(), [b"\x00" * 1000, b"\xf0\x9f\x98\x80", b"a"]
    ),
    Case("c_json", _both("json"), pa.string(), ['{"a": [1, 2.5, "😀"], "b": null}', "[]", '"x"']),
]
