"""``type: kafka, format: json`` against a real Kafka-protocol broker (Tansu): exact values and types, keys
and headers kept, only new messages on the next run, bad values quarantined with partition/offset."""

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
from tests.stream_servers import create_topic, produce

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _project(root: Path, brokers: str, topic: str, extra: str = "") -> Project:
    (root / "lakeforge.yml").write_text(
        textwrap.dedent(
            f"""
            sources:
              clicks:
                type: kafka
                brokers: {brokers}
                topics: [{topic}]
                format: json
                idle_seconds: 1
                schema: {{amount: "decimal(10,2)", at: timestamp}}
            {extra}
            lake: {{path: lh}}
            """
        )
    )
    return Project(root)


def _event(i: int) -> bytes:
    return json.dumps(
        {
            "id": i,
            "user": f"u{i % 3}",
            "amount": f"{i}.25",
            "at": f"2024-05-0{1 + i % 5}T10:00:00+02:00",
            "score": i / 4,
            "tags": ["a", i],
            "ok": i % 2 == 0,
        }
    ).encode()


def test_values_keys_headers_exact_then_only_new_messages(tmp_path: Path, kafka: str) -> None:
    topic = f"clicks_{uuid.uuid4().hex[:8]}"
    create_topic(kafka, topic, partitions=2)
    produce(
        kafka,
        topic,
        [(f"k{i}".encode(), _event(i), [("trace", f"t{i}".encode()), ("trace", b"\xff")]) for i in range(10)],
    )
    project = _project(tmp_path, kafka, topic)
    first = project.run()
    assert [(t.table, t.mode, t.status, t.rows) for t in first.tables] == [("bronze.clicks", "append", "success", 10)]
    table = project.lake.read("bronze.clicks")
    types = {f.name: f.type for f in table.schema}
    assert types["id"] == pa.int64() and types["user"] == pa.string() and types["ok"] == pa.bool_()
    assert types["amount"] == pa.decimal128(10, 2) and types["at"] == pa.timestamp("us", tz="UTC")
    assert types["score"] == pa.float64() and types["tags"] == pa.string()
    assert types["kafka_partition"] == pa.int32() and types["kafka_offset"] == pa.int64()
    assert types["kafka_key"] == pa.binary() and types["kafka_timestamp"] == pa.timestamp("us", tz="UTC")
    rows = {r["id"]: r for r in table.to_pylist()}
    assert sorted(rows) == list(range(10))
    r7 = rows[7]
    assert r7["amount"] == decimal.Decimal("7.25") and r7["score"] == 1.75 and r7["ok"] is False
    assert r7["at"] == dt.datetime(2024, 5, 3, 8, 0, tzinfo=dt.UTC) and r7["tags"] == '["a",7]'
    assert r7["kafka_key"] == b"k7" and r7["kafka_topic"] == topic
    assert r7["kafka_headers"] == [{"key": "trace", "value": b"t7"}, {"key": "trace", "value": b"\xff"}]
    offsets = sorted((r["kafka_partition"], r["kafka_offset"]) for r in rows.values())
    assert len(set(offsets)) == 10
    checkpoint = project.lake.checkpoint("bronze.clicks")
    assert checkpoint is not None
    committed = checkpoint.position["offsets"][topic]
    assert sum(committed.values()) == 10  # next offset per partition: 10 messages read in all

    produce(
        kafka,
        topic,
        [
            (b"k10", _event(10), None),
            (b"k11", b'{"id": 11, "amount": "1.005"}', None),
            (b"k12", b"not json", None),
            (b"k13", b"[1, 2]", None),
        ],
    )
    second = project.run()
    assert [(t.status, t.rows) for t in second.tables] == [("success", 1)], second.tables
    ids = sorted(r["id"] for r in project.lake.read("bronze.clicks").to_pylist())
    assert ids == list(range(11))
    bad = sorted(project.quarantine(), key=lambda r: r["raw"])
    assert [(r["reason"].split(":")[0], r["raw"]) for r in bad] == [
        ("not a JSON object", "[1, 2]"),
        ("not JSON", "not json"),
        ("column 'amount'", '{"id": 11, "amount": "1.005"}'),
    ]
    assert "more than 2 decimal places" in bad[2]["reason"]
    assert all(r["partition"].startswith(topic + "/") and isinstance(r["offset"], int) for r in bad)

    third = project.run()
    assert [(t.status, t.rows) for t in third.tables] == [("unchanged", 0)]
    assert project.lake.read("bronze.clicks").num_rows == 11 and len(project.quarantine()) == 3
