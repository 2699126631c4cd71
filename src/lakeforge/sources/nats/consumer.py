"""A NATS JetStream durable pull consumer whose start is the stream sequence committed in the lake.

The consumer acknowledges with ``AckPolicy.ALL`` and only after the lake commit (acking the last message of
a commit acknowledges everything before it). At the start of a read the durable consumer is checked against
the lake: when its acknowledged floor is not the lake's sequence, or messages are still pending from a read
that died before its commit, it is deleted and created again at the lake's sequence + 1. The lake is the
truth; the consumer is a cursor kept in step with it (and shows the lag to ``nats consumer info``).

nats-py is asyncio: the reader runs its own event loop and calls it synchronously.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakeforge.errors import SourceError

if TYPE_CHECKING:
    from nats.aio.client import Client

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
        self._loop = asyncio.new_event_loop()
        self._nc: Client | None = None
        self._pull: PullSocket | None = None
        self._lock = threading.Lock()
        """The loop runs in one thread at a time."""

    def _run(self, coro: Any) -> Any:
        with self._lock:
            return self._loop.run_until_complete(coro)

    # -- life cycle ----------------------------------------------------------------------------------
    def start(self, sequence: int) -> int:
        """Connect and put the durable consumer right after stream sequence ``sequence`` (0: the start);
        returns the number of messages pending for it."""
        return int(self._run(self._start(sequence)))

    def probe(self) -> int:
        """Connect and return the number of messages the stream holds (SourceError when it has none)."""

        async def ask() -> int:
            from nats.js.errors import NotFoundError

            nc = await self._connect()
            try:
                info = await nc.jetstream().stream_info(self.settings.stream)
            except NotFoundError:
                raise SourceError(
                    self.settings.source, f"nats {self.settings.url}: stream '{self.settings.stream}' does not exist"
                ) from None
            return int(info.state.messages)

        return int(self._run(ask()))

    async def _connect(self) -> Client:
        if self._nc is not None and self._nc.is_connected:
            return self._nc
        try:
            import nats
        except ImportError as exc:
            from lakeforge.errors import MissingExtraError

            raise MissingExtraError("nats-py", "streams") from exc
        s = self.settings
        options: dict[str, Any] = {
            "servers": [s.url],
            "connect_timeout": s.connect_timeout,
            "max_reconnect_attempts": 2,
            "allow_reconnect": False,
            "error_cb": _quiet,
            "disconnected_cb": _quiet_event,
            "closed_cb": _quiet_event,
        }
        if s.token:
            options["token"] = s.token
        if s.user:
            options["user"], options["password"] = s.user, s.password
        try:
            self._nc = await nats.connect(**options)
        except Exception as exc:  # nats-py raises OSError, TimeoutError, NoServersError...
            raise SourceError(
                s.source, f"nats {s.url} is unreachable: {type(exc).__name__}: {exc}", transient=True
            ) from None
        return self._nc

    async def _start(self, sequence: int) -> int:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
        from nats.js.errors import NotFoundError

        s = self.settings
        nc = await self._connect()
        js = nc.jetstream()
        try:
            await js.stream_info(s.stream)
        except NotFoundError:
            raise SourceError(s.source, f"nats {s.url}: stream '{s.stream}' does not exist") from None
        try:
            info = await js.consumer_info(s.stream, s.durable)
        except NotFoundError:
            info = None
        in_step = (
            info is not None
            and info.ack_floor is not None
            and (info.ack_floor.stream_seq or 0) == sequence
            and not info.num_ack_pending
            and not info.num_redelivered
        )
        if info is not None and not in_step:
            await js.delete_consumer(s.stream, s.durable)
        if not in_step:
            config = ConsumerConfig(
                durable_name=s.durable,
                ack_policy=AckPolicy.ALL,
                ack_wait=300,
                max_ack_pending=-1,
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE if sequence else DeliverPolicy.ALL,
                opt_start_seq=sequence + 1 if sequence else None,
                filter_subject=s.subjects[0] if len(s.subjects) == 1 else None,
                filter_subjects=s.subjects if len(s.subjects) > 1 else None,
            )
            info = await js.add_consumer(s.stream, config=config)
        return int(info.num_pending or 0) if info is not None else 0

    def close(self) -> None:
        if self._pull is not None:
            pull, self._pull = self._pull, None
            with contextlib.suppress(SourceError):  # acks not delivered: the next start puts the consumer in step
                pull.flush(5)
            pull.close()
        if self._nc is not None:
            nc, self._nc = self._nc, None
            with contextlib.suppress(Exception):  # closing a dead connection: nothing left to do
                self._run(nc.close())
        self._loop.close()

    # -- reading -------------------------------------------------------------------------------------
    def fetch(self, batch: int, timeout: float) -> Pulled:
        """Up to ``batch`` messages, waiting at most ``timeout`` s (empty when none came): one pull request
        on lakeforge's own socket client (pull.py; nats-py's parser and message objects cost ~60 us a
        message)."""
        from lakeforge.sources.nats.pull import PullSocket

        s = self.settings
        if self._pull is None:
            self._pull = PullSocket(
                s.source, s.url, token=s.token, user=s.user, password=s.password, timeout=s.connect_timeout
            )
        return self._pull.pull(f"$JS.API.CONSUMER.MSG.NEXT.{s.stream}.{s.durable}", batch, timeout)

    def pending(self) -> int:
        """Messages of the stream not yet delivered to the consumer."""

        async def ask() -> int:
            nc = await self._connect()
            info = await nc.jetstream().consumer_info(self.settings.stream, self.settings.durable)
            return int(info.num_pending or 0)

        return int(self._run(ask()))

    def ack(self, reply: str) -> None:
        """Acknowledge (AckAll) the message whose reply subject is ``reply`` and all before it (safe from
        another thread than the one fetching)."""
        if self._pull is not None:
            self._pull.ack(reply)


async def _quiet(exc: Exception) -> None:
    """nats-py logs connection errors itself unless given a callback: lakeforge reports them as SourceError."""


async def _quiet_event() -> None:
    """See :func:`_quiet`."""
