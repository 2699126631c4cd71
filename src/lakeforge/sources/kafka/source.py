"""``type: kafka``. ``format: json``: one table of the topics' messages, appended exactly once; the position is
every partition's next offset (``{"offsets": {"topic": {"0": 42}}}``). ``format: debezium``: one table per
topic, applied as change data capture by :mod:`lakeforge.sources.kafka.debezium` through lakeforge's CDC loader.

Each message becomes a row of its value's fields plus ``kafka_topic``, ``kafka_partition`` (int32),
``kafka_offset`` (int64), ``kafka_timestamp`` (UTC, ms precision), ``kafka_key`` (binary) and
``kafka_headers`` (list of key/value structs, values binary): keys and header values are bytes on the wire
and are kept as bytes. A value that is not a JSON object or does not fit a declared column goes to
``quarantine.<table>`` with its topic/partition, offset and raw text.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from lakeforge.errors import ConfigError, SourceError
from lakeforge.sources.base import TableRef
from lakeforge.sources.kafka.config import KafkaConfig
from lakeforge.sources.records import BadRecord, Chunk, ReadRequest, RecordSource

if TYPE_CHECKING:
    import pyarrow as pa
    from confluent_kafka import Message

    from lakeforge.sources.base import TablePlan
    from lakeforge.sources.kafka.consumer import KafkaReader, KafkaSettings


class KafkaSource(RecordSource):
    type_name = "kafka"
    CONFIG: ClassVar[type[KafkaConfig]] = KafkaConfig
    SUPPORTS_STREAM = True
    SUPPORTS_CDC = True
    """``format: debezium`` only (checked when the table is planned)."""
    config: KafkaConfig

    def __init__(self, name: str, config: Any) -> None:
        super().__init__(name, config)
        self._reader: KafkaReader | None = None

    def settings(self) -> KafkaSettings:
        from lakeforge.sources.kafka.consumer import KafkaSettings

        cfg = self.config
        secret = {"sasl.password": cfg.sasl_password.get_secret_value()} if cfg.sasl_password else None
        return KafkaSettings(
            self.name,
            cfg.brokers,
            list(cfg.topics),
            cfg.group(self.name),
            cfg.start,
            cfg.options,
            secret,
            metadata_timeout=cfg.assign_timeout,
        )

    def check(self) -> dict[str, str]:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        settings = self.settings()
        admin = AdminClient(
            {"bootstrap.servers": settings.brokers, **(settings.options or {}), **(settings.secret_options or {})}
        )
        try:
            topics = admin.list_topics(timeout=self.config.assign_timeout).topics
        except KafkaException as exc:
            raise SourceError(
                self.name, f"kafka {settings.brokers} is unreachable: {self.scrub(str(exc))}", transient=True
            ) from None
        missing = [t for t in settings.topics if t not in topics]
        if missing:
            known = ", ".join(sorted(topics)) or "none"
            raise SourceError(self.name, f"kafka {settings.brokers}: no topic {', '.join(missing)}; topics: {known}")
        return {"type": "kafka", "brokers": settings.brokers, "format": self.config.format}

    def list_tables(self) -> list[TableRef]:
        if self.config.format == "debezium":
            return [topic_ref(t) for t in self.config.topics]
        return super().list_tables()

    def describe(self, ref: TableRef, options: Any) -> TablePlan:
        mode = options.mode or self.config.defaults.mode
        if self.config.format == "debezium":
            if mode != "cdc":
                raise ConfigError(f"source '{self.name}': format debezium is applied with mode: cdc, not {mode}")
            from lakeforge.sources.kafka.debezium import describe_topic

            return describe_topic(self, ref, options)
        if mode == "cdc":
            raise ConfigError(f"source '{self.name}': mode cdc needs format: debezium (this source's format is json)")
        plan: TablePlan = super().describe(ref, options)
        return plan

    # -- reading ------------------------------------------------------------------------------------
    def read(self, plan: TablePlan, request: ReadRequest) -> Iterator[Chunk]:
        from lakeforge.sources.kafka.consumer import KafkaReader

        offsets = request.position.get("offsets", {})
        self.close()
        reader = self._reader = KafkaReader(self.settings(), offsets)
        assign_deadline = time.monotonic() + self.config.assign_timeout
        quiet_since: float | None = None
        batch = min(request.batch_size, 50_000)
        while True:
            wait = 0.5
            if quiet_since is not None and not request.follow:  # wake when idle_seconds end, not a poll later
                wait = min(wait, max(0.01, self.config.idle_seconds - (time.monotonic() - quiet_since)))
            messages = reader.poll(batch, wait)
            if messages:
                yield self._chunk(plan, messages, reader)
                if request.stopped():
                    return
                quiet_since = time.monotonic()  # quiet counts from the last poll that gave messages
                continue
            now = time.monotonic()
            if not reader.assigned:
                if now > assign_deadline:
                    raise SourceError(
                        self.name,
                        f"kafka {self.config.brokers}: no partition of {', '.join(self.config.topics)} was assigned "
                        f"within {self.config.assign_timeout:.0f} s",
                        transient=True,
                    )
                continue
            quiet_since = quiet_since if quiet_since is not None else now
            position = {"offsets": _copy(reader.offsets)}
            if request.follow:  # no position before the first message: an empty table would be committed
                yield Chunk(None, [], position if position["offsets"] != offsets else None)
                if request.stopped():
                    return
            elif now - quiet_since >= self.config.idle_seconds:
                yield Chunk(None, [], position)
                return

    def _chunk(self, plan: TablePlan, messages: list[Message], reader: KafkaReader) -> Chunk:
        from lakeforge.sources.json_values import fast_batch, parse_objects, to_batch, with_columns

        values = [m.value() for m in messages]
        fast = fast_batch(values, plan.columns)
        if fast is not None:
            return Chunk(with_columns(fast, message_columns(messages)), [], {"offsets": _copy(reader.offsets)})
        rows, refused = parse_objects(values)
        for i, row in enumerate(rows):
            if row is None and i not in refused:
                refused[i] = "empty value (a tombstone) in a format: json topic"
        parsed = to_batch(rows, plan.columns, refused, message_columns(messages))
        bad = [
            BadRecord(
                reason,
                _raw(values[i]),
                partition=f"{messages[i].topic()}/{messages[i].partition()}",
                offset=messages[i].offset(),
            )
            for i, reason in sorted(parsed.refused.items())
        ]
        return Chunk(parsed.batch, bad, {"offsets": _copy(reader.offsets)})

    def acknowledge(self, plan: TablePlan, position: dict[str, Any]) -> None:
        if self._reader is not None:
            self._reader.mirror(position.get("offsets", {}))

    def close(self) -> None:
        if self._reader is not None:
            reader, self._reader = self._reader, None
            reader.close()


def topic_ref(topic: str) -> TableRef:
    """A Debezium topic ``<server>.<schema>.<table>`` as a table ``<table>`` (its schema: the rest)."""
    schema, _, table = topic.rpartition(".")
    return TableRef(schema, table or topic)


def message_columns(messages: list[Message]) -> dict[str, pa.Array]:
    """The Kafka metadata of each message as Arrow columns (one comprehension per attribute; the header structs
    are built only when a message has headers)."""
    import pyarrow as pa

    from lakeforge.sources.json_values import empty_lists

    header_type = pa.list_(pa.struct([pa.field("key", pa.string()), pa.field("value", pa.binary())]))
    topics = [m.topic() for m in messages]
    partitions = [m.partition() for m in messages]
    offsets = [m.offset() for m in messages]
    stamps = [m.timestamp() for m in messages]
    timestamps = [t[1] if t[0] else None for t in stamps]
    keys = [m.key() for m in messages]
    headers: list[Any] = [m.headers() for m in messages]
    if headers.count(None) < len(headers):
        header_array = pa.array([[{"key": k, "value": v} for k, v in (h or [])] for h in headers], header_type)
    else:
        header_array = empty_lists(len(messages), header_type)
    return {
        "kafka_topic": pa.array(topics, pa.string()),
        "kafka_partition": pa.array(partitions, pa.int32()),
        "kafka_offset": pa.array(offsets, pa.int64()),
        "kafka_timestamp": pa.array(timestamps, pa.int64())
        .cast(pa.timestamp("ms", tz="UTC"))
        .cast(pa.timestamp("us", tz="UTC")),
        "kafka_key": pa.array(keys, pa.binary()),
        "kafka_headers": header_array,
    }


def _copy(offsets: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    return {t: dict(p) for t, p in offsets.items()}


def _raw(value: bytes | None) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", errors="backslashreplace")
