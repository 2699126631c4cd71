"""``type: nats``: a JetStream stream, read from the stream sequence committed in the lake.

Each message becomes a row of its JSON value's fields plus ``nats_subject``, ``nats_sequence`` (the
stream sequence, int64), ``nats_timestamp`` (UTC) and ``nats_headers`` (list of key/value structs). The
position is ``{"stream": name, "sequence": last stream sequence}``; messages are acknowledged (AckAll)
only after the lake commit that holds them (see consumer.py). A value that is not a JSON object or does not
fit a declared column goes to ``quarantine.<table>`` with its subject, sequence and raw text.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from lakeforge.errors import SourceError
from lakeforge.sources.nats.config import NatsConfig
from lakeforge.sources.records import BadRecord, Chunk, ReadRequest, RecordSource

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeforge.sources.base import TablePlan
    from lakeforge.sources.nats.consumer import NatsReader, NatsSettings
    from lakeforge.sources.nats.pull import Pulled


class NatsSource(RecordSource):
    type_name = "nats"
    CONFIG: ClassVar[type[NatsConfig]] = NatsConfig
    SUPPORTS_STREAM = True
    config: NatsConfig

    def __init__(self, name: str, config: Any) -> None:
        super().__init__(name, config)
        self._reader: NatsReader | None = None
        self._replies: dict[int, str] = {}
        """Reply subject of the last message of each chunk, by stream sequence: what to ack after a commit."""

    def settings(self) -> NatsSettings:
        from lakeforge.sources.nats.consumer import NatsSettings

        cfg = self.config
        return NatsSettings(
            self.name,
            cfg.url,
            cfg.stream,
            cfg.durable or f"lakeforge-{self.name}",
            list(cfg.subjects),
            token=cfg.token.get_secret_value() if cfg.token else None,
            user=cfg.user,
            password=cfg.password.get_secret_value() if cfg.password else None,
            connect_timeout=cfg.connect_timeout,
        )

    def check(self) -> dict[str, str]:
        from lakeforge.sources.nats.consumer import NatsReader

        reader = NatsReader(self.settings())
        try:
            pending = reader.probe()
        finally:
            reader.close()
        return {"type": "nats", "url": self.config.url, "stream": self.config.stream, "messages": str(pending)}

    def read(self, plan: TablePlan, request: ReadRequest) -> Iterator[Chunk]:
        from lakeforge.sources.nats.consumer import NatsReader

        stream = request.position.get("stream")
        if stream is not None and stream != self.config.stream:
            raise SourceError(
                self.name,
                f"the lake's position is in stream '{stream}', the source now reads '{self.config.stream}': "
                "load it into a new table (tables.<t>.name) or start over with a full run",
            )
        sequence = start = int(request.position.get("sequence", 0))
        self.close()
        reader = self._reader = NatsReader(self.settings())
        pending = reader.start(sequence)
        quiet_since: float | None = None
        while True:
            # a bounded read asks for what is pending when it is less than a batch: the pull is filled at once
            # instead of waiting for its expiry (following, a full batch gathers what arrives meanwhile)
            batch = self.config.fetch_batch if request.follow else min(self.config.fetch_batch, pending or 1 << 30)
            messages = reader.fetch(batch, 0.5)
            if messages:
                quiet_since = None
                pending = messages.pending or 0
                chunk = self._chunk(plan, messages)
                sequence = int(chunk.position["sequence"]) if chunk.position else sequence
                yield chunk
                if request.stopped() or (not request.follow and messages.pending == 0):
                    return  # a bounded read ends when the consumer has delivered everything the stream held
                continue
            now = time.monotonic()
            quiet_since = quiet_since if quiet_since is not None else now
            position = {"stream": self.config.stream, "sequence": sequence}
            if request.follow:  # no position before the first message: an empty table would be committed
                yield Chunk(None, [], position if sequence != start else None)
                if request.stopped():
                    return
            elif now - quiet_since >= self.config.idle_seconds and reader.pending() == 0:
                yield Chunk(None, [], position)
                return

    def _chunk(self, plan: TablePlan, messages: Pulled) -> Chunk:
        from lakeforge.sources.json_values import fast_batch, parse_objects, to_batch, with_columns

        values = messages.data
        sequence = messages.sequences[-1]
        if messages.last_reply:
            self._replies[sequence] = messages.last_reply
        fast = fast_batch(values, plan.columns)
        if fast is not None:
            return Chunk(
                with_columns(fast, message_columns(messages)), [], {"stream": self.config.stream, "sequence": sequence}
            )
        rows, refused = parse_objects(values)
        parsed = to_batch(rows, plan.columns, refused, message_columns(messages))
        bad = [
            BadRecord(
                reason,
                values[i].decode("utf-8", errors="backslashreplace"),
                partition=messages.subjects[i].decode("utf-8", errors="backslashreplace"),
                offset=messages.sequences[i],
            )
            for i, reason in sorted(parsed.refused.items())
        ]
        return Chunk(parsed.batch, bad, {"stream": self.config.stream, "sequence": sequence})

    def acknowledge(self, plan: TablePlan, position: dict[str, Any]) -> None:
        """The lake holds everything up to ``position``: ack (AckAll) the last message delivered up to it."""
        sequence = int(position.get("sequence", 0))
        done = [s for s in self._replies if s <= sequence]
        if not done or self._reader is None:
            return
        self._reader.ack(self._replies[max(done)])
        for s in done:
            del self._replies[s]

    def close(self) -> None:
        if self._reader is not None:
            reader, self._reader = self._reader, None
            reader.close()
        self._replies.clear()


def message_columns(messages: Pulled) -> dict[str, pa.Array]:
    import pyarrow as pa
    import pyarrow.compute as pc

    from lakeforge.sources.json_values import empty_lists

    header_type = pa.list_(pa.struct([pa.field("key", pa.string()), pa.field("value", pa.string())]))
    if messages.headers.count(None) < len(messages):  # some message has headers
        headers = pa.array(
            [[{"key": k, "value": v} for k, v in (h or {}).items()] for h in messages.headers], header_type
        )
    else:
        headers = empty_lists(len(messages), header_type)
    nanos = pa.array(messages.timestamps, pa.int64())
    return {
        "nats_subject": pa.array(messages.subjects, pa.binary()).cast(pa.string()),
        "nats_sequence": pa.array(messages.sequences, pa.int64()),
        "nats_timestamp": pc.divide(nanos, 1000).cast(pa.timestamp("us", tz="UTC")),
        "nats_headers": headers,
    }
