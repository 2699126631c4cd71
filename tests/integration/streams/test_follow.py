"""``lakeforge run --follow`` keeps a stream flowing: messages published while it runs become visible in the
lake within the commit interval, and SIGTERM makes it commit what it has, acknowledge and exit cleanly."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from lakeforge.project import Project
from tests.integration.streams.debezium_events import event, key, row
from tests.stream_servers import create_topic, nats_publish, produce

pytestmark = [pytest.mark.integration, pytest.mark.slow]
LAKEFORGE = str(Path(sys.executable).parent / "lakeforge")


def _wait_for(read: object, expected: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        try:
            seen = read()  # type: ignore[operator]
        except Exception:  # noqa: BLE001 - the table may not exist yet
            seen = None
        if seen == expected:
            return
        time.sleep(0.2)
    raise AssertionError(f"expected {expected!r}, last saw {seen!r}")


def _follow(root: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([LAKEFORGE, "run", "--follow", "--project", str(root), "--output", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_nats_follow_commits_as_messages_arrive_and_stops_on_sigterm(tmp_path: Path, nats_url: str) -> None:
    stream = f"FO{uuid.uuid4().hex[:6].upper()}"
    nats_publish(nats_url, stream, [f"{stream}.>"], [(f"{stream}.a", b'{"id": 0}')])
    (tmp_path / "lakeforge.yml").write_text(textwrap.dedent(f"""
        sources:
          events: {{type: nats, url: "{nats_url}", stream: {stream}}}
        run: {{stream_commit_seconds: 0.5}}
        lake: {{path: lh}}
    """))
    proc = _follow(tmp_path)
    try:
        project = Project(tmp_path)

        def ids() -> list[int]:
            return sorted(r["id"] for r in project.lake.read("bronze.events").to_pylist())

        _wait_for(ids, [0])
        for step in range(1, 4):
            batch = [(f"{stream}.a", json.dumps({"id": step * 10 + i}).encode()) for i in range(5)]
            nats_publish(nats_url, stream, [], batch)
            _wait_for(ids, sorted([0] + [s * 10 + i for s in range(1, step + 1) for i in range(5)]))
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    result = json.loads(out)
    assert [(t["table"], t["status"]) for t in result["tables"]] == [("bronze.events", "success")]
    checkpoint = Project(tmp_path).lake.checkpoint("bronze.events")
    assert checkpoint is not None and checkpoint.position == {"stream": stream, "sequence": 16}


def test_debezium_follow_applies_changes_as_they_arrive(tmp_path: Path, kafka: str) -> None:
    topic = f"fo.shop.orders{uuid.uuid4().hex[:6]}"
    create_topic(kafka, topic)
    produce(kafka, topic, [(key(1), event("r", None, row(1, "ada", "1.00"), 1000), None)])
    (tmp_path / "lakeforge.yml").write_text(textwrap.dedent(f"""
        sources:
          shop: {{type: kafka, brokers: "{kafka}", topics: [{topic}], format: debezium, idle_seconds: 0.2}}
        run: {{cdc_commit_seconds: 0.5}}
        lake: {{path: lh}}
    """))
    name = f"bronze.shop_{topic.rsplit('.', 1)[1]}"
    proc = _follow(tmp_path)
    try:
        project = Project(tmp_path)

        def state() -> dict[int, str]:
            return {r["id"]: r["customer"] for r in project.lake.read(name).to_pylist()}

        _wait_for(state, {1: "ada"}, timeout=60)
        produce(kafka, topic, [(key(2), event("c", None, row(2, "bob", "2.00"), 2000), None),
                               (key(1), event("u", None, row(1, "ada l.", "1.00"), 3000), None)])
        _wait_for(state, {1: "ada l.", 2: "bob"})
        produce(kafka, topic, [(key(1), event("d", row(1, "ada l.", "1.00"), None, 4000), None), (key(1), None, None)])
        _wait_for(state, {2: "bob"})
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    log = Project(tmp_path).lake.read(f"{name}_changes").to_pylist()
    assert sorted((r["_lf_position_value"], r["_lf_op"]) for r in log) == [
        (1, "snapshot"), (2, "insert"), (3, "update"), (4, "delete")
    ]
