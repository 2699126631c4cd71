"""No secret outside ``.env``: after init, check, runs (one failing on a wrong password), sql and runs with
secrets in URLs, in ``password:`` fields and in environment variables, every file lakeforge wrote and everything
it printed is scanned for each secret (raw, percent-encoded, and as JSON would escape it)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pymysql

from tests.conftest import MY_HOST, MY_PORT


def _forms(secret: str) -> list[bytes]:
    texts = {secret, quote(secret, safe=""), quote(secret), json.dumps(secret)[1:-1]}
    return [t.encode() for t in texts]


def test_no_secret_is_written_or_printed_outside_env(pg_db: Any, my_db: Any, tmp_path: Path) -> None:
    user = "lft_" + secrets.token_hex(3)
    my_secret = "My@Pass:w/rd#" + secrets.token_hex(4)
    pg_secret = "Pg/Secret@" + secrets.token_hex(4)
    env_secret = "EnvOnly$" + secrets.token_hex(4)
    wrong_secret = "Wrong#Pass" + secrets.token_hex(4)
    admin = pymysql.connect(host=MY_HOST, port=MY_PORT, user="root", autocommit=True)
    with admin.cursor() as cur:
        cur.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", (my_secret,))
        cur.execute(f"GRANT SELECT ON `{my_db.name}`.* TO '{user}'@'%'")
    try:
        my_db.execute("CREATE TABLE orders (id int PRIMARY KEY, total decimal(10,2))")
        my_db.execute("INSERT INTO orders VALUES (1, 9.99), (2, 0.01)")
        pg_db.execute("CREATE TABLE customers (id int PRIMARY KEY, name text)")
        pg_db.execute("INSERT INTO customers VALUES (1, 'Ann')")
        project = tmp_path / "p"
        outputs: list[str] = []

        def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
            done = subprocess.run([sys.executable, "-m", "lakeforge", *args, "--project", str(project)],
                                  capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})
            outputs.extend([done.stdout, done.stderr])
            return done

        pg_url = pg_db.url.replace("postgres@", f"postgres:{pg_secret}@")  # trust auth: accepted, unused
        my_url = f"mysql://{user}:{my_secret}@{MY_HOST}:{MY_PORT}/{my_db.name}"  # unencoded @ / : #
        assert run("init", "--source", f"crm={pg_url}", "--source", f"shop={my_url}").returncode == 0
        env_file = (project / ".env").read_text()
        assert my_secret in env_file and pg_secret in env_file
        assert run("check").returncode == 0
        assert run("run", "--debug").returncode == 0
        # a wrong password given by environment variable: the error must not quote it either
        failed = run("run", env={"SHOP_PASSWORD": wrong_secret})
        assert failed.returncode == 1 and "Access denied" in failed.stdout + failed.stderr
        # a password only in the environment, overriding the file's key
        override = run("run", "-s", "shop*", "--output", "json",
                       env={"LAKEFORGE__SOURCES__SHOP__PASSWORD": env_secret})
        assert override.returncode == 1  # wrong password, through the override
        assert run("runs", "--output", "json").returncode == 0
        assert run("sql", "select sum(total) as s from bronze.shop_orders", "--output", "json").returncode == 0
        assert json.loads(outputs[-2]) == [{"s": "10.00"}]
        assert run("check", "--output", "json", env={"SHOP_PASSWORD": wrong_secret}).returncode == 1

        written = [p for p in project.rglob("*") if p.is_file() and p.name != ".env"]
        assert any("_delta_log" in str(p) for p in written) and any(p.suffix == ".parquet" for p in written)
        for secret in (my_secret, pg_secret, env_secret, wrong_secret):
            for form in _forms(secret):
                for path in written:
                    assert form not in path.read_bytes(), f"{secret!r} found in {path}"
                for text in outputs:
                    assert form.decode() not in text, f"{secret!r} printed"
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        admin.close()
