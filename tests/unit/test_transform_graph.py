"""Model discovery, config parsing and the dependency graph: no servers, no lake."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from lakeforge.errors import ModelError
from lakeforge.transform.graph import Graph
from lakeforge.transform.model import discover

BRONZE = ["bronze.crm_customers", "bronze.shop_orders"]


def models(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "models" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root / "models"


def test_dependencies_come_from_the_sql(tmp_path: Path) -> None:
    folder = models(
        tmp_path,
        {
            "silver/customers.sql": "select * from bronze.crm_customers",
            "silver/orders.sql": "with o as (select * from bronze.shop_orders) select * from o",
            "gold/fact.sql": """
            select o.*, c.country from silver.orders o
            join silver.customers c using (customernumber)
            where o.ordernumber in (select ordernumber from bronze.shop_orders)""",
            "gold/agg.sql": "select country, count(*) from gold.fact group by all",
        },
    )
    graph = Graph(discover(folder), BRONZE)
    assert graph.models["gold.fact"].inputs == ["bronze.shop_orders", "silver.customers", "silver.orders"]
    assert graph.models["silver.orders"].inputs == ["bronze.shop_orders"]  # the CTE is not a table
    assert graph.order.index("gold.fact") > graph.order.index("silver.orders")
    assert graph.order[-1] == "gold.agg"
    assert graph.select(["gold.fact+"]) == ["gold.fact", "gold.agg"]
    assert graph.select(["+gold.fact"]) == ["silver.customers", "silver.orders", "gold.fact"]
    assert graph.select(["silver.*"]) == ["silver.customers", "silver.orders"]
    assert ("silver.orders", "gold.fact") in graph.edges()
    with pytest.raises(ModelError, match="no model matches"):
        graph.select(["gold.nope"])


def test_cycle_names_the_files(tmp_path: Path) -> None:
    folder = models(
        tmp_path,
        {
            "silver/a.sql": "select * from silver.b",
            "silver/b.sql": "select * from silver.c",
            "silver/c.sql": "select * from silver.a",
            "silver/d.sql": "select * from bronze.crm_customers",
        },
    )
    with pytest.raises(ModelError) as info:
        Graph(discover(folder), BRONZE)
    message = str(info.value)
    assert "cycle" in message and "silver.a -> " in message
    for name in ("a.sql", "b.sql", "c.sql"):
        assert name in message
    assert "d.sql" not in message


def test_unknown_table_names_the_file_and_suggests(tmp_path: Path) -> None:
    folder = models(tmp_path, {"silver/customers.sql": "select * from bronze.crm_customer"})
    expected = r"customers\.sql: reads bronze\.crm_customer, .*did you mean bronze\.crm_customers"
    with pytest.raises(ModelError, match=expected):
        Graph(discover(folder), BRONZE)
    folder = models(tmp_path / "b", {"silver/x.sql": "select * from customers"})
    with pytest.raises(ModelError, match=r"x\.sql: table 'customers' is neither a CTE nor a lake table"):
        discover(folder)


def test_config_from_header_or_yaml_beside_strict(tmp_path: Path) -> None:
    folder = models(
        tmp_path,
        {
            "gold/dim.sql": """\
            /* lakeforge
            materialized: scd2
            unique_key: id
            checks:
              - {type: not_null, column: id}
              - {type: accepted_values, column: s, values: [a, b], severity: warn}
            */
            select * from bronze.crm_customers""",
            "gold/inc.sql": "select * from bronze.shop_orders",
            "gold/inc.yml": "materialized: incremental\nunique_key: [a, b]\n",
        },
    )
    found = {m.name: m for m in discover(folder)}
    dim = found["gold.dim"].config
    assert dim.materialized == "scd2" and dim.unique_key == ["id"]
    assert [c.type for c in dim.checks] == ["not_null", "accepted_values"]
    assert dim.checks[1].severity == "warn"
    assert found["gold.inc"].config.unique_key == ["a", "b"]

    bad = models(tmp_path / "bad", {"gold/x.sql": "/* lakeforge\nmaterialised: table\n*/\nselect 1 as a"})
    expected = r"x\.sql: invalid model config\n  materialised: unknown key \(did you mean 'materialized'\?\)"
    with pytest.raises(ModelError, match=expected):
        discover(bad)
    bad = models(tmp_path / "bad2", {"gold/x.sql": "/* lakeforge\nchecks: [{type: not_nul, column: a}]\n*/\nselect 1"})
    with pytest.raises(ModelError, match="'not_nul' is not a check type"):
        discover(bad)
    bad = models(tmp_path / "bad3", {"gold/x.sql": "/* lakeforge\nmaterialized: snapshot\n*/\nselect 1 as a"})
    expected = "'snapshot' is not valid; valid choices: 'table', 'view', 'incremental' or 'scd2'"
    with pytest.raises(ModelError, match=expected):
        discover(bad)


def test_python_model_inputs_without_importing(tmp_path: Path) -> None:
    folder = models(
        tmp_path,
        {
            "gold/py.py": """\
        import this_module_does_not_exist  # never imported by discovery
        INPUTS = {"orders": "bronze.shop_orders"}
        CONFIG = {"materialized": "table"}
        def model(orders):
            return orders
        """
        },
    )
    (model,) = discover(folder)
    assert model.kind == "python" and model.inputs == ["bronze.shop_orders"]
    assert model.python_inputs == {"orders": "bronze.shop_orders"}
