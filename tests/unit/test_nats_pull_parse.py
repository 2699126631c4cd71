"""lakeforge's JetStream pull parser (sources/nats/pull.py) on protocol bytes, no server: the common frame
(one regular expression) and the general path (headers, the domain form of the ack subject, PING, statuses)
give the same columns whatever pieces the bytes arrive in."""

from __future__ import annotations

import threading

import pyarrow as pa
import pytest

from lakeforge.sources.json_values import empty_lists
from lakeforge.sources.nats.pull import Pulled, PullSocket


class _Sink:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.sent.append(data)


def _socket() -> PullSocket:
    sock = object.__new__(PullSocket)  # no connection: the parser only reads the buffer
    sock._buf = bytearray()
    sock._pong = 0
    sock._sock = _Sink()
    sock._send_lock = threading.Lock()
    sock.source, sock.url = "ev", "nats://test"
    sock.inbox, sock._api_inbox = "_INBOX.t", b"_INBOX.t.api"
    sock._answers, sock._held = [], Pulled()
    return sock


def _frames(n: int) -> bytes:
    out = []
    for i in range(n):
        body = b'{"id": %d}' % i
        ack = b"$JS.ACK.S.dur.1.%d.%d.%d.%d" % (i + 10, i + 1, 1_700_000_000_000_000_000 + i, n - 1 - i)
        if i % 7 == 3:
            head = b"NATS/1.0\r\nk: v%d\r\n\r\n" % i
            out.append(b"HMSG S.ev 1 %s %d %d\r\n%s%s\r\n" % (ack, len(head), len(head) + len(body), head, body))
        elif i % 11 == 5:
            stamp = 1_700_000_000_000_000_000 + i
            domain = b"$JS.ACK.hub.acc.S.dur.1.%d.%d.%d.%d.rnd" % (i + 10, i + 1, stamp, n - 1 - i)
            out.append(b"MSG S.ev 1 %s %d\r\n%s\r\n" % (domain, len(body), body))
        else:
            if i % 13 == 0:
                out.append(b"PING\r\n")
            out.append(b"MSG S.ev.%d 1 %s %d\r\n%s\r\n" % (i % 3, ack, len(body), body))
    return b"".join(out)


@pytest.mark.parametrize("piece", [1, 5, 4096, 1 << 30])
def test_every_frame_parsed_the_same_in_any_pieces(piece: int) -> None:
    data = _frames(300) + b"MSG S.ev 1 $JS.ACK.S.dur.1.9.9.9.0 100\r\n{partial"
    sock, got = _socket(), Pulled()
    for k in range(0, len(data), piece):
        sock._buf += data[k : k + piece]
        assert sock._parse(got, 10**9) is False
    assert got.data == [b'{"id": %d}' % i for i in range(300)]
    assert got.sequences == [i + 10 for i in range(300)]
    assert got.timestamps == [1_700_000_000_000_000_000 + i for i in range(300)]
    assert got.subjects[1] == b"S.ev.1" and got.subjects[3] == b"S.ev" and got.subjects[5] == b"S.ev"
    assert got.headers[3] == {"k": "v3"} and got.headers[1] is None
    assert got.pending == 0 and got.last_reply == "$JS.ACK.S.dur.1.309.300.1700000000000000299.0"
    pings = [i for i in range(300) if i % 13 == 0 and i % 7 != 3 and i % 11 != 5]
    assert sock._sock.sent.count(b"PONG\r\n") == len(pings)
    assert bytes(sock._buf).startswith(b"MSG S.ev 1 $JS.ACK.S.dur.1.9.9.9.0 100")  # the partial frame waits


def test_a_timeout_status_ends_the_pull_and_the_batch_limit_holds() -> None:
    sock, got = _socket(), Pulled()
    sock._buf += _frames(10) + b"HMSG _INBOX.x 1 32 32\r\nNATS/1.0 408 Request Timeout\r\n\r\n\r\n"
    assert sock._parse(got, 4) is False and len(got) == 4 and got.pending == 6
    assert sock._parse(got, 100) is True and len(got) == 10


def test_empty_header_lists() -> None:
    kind = pa.list_(pa.struct([pa.field("key", pa.string()), pa.field("value", pa.binary())]))
    assert empty_lists(3, kind).equals(pa.array([[], [], []], kind))
    assert len(empty_lists(0, kind)) == 0


def test_an_api_answer_is_returned_and_messages_pulled_meanwhile_are_kept_for_the_next_pull() -> None:
    sock = _socket()
    answer = b'{"num_pending": 7, "ack_floor": {"stream_seq": 3}}'
    sock._buf += _frames(2) + b"MSG _INBOX.t.api 2 %d\r\n%s\r\n" % (len(answer), answer)
    got = sock.request("$JS.API.CONSUMER.INFO.S.dur")
    assert got == {"num_pending": 7, "ack_floor": {"stream_seq": 3}}
    assert sock._sock.sent[0] == b"PUB $JS.API.CONSUMER.INFO.S.dur _INBOX.t.api 0\r\n\r\n"
    assert sock._held.data == [b'{"id": 0}', b'{"id": 1}'] and sock._held.sequences == [10, 11]
