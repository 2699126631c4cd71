"""``type: http`` against a local HTTP server started by the test: every pagination style, auth as secrets,
incremental by a field, 429/5xx/broken JSON retried, records that do not fit quarantined, no secret in any
output."""

from __future__ import annotations

import decimal
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest

from lakeforge.project import Project
from tests.stream_servers import Api, http_api

pytestmark = pytest.mark.integration

TOKEN = "tok-3f9c1e77-very-secret"
RECORDS = [
    {"id": i, "rate": f"1.{i:04d}", "updated_at": f"2024-01-01T00:00:{i:02d}Z", "cur": "EUR"} for i in range(1, 8)
]

STYLES = {
    "page": ("/page", "$.data[*]", "{page: {param: page, size_param: per_page, size: 3}}"),
    "offset": ("/offset", "$.items", "{offset: {limit: 3}}"),
    "cursor": ("/cursor", "$.data[*]", '{cursor: {path: "$.meta.next_cursor", param: cursor}}'),
    "link": ("/link", "$", "{link: true}"),
    "next": ("/next", "$.results[*]", '{next: "$.next"}'),
}


def _project(root: Path, base: str, style: str, auth: str, incremental: bool = True) -> Project:
    path, records, paginate = STYLES[style]
    inc = "incremental: {field: updated_at, param: since}" if incremental else ""
    (root / "lakeforge.yml").write_text(
        textwrap.dedent(
            f"""
            sources:
              rates:
                type: http
                url: {base}{path}
                records: "{records}"
                paginate: {paginate}
                auth: {auth}
                {inc}
                backoff_seconds: 0.01
                schema: {{rate: "decimal(6,4)", updated_at: timestamp}}
            lake: {{path: lh}}
            """
        )
    )
    return Project(root)


@pytest.mark.parametrize("style", sorted(STYLES))
def test_every_pagination_style_reads_each_record_once(
    tmp_path: Path, style: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = Api(records=[dict(r) for r in RECORDS], token=TOKEN)
    monkeypatch.setenv("RATES_TOKEN", TOKEN)
    with http_api(api) as base:
        project = _project(tmp_path, base, style, '{bearer: "${RATES_TOKEN}"}')
        first = project.run()
        assert [(t.table, t.mode, t.status, t.rows) for t in first.tables] == [
            ("bronze.rates", "append", "success", 7)
        ], first.tables
        table = project.lake.read("bronze.rates")
        assert table.schema.field("rate").type == pa.decimal128(6, 4)
        assert table.schema.field("updated_at").type == pa.timestamp("us", tz="UTC")
        assert table.schema.field("id").type == pa.int64()
        rows = sorted(table.to_pylist(), key=lambda r: r["id"])
        assert [r["id"] for r in rows] == list(range(1, 8))
        assert rows[4]["rate"] == decimal.Decimal("1.0005") and rows[4]["cur"] == "EUR"
        assert rows[4]["updated_at"].isoformat() == "2024-01-01T00:00:05+00:00"
        assert all(h.get("Authorization") == f"Bearer {TOKEN}" for _, h in api.requests)

        api.records.append({"id": 8, "rate": "2.5", "updated_at": "2024-01-01T00:00:08Z", "cur": "USD"})
        api.requests.clear()
        second = project.run()
        assert [(t.status, t.rows) for t in second.tables] == [("success", 1)], second.tables
        assert sorted(r["id"] for r in project.lake.read("bronze.rates").to_pylist()) == list(range(1, 9))
        assert "since=2024-01-01T00%3A00%3A07Z" in api.requests[0][0]
        third = project.run()
        assert [(t.status, t.rows) for t in third.tables] == [("unchanged", 0)]


def test_429_5xx_and_broken_json_are_retried_and_bad_records_quarantined(tmp_path: Path) -> None:
    api = Api(records=[dict(r) for r in RECORDS], api_key="k-123-secret")
    api.records[2]["rate"] = "12.5"  # does not fit decimal(6,4)? it does: 12.5000
    api.records[3]["rate"] = "1.00001"  # one decimal place too many
    api.records[5]["updated_at"] = "yesterday"
    api.retry_after = "1"
    api.failures = {"page=1&per_page=3": [429, 503], "page=2&per_page=3": ["broken", 500], "page=3&per_page=3": [502]}
    with http_api(api) as base:
        project = _project(tmp_path, base, "page", "{api_key: k-123-secret}")
        result = project.run()
        assert [(t.status, t.rows) for t in result.tables] == [("success", 5)], result.tables
        assert len(api.requests) == 3 + 5  # three pages, five retries
        ids = sorted(r["id"] for r in project.lake.read("bronze.rates").to_pylist())
        assert ids == [1, 2, 3, 5, 7]
        bad = sorted(project.quarantine(), key=lambda r: json.loads(r["raw"])["id"])
        assert [json.loads(r["raw"])["id"] for r in bad] == [4, 6]
        assert bad[0]["reason"] == "column 'rate': 1.00001 has more than 4 decimal places (decimal(6,4))"
        assert bad[1]["reason"] == "column 'updated_at': \"yesterday\" is not an ISO 8601 timestamp"
        assert bad[0]["file"].startswith(base + "/page?")


def test_a_failing_api_names_the_url_and_no_output_carries_the_secret(tmp_path: Path) -> None:
    api = Api(records=[dict(r) for r in RECORDS], basic=("svc", "pw-9d1f-secret"))
    api.failures = {"page=2&per_page=3": [500] * 100}
    with http_api(api) as base:
        project = _project(tmp_path, base, "page", "{basic: {user: svc, password: pw-9d1f-secret}}", incremental=False)
        with (tmp_path / "lakeforge.yml").open("a") as f:
            f.write("run: {retries: 0}\n")
        run = subprocess.run(
            [sys.executable, "-m", "lakeforge", "run", "--project", str(tmp_path), "--output", "json"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 1
        out = json.loads(run.stdout)
        table = out["tables"][0]
        assert table["status"] == "failed" and table["rows"] == 0
        assert (
            f"GET http://127.0.0.1/page (port {base.rsplit(':', 1)[1]}) failed after 6 tries: HTTP 500"
            in table["error"]
        )
        assert not project.lake.exists("bronze.rates")  # nothing committed: full mode replaces only at the end
        shown = subprocess.run(
            [sys.executable, "-m", "lakeforge", "check", "--project", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        everything = run.stdout + run.stderr + shown.stdout + shown.stderr + json.dumps(project.runs(), default=str)
        assert "pw-9d1f-secret" not in everything and "svc:pw" not in everything
        assert all(h.get("Authorization", "").startswith("Basic ") for _, h in api.requests)
