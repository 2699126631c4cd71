"""MariaDB and MySQL: PyMySQL, ``LOAD DATA LOCAL INFILE`` from tab-separated chunks of bounded size.

DDL is not transactional here (each statement commits), so ``replace`` loads a shadow table, then swaps it in
with one ``RENAME TABLE t TO t__lf_old, t__lf_new TO t`` (atomic: readers see the old or the new table) and
records the version right after. A crash between the swap and the record only makes the next publish load the
same version again. ``upsert`` is one InnoDB transaction (staging in a TEMPORARY table, which does not commit).

``LOAD DATA LOCAL`` turns bad values into warnings instead of errors, so every load checks ``SHOW WARNINGS``
and fails on the first one: nothing is truncated or replaced silently. Sessions run in strict SQL mode with
``time_zone = '+00:00'``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from lakeforge.load.killpoint import kill_at
from lakeforge.serve.destinations import text
from lakeforge.serve.destinations.base import PUBLISHED_TABLE, Column, Destination, Published, TableSpec, signature

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeforge.serve.foreign_keys import ForeignKey

KEY_BYTES = 3072
"""InnoDB's largest key; a utf8mb4 character takes up to 4 bytes, a fixed-width column at most 16."""
KEY_CHARS = KEY_BYTES // 4
TABLE_OPTIONS = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
_INTS = {"int8": "TINYINT", "int16": "SMALLINT", "int32": "INT", "int64": "BIGINT"}


def quote(identifier: str) -> str:
    return "`" + identifier.replace("`", "``") + "`"


def _bool(array: pa.Array) -> pa.Array:
    import pyarrow as pa

    return text.as_text(array.cast(pa.int8()))


def _float(array: pa.Array) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    if array.null_count < len(array) and not pc.all(pc.is_finite(array.drop_null())).as_py():
        raise ValueError("MariaDB cannot store NaN or Infinity in a floating-point column")
    # a float32 in its shortest form (3.4028235e+38) reads as a double just past FLOAT's range: send it widened
    return text.as_text(array.cast(pa.float64()))


def _datetime(array: pa.Array) -> pa.Array:
    import pyarrow as pa

    values = text.microseconds(array)
    if pa.types.is_timestamp(values.type) and values.type.tz:
        values = values.cast(pa.timestamp("us"))  # the UTC wall time
    return text.as_text(values)


def _micros(array: pa.Array) -> pa.Array:
    import pyarrow as pa

    return text.as_text(text.microseconds(array).cast(pa.int64()))


class MySQLDestination(Destination):
    TYPE: ClassVar[str] = "mysql"
    BULK_PATH: ClassVar[str] = "LOAD DATA LOCAL INFILE (tab-separated chunks)"
    TRANSACTIONAL_DDL: ClassVar[bool] = False
    SUPPORTS_UPSERT: ClassVar[bool] = True
    SUPPORTS_FOREIGN_KEYS: ClassVar[bool] = True

    conn: Any = None

    # -- connection ---------------------------------------------------------------------------------------
    def connect(self) -> None:
        import pymysql

        cfg = self.config
        try:
            self.conn = pymysql.connect(
                host=cfg.host,
                port=cfg.port or 3306,
                user=cfg.user or "",
                password=cfg.secret() or "",
                database=cfg.database,
                connect_timeout=cfg.connect_timeout,
                autocommit=True,
                charset="utf8mb4",
                local_infile=True,
                init_command="SET time_zone = '+00:00', sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,"
                "NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'",
            )
            self._sql(
                f"CREATE TABLE IF NOT EXISTS {quote(PUBLISHED_TABLE)} (table_name VARCHAR(255) PRIMARY KEY, "
                "lake_table VARCHAR(255) NOT NULL, lake_version BIGINT NOT NULL, mode VARCHAR(16) NOT NULL, "
                "columns VARCHAR(64) NOT NULL, row_count BIGINT NOT NULL, published_at DATETIME(6) NOT NULL) "
                + TABLE_OPTIONS
            )
        except pymysql.MySQLError as exc:
            self.close()
            where = f"{cfg.user}@{cfg.host}:{cfg.port or 3306}/{cfg.database}"
            raise self.error(f"cannot publish to MariaDB/MySQL {where}", exc) from None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _sql(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall()) if cur.description else []

    # -- types --------------------------------------------------------------------------------------------
    def column(self, field: pa.Field, *, key: bool, json: bool) -> Column:
        import pyarrow as pa

        t, name, null = field.type, field.name, field.nullable and not key
        if str(t) in _INTS or str(t).startswith("uint"):
            sql = _INTS.get(str(t)) or _INTS[str(t)[1:]] + " UNSIGNED"
            return Column(name, sql, text.as_text, null)
        if pa.types.is_boolean(t):
            return Column(name, "BOOLEAN", _bool, null, note="MariaDB's BOOLEAN is TINYINT(1): true/false are 1/0")
        if pa.types.is_float32(t):
            return Column(
                name,
                "DOUBLE",
                _float,
                null,
                note="float32 as DOUBLE (exact widening: MariaDB prints "
                "FLOAT with 6 significant digits); NaN and Infinity fail the publish",
            )
        if pa.types.is_float64(t):
            return Column(name, "DOUBLE", _float, null, note="NaN and Infinity cannot be stored: fail the publish")
        if pa.types.is_decimal(t) and t.precision <= 65 and 0 <= t.scale <= 38:
            return Column(name, f"DECIMAL({t.precision},{t.scale})", text.as_text, null)
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            if json:
                return Column(name, "JSON", text.escaped, null, note="MariaDB's JSON is LONGTEXT: the text is kept")
            if key:
                return Column(
                    name,
                    f"VARCHAR({KEY_CHARS})",
                    text.escaped,
                    null,
                    note=f"key/index column: VARCHAR({KEY_CHARS}); a longer value fails the publish",
                )
            return Column(name, "LONGTEXT", text.escaped, null)
        if pa.types.is_fixed_size_binary(t):
            return Column(name, f"BINARY({t.byte_width})", text.hex_digits, null, load_via="UNHEX")
        if pa.types.is_binary(t) or pa.types.is_large_binary(t):
            return Column(name, "VARBINARY(3072)" if key else "LONGBLOB", text.hex_digits, null, load_via="UNHEX")
        if pa.types.is_date(t):
            return Column(
                name,
                "DATE",
                text.as_text,
                null,
                note="DATE holds 1000-01-01..9999-12-31; a date outside fails the publish",
            )
        if pa.types.is_timestamp(t):
            note = (
                "timestamp with time zone: DATETIME(6) holding UTC (MariaDB's TIMESTAMP ends in 2038)" if t.tz else None
            )
            return Column(name, "DATETIME(6)" + (" COMMENT 'UTC'" if t.tz else ""), _datetime, null, note=note)
        if pa.types.is_time(t):
            return Column(name, "TIME(6)", _datetime, null)
        if pa.types.is_duration(t):
            return Column(
                name, "BIGINT", _micros, null, note="MariaDB has no interval type: BIGINT holding microseconds"
            )
        raise self.error(f"column '{name}' has type {t}, which has no exact MariaDB/MySQL type; cast it in a model")

    def adjust(self, spec: TableSpec) -> TableSpec:
        """Shrink VARCHAR key columns so every key and index fits in 3072 bytes (said in the column's note)."""
        width = {c.name: KEY_CHARS for c in spec.columns if c.sql_type.startswith("VARCHAR(")}
        for cols in [spec.primary_key, *spec.indexes]:
            strings = [c for c in cols if c in width]
            if strings:
                budget = (KEY_BYTES - 16 * (len(cols) - len(strings))) // 4 // len(strings)
                for c in strings:
                    width[c] = min(width[c], budget)
        columns = [
            dataclasses.replace(
                c,
                sql_type=f"VARCHAR({width[c.name]})",
                note=f"key/index column: VARCHAR("
                f"{width[c.name]}) (InnoDB keys hold 3072 bytes); a longer value fails the publish",
            )
            if c.name in width
            else c
            for c in spec.columns
        ]
        return dataclasses.replace(spec, columns=columns)

    # -- state --------------------------------------------------------------------------------------------
    def published(self, spec: TableSpec) -> Published | None:
        rows = self._sql(
            f"SELECT p.lake_table, p.lake_version, p.columns FROM {quote(PUBLISHED_TABLE)} p "
            "JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = DATABASE() AND t.TABLE_NAME = p.table_name "
            "WHERE p.table_name = %s",
            (spec.target_table,),
        )
        return Published(rows[0][0], int(rows[0][1]), rows[0][2]) if rows else None

    def _record(self, spec: TableSpec, rows: int) -> None:
        self._sql(
            f"INSERT INTO {quote(PUBLISHED_TABLE)} (table_name, lake_table, lake_version, mode, columns, row_count, "
            "published_at) VALUES (%s, %s, %s, %s, %s, %s, UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE "
            "lake_table = VALUES(lake_table), lake_version = VALUES(lake_version), mode = VALUES(mode), "
            "columns = VALUES(columns), row_count = VALUES(row_count), published_at = VALUES(published_at)",
            (spec.target_table, spec.lake_table, spec.version, spec.mode, signature(spec), rows),
        )

    # -- writing ------------------------------------------------------------------------------------------
    def _ddl(self, spec: TableSpec, table: str) -> str:
        cols = [f"{quote(c.name)} {c.sql_type}{'' if c.nullable else ' NOT NULL'}" for c in spec.columns]
        if spec.primary_key:
            cols.append("PRIMARY KEY (" + ", ".join(quote(k) for k in spec.primary_key) + ")")
        for i, idx in enumerate(spec.indexes):
            cols.append(f"INDEX {quote(f'i{i}')} (" + ", ".join(quote(c) for c in idx) + ")")
        return f"CREATE TABLE {quote(table)} ({', '.join(cols)}) {TABLE_OPTIONS}"

    def _load(self, table: str, spec: TableSpec, batches: Iterable[pa.RecordBatch]) -> int:
        """Stream ``batches`` into ``table`` through temp files of at most ``chunk_bytes`` each."""
        targets, sets = [], []
        for i, c in enumerate(spec.columns):
            if c.load_via:
                targets.append(f"@v{i}")
                sets.append(f"{quote(c.name)} = {c.load_via}(@v{i})")
            else:
                targets.append(quote(c.name))
        statement = (
            f"LOAD DATA LOCAL INFILE %s INTO TABLE {quote(table)} CHARACTER SET utf8mb4 "
            "FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' "
            f"({', '.join(targets)})" + (" SET " + ", ".join(sets) if sets else "")
        )
        rows = 0
        for path, count in self._chunks(spec, batches):
            try:
                self._sql(statement, (path,))
                warnings = self._sql("SHOW WARNINGS")
            finally:
                os.unlink(path)
            if warnings:
                level, code, message = warnings[0][:3]
                raise self.error(f"table {spec.lake_table}: {level} {code}: {message} (in a batch of {count} rows)")
            rows += count
        return rows

    def _chunks(self, spec: TableSpec, batches: Iterable[pa.RecordBatch]) -> Iterator[tuple[str, int]]:
        renders = [c.render for c in spec.columns]
        handle, path, count, size = None, "", 0, 0
        try:
            for batch in batches:
                if handle is None:
                    fd, path = tempfile.mkstemp(prefix="lakeforge-publish-", suffix=".tsv")
                    handle, count, size = os.fdopen(fd, "wb"), 0, 0
                try:
                    data = text.encode(batch, renders)
                except text.EncodeError as exc:
                    raise self.error(f"table {spec.lake_table}", exc) from None
                handle.write(data)
                count, size = count + batch.num_rows, size + len(data)
                if size >= self.config.chunk_bytes:
                    handle.close()
                    handle = None
                    yield path, count
            if handle is not None:
                handle.close()
                handle = None
                yield path, count
        finally:
            if handle is not None:
                handle.close()
                os.unlink(path)

    def replace(self, spec: TableSpec, batches: Iterable[pa.RecordBatch]) -> int:
        import pymysql

        new, old, target = spec.target_table + "__lf_new", spec.target_table + "__lf_old", spec.target_table
        try:
            self._sql(f"DROP TABLE IF EXISTS {quote(new)}, {quote(old)}")
            self._sql(self._ddl(spec, new))
            self.conn.begin()
            rows = self._load(new, spec, batches)
            self.conn.commit()
            exists = self._sql(
                "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s", (target,)
            )
            if exists:
                self._sql(f"RENAME TABLE {quote(target)} TO {quote(old)}, {quote(new)} TO {quote(target)}")
            else:
                self._sql(f"RENAME TABLE {quote(new)} TO {quote(target)}")
            kill_at("publish_swapped", spec.lake_table)
            self._record(spec, rows)
            self._sql(f"DROP TABLE IF EXISTS {quote(old)}")
        except pymysql.MySQLError as exc:
            self._rollback()
            raise self.error(f"table {spec.lake_table} -> {target}", exc) from None
        except BaseException:
            self._rollback()
            raise
        return rows

    def upsert(self, spec: TableSpec, batches: Iterable[pa.RecordBatch]) -> int:
        import pymysql

        target, key = quote(spec.target_table), spec.primary_key
        names = ", ".join(quote(c) for c in spec.names)
        on_key = " AND ".join(f"s.{quote(k)} = t.{quote(k)}" for k in key)
        others = [quote(c) for c in spec.names if c not in key]
        update = ", ".join(f"{c} = VALUES({c})" for c in others or [quote(key[0])])
        try:
            self._sql("DROP TEMPORARY TABLE IF EXISTS lf_stage")
            self._sql(f"CREATE TEMPORARY TABLE lf_stage LIKE {target}")
            self.conn.begin()
            rows = self._load("lf_stage", spec, batches)
            self._sql(f"DELETE t FROM {target} t LEFT JOIN lf_stage s ON {on_key} WHERE s.{quote(key[0])} IS NULL")
            self._sql(f"INSERT INTO {target} ({names}) SELECT {names} FROM lf_stage ON DUPLICATE KEY UPDATE {update}")
            self._record(spec, rows)
            self.conn.commit()
            self._sql("DROP TEMPORARY TABLE IF EXISTS lf_stage")
        except pymysql.MySQLError as exc:
            self._rollback()
            raise self.error(f"table {spec.lake_table} -> {spec.target_table}", exc) from None
        except BaseException:
            self._rollback()
            raise
        return rows

    # -- foreign keys -------------------------------------------------------------------------------------
    def foreign_keys(self) -> set[str]:
        rows = self._sql(
            "SELECT CONSTRAINT_NAME FROM information_schema.TABLE_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() "
            "AND CONSTRAINT_TYPE = 'FOREIGN KEY' AND CONSTRAINT_NAME LIKE 'lf\\_fk\\_%%'"
        )
        return {r[0] for r in rows}

    def drop_foreign_key(self, fk: ForeignKey) -> None:
        self._sql(f"ALTER TABLE {quote(fk.table)} DROP FOREIGN KEY {quote(fk.name)}")

    def add_foreign_key(self, fk: ForeignKey) -> None:
        import pymysql

        try:
            self._sql(
                f"ALTER TABLE {quote(fk.table)} ADD CONSTRAINT {quote(fk.name)} FOREIGN KEY ({quote(fk.column)}) "
                f"REFERENCES {quote(fk.ref_table)} ({quote(fk.ref_column)})"
            )
        except pymysql.MySQLError as exc:
            raise self.error(f"foreign key {fk.name}", exc) from None

    def _rollback(self) -> None:
        with contextlib.suppress(Exception):  # the connection may be gone; the error being raised says why
            self.conn.rollback()
