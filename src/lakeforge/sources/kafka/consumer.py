"""A Kafka consumer that starts where the lake says, not where the consumer group says.

The lake commit carries the next offset of every partition read (``{"topic": {"0": 42, ...}}``). On
assignment each partition is moved to that offset (a partition the lake has never read starts at ``start``:
earliest or latest). Consumer-group offsets are committed only after the lake commit, as a mirror for
monitoring tools (``kafka-consumer-groups``); lakeforge never reads them back.

A read never ends at the broker's high watermark (some brokers report it wrong, see docs/sources.md): a
bounded read ends when the assigned partitions stay quiet for ``idle_seconds``.
"""

from __future__ import annotations

import contextlib
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


class KafkaReader:
    def __init__(self, settings: KafkaSettings, offsets: Offsets) -> None:
        self.settings = settings
        self.offsets: Offsets = {t: dict(p) for t, p in offsets.items()}
        self.assigned = False
        self._consumer: Consumer | None = None
        self._errors: list[str] = []

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
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
            "error_cb": self._on_error,
            **(s.options or {}),
            **(s.secret_options or {}),
        }
        consumer = Consumer(conf)
        consumer.subscribe(list(s.topics), on_assign=self._on_assign)
        self._consumer = consumer
        return consumer

    def close(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            consumer.close()
            self.assigned = False

    def _on_error(self, error: Any) -> None:
        self._errors.append(str(error))

    def _on_assign(self, consumer: Consumer, partitions: list[Any]) -> None:
        from confluent_kafka import OFFSET_BEGINNING, OFFSET_END

        default = OFFSET_BEGINNING if self.settings.start == "earliest" else OFFSET_END
        for tp in partitions:
            tp.offset = self.offsets.get(tp.topic, {}).get(str(tp.partition), default)
        consumer.assign(partitions)
        self.assigned = True

    # -- reading -------------------------------------------------------------------------------------
    def poll(self, max_messages: int, timeout: float) -> list[Message]:
        """Up to ``max_messages`` messages (waiting at most ``timeout`` s); the offsets move past them."""
        from confluent_kafka import KafkaError

        consumer = self.open()
        messages = consumer.consume(max_messages, timeout=timeout)
        good = []
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
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            assert topic is not None and partition is not None and offset is not None
            expected = self.offsets.get(topic, {}).get(str(partition))
            if expected is not None and offset < expected:
                continue  # delivered again after a rebalance: already read
            self.offsets.setdefault(topic, {})[str(partition)] = offset + 1
            good.append(message)
        return good

    def mirror(self, offsets: Offsets) -> None:
        """Commit ``offsets`` (already in the lake) to the consumer group, for monitoring only."""
        from confluent_kafka import KafkaException, TopicPartition

        if self._consumer is None or not offsets:
            return
        parts = [TopicPartition(t, int(p), o) for t, by_part in offsets.items() for p, o in by_part.items()]
        with contextlib.suppress(KafkaException):  # a mirror only: the lake holds the offsets
            self._consumer.commit(offsets=parts, asynchronous=True)
