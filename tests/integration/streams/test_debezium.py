"""``type: kafka, format: debezium``: Debezium events (snapshot reads, create, update, delete, tombstone)
applied by lakeforge's CDC loader to a current-state table and a change log, on a real broker (Tansu)."""

from __future__ import annotations

import datetime as dt
import decimal
import json
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


def test_malformed_events_are_quarantined_and_the_good_ones_apply(tmp_path: Path, kafka: str) -> None:
    topic = f"dbserver.shop.bad{uuid.uuid4().hex[:6]}"
    table = topic.rsplit(".", 1)[1]
    create_topic(kafka, topic)
    r1, r2 = row(1, "ada", "10.50"), row(2, "bob", "-3.07")
    def bad_row(i: int, amount: str = "1.00") -> dict[str, object]:
        return {**row(3, "x", amount), "id": i}

    no_op = json.loads(event("c", None, bad_row(7), T0))
    del no_op["payload"]["op"]
    malformed: list[tuple[bytes, str]] = [
        (b'{"schema": {}, "payload": {"op": "c", "after": {"id": 8', "not JSON"),
        (json.dumps(no_op).encode(), "no op"),
        (json.dumps({"id": 9, "customer": "no envelope"}).encode(), "no op"),
        (json.dumps({"schema": {}, "payload": ["c"]}).encode(), "its payload is not an object"),
        (event("x", None, bad_row(10), T0), "unknown op 'x'"),
        (event("c", None, {**bad_row(11), "id": "eleven"}, T0), "column 'id' (int32)"),
        (event("c", None, bad_row(12, "12345678901.23"), T0), "column 'amount' (decimal128(12, 2))"),
        (event("c", None, {**bad_row(13), "id": None}, T0), "no value for the key column 'id'"),
        (event("c", None, {**bad_row(14), "paid_at": "yesterday"}, T0), "does not decode"),
        (event("u", r1, None, T0), "a 'u' event without its row image"),
    ]
    produce(kafka, topic, [
        (key(1), event("r", None, r1, T0), None),
        (key(2), event("r", None, r2, T0), None),
        *[(key(8 + i), raw, None) for i, (raw, _) in enumerate(malformed)],
        (key(4), event("c", None, row(4, "dan", "0.01"), T0 + 1000), None),
        (key(2), event("u", r2, {**r2, "customer": "bob b."}, T0 + 2000), None),
        (key(1), event("d", r1, None, T0 + 3000), None),
    ])
    project = _project(tmp_path, kafka, topic)
    result = project.run()
    name = f"bronze.shop_cdc_{table}"
    assert [(t.table, t.status) for t in result.tables] == [(name, "success")], result.tables
    state = {r["id"]: r for r in project.lake.read(name).to_pylist()}
    assert sorted(state) == [2, 4]
    assert state[2]["customer"] == "bob b." and state[4]["amount"] == decimal.Decimal("0.01")
    log = project.lake.read(f"{name}_changes").to_pylist()
    assert sorted((r["id"], r["_lf_op"]) for r in log) == [
        (1, "delete"), (1, "snapshot"), (2, "snapshot"), (2, "update"), (4, "insert")
    ]
    checkpoint = project.lake.checkpoint(name)
    assert checkpoint is not None and checkpoint.position["value"] == 2 + len(malformed) + 3
    quarantined = sorted(project.lake.read(f"quarantine.shop_cdc_{table}").to_pylist(), key=lambda r: r["offset"])
    assert [r["offset"] for r in quarantined] == list(range(2, 2 + len(malformed)))
    assert {r["partition"] for r in quarantined} == {f"{topic}/0"}
    for got, (raw, reason) in zip(quarantined, malformed, strict=True):
        assert reason in got["reason"], (got["reason"], reason)
        assert got["raw"] == raw.decode() and got["source"] == "shop_cdc" and got["table"] == name
    assert "does not fit decimal(12,2)" in quarantined[6]["reason"]

    produce(kafka, topic, [
        (key(5), b"not json either", None), (key(5), event("c", None, row(5, "eve", "5.00"), T0), None)
    ])
    second = project.run()
    assert [t.status for t in second.tables] == ["success"], second.tables
    assert sorted(r["id"] for r in project.lake.read(name).to_pylist()) == [2, 4, 5]
    again = project.lake.read(f"quarantine.shop_cdc_{table}").to_pylist()
    assert sorted(r["offset"] for r in again) == [*range(2, 2 + len(malformed)), 2 + len(malformed) + 3]
    assert project.run().tables[0].status == "unchanged"
    assert len(project.lake.read(f"quarantine.shop_cdc_{table}").to_pylist()) == len(malformed) + 1
