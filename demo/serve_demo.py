"""`make demo`, serving part: publish the star schema (gold) to a fresh MariaDB database and the silver tables to a
fresh PostgreSQL database, check every published table's row count against the lake, and print where
`lakeforge serve sql` and `lakeforge serve web` are reached."""

from __future__ import annotations

import os
import sys
from typing import Any

import psycopg
import pymysql
import setup_sources

OLAP_DB = os.environ.get("LAKEFORGE_DEMO_OLAP_DB", "lakeforge_demo_olap")
STAGING_DB = os.environ.get("LAKEFORGE_DEMO_STAGING_DB", "lakeforge_demo_staging")


def fresh_databases() -> None:
    with psycopg.connect(setup_sources.PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{STAGING_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{STAGING_DB}"')
    my = pymysql.connect(host=setup_sources.MY_HOST, port=setup_sources.MY_PORT, user="root", autocommit=True)
    with my.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{OLAP_DB}`")
        cur.execute(f"CREATE DATABASE `{OLAP_DB}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    my.close()


def target_count(target: str, table: str) -> int:
    if target == "staging":
        pg = setup_sources.PG_ADMIN.rsplit("/", 1)[0] + "/" + STAGING_DB
        with psycopg.connect(pg) as conn:
            return int(conn.execute(f'SELECT count(*) FROM public."{table}"').fetchone()[0])  # type: ignore[index]
    my = pymysql.connect(host=setup_sources.MY_HOST, port=setup_sources.MY_PORT, user="root", database=OLAP_DB)
    with my.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM `{table}`")
        count = int(cur.fetchone()[0])  # type: ignore[index]
    my.close()
    return count


def main(project: Any) -> int:
    from lakeforge.cli.common import print_rows

    fresh_databases()
    results = project.publish()
    rows, ok = [], True
    for r in results:
        lake_rows = project.lake.info(r.lake_table).rows
        count = target_count(r.target, r.target_table) if r.status != "failed" else -1
        ok = ok and r.status == "published" and count == lake_rows
        rows.append([r.target, r.lake_table, r.target_table, r.mode, r.status, r.rows, count,
                     "yes" if count == lake_rows else "NO", f"{r.seconds:.2f}"])
    print_rows(f"lakeforge publish: gold -> MariaDB {OLAP_DB}, silver -> PostgreSQL {STAGING_DB}",
               ["target", "lake table", "target table", "mode", "status", "rows", "in target", "equal", "seconds"],
               rows)
    for r in results:
        if r.error:
            print(f"{r.lake_table}: {r.error}", file=sys.stderr)
    if not ok:
        print("MISMATCH: a published table differs from the lake", file=sys.stderr)
        return 1
    folder = project.path
    print(f"published {len(results)} tables; MariaDB: mariadb -h 127.0.0.1 {OLAP_DB}; "
          f"PostgreSQL: psql -h 127.0.0.1 -U postgres {STAGING_DB}")
    print(f"SQL endpoint:  lakeforge serve sql -p {folder}   then   psql -h 127.0.0.1 -p 5433 -d lakeforge -c '\\dt'")
    print(f"dashboards:    lakeforge serve web -p {folder}   then open http://127.0.0.1:8080/d/sales "
          "(operations: http://127.0.0.1:8080/ops)")
    return 0
