"""``type: nats`` against a private ``nats-server -js``: exact values and types, the stream sequence committed
with the data, acks only after the commit, only new messages on the next run, bad values quarantined."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import json
import textwrap
import uuid
from pathlib import Path

import pyarrow as pa
import pytest

from lakeforge.project import Project
from tests.stream_servers import nats_publish

pytestmark = pytest.mark.integration


def _project(root: Path, url: str, stream: str) -> Project:
    (root / "lakeforge.yml").write_text(
        textwrap.dedent(
            f"""
            sources:
              events:
                type: nats
                url: {url}
                stream: {stream}
                subjects: ["{stream.lower()}.>"]
                schema: {{price: "decimal(8,3)", day: date}}
            lake: {{path: lh}}
            """
        )
    )
    return Project(root)


def _consumer(url: str, stream: str, durable: str) -> tuple[int, int]:
    import nats

    async def ask() -> tuple[int, int]:
        nc = await nats.connect(url)
        info = await nc.jetstream().consumer_info(stream, durable)
        await nc.close()
        return int(info.ack_floor.stream_seq), int(info.num_pending)

    return asyncio.run(ask())


def test_values_sequence_acks_and_only_new_messages(tmp_path: Path, nats_url: str) -> None:
    stream = f"EV{uuid.uuid4().hex[:6].upper()}"
    subject = f"{stream.lower()}.created"
    messages = [
        (subject, json.dumps({"id": i, "price": f"{i}.125", "day": f"2024-02-{10 + i}", "n": None}).encode())
        for i in range(1, 6)
    ]
    seqs = nats_publish(nats_url, stream, [f"{stream.lower()}.>"], messages)
    assert seqs == [1, 2, 3, 4, 5]
    project = _project(tmp_path, nats_url, stream)
    first = project.run()
    assert [(t.table, t.status, t.rows) for t in first.tables] == [("bronze.events", "success", 5)], first.tables
    table = project.lake.read("bronze.events")
    types = {f.name: f.type for f in table.schema}
    assert types["price"] == pa.decimal128(8, 3) and types["day"] == pa.date32() and types["id"] == pa.int64()
    assert types["n"] == pa.string() and types["nats_sequence"] == pa.int64()
    assert types["nats_timestamp"] == pa.timestamp("us", tz="UTC")
    rows = {r["id"]: r for r in table.to_pylist()}
    assert rows[3]["price"] == decimal.Decimal("3.125") and rows[3]["day"] == dt.date(2024, 2, 13)
    assert rows[3]["n"] is None and rows[3]["nats_subject"] == subject and rows[3]["nats_sequence"] == 3
    assert abs(rows[3]["nats_timestamp"] - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    checkpoint = project.lake.checkpoint("bronze.events")
    assert checkpoint is not None and checkpoint.position == {"stream": stream, "sequence": 5}
    assert _consumer(nats_url, stream, "lakeforge-events") == (5, 0)  # acked after the commit

    nats_publish(
        nats_url,
        stream,
        [],
        [
            (subject, b'{"id": 6, "price": 6.5, "day": "2024-03-01"}'),
            (subject, b'{"id": 7, "price": "x", "day": "2024-03-01"}'),
            (subject, b'{"id": 8, "day": "2024-02-30"}'),
            (subject, b"\xffnot json"),
        ],
    )
    second = project.run()
    assert [(t.status, t.rows) for t in second.tables] == [("success", 1)], second.tables
    assert sorted(r["id"] for r in project.lake.read("bronze.events").to_pylist()) == [1, 2, 3, 4, 5, 6]
    by_id = {r["id"]: r for r in project.lake.read("bronze.events").to_pylist()}
    assert by_id[6]["price"] == decimal.Decimal("6.500") and by_id[6]["nats_sequence"] == 6
    bad = sorted(project.quarantine(), key=lambda r: r["offset"])
    assert [(r["offset"], r["partition"]) for r in bad] == [(7, subject), (8, subject), (9, subject)]
    assert bad[0]["reason"] == "column 'price': \"x\" is not a decimal number"
    assert bad[1]["reason"].startswith("column 'day': ") and bad[2]["reason"].startswith("not JSON")
    assert bad[2]["raw"] == "\\xffnot json"
    assert project.lake.checkpoint("bronze.events").position["sequence"] == 9  # type: ignore[union-attr]
    third = project.run()
    assert [(t.status, t.rows) for t in third.tables] == [("unchanged", 0)]
