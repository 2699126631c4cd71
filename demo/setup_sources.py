"""Load the Classic Models sample database, split between the local PostgreSQL and MariaDB.

PostgreSQL database ``lakeforge_demo_crm``: customers, employees, offices, payments.
MariaDB database ``lakeforge_demo_shop``: orders, orderdetails, products, productlines.

The source file is MySQL dialect; PostgreSQL's half is translated with sqlglot. Foreign keys that would
cross the two databases are dropped. Re-running recreates both databases from the file.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import sqlglot

ROOT = Path(__file__).resolve().parent
DATA = Path(os.environ.get("LAKEFORGE_DEMO_SQL", ROOT.parent.parent / "shared" / "data" / "classicmodels.sql"))
PG_ADMIN = os.environ.get("LAKEFORGE_DEMO_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
MY_HOST = os.environ.get("LAKEFORGE_DEMO_MYSQL_HOST", "127.0.0.1")
MY_PORT = int(os.environ.get("LAKEFORGE_DEMO_MYSQL_PORT", "3306"))
PG_DB = os.environ.get("LAKEFORGE_DEMO_CRM_DB", "lakeforge_demo_crm")
MY_DB = os.environ.get("LAKEFORGE_DEMO_SHOP_DB", "lakeforge_demo_shop")
PG_TABLES = ("offices", "employees", "customers", "payments")
MY_TABLES = ("productlines", "products", "orders", "orderdetails")


def split_statements(sql: str) -> list[str]:
    """Split a MySQL script on ``;`` outside quotes and comments."""
    out, buf, i, quote = [], [], 0, ""
    while i < len(sql):
        ch = sql[i]
        if quote:
            buf.append(ch)
            if ch == "\\":
                buf.append(sql[i + 1])
                i += 1
            elif ch == quote:
                quote = ""
        elif sql.startswith("/*", i):
            end = sql.index("*/", i) + 2
            i = end
            continue
        elif sql.startswith("--", i):
            i = sql.index("\n", i)
            continue
        elif ch in ("'", '"', "`"):
            quote = ch
            buf.append(ch)
        elif ch == ";":
            out.append("".join(buf).strip())
            buf = []
        else:
            buf.append(ch)
        i += 1
    tail = "".join(buf).strip()
    return [s for s in [*out, tail] if s]


def table_of(statement: str) -> str | None:
    match = re.match(r"(?is)\s*(create\s+table|insert\s+into|drop\s+table\s+if\s+exists)\s+`(\w+)`", statement)
    return match.group(2) if match else None


def without_foreign_keys(create: str) -> str:
    lines = [ln for ln in create.splitlines() if "FOREIGN KEY" not in ln]
    text = "\n".join(lines)
    return re.sub(r",\s*\)\s*ENGINE", "\n) ENGINE", text)


def statements_for(tables: tuple[str, ...]) -> list[str]:
    chosen = []
    for statement in split_statements(DATA.read_text(encoding="latin-1")):
        name = table_of(statement)
        if name in tables and not statement.lower().startswith("drop"):
            chosen.append(without_foreign_keys(statement) if statement.lower().startswith("create") else statement)
    # create tables in dependency order, then data
    creates = sorted((s for s in chosen if s.lower().startswith("create")), key=lambda s: tables.index(table_of(s)))
    inserts = sorted((s for s in chosen if not s.lower().startswith("create")), key=lambda s: tables.index(table_of(s)))
    return creates + inserts


def load_postgres(admin: str = PG_ADMIN, database: str = PG_DB) -> None:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {database}")
    url = admin.rsplit("/", 1)[0] + "/" + database
    with psycopg.connect(url) as conn:
        for statement in statements_for(PG_TABLES):
            if statement.lower().startswith("create"):
                statement = re.sub(r"\)\s*ENGINE=.*$", ")", statement, flags=re.S)
                statement = re.sub(r",\s*KEY `\w+` \(`\w+`\)", "", statement)
                statement = re.sub(r"(?i)\b(int|smallint|tinyint|bigint)\(\d+\)", r"\1", statement)
            for translated in sqlglot.transpile(statement, read="mysql", write="postgres"):
                conn.execute(translated)
        conn.commit()


def load_mariadb(host: str = MY_HOST, port: int = MY_PORT, database: str = MY_DB) -> None:
    import pymysql

    conn = pymysql.connect(host=host, port=port, user="root", autocommit=True, charset="utf8mb4")
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {database}")
        cur.execute(f"CREATE DATABASE {database} CHARACTER SET utf8mb4")
        cur.execute(f"USE {database}")
        cur.execute("SET FOREIGN_KEY_CHECKS = 0")
        for statement in statements_for(MY_TABLES):
            cur.execute(statement.replace("CHARSET=latin1", "CHARSET=utf8mb4"))
    conn.close()


def main() -> int:
    if not DATA.is_file():
        print(f"demo data not found: {DATA} (set LAKEFORGE_DEMO_SQL)", file=sys.stderr)
        return 1
    load_postgres()
    load_mariadb()
    print(f"loaded {DATA.name}: PostgreSQL {PG_DB} {PG_TABLES}, MariaDB {MY_DB} {MY_TABLES}")
    import files_demo  # the partner drops are sources too; they name PostgreSQL customers, so they come after it

    files_demo.write_drops()
    print(f"wrote the partner drops (CSV orders, JSON lines deliveries) under {files_demo.DROPS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
