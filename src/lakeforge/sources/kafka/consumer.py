"""A Kafka consumer that starts where the lake says, not where the consumer group says.

The lake commit carries the next offset of every partition read (``{"topic": {"0": 42, ...}}``). The reader
assigns itself every partition of its topics (``assign``, no group join: a ``subscribe`` waits ~3 s for the
group's rebalance on Tansu, and the lake, not the group, decides where each partition starts) at that
offset (a partition the lake has never read starts at ``start``: earliest or latest); partitions added
later are picked up within ``REFRESH_SECONDS``. Consumer-group offsets are committed only after the lake
commit, as a mirror for monitoring tools (``kafka-consumer-groups``); lakeforge never reads them back.

A read never ends at the broker's high watermark (some brokers report it wrong, see docs/sources.md): a
bounded read ends when the assigned partitions stay quiet for ``idle_seconds``.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakeforge.errors import SourceError

if TYPE_CHECKING:
    from confluent_kafka import Consumer, Message

Offsets = dict[str, dict[str, int]]
"""Next offset to read, by topic then partition (as a string: JSON keys)."""


@dataclass(frozen=True)
class KafkaSettings:
    source: str
    brokers: str
    topics: list[str]
    group_id: str
    start: str = "earliest"
    options: dict[str, str] | None = None
    """Extra librdkafka settings (``security.protocol``, ``sasl.*``): passed as they are."""
    secret_options: dict[str, str] | None = None
    """librdkafka settings that are secrets (``sasl.password``)."""
    metadata_timeout: float = 30.0
    """Seconds to wait for the broker's list of partitions."""


REFRESH_SECONDS = 30.0


class KafkaReader:
    def __init__(self, settings: KafkaSettings, offsets: Offsets) -> None:
        self.settings = settings
        self.offsets: Offsets = {t: dict(p) for t, p in offsets.items()}
        self.assigned = False
        self._consumer: Consumer | None = None
        self._errors: list[str] = []
        self._partitions: set[tuple[str, int]] = set()
        self._refreshed = 0.0

    # -- life cycle ----------------------------------------------------------------------------------
    def open(self) -> Consumer:
        if self._consumer is not None:
            return self._consumer
        try:
            from confluent_kafka import Consumer
        except ImportError as exc:
            from lakeforge.errors import MissingExtraError

            raise MissingExtraError("confluent-kafka", "streams") from exc
        s = self.settings
        conf: dict[str, Any] = {
            "bootstrap.servers": s.brokers,
            "group.id": s.group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": s.start,
            "error_cb": self._on_error,
            **(s.options or {}),
            **(s.secret_options or {}),
        }
        consumer = Consumer(conf)
        self._consumer = consumer
        self._assign_new()
        return consumer

    def close(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            consumer.close()
            self.assigned = False
            self._partitions = set()

    def _on_error(self, error: Any) -> None:
        self._errors.append(str(error))

    def _assign_new(self) -> None:
        """Assign the topics' partitions not assigned yet, each at the lake's offset (else ``start``)."""
        from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, KafkaException, TopicPartition

        assert self._consumer is not None
        s = self.settings
        try:
            metadata = self._consumer.list_topics(timeout=s.metadata_timeout)
        except KafkaException as exc:
            raise SourceError(s.source, f"kafka {s.brokers}: {exc}", transient=True) from None
        self._refreshed = time.monotonic()
        missing = [t for t in s.topics if t not in metadata.topics or metadata.topics[t].error is not None]
        if missing:
            raise SourceError(s.source, f"kafka {s.brokers}: no topic {', '.join(missing)}")
        default = OFFSET_BEGINNING if s.start == "earliest" else OFFSET_END
        new = []
        for topic in s.topics:
            for partition in sorted(metadata.topics[topic].partitions):
                if (topic, partition) not in self._partitions:
                    if self.assigned:
                        default = OFFSET_BEGINNING  # a partition created while reading: all of it is new
                    offset = self.offsets.get(topic, {}).get(str(partition), default)
                    new.append(TopicPartition(topic, partition, offset))
                    self._partitions.add((topic, partition))
        if new:
            self._consumer.incremental_assign(new)
        self.assigned = True

    # -- reading -------------------------------------------------------------------------------------
    def poll(self, max_messages: int, timeout: float) -> list[Message]:
        """Up to ``max_messages`` messages (waiting at most ``timeout`` s); the offsets move past them."""
        from confluent_kafka import KafkaError

        consumer = self.open()
        if time.monotonic() - self._refreshed > REFRESH_SECONDS:
            self._assign_new()
        messages = consumer.consume(max_messages, timeout=timeout)
        if not messages:
            return messages
        good = []
        nexts: dict[tuple[str, int], int] = {}
        """Next offset of each partition met in this batch (written back to ``self.offsets`` once)."""
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                if error.fatal() or error.code() in (
                    KafkaError.UNKNOWN_TOPIC_OR_PART,
                    KafkaError.TOPIC_AUTHORIZATION_FAILED,
                ):
                    raise SourceError(self.settings.source, f"kafka {self.settings.brokers}: {error.str()}")
                continue
            where = (message.topic(), message.partition())
            offset = message.offset()
            expected = nexts.get(where)  # type: ignore[arg-type]
            if expected is None:
                expected = self.offsets.get(where[0], {}).get(str(where[1]), -1)  # type: ignore[arg-type]
            if offset < expected:  # type: ignore[operator]
                continue  # delivered again (a seek or a broker retry): already read
            nexts[where] = offset + 1  # type: ignore[index,operator]
            good.append(message)
        for (topic, partition), following in nexts.items():
            self.offsets.setdefault(topic, {})[str(partition)] = following
        return good

    def mirror(self, offsets: Offsets) -> None:
        """Commit ``offsets`` (already in the lake) to the consumer group, for monitoring only."""
        from confluent_kafka import KafkaException, TopicPartition

        if self._consumer is None or not offsets:
            return
        parts = [TopicPartition(t, int(p), o) for t, by_part in offsets.items() for p, o in by_part.items()]
        with contextlib.suppress(KafkaException):  # a mirror only: the lake holds the offsets
            self._consumer.commit(offsets=parts, asynchronous=True)
