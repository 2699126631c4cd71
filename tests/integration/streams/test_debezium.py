"""``type: kafka, format: debezium``: Debezium events (snapshot reads, create, update, delete, tombstone)
applied by lakeforge's CDC loader to a current-state table and a change log, on a real broker (Tansu)."""

from __future__ import annotations

import datetime as dt
import decimal
import textwrap
import uuid
from pathlib import Path

import pyarrow as pa
import pytest

from lakeforge.project import Project
from tests.integration.streams.debezium_events import event, key, row
from tests.stream_servers import create_topic, produce

pytestmark = [pytest.mark.integration, pytest.mark.slow]

T0 = 1_709_280_000_000  # 2024-03-01T08:00:00Z in ms


def _project(root: Path, brokers: str, topic: str) -> Project:
    (root / "lakeforge.yml").write_text(
        textwrap.dedent(
            f"""
            sources:
              shop_cdc:
                type: kafka
                brokers: {brokers}
                topics: [{topic}]
                format: debezium
                idle_seconds: 1
            lake: {{path: lh}}
            """
        )
    )
    return Project(root)


def test_snapshot_create_update_delete_tombstone_then_only_new_events(tmp_path: Path, kafka: str) -> None:
    topic = f"dbserver.shop.orders{uuid.uuid4().hex[:6]}"
    table = topic.rsplit(".", 1)[1]
    create_topic(kafka, topic)
    r1, r2, r3 = row(1, "ada", "10.50"), row(2, "bob", "-3.07"), row(3, "cy", "99999.99")
    r2b = {**r2, "customer": "bob b."}
    produce(kafka, topic, [
        (key(1), event("r", None, r1, T0), None),
        (key(2), event("r", None, r2, T0), None),
        (key(3), event("r", None, r3, T0), None),
        (key(4), event("c", None, row(4, "dan", "0.01"), T0 + 1000), None),
        (key(2), event("u", r2, r2b, T0 + 2000), None),
        (key(3), event("d", r3, None, T0 + 3000), None),
        (key(3), None, None),  # tombstone
    ])
    project = _project(tmp_path, kafka, topic)
    result = project.run()
    name = f"bronze.shop_cdc_{table}"
    assert [(t.table, t.mode, t.status) for t in result.tables] == [(name, "cdc", "success")], result.tables
    state = project.lake.read(name)
    types = {f.name: f.type for f in state.schema}
    assert types["id"] == pa.int32() and types["amount"] == pa.decimal128(12, 2)
    assert types["placed_at"] == pa.timestamp("us") and types["paid_at"] == pa.timestamp("us", tz="UTC")
    assert types["ship_on"] == pa.date32() and types["customer"] == pa.string()
    rows = {r["id"]: r for r in state.to_pylist()}
    assert sorted(rows) == [1, 2, 4]
    assert rows[2]["customer"] == "bob b." and rows[2]["amount"] == decimal.Decimal("-3.07")
    assert rows[1]["placed_at"] == dt.datetime(2024, 3, 2, 9, 30, 0, 123456)
    assert rows[1]["paid_at"] == dt.datetime(2024, 3, 1, 9, 0, tzinfo=dt.UTC)
    assert rows[4]["ship_on"] == dt.date(2024, 4, 4) and rows[4]["amount"] == decimal.Decimal("0.01")
    assert rows[1]["_lf_op"] == "snapshot" and rows[4]["_lf_op"] == "insert" and rows[2]["_lf_op"] == "update"
    log = sorted(project.lake.read(f"{name}_changes").to_pylist(), key=lambda r: r["_lf_position_value"])
    assert [(r["id"], r["_lf_op"]) for r in log] == [
        (1, "snapshot"), (2, "snapshot"), (3, "snapshot"), (4, "insert"), (2, "update"), (3, "delete")
    ]
    assert log[5]["amount"] == decimal.Decimal("99999.99")  # the delete keeps the before image
    assert log[3]["_lf_commit_ts"] == dt.datetime(2024, 3, 1, 8, 0, 1, tzinfo=dt.UTC)
    checkpoint = project.lake.checkpoint(name)
    assert checkpoint is not None and checkpoint.position["value"] == 7  # tombstone read: offset 7 next

    produce(kafka, topic, [
        (key(4), event("u", None, {**row(4, "dan", "0.01"), "customer": "dan d."}, T0 + 5000), None),
        (key(1), event("d", None, None, T0 + 6000), None),  # delete with the key only
        (key(5), event("c", None, row(5, "eve", "12345678.90"), T0 + 7000), None),
    ])
    second = project.run()
    assert [t.status for t in second.tables] == ["success"], second.tables
    rows = {r["id"]: r for r in project.lake.read(name).to_pylist()}
    assert sorted(rows) == [2, 4, 5]
    assert rows[5]["amount"] == decimal.Decimal("12345678.90") and rows[5]["customer"] == "eve"
    assert rows[4]["customer"] == "dan d." and rows[4]["_lf_op"] == "update"
    log = project.lake.read(f"{name}_changes").to_pylist()
    assert len(log) == 9 and sorted(r["_lf_position_value"] for r in log)[-3:] == [8, 9, 10]
    third = project.run()
    assert [t.status for t in third.tables] == ["unchanged"]
    assert len(project.lake.read(f"{name}_changes").to_pylist()) == 9
