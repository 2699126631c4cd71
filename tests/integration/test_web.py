"""The web app in a real browser (Debian's chromium driven by playwright): the demo's sales dashboard over gold
shows the lake's numbers (KPIs, chart data, table rows, CSV export, a filter), loads nothing but its own
server (plotly.js is served locally), a dashboard whose SQL fails shows the error in its tile while the page
still renders, and the operations view lists runs, table freshness, checks and lineage. Screenshots are kept
under the test's tmp dir."""

from __future__ import annotations

import base64
import csv
import io
import os
import secrets
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest

from lakeforge import Project
from lakeforge.errors import ConfigError
from lakeforge.serve.web.app import WebApp
from tests.conftest import MY_HOST, MY_PORT, PG_ADMIN

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "classicmodels.sql"
LAKEFORGE = str(Path(sys.executable).parent / "lakeforge")
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--no-first-run"]
BROKEN = """\
title: Broken
tiles:
  - {type: kpi, title: Works, sql: "select count(*) as n from gold.dim_product"}
  - {type: table, title: Fails, sql: "select no_such_column from gold.dim_product"}
  - {type: chart, title: Wrong axis, x: nope, y: n, sql: "select 1 as n"}
"""


@pytest.fixture(scope="module")
def demo_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """The demo loaded and built once for the module, with its own source databases."""
    folder = tmp_path_factory.mktemp("web") / "demo"
    shutil.copytree(REPO / "demo", folder, ignore=shutil.ignore_patterns("lakehouse", "__pycache__"))
    suffix = secrets.token_hex(3)
    env = {**os.environ, "LAKEFORGE_DEMO_CRM_DB": f"lft_wcrm_{suffix}", "LAKEFORGE_DEMO_SHOP_DB": f"lft_wshop_{suffix}",
           "LAKEFORGE_DEMO_SQL": str(DATA)}
    try:
        for args in ([sys.executable, str(folder / "setup_sources.py")],
                     [LAKEFORGE, "run", "-p", str(folder / "project")],
                     [LAKEFORGE, "build", "-p", str(folder / "project")]):
            done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        (folder / "project" / "dashboards" / "broken.yml").write_text(BROKEN)
        yield Project(folder / "project")
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS lft_wcrm_{suffix} WITH (FORCE)")
        my = pymysql.connect(host=MY_HOST, port=MY_PORT, user="root", autocommit=True)
        with my.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS lft_wshop_{suffix}")
        my.close()


@pytest.fixture
def web(demo_project: Project) -> Iterator[WebApp]:
    app = demo_project.serve_web(port=0)
    app.start()
    yield app
    app.shutdown()


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS)
        yield chromium
        chromium.close()


def open_page(browser: Any, url: str, requests: list[str]) -> Any:
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    page.on("request", lambda r: requests.append(r.url))
    page.goto(url)
    page.wait_for_selector(".chart .main-svg", timeout=30_000)
    return page


def kpis(page: Any) -> dict[str, str]:
    return {page.inner_text(f"#tile-{i} h2"): page.get_attribute(f"#tile-{i} .kpi-value", "data-value")
            for i in range(3)}


def test_sales_dashboard_shows_the_lakes_numbers(web: WebApp, browser: Any, demo_project: Project,
                                                 tmp_path: Path) -> None:
    requests: list[str] = []
    page = open_page(browser, f"{web.url()}d/sales", requests)
    page.screenshot(path=str(tmp_path / "sales.png"), full_page=True)
    lake = demo_project.sql
    revenue = lake("select sum(revenue) as r from gold.agg_sales_monthly").column(0)[0].as_py()
    orders = lake("select count(distinct order_number) from gold.fact_order_line").column(0)[0].as_py()
    customers = lake("select count(*) from gold.agg_customer_value where orders > 0").column(0)[0].as_py()
    assert kpis(page) == {"Revenue": str(revenue), "Orders": str(orders), "Customers with orders": str(customers)}
    assert page.inner_text("#tile-0 .kpi-value") == f"{revenue:,.2f}"

    pie = page.evaluate("document.getElementById('chart-4').data[0]")
    by_country = lake("select country, sum(revenue) as r from gold.agg_sales_monthly group by 1").to_pylist()
    assert dict(zip(pie["labels"], pie["values"], strict=True)) == {r["country"]: float(r["r"]) for r in by_country}
    bars = page.evaluate("document.getElementById('chart-3').data"
                         ".map(t => [t.name, t.x.length, t.y.reduce((a, b) => a + b, 0)])")
    assert {name for name, _, _ in bars} == set(lake("select distinct product_line from gold.dim_product")
                                                .column(0).to_pylist())
    assert sum(total for _, _, total in bars) == pytest.approx(float(revenue))

    top = lake("select customer_name, country, orders, revenue, paid, balance from gold.agg_customer_value "
               "order by revenue desc, customer_name limit 25").to_pylist()
    cells = page.eval_on_selector_all("#tile-5 tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.innerText))")
    assert cells == [[r["customer_name"], r["country"], str(r["orders"]), str(r["revenue"]), str(r["paid"]),
                      str(r["balance"])] for r in top[:10]]
    href = page.get_attribute("#tile-5 a.csv", "href")
    with urllib.request.urlopen(web.url().rstrip("/") + href) as response:
        exported = list(csv.DictReader(io.StringIO(response.read().decode())))
    assert [(r["customer_name"], Decimal(r["revenue"])) for r in exported] == [
        (r["customer_name"], r["revenue"]) for r in top]
    assert all(u.startswith(web.url()) for u in requests), [u for u in requests if not u.startswith(web.url())]

    page.select_option("select[name=country]", "France")
    page.click("form.filters button")
    page.wait_for_selector(".chart .main-svg")
    france = lake("select sum(revenue) from gold.agg_sales_monthly where country = 'France'").column(0)[0].as_py()
    assert kpis(page)["Revenue"] == str(france) and france < revenue
    rows = page.eval_on_selector_all("#tile-5 tbody tr", "rows => rows.map(r => r.cells[1].innerText)")
    assert rows and set(rows) == {"France"}
    page.screenshot(path=str(tmp_path / "sales-france.png"), full_page=True)
    if os.environ.get("LAKEFORGE_SCREENSHOTS"):  # a folder to keep the screenshot beyond pytest's tmp dirs
        shutil.copy(tmp_path / "sales.png", Path(os.environ["LAKEFORGE_SCREENSHOTS"]) / "sales.png")


def test_failing_tile_shows_its_error_and_the_page_renders(web: WebApp, browser: Any, tmp_path: Path) -> None:
    page = browser.new_page()
    page.goto(f"{web.url()}d/broken")
    page.screenshot(path=str(tmp_path / "broken.png"), full_page=True)
    assert page.get_attribute("#tile-0 .kpi-value", "data-value") == "110"
    assert "SQL failed" in page.inner_text("#tile-1 .tile-error")
    assert "no_such_column" in page.inner_text("#tile-1 .tile-error")
    assert "column(s) nope not in the result" in page.inner_text("#tile-2 .tile-error")


def test_operations_view(web: WebApp, browser: Any, demo_project: Project, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    page.goto(f"{web.url()}ops")
    page.screenshot(path=str(tmp_path / "ops.png"), full_page=True)
    runs = page.eval_on_selector_all("#runs tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.innerText))")
    latest = demo_project.runs(1)[0]["run"]
    assert runs[0][:2] == [latest["run_id"], "success"] and runs[0][5] == "10"  # 8 database tables, 2 file drops
    freshness = page.eval_on_selector_all("#freshness tbody tr", "rows => rows.map(r => [r.cells[0].innerText, "
                                          "r.cells[1].innerText])")
    assert dict(freshness)["gold.fact_order_line"] == str(demo_project.lake.info("gold.fact_order_line").rows)
    checks = page.inner_text("#checks")
    assert "relationships_customer_key_gold_dim_customer" in checks and "pass" in checks
    lineage = page.eval_on_selector_all("#lineage tbody tr", "rows => rows.map(r => [r.cells[0].innerText, "
                                        "r.cells[1].innerText])")
    assert "gold.dim_customer" in dict(lineage)["gold.fact_order_line"]
    assert "no mode: cdc tables" in page.inner_text("#cdc")


def test_basic_auth_and_bind_rules(demo_project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="refusing to serve dashboards on 0.0.0.0 without a password"):
        demo_project.serve_web(host="0.0.0.0", port=0)
    monkeypatch.setenv("WEB_PW", "web-secret-1")
    text = (demo_project.path / "lakeforge.yml").read_text()
    assert "  web: {port: 8080}\n" in text  # the demo's serve: key gets users (a second serve: key is an error)
    with_users = text.replace("  web: {port: 8080}\n", "  web: {port: 8080, users: {boss: '${WEB_PW}'}}\n")
    (demo_project.path / "lakeforge.yml").write_text(with_users)
    try:
        app = Project(demo_project.path).serve_web(port=0)
        app.start()
        with pytest.raises(urllib.error.HTTPError, match="401"):
            urllib.request.urlopen(app.url())
        request = urllib.request.Request(app.url() + "d/sales", headers={
            "Authorization": "Basic " + base64.b64encode(b"boss:web-secret-1").decode()})
        with urllib.request.urlopen(request) as response:
            assert "Revenue" in response.read().decode()
        app.shutdown()
    finally:
        (demo_project.path / "lakeforge.yml").write_text(text)
