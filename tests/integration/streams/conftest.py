"""One Tansu broker and one private nats-server for the whole session (a Kafka consumer group takes ~3 s to
start: tests share the broker and use their own topics and streams)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.stream_servers import nats_server, tansu_broker


@pytest.fixture(scope="session")
def kafka() -> Iterator[str]:
    with tansu_broker() as brokers:
        yield brokers


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    with nats_server() as url:
        yield url
