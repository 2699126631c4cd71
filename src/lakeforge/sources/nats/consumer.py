"""A NATS JetStream durable pull consumer whose start is the stream sequence committed in the lake.

The consumer acknowledges with ``AckPolicy.ALL`` and only after the lake commit (acking the last message of
a commit acknowledges everything before it). At the start of a read the durable consumer is checked against
the lake: when its acknowledged floor is not the lake's sequence, or messages are still pending from a read
that died before its commit, it is deleted and created again at the lake's sequence + 1. The lake is the
truth; the consumer is a cursor kept in step with it (and shows the lag to ``nats consumer info``).

Everything goes over lakeforge's own socket client (pull.py): the JetStream API requests that check and
create the consumer (``$JS.API.STREAM.INFO``, ``CONSUMER.INFO``/``DELETE``/``DURABLE.CREATE``), the pulls and
the acks. nats-py is not imported on this path (its import alone costs ~0.3 CPU s, a fifth of a small run).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakeforge.errors import SourceError

if TYPE_CHECKING:
    from lakeforge.sources.nats.pull import Pulled, PullSocket


@dataclass(frozen=True)
class NatsSettings:
    source: str
    url: str
    stream: str
    durable: str
    subjects: list[str]
    """Filter on these subjects (empty: everything the stream holds)."""
    token: str | None = None
    user: str | None = None
    password: str | None = None
    connect_timeout: float = 5.0


class NatsReader:
    def __init__(self, settings: NatsSettings) -> None:
        self.settings = settings
        self._pull: PullSocket | None = None

    def _socket(self) -> PullSocket:
        if self._pull is None:
            from lakeforge.sources.nats.pull import PullSocket

            s = self.settings
            self._pull = PullSocket(
                s.source, s.url, token=s.token, user=s.user, password=s.password, timeout=s.connect_timeout
            )
        return self._pull

    def _api(self, what: str, body: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """``$JS.API.<what>``'s answer; None when it names a missing stream or consumer (404)."""
        s = self.settings
        answer = self._socket().request(f"$JS.API.{what}", body, s.connect_timeout)
        error = answer.get("error")
        if error is None:
            return answer
        if error.get("code") == 404:
            return None
        raise SourceError(s.source, f"nats {s.url}: {what}: {error.get('description', error)}")

    # -- life cycle ----------------------------------------------------------------------------------
    def start(self, sequence: int) -> int:
        """Connect and put the durable consumer right after stream sequence ``sequence`` (0: the start);
        returns the number of messages pending for it."""
        s = self.settings
        if self._api(f"STREAM.INFO.{s.stream}") is None:
            raise SourceError(s.source, f"nats {s.url}: stream '{s.stream}' does not exist")
        info = self._api(f"CONSUMER.INFO.{s.stream}.{s.durable}")
        in_step = (
            info is not None
            and int((info.get("ack_floor") or {}).get("stream_seq") or 0) == sequence
            and not info.get("num_ack_pending")
            and not info.get("num_redelivered")
        )
        if info is not None and not in_step:
            self._api(f"CONSUMER.DELETE.{s.stream}.{s.durable}")
        if not in_step:
            config: dict[str, Any] = {
                "durable_name": s.durable,
                "ack_policy": "all",
                "ack_wait": 300 * 10**9,
                "max_ack_pending": -1,
                "deliver_policy": "by_start_sequence" if sequence else "all",
            }
            if sequence:
                config["opt_start_seq"] = sequence + 1
            if len(s.subjects) == 1:
                config["filter_subject"] = s.subjects[0]
            elif s.subjects:
                config["filter_subjects"] = s.subjects
            body = {"stream_name": s.stream, "config": config}
            info = self._api(f"CONSUMER.DURABLE.CREATE.{s.stream}.{s.durable}", body)
        return int((info or {}).get("num_pending") or 0)

    def probe(self) -> int:
        """Connect and return the number of messages the stream holds (SourceError when it has none)."""
        s = self.settings
        info = self._api(f"STREAM.INFO.{s.stream}")
        if info is None:
            raise SourceError(s.source, f"nats {s.url}: stream '{s.stream}' does not exist")
        return int((info.get("state") or {}).get("messages") or 0)

    def close(self) -> None:
        if self._pull is not None:
            pull, self._pull = self._pull, None
            with contextlib.suppress(SourceError):  # acks not delivered: the next start puts the consumer in step
                pull.flush(5)
            pull.close()

    # -- reading -------------------------------------------------------------------------------------
    def fetch(self, batch: int, timeout: float) -> Pulled:
        """Up to ``batch`` messages, waiting at most ``timeout`` s (empty when none came): one pull request
        on lakeforge's own socket client (pull.py; nats-py's parser and message objects cost ~60 us a
        message)."""
        s = self.settings
        return self._socket().pull(f"$JS.API.CONSUMER.MSG.NEXT.{s.stream}.{s.durable}", batch, timeout)

    def pending(self) -> int:
        """Messages of the stream not yet delivered to the consumer."""
        s = self.settings
        info = self._api(f"CONSUMER.INFO.{s.stream}.{s.durable}")
        return int((info or {}).get("num_pending") or 0)

    def ack(self, reply: str) -> None:
        """Acknowledge (AckAll) the message whose reply subject is ``reply`` and all before it (safe from
        another thread than the one fetching)."""
        if self._pull is not None:
            self._pull.ack(reply)
