"""PostgreSQL frontend/backend protocol 3.0: reading client messages and writing server messages.

Only what a read-only server needs: startup (with SSLRequest and CancelRequest), authentication (SASL
SCRAM-SHA-256 or none), the simple and the extended query protocol, errors with SQLSTATE codes.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Sequence

SSL_REQUEST, CANCEL_REQUEST, GSSENC_REQUEST, PROTOCOL_3 = 80877103, 80877102, 80877104, 196608


class ClientGone(Exception):
    """The client closed the connection."""


class Wire:
    """A socket with buffered writes; ``flush`` sends."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.out = bytearray()

    def read_exact(self, n: int) -> bytes:
        chunks, left = [], n
        while left:
            chunk = self.sock.recv(min(left, 1 << 16))
            if not chunk:
                raise ClientGone
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def read_startup(self) -> tuple[int, bytes]:
        (length,) = struct.unpack("!i", self.read_exact(4))
        body = self.read_exact(length - 4)
        return struct.unpack("!i", body[:4])[0], body[4:]

    def read_message(self) -> tuple[bytes, bytes]:
        head = self.read_exact(5)
        kind, length = head[:1], struct.unpack("!i", head[1:])[0]
        return kind, self.read_exact(length - 4)

    def send(self, kind: bytes, payload: bytes = b"") -> None:
        self.out += kind + struct.pack("!i", len(payload) + 4) + payload
        if len(self.out) > 1 << 16:
            self.flush()

    def flush(self) -> None:
        if self.out:
            self.sock.sendall(self.out)
            self.out.clear()

    # -- server messages ----------------------------------------------------------------------------------
    def auth(self, code: int, data: bytes = b"") -> None:
        self.send(b"R", struct.pack("!i", code) + data)

    def parameter_status(self, name: str, value: str) -> None:
        self.send(b"S", cstr(name) + cstr(value))

    def backend_key(self, pid: int, key: int) -> None:
        self.send(b"K", struct.pack("!ii", pid, key))

    def ready(self, status: bytes) -> None:
        self.send(b"Z", status)
        self.flush()

    def error(self, code: str, message: str, severity: str = "ERROR") -> None:
        fields = b"S" + cstr(severity) + b"V" + cstr(severity) + b"C" + cstr(code) + b"M" + cstr(message)
        self.send(b"E", fields + b"\x00")

    def notice(self, message: str) -> None:
        self.send(b"N", b"SNOTICE\x00VNOTICE\x00C00000\x00M" + cstr(message) + b"\x00")

    def complete(self, tag: str) -> None:
        self.send(b"C", cstr(tag))

    def row_description(self, fields: Sequence[tuple[str, int, int, int, int]]) -> None:
        """``fields``: (name, type oid, type size, typmod, format code)."""
        body = bytearray(struct.pack("!h", len(fields)))
        for name, oid, size, typmod, fmt in fields:
            body += cstr(name) + struct.pack("!ihihih", 0, 0, oid, size, typmod, fmt)
        self.send(b"T", bytes(body))

    def data_row(self, values: Sequence[bytes | None]) -> None:
        body = bytearray(struct.pack("!h", len(values)))
        for value in values:
            if value is None:
                body += b"\xff\xff\xff\xff"
            else:
                body += struct.pack("!i", len(value)) + value
        self.send(b"D", bytes(body))

    def parameter_description(self, oids: Sequence[int]) -> None:
        self.send(b"t", struct.pack(f"!h{len(oids)}i", len(oids), *oids))


def cstr(value: str) -> bytes:
    return value.encode() + b"\x00"


class Reader:
    """Reads the fields of one client message."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def cstr(self) -> str:
        end = self.data.index(b"\x00", self.pos)
        value = self.data[self.pos : end].decode()
        self.pos = end + 1
        return value

    def int16(self) -> int:
        (value,) = struct.unpack_from("!h", self.data, self.pos)
        self.pos += 2
        return int(value)

    def int32(self) -> int:
        (value,) = struct.unpack_from("!i", self.data, self.pos)
        self.pos += 4
        return int(value)

    def bytes(self, n: int) -> bytes:
        value = self.data[self.pos : self.pos + n]
        self.pos += n
        return value
