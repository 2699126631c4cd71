"""Exactly once under SIGKILL for the stream sources: a real ``lakeforge run`` kills itself (``LAKEFORGE_TEST_KILL_AT``)
while writing a commit interval, or after the commit but before the broker is told (NATS ack, Kafka offsets
mirror); more messages arrive; the next run must leave every message in the lake exactly once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from lakeforge.project import Project
from tests.integration.streams.debezium_events import event, key, row
from tests.stream_servers import Api, create_topic, http_api, nats_publish, produce

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LAKEFORGE = str(Path(sys.executable).parent / "lakeforge")
RUN = "run: {batch_size: 40, commit_bytes: 1500}"  # many small commit intervals per run


def lakeforge(project: Path, kill_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LAKEFORGE_TEST_KILL_AT"}
    if kill_at:
        env["LAKEFORGE_TEST_KILL_AT"] = kill_at
    return subprocess.run([LAKEFORGE, "run", "--project", str(project), "--output", "json"], env=env,
                          capture_output=True, text=True, timeout=180)


def _write(root: Path, source: str) -> None:
    (root / "lakeforge.yml").write_text(textwrap.dedent(source) + f"\n{RUN}\nlake: {{path: lh}}\n")


def _ids(root: Path, table: str) -> list[int]:
    return sorted(r["id"] for r in Project(root).lake.read(table).select(["id"]).to_pylist())


def _values(first: int, last: int) -> list[bytes]:
    return [json.dumps({"id": i, "payload": "x" * 30}).encode() for i in range(first, last)]


@pytest.mark.parametrize("point", ["write", "interval_committed"])
def test_nats_killed_then_rerun_loads_each_message_once(tmp_path: Path, nats_url: str, point: str) -> None:
    stream = f"CR{uuid.uuid4().hex[:6].upper()}"
    nats_publish(nats_url, stream, [f"{stream}.>"], [(f"{stream}.e", v) for v in _values(0, 300)])
    _write(tmp_path, f"""
        sources:
          events: {{type: nats, url: "{nats_url}", stream: {stream}, fetch_batch: 40}}
    """)
    killed = lakeforge(tmp_path, kill_at=f"{point}:bronze.events")
    assert killed.returncode == -9, killed.stderr
    nats_publish(nats_url, stream, [], [(f"{stream}.e", v) for v in _values(300, 400)])
    again = lakeforge(tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _ids(tmp_path, "bronze.events") == list(range(400))


@pytest.mark.parametrize("point", ["write", "interval_committed"])
def test_kafka_killed_then_rerun_loads_each_message_once(tmp_path: Path, kafka: str, point: str) -> None:
    topic = f"crash_{uuid.uuid4().hex[:8]}"
    create_topic(kafka, topic, partitions=2)
    produce(kafka, topic, [(str(i).encode(), v, None) for i, v in enumerate(_values(0, 300))])
    _write(tmp_path, f"""
        sources:
          clicks: {{type: kafka, brokers: "{kafka}", topics: [{topic}], idle_seconds: 1}}
    """)
    killed = lakeforge(tmp_path, kill_at=f"{point}:bronze.clicks")
    assert killed.returncode == -9, killed.stderr
    produce(kafka, topic, [(str(i).encode(), v, None) for i, v in enumerate(_values(300, 400), 300)])
    again = lakeforge(tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _ids(tmp_path, "bronze.clicks") == list(range(400))


@pytest.mark.parametrize("point", ["write", "interval_committed"])
def test_http_killed_then_rerun_loads_each_record_once(tmp_path: Path, point: str) -> None:
    api = Api(records=[{"id": i, "updated_at": f"2024-01-01T00:{i // 60:02d}:{i % 60:02d}Z"} for i in range(120)],
              page_size=10)
    with http_api(api) as base:
        _write(tmp_path, f"""
            sources:
              rates:
                type: http
                url: {base}/next
                records: "$.results[*]"
                paginate: {{next: "$.next"}}
                incremental: {{field: updated_at, param: since}}
        """)
        killed = lakeforge(tmp_path, kill_at=f"{point}:bronze.rates")
        assert killed.returncode == -9, killed.stderr
        api.records += [{"id": i, "updated_at": f"2024-01-01T00:{i // 60:02d}:{i % 60:02d}Z"} for i in range(120, 150)]
        again = lakeforge(tmp_path)
        assert again.returncode == 0, again.stdout + again.stderr
    assert _ids(tmp_path, "bronze.rates") == list(range(150))


@pytest.mark.parametrize(
    ("point", "partitions"),
    [("cdc_buffer", 1), ("cdc_log_committed", 1), ("cdc_committed", 1), ("cdc_log_committed", 3)],
)
def test_debezium_killed_then_rerun_applies_each_event_once(
    tmp_path: Path, kafka: str, point: str, partitions: int
) -> None:
    """With several partitions the replay after a kill between the change-log and the state commits
    interleaves them differently: the reader replays exactly the window first (``resume_points``)."""
    topic = f"srv.shop.orders{uuid.uuid4().hex[:6]}"
    create_topic(kafka, topic, partitions=partitions)
    produce(kafka, topic, [(key(i % 9 + 1), event("c", None, row(i % 9 + 1, f"c{i}", f"{i}.00"), 1000 + i), None)
                           for i in range(1, 60)])
    name = _debezium_project(tmp_path, kafka, topic)
    killed = lakeforge(tmp_path, kill_at=f"{point}:{name}")
    assert killed.returncode == -9, killed.stderr
    produce(kafka, topic, [(key(2), event("d", None, None, 5000), None)])
    again = lakeforge(tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    project = Project(tmp_path)
    log = project.lake.read(f"{name}_changes").to_pylist()
    assert sorted(r["_lf_position_value"] for r in log) == list(range(1, 61))  # every event once, in order
    state = {r["id"]: r["customer"] for r in project.lake.read(name).to_pylist()}
    assert state == {i: f"c{max(n for n in range(1, 60) if n % 9 + 1 == i)}" for i in range(1, 10) if i != 2}


def _debezium_project(tmp_path: Path, kafka: str, topic: str) -> str:
    """A project reading ``topic`` as Debezium events, committing every 7 changes; the state table's name."""
    _write(tmp_path, f"""
        sources:
          shop: {{type: kafka, brokers: "{kafka}", topics: [{topic}], format: debezium, idle_seconds: 1}}
    """)
    text = (tmp_path / "lakeforge.yml").read_text().replace("run: {", "run: {cdc_commit_changes: 7, ")
    (tmp_path / "lakeforge.yml").write_text(text)
    return f"bronze.shop_{topic.rsplit('.', 1)[1]}"


@pytest.mark.parametrize("point", ["quarantined", "cdc_log_committed"])
def test_debezium_killed_with_malformed_events_quarantines_each_once(tmp_path: Path, kafka: str, point: str) -> None:
    """A kill after the quarantine commit (or after the change log's) and a rerun: every malformed event is in
    quarantine once, every good one applied once."""
    topic = f"srv.shop.bad{uuid.uuid4().hex[:6]}"
    create_topic(kafka, topic)
    events = [
        (key(i % 9 + 1), b"{broken" if i % 10 == 0 else event("c", None, row(i % 9 + 1, f"c{i}", f"{i}.00"), 1000 + i))
        for i in range(1, 60)
    ]
    produce(kafka, topic, [(k, v, None) for k, v in events])
    name = _debezium_project(tmp_path, kafka, topic)
    killed = lakeforge(tmp_path, kill_at=f"{point}:{name}")
    assert killed.returncode == -9, killed.stderr
    again = lakeforge(tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    project = Project(tmp_path)
    log = project.lake.read(f"{name}_changes").to_pylist()
    assert sorted(r["_lf_position_value"] for r in log) == [i for i in range(1, 60) if i % 10]
    bad = project.lake.read(f"quarantine.shop_{topic.rsplit('.', 1)[1]}").to_pylist()
    assert sorted(r["offset"] for r in bad) == [9, 19, 29, 39, 49]  # offset = i - 1
    assert {r["raw"] for r in bad} == {"{broken"} and all(r["reason"].startswith("not JSON") for r in bad)
