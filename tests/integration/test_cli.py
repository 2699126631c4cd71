"""The CLI end to end: ``lakeforge init`` writes a config that ``check`` accepts and ``run`` loads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

LAKEFORGE = str(Path(sys.executable).parent / "lakeforge")


def cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LAKEFORGE, *args, "--project", str(project)], capture_output=True, text=True,
                          timeout=120)


def test_init_check_run(pg_db: Any, my_db: Any, tmp_path: Path) -> None:
    pg_db.execute("CREATE TABLE customers (id int PRIMARY KEY, name text, balance numeric(10,2))")
    pg_db.execute("INSERT INTO customers VALUES (1, 'Ann', 10.50), (2, 'Bob', NULL)")
    my_db.execute("CREATE TABLE orders (id int PRIMARY KEY, customer_id int, total decimal(12,2))")
    my_db.execute("INSERT INTO orders VALUES (10, 1, 99.99), (11, 1, 0.01), (12, 2, 5.00)")
    project = tmp_path / "proj"

    init = cli(project, "init", "--source", f"crm={pg_db.url}", "--source", f"shop={my_db.url}")
    assert init.returncode == 0, init.stderr
    config = (project / "lakeforge.yml").read_text()
    assert "type: postgres" in config and "type: mysql" in config
    assert (project / ".env.example").exists() and ".env" in (project / ".gitignore").read_text()
    again = cli(project, "init", "--source", f"crm={pg_db.url}")
    assert again.returncode == 1 and "--force" in again.stderr and "Traceback" not in again.stderr

    check = cli(project, "check", "--output", "json")
    assert check.returncode == 0, check.stdout + check.stderr
    sources = {s["source"]: s for s in json.loads(check.stdout)["sources"]}
    assert sources["crm"]["ok"] and sources["crm"]["tables"] == 1
    assert sources["shop"]["ok"] and sources["shop"]["tables"] == 1

    run = cli(project, "run", "--output", "json")
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(run.stdout)
    assert result["status"] == "success"
    assert {t["table"]: t["rows"] for t in result["tables"]} == {"bronze.crm_customers": 2, "bronze.shop_orders": 3}

    query = cli(project, "sql", "select c.name, sum(o.total) as total from bronze.crm_customers c join "
                "bronze.shop_orders o on o.customer_id = c.id group by c.name order by c.name", "--output", "json")
    assert query.returncode == 0, query.stderr
    assert json.loads(query.stdout) == [{"name": "Ann", "total": "100.00"}, {"name": "Bob", "total": "5.00"}]

    runs = cli(project, "runs", "--output", "json")
    assert json.loads(runs.stdout)[0]["run"]["status"] == "success"
    tables = cli(project, "tables", "--output", "json")
    assert {t["name"]: t["rows"] for t in json.loads(tables.stdout)} == {
        "bronze.crm_customers": 2, "bronze.shop_orders": 3}
