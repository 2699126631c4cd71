"""A minimal JetStream pull client over one plain socket: pull requests, message parsing and acks.

nats-py spends ~60 us a message in its parser, ``Msg`` objects and asyncio queue (8,000-16,000 messages/s on
this project's machine). The NATS protocol is text: this client sends ``PUB $JS.API.CONSUMER.MSG.NEXT...``
with a reply inbox it subscribed to, and parses whole socket buffers into flat lists (payloads, subjects,
stream sequences, timestamps, headers) with ``bytes.find`` and one regular expression: no object per message. The
JetStream API requests that check and create the consumer (:meth:`PullSocket.request`) go over the same
socket, answered on a second inbox (see consumer.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from lakeforge.errors import SourceError


@dataclass
class Pulled:
    """Messages of one pull, as columns."""

    data: list[bytes] = field(default_factory=list)
    subjects: list[bytes] = field(default_factory=list)
    sequences: list[int] = field(default_factory=list)
    """Stream sequences."""
    timestamps: list[int] = field(default_factory=list)
    """Nanoseconds since the epoch (from the ack subject)."""
    headers: list[dict[str, str] | None] = field(default_factory=list)
    last_reply: str | None = None
    """Ack subject of the last message: AckAll on it acknowledges them all."""
    pending: int | None = None
    """Messages the consumer still had to deliver after the last one (from its ack subject)."""

    def __len__(self) -> int:
        return len(self.data)


_PLAIN_MSG = re.compile(rb"MSG ([^ ]+) [^ ]+ (\$JS\.ACK\.[^ .]+\.[^ .]+\.\d+\.(\d+)\.\d+\.(\d+)\.(\d+)) (\d+)\r\n")
"""``MSG <subject> <sid> $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending> <size>``: a
message without headers and its ack subject in the usual form (other frames take the general path)."""


class PullSocket:
    def __init__(
        self, source: str, url: str, *, token: str | None, user: str | None, password: str | None, timeout: float
    ) -> None:
        self.source, self.url = source, url
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 4222
        user = user or (unquote(parts.username) if parts.username else None)
        password = password or (unquote(parts.password) if parts.password else None)
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise SourceError(
                source, f"nats {url} is unreachable: {type(exc).__name__}: {exc}", transient=True
            ) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock: Any = sock
        self._buf = bytearray()
        self._send_lock = threading.Lock()
        self._pong = 0
        self.inbox = f"_INBOX.lf{os.urandom(8).hex()}"
        self._api_inbox = (self.inbox + ".api").encode()
        self._answers: list[bytes] = []
        """JetStream API answers (:meth:`request`) in arrival order."""
        self._held = Pulled()
        """Pulled messages read while waiting for something else (an API answer): the next pull starts with
        them (dropping one could let a later AckAll acknowledge it unread)."""
        info_line = self._line(time.monotonic() + timeout)
        info = json.loads(info_line[5:]) if info_line.startswith(b"INFO ") else {}
        if parts.scheme == "tls" or info.get("tls_required"):
            import ssl

            context = ssl.create_default_context()
            self._sock = context.wrap_socket(sock, server_hostname=host)
        connect: dict[str, Any] = {
            "verbose": False,
            "pedantic": False,
            "headers": True,
            "no_responders": True,
            "protocol": 1,
            "lang": "python-lakeforge",
            "version": "1",
        }
        if token:
            connect["auth_token"] = token
        if user:
            connect["user"], connect["pass"] = user, password or ""
        subscribe = b"SUB %s 1\r\nSUB %s 2\r\n" % (self.inbox.encode(), self._api_inbox)
        self._send(b"CONNECT " + json.dumps(connect).encode() + b"\r\n" + subscribe)
        self.flush(timeout)

    # -- wire ----------------------------------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        with self._send_lock:
            try:
                self._sock.sendall(data)
            except OSError as exc:
                raise SourceError(
                    self.source, f"nats {self.url}: {type(exc).__name__}: {exc}", transient=True
                ) from None

    def _recv(self, deadline: float) -> bool:
        """Read more bytes into the buffer; False when ``deadline`` passed first."""
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self._sock.settimeout(left)
        try:
            data = self._sock.recv(1 << 20)
        except TimeoutError:
            return False
        except OSError as exc:
            raise SourceError(self.source, f"nats {self.url}: {type(exc).__name__}: {exc}", transient=True) from None
        if not data:
            raise SourceError(self.source, f"nats {self.url}: the server closed the connection", transient=True)
        self._buf += data
        return True

    def _line(self, deadline: float) -> bytes:
        while (end := self._buf.find(b"\r\n")) < 0:
            if not self._recv(deadline):
                raise SourceError(self.source, f"nats {self.url}: no answer from the server", transient=True)
        line = bytes(self._buf[:end])
        del self._buf[: end + 2]
        return line

    def flush(self, timeout: float) -> None:
        """PING and wait for the PONG (messages read meanwhile are dropped: unacked, the server redelivers)."""
        want = self._pong + 1
        self._send(b"PING\r\n")
        deadline = time.monotonic() + timeout
        sink = Pulled()
        while True:
            self._parse(sink, 1 << 62)
            if self._pong >= want:
                return
            if not self._recv(deadline):
                raise SourceError(self.source, f"nats {self.url}: no PONG within {timeout:.0f} s", transient=True)

    # -- pulling -------------------------------------------------------------------------------------
    def pull(self, subject: str, batch: int, expires: float) -> Pulled:
        """One pull request of ``batch`` messages expiring after ``expires`` s: what came before it ended."""
        body = json.dumps({"batch": batch, "expires": int(expires * 1e9)}).encode()
        self._send(b"PUB %s %s %d\r\n%s\r\n" % (subject.encode(), self.inbox.encode(), len(body), body))
        got, self._held = self._held, Pulled()
        deadline = time.monotonic() + expires + 0.05  # 2.9 does not always send 408 for a part-filled request
        while len(got) < batch:
            done = self._parse(got, batch)
            if done or len(got) >= batch:
                break
            if not self._recv(deadline):
                break
        return got

    def request(self, subject: str, body: dict[str, Any] | None = None, timeout: float = 5.0) -> dict[str, Any]:
        """A JetStream API request (``$JS.API...``) answered on this socket: the JSON answer (an API error is
        an answer with ``error``). Pulled messages that arrive meanwhile are kept for the next pull."""
        data = json.dumps(body).encode() if body is not None else b""
        self._answers.clear()
        self._send(b"PUB %s %s %d\r\n%s\r\n" % (subject.encode(), self._api_inbox, len(data), data))
        deadline = time.monotonic() + timeout
        while True:
            self._parse(self._held, 1 << 62)
            if self._answers:
                answer: dict[str, Any] = json.loads(self._answers.pop(0))
                return answer
            if not self._recv(deadline):
                raise SourceError(self.source, f"nats {self.url}: no answer to {subject}", transient=True)

    def ack(self, reply: str) -> None:
        self._send(b"PUB %s 4\r\n+ACK\r\n" % reply.encode())

    def _parse(self, got: Pulled, batch: int) -> bool:
        """Consume every complete protocol message in the buffer into ``got`` (up to ``batch``); True when a
        status (404/408) ended the pull request."""
        buf = self._buf
        pos, n = 0, len(buf)
        ended = False
        data, subjects, sequences, stamps, headers = got.data, got.subjects, got.sequences, got.timestamps, got.headers
        last_reply: bytes | None = None
        match = _PLAIN_MSG.match
        try:
            while pos < n and len(data) < batch:
                plain = match(buf, pos)
                if plain is not None:  # the common frame, parsed by one regular expression
                    subject, reply, seq, stamp, after, size = plain.groups()
                    start = plain.end()
                    end = start + int(size)
                    if end + 2 > n:
                        break  # the payload is not all here yet
                    data.append(bytes(buf[start:end]))
                    subjects.append(subject)
                    sequences.append(int(seq))
                    stamps.append(int(stamp))
                    headers.append(None)
                    last_reply = reply
                    pos = end + 2
                    continue
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    break
                op = buf[pos : pos + 4]
                if op == b"MSG " or op == b"HMSG":
                    args = bytes(buf[pos:eol]).split(b" ")
                    hmsg = op == b"HMSG"
                    total = int(args[-1])
                    start = eol + 2
                    if start + total + 2 > n:
                        break  # the payload is not all here yet
                    hlen = int(args[-2]) if hmsg else 0
                    reply = args[3] if len(args) == (6 if hmsg else 5) else None
                    pos = start + total + 2
                    head = None
                    if hlen:
                        head, status = _headers(bytes(buf[start : start + hlen]))
                        if status is not None and total == hlen:
                            if status in ("404", "408", "409"):
                                ended = True
                                break
                            if status == "100":
                                continue  # heartbeat / flow control
                            raise SourceError(self.source, f"nats {self.url}: pull request failed: {status} {head}")
                    if reply is None:
                        if args[1] == self._api_inbox:
                            self._answers.append(bytes(buf[start + hlen : start + total]))
                        continue
                    tokens = reply.split(b".")
                    if len(tokens) == 9:  # $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
                        seq, stamp, after = tokens[5], tokens[7], tokens[8]
                    else:  # $JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>...
                        seq, stamp, after = tokens[7], tokens[9], tokens[10]
                    data.append(bytes(buf[start + hlen : start + total]))
                    subjects.append(args[1])
                    sequences.append(int(seq))
                    stamps.append(int(stamp))
                    headers.append(head)
                    last_reply = reply
                    continue
                line = bytes(buf[pos:eol])
                pos = eol + 2
                if line == b"PING":
                    self._send(b"PONG\r\n")
                elif line == b"PONG":
                    self._pong += 1
                elif line.startswith(b"-ERR"):
                    raise SourceError(self.source, f"nats {self.url}: {line[5:].decode(errors='replace')}")
                # +OK, INFO: nothing to do
        finally:
            del buf[:pos]
            if last_reply is not None:
                got.last_reply = last_reply.decode()
                got.pending = int(after)
        return ended

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()


def _headers(block: bytes) -> tuple[dict[str, str], str | None]:
    """``NATS/1.0 408 Request Timeout\\r\\nKey: value\\r\\n\\r\\n``: the headers and the status code."""
    lines = block.decode("utf-8", errors="replace").split("\r\n")
    first = lines[0].split(" ", 2)
    status = first[1] if len(first) > 1 and first[1] else None
    head: dict[str, str] = {}
    for line in lines[1:]:
        key, sep, value = line.partition(":")
        if sep:
            head[key.strip()] = value.strip()
    return head, status
