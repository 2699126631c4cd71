"""``format: debezium``: Debezium change events from Kafka, applied by lakeforge's own CDC loader.

:class:`DebeziumCdc` is a :class:`lakeforge.sources.cdc.CdcReader`: ``load/cdc.py`` and ``load/cdc_apply.py``
apply its transactions to ``bronze.<name>`` (current state) and ``bronze.<name>_changes`` (change log) with
the same rules as PostgreSQL/MariaDB CDC (docs/cdc.md). One topic is one table (``<server>.<schema>.<table>``).

- ``op: c`` -> insert, ``u`` -> update, ``d`` -> delete (the ``before`` image, else the message key),
  ``r`` (snapshot read) -> ``snapshot``, ``t`` -> truncate. A tombstone (null value after a delete) is
  skipped: it only tells log compaction to drop the key, and the delete event before it was applied (on a
  compacted topic the key's earlier events are gone with it).
- Each event is one transaction; its commit time is ``source.ts_ms`` (UTC).
- Position: ``text`` is the next offset of every partition (JSON), ``value`` their sum, which grows by one
  with every message read. There is no separate snapshot: Debezium's own snapshot (``op: r``) is in the
  topic, so a new table starts at offset 0 of every partition.
- Column types: the JSON converter's schema (``schemas.enable=true``), Debezium's logical types included
  (Decimal, dates, micro/nano timestamps, ZonedTimestamp); without a schema, inferred from the values as
  ``format: json`` does; ``schema:`` in lakeforge.yml declares types outright. The key's fields are the
  primary key unless ``tables.<t>.primary_key`` says otherwise.

A malformed event (not JSON, not an object, no ``payload``/``op`` or an unknown op, no row image, a value
that does not decode or does not fit its column, a key column without a value) is not applied: it goes to
``quarantine.<table>`` with its topic/partition, offset, reason and raw text, and the good events around it
apply (``max_bad_fraction`` fails the table instead when exceeded).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import decimal
import json
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar, cast

from lakeforge.errors import ConfigError, SourceError
from lakeforge.sources.base import ColumnPlan, TablePlan, TableRef
from lakeforge.sources.cdc import CdcReader, Change, Op, Position, Problem, Snapshot, Txn

if TYPE_CHECKING:
    import pyarrow as pa
    from confluent_kafka import Message

    from lakeforge.config.models import TableConfig
    from lakeforge.sources.kafka.consumer import KafkaReader
    from lakeforge.sources.kafka.source import KafkaSource
    from lakeforge.sources.records import BadRecord

_OPS: dict[str, str] = {"c": "insert", "u": "update", "d": "delete", "r": "snapshot", "t": "truncate"}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


# -- planning (describe) ----------------------------------------------------------------------------------
def describe_topic(source: KafkaSource, ref: TableRef, options: TableConfig) -> TablePlan:
    """The table's columns and key, from the topic's first event (schema or values) and ``schema:``."""
    from lakeforge.lake.naming import lake_column_names
    from lakeforge.sources.declared import arrow_type

    topic = topic_of(source, ref)
    key, value = peek(source, topic)
    fields, row = _first_image(value)
    declared = source.config.column_types
    names = list(dict.fromkeys([*declared, *fields, *(row or {})]))
    lake_names = lake_column_names(names, table=topic)
    columns = []
    for name, lake in zip(names, lake_names, strict=True):
        if name in declared:
            columns.append(ColumnPlan(name, lake, declared[name], "", arrow_type(declared[name])))
        elif name in fields:
            columns.append(ColumnPlan(name, lake, _spelled(fields[name]), "", connect_type(fields[name])))
        else:
            columns.append(ColumnPlan(name, lake, "inferred", "", _infer((row or {}).get(name))))
    key_fields = _payload(key)
    primary_key = list(options.primary_key or (key_fields.keys() if isinstance(key_fields, dict) else []))
    if not columns:
        raise ConfigError(
            f"source '{source.name}': topic {topic} has no event yet, so its columns are unknown: declare them "
            "under schema: (and tables.<t>.primary_key), or run again once Debezium has written to it"
        )
    return TablePlan(source.name, ref, columns, primary_key, options=options)


def topic_of(source: KafkaSource, ref: TableRef) -> str:
    for topic in source.config.topics:
        schema, _, table = topic.rpartition(".")
        if (schema, table or topic) == (ref.schema, ref.name):
            return topic
    raise ConfigError(f"source '{source.name}': no topic for table {ref.qualified}")


def peek(source: KafkaSource, topic: str) -> tuple[Any, Any]:
    """Key and value (parsed JSON) of the topic's first well-formed event with a row; (None, None) when none."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    settings = source.settings()
    conf = {
        "bootstrap.servers": settings.brokers,
        "group.id": f"{settings.group_id}-peek",
        "enable.auto.commit": False,
        **(settings.options or {}),
        **(settings.secret_options or {}),
    }
    consumer = Consumer(conf)
    try:
        metadata = consumer.list_topics(topic, timeout=source.config.assign_timeout)
        partitions = sorted(metadata.topics[topic].partitions) if topic in metadata.topics else []
        if not partitions:
            raise SourceError(source.name, f"kafka {settings.brokers}: no topic {topic}")
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for message in consumer.consume(10, timeout=0.5):
                if message.error() is None and message.value() is not None:
                    with contextlib.suppress(Malformed):  # a malformed event cannot describe the table
                        key, value = _json(message.key(), message), _json(message.value(), message)
                        if _first_image(value) != ({}, None):
                            return key, value
        return None, None
    finally:
        consumer.close()


def _first_image(value: Any) -> tuple[dict[str, dict[str, Any]], dict[str, Any] | None]:
    """The row fields' connect schemas (from the envelope's ``after``/``before`` schema) and a row image."""
    if not isinstance(value, dict):
        return {}, None
    fields: dict[str, dict[str, Any]] = {}
    schema = value.get("schema")
    if isinstance(schema, dict):
        for part in schema.get("fields", []):
            if part.get("field") in ("after", "before") and part.get("fields"):
                fields = {f["field"]: f for f in part["fields"]}
                break
    payload = _payload(value)
    row = payload.get("after") or payload.get("before") if isinstance(payload, dict) else None
    return fields, row if isinstance(row, dict) else None


def _payload(value: Any) -> Any:
    if isinstance(value, dict) and "payload" in value and "schema" in value:
        return value["payload"]
    return value


class Malformed(ValueError):
    """An event that cannot be applied; its message is the reason kept in quarantine."""


def _json(raw: bytes | None, message: Message) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw, parse_float=decimal.Decimal)
    except ValueError as exc:  # UnicodeDecodeError included
        raise Malformed(f"not JSON: {exc}") from None


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="backslashreplace")


def _misfit(row: dict[str, Any], plan: TablePlan) -> str | None:
    """Why ``row`` does not fit the table's columns (a key column without a value, a value its column's type
    cannot hold exactly), or None; the same conversions as :meth:`DebeziumCdc.to_arrow`."""
    import pyarrow as pa

    from lakeforge.sources.json_values import convert_value

    for key in plan.primary_key:
        if row.get(key) is None:
            return f"no value for the key column '{key}'"
    types = {c.name: c.arrow_type for c in plan.columns}
    for name, value in row.items():
        kind = types.get(name)
        if value is None or kind is None:
            continue
        try:
            pa.scalar(value, kind)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            try:
                pa.scalar(convert_value(value, kind), kind)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, ArithmeticError, OverflowError) as exc:
                return f"column '{name}' ({kind}): {exc}"
    return None


# -- Kafka Connect / Debezium types -------------------------------------------------------------------------
def connect_type(field: dict[str, Any]) -> pa.DataType:
    """The Arrow type of a Kafka Connect field schema (Debezium's logical types included)."""
    import pyarrow as pa

    name, kind = field.get("name") or "", field.get("type")
    params = field.get("parameters") or {}
    if name == "org.apache.kafka.connect.data.Decimal":
        scale = int(params.get("scale", 0))
        precision = int(params.get("connect.decimal.precision", 38))
        return pa.decimal128(precision, scale) if precision <= 38 else pa.decimal256(precision, scale)
    if name in ("io.debezium.time.Date", "org.apache.kafka.connect.data.Date"):
        return pa.date32()
    if name in (
        "io.debezium.time.Timestamp",
        "io.debezium.time.MicroTimestamp",
        "io.debezium.time.NanoTimestamp",
        "org.apache.kafka.connect.data.Timestamp",
    ):
        return pa.timestamp("us")  # a wall-clock time without zone (DATETIME, timestamp without time zone)
    if name == "io.debezium.time.ZonedTimestamp":
        return pa.timestamp("us", tz="UTC")
    simple = {
        "int8": pa.int8(),
        "int16": pa.int16(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "float32": pa.float32(),
        "float": pa.float32(),
        "float64": pa.float64(),
        "double": pa.float64(),
        "boolean": pa.bool_(),
        "bytes": pa.binary(),
    }
    return simple.get(str(kind), pa.string())  # string, Json, Uuid, times of day, structs: exact text


def _spelled(field: dict[str, Any]) -> str:
    return str(field.get("name") or field.get("type") or "unknown")


def _infer(value: Any) -> pa.DataType:
    from lakeforge.sources.json_values import _infer as infer

    return infer([value])


def decode(value: Any, field: dict[str, Any] | None) -> Any:
    """A Debezium JSON value as the Python value of its column's Arrow type."""
    if value is None or field is None:
        return value
    name = field.get("name") or ""
    if name == "org.apache.kafka.connect.data.Decimal":
        unscaled = int.from_bytes(base64.b64decode(value), "big", signed=True)
        return decimal.Decimal(unscaled).scaleb(-int((field.get("parameters") or {}).get("scale", 0)))
    if name in ("io.debezium.time.Date", "org.apache.kafka.connect.data.Date"):
        return dt.date(1970, 1, 1) + dt.timedelta(days=int(value))
    if name in ("io.debezium.time.Timestamp", "org.apache.kafka.connect.data.Timestamp"):
        return (_EPOCH + dt.timedelta(milliseconds=int(value))).replace(tzinfo=None)
    if name == "io.debezium.time.MicroTimestamp":
        return (_EPOCH + dt.timedelta(microseconds=int(value))).replace(tzinfo=None)
    if name == "io.debezium.time.NanoTimestamp":
        return (_EPOCH + dt.timedelta(microseconds=int(value) // 1000)).replace(tzinfo=None)
    if name == "io.debezium.time.ZonedTimestamp":
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(dt.UTC)
    if field.get("type") == "bytes":
        return base64.b64decode(value)
    return value


# -- the log reader ---------------------------------------------------------------------------------------
class DebeziumCdc(CdcReader):
    LOG_NAME: ClassVar[str] = "Kafka offset"
    source: KafkaSource

    def __init__(self, source: Any, plans: list[TablePlan]) -> None:
        super().__init__(source, plans)
        self.topics = {topic_of(source, p.ref): p.ref for p in plans}
        self.fields: dict[str, dict[str, dict[str, Any]]] = {}
        """Connect schema of each topic's row fields, as the last event carried it."""
        self._reader: KafkaReader | None = None
        self.tombstones = 0
        self._targets: list[dict[str, dict[str, int]]] = []
        """Offsets some tables committed past the start (see :meth:`resume_points`), in order."""
        self._held: list[Message] = []

    def check(self) -> list[Problem]:
        try:
            self.source.check()
        except SourceError as exc:
            return [Problem(str(exc), "start the broker / create the topic Debezium writes to, or fix brokers:")]
        return []

    def prepare(self) -> Position | None:
        return Position(0, "{}")  # the topic holds its own snapshot (op r): everything from offset 0 is there

    @contextlib.contextmanager
    def snapshot(self, plans: list[TablePlan]) -> Iterator[Snapshot]:
        yield Snapshot(Position(0, "{}"), lambda plan, batch_size: iter(()))

    def changes(self, start: Position | None, idle_seconds: float) -> Iterator[Txn | None]:
        import dataclasses

        from lakeforge.sources.kafka.consumer import KafkaReader

        offsets = json.loads(start.text) if start is not None and start.text else {}
        settings = dataclasses.replace(self.source.settings(), topics=list(self.topics), start="earliest")
        reader = self._reader = KafkaReader(settings, offsets)
        deadline = time.monotonic() + self.source.config.assign_timeout
        quiet_since: float | None = None
        idle = max(idle_seconds, self.source.config.idle_seconds)
        while True:
            messages = reader.poll(10_000, 0.2)
            if messages:
                quiet_since = None
                yield from self._txns(messages, offsets)
                continue
            now = time.monotonic()
            if not reader.assigned:
                if now > deadline:
                    raise SourceError(self.source.name, f"kafka {settings.brokers}: no partition was assigned")
                continue
            quiet_since = quiet_since if quiet_since is not None else now
            if now - quiet_since >= idle:
                quiet_since = now
                yield None

    def resume_points(self, positions: list[Position]) -> None:
        """Replay exactly the messages up to each committed position first: partitions interleave differently
        on every read, and the position value (a sum of offsets) must name the same set of messages."""
        self._targets = [json.loads(p.text) for p in positions if p.text]

    def _in_window(self, topic: str, partition: int, offset: int, offsets: dict[str, dict[str, int]]) -> bool:
        """Whether the message belongs before the first pending target; pops the targets already reached."""
        while self._targets:
            target = self._targets[0]
            reached = all(offsets.get(t, {}).get(p, 0) >= o for t, parts in target.items() for p, o in parts.items())
            if not reached:
                return offset < target.get(topic, {}).get(str(partition), offsets.get(topic, {}).get(str(partition), 0))
            self._targets.pop(0)
        return True

    def _txns(self, messages: list[Message], offsets: dict[str, dict[str, int]]) -> Iterator[Txn]:
        pending = [*self._held, *messages] if self._held else messages
        self._held = []
        for i, message in enumerate(pending):
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            assert topic is not None and partition is not None and offset is not None
            if self._targets and not self._in_window(topic, partition, offset, offsets):
                self._held.append(message)  # past the target in its partition: after the window is complete
                continue
            offsets.setdefault(topic, {})[str(partition)] = offset + 1
            text = json.dumps(offsets, sort_keys=True)
            position = Position(sum(o for parts in offsets.values() for o in parts.values()), text)
            change, commit_time, bad = self._change(message, topic)
            refused = [(self.topics[topic], bad)] if bad is not None else []
            yield Txn(position, commit_time, [change] if change is not None else [], refused)
            if self._held and not self._targets_pending(offsets):
                rest, self._held = [*self._held, *pending[i + 1 :]], []
                yield from self._txns(rest, offsets)
                return

    def _targets_pending(self, offsets: dict[str, dict[str, int]]) -> bool:
        while self._targets:
            target = self._targets[0]
            if not all(offsets.get(t, {}).get(p, 0) >= o for t, parts in target.items() for p, o in parts.items()):
                return True
            self._targets.pop(0)
        return False

    def _change(self, message: Message, topic: str) -> tuple[Change | None, dt.datetime | None, BadRecord | None]:
        """The message's change and commit time, or why it cannot be applied (then it is quarantined)."""
        from lakeforge.sources.records import BadRecord

        raw = message.value()
        if raw is None:
            self.tombstones += 1
            return None, None, None
        try:
            change, commit_time = self._parse(raw, message, topic)
        except Malformed as exc:
            bad = BadRecord(str(exc), _text(raw), partition=f"{topic}/{message.partition()}", offset=message.offset())
            return None, None, bad
        return change, commit_time, None

    def _parse(self, raw: bytes, message: Message, topic: str) -> tuple[Change, dt.datetime | None]:
        value = _json(raw, message)
        if not isinstance(value, dict):
            raise Malformed(f"not a Debezium change event: a JSON {type(value).__name__}, not an object")
        payload = _payload(value)
        if not isinstance(payload, dict):
            raise Malformed("not a Debezium change event: its payload is not an object")
        op = payload.get("op")
        if op not in _OPS:
            what = "no op" if op is None else f"unknown op {op!r}"
            raise Malformed(f"not a Debezium change event: {what} (expected one of {', '.join(_OPS)})")
        fields, _ = _first_image(value)
        known = fields or self.fields.get(topic, {})
        try:
            ts = (payload.get("source") or {}).get("ts_ms") or payload.get("ts_ms")
            commit_time = _EPOCH + dt.timedelta(milliseconds=int(ts)) if ts is not None else None
        except (TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise Malformed(f"source.ts_ms is not a time in milliseconds: {exc}") from None
        ref = self.topics[topic]
        if op == "t":
            return Change(ref, "truncate"), commit_time
        image = payload.get("before") if op == "d" else payload.get("after")
        if op == "d" and not image:
            image = _payload(_json(message.key(), message))
        if not isinstance(image, dict):
            raise Malformed(f"a '{op}' event without its row image")
        try:
            row = {k: decode(v, known.get(k)) for k, v in image.items()}
        except (TypeError, ValueError, ArithmeticError, OverflowError, binascii.Error) as exc:
            raise Malformed(f"a value does not decode as its Kafka Connect type: {exc}") from None
        misfit = _misfit(row, self.plans[ref])
        if misfit is not None:
            raise Malformed(misfit)
        if fields:
            self.fields[topic] = fields  # only a good event's schema types the columns
        return Change(ref, cast(Op, _OPS[op]), row), commit_time

    def ack(self, position: Position) -> None:
        if self._reader is not None and position.text:
            self._reader.mirror(json.loads(position.text))

    def status(self) -> dict[str, Any]:
        return {"brokers": self.source.config.brokers, "topics": list(self.topics)}

    def close(self) -> None:
        if self._reader is not None:
            reader, self._reader = self._reader, None
            reader.close()

    def replan(self, ref: TableRef, columns: list[str]) -> TablePlan:
        """A new column (the source table gained one): typed from the event's schema, else inferred."""
        from lakeforge.lake.naming import lake_column_names

        old = self.plans[ref]
        known = {c.name: c for c in old.columns}
        topic = next(t for t, r in self.topics.items() if r == ref)
        fields = self.fields.get(topic, {})
        names = list(dict.fromkeys([*known, *columns]))
        lake = lake_column_names(names, table=topic)
        planned = [
            known.get(n)
            or ColumnPlan(
                n,
                ln,
                _spelled(fields[n]) if n in fields else "inferred",
                "",
                connect_type(fields[n]) if n in fields else _infer(None),
            )
            for n, ln in zip(names, lake, strict=True)
        ]
        plan = TablePlan(old.source, ref, planned, old.primary_key, 0, old.options)
        self.plans[ref] = plan
        return plan

    def to_arrow(self, values: list[Any], column: ColumnPlan) -> pa.Array:
        import pyarrow as pa

        from lakeforge.sources.json_values import convert_value

        try:
            return pa.array(values, column.arrow_type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
            converted = []
            for v in values:
                try:
                    converted.append(None if v is None else convert_value(v, column.arrow_type))
                except (TypeError, ValueError, ArithmeticError) as exc:
                    raise SourceError(
                        self.source.name, f"column '{column.name}': {exc} (declare its type under schema:)"
                    ) from None
            return pa.array(converted, column.arrow_type)
