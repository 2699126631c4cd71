"""A counting S3 proxy on loopback: forwards every request unchanged to an S3 endpoint and records what it was.

It runs in its own process (``python -m bench.s3_proxy UPSTREAM LOGFILE``): an in-process proxy deadlocks
against a library call that holds the GIL while it waits for the network (some delta-rs calls do).

Used by ``bench/s3_requests.py`` to count the object-store requests a ``lakeforge`` command makes (by operation:
GET, HEAD, LIST, PUT, DELETE, multipart; and by what the object is: Delta log, Iceberg metadata, data file,
run lock ...). Requests pass byte for byte (headers included, so SigV4 signatures stay valid); only the
transfer framing is normalised (a chunked body is forwarded with its length).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "trailer", "upgrade"}


@dataclass
class Request:
    op: str
    kind: str
    path: str
    status: int
    seconds: float


class Log:
    """The proxy's log file (one JSON line per request); ``take`` returns the requests since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def take(self) -> list[Request]:
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        return [Request(**json.loads(line)) for line in data[:end].splitlines() if line.strip()]


def operation(method: str, target: str) -> str:
    query = parse_qs(urlsplit(target).query, keep_blank_values=True)
    if method == "GET" and ("list-type" in query or "prefix" in query or "delimiter" in query):
        return "LIST"
    if method == "PUT" and "partNumber" in query:
        return "UPLOAD_PART"
    if method == "POST" and "uploads" in query:
        return "MULTIPART_START"
    if method == "POST" and "uploadId" in query:
        return "MULTIPART_DONE"
    if method == "DELETE" and "uploadId" in query:
        return "MULTIPART_ABORT"
    if method == "POST" and "delete" in query:
        return "DELETE_MANY"
    return method


KINDS = (
    (re.compile(r"/_lakeforge/[^/]*\.lock$"), "run lock"),
    (re.compile(r"/_lakeforge/|/lakeforge_internal/"), "internal table"),
    (re.compile(r"/_delta_log/_last_checkpoint$"), "delta _last_checkpoint"),
    (re.compile(r"/_delta_log/.*\.checkpoint\.parquet$"), "delta checkpoint"),
    (re.compile(r"/_delta_log/[0-9]+\.json$"), "delta commit"),
    (re.compile(r"/_delta_log/?"), "delta log (other)"),
    (re.compile(r"/metadata/[^/]*\.metadata\.json$"), "iceberg metadata"),
    (re.compile(r"/metadata/snap-[^/]*\.avro$"), "iceberg manifest list"),
    (re.compile(r"/metadata/[^/]*\.avro$"), "iceberg manifest"),
    (re.compile(r"\.parquet$"), "data file"),
)


def kind_of(op: str, target: str) -> str:
    path = urlsplit(target).path
    if op == "LIST":
        prefix = parse_qs(urlsplit(target).query).get("prefix", [""])[0]
        path = path.rstrip("/") + "/" + prefix
    for pattern, name in KINDS:
        if pattern.search(path):
            return name
    return "other"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream: tuple[str, int]
    out: Any
    lock = threading.Lock()
    local = threading.local()

    def _record(self, request: Request) -> None:
        with self.lock:
            self.out.write(json.dumps(asdict(request)) + "\n")
            self.out.flush()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(*self.upstream, timeout=120)
            self.local.conn = conn
        return conn

    def _forward(self) -> None:
        started = time.perf_counter()
        body = self._body()
        if self.path.startswith("/__mark__/"):  # a marker from a tracing script, not forwarded
            self._record(Request("MARK", unquote(self.path[len("/__mark__/") :]), "", 200, 0.0))
            self.send_response_only(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        if body or self.command in ("PUT", "POST"):
            headers["Content-Length"] = str(len(body))
        for attempt in range(2):
            conn = self._connection()
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                reply = conn.getresponse()
                data = reply.read()
                break
            except (http.client.HTTPException, OSError):
                conn.close()
                self.local.conn = None
                if attempt:
                    raise
        op = operation(self.command, self.path)
        self._record(Request(op, kind_of(op, self.path), self.path, reply.status, time.perf_counter() - started))
        self.send_response_only(reply.status, reply.reason)
        for k, v in reply.getheaders():
            if k.lower() not in HOP and k.lower() != "content-length":
                self.send_header(k, v)
        if self.command != "HEAD" or reply.getheader("Content-Length") is None:
            self.send_header("Content-Length", str(len(data)))
        else:
            self.send_header("Content-Length", reply.getheader("Content-Length", "0"))
        self.end_headers()
        if self.command != "HEAD":
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout)
                self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward


@contextlib.contextmanager
def counting_proxy(upstream: str, log_path: Path) -> Iterator[tuple[str, Log]]:
    """``(url, log)``: a proxy process on a free loopback port forwarding to ``upstream`` (``http://host:port``)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.s3_proxy", upstream, str(log_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url:
            raise RuntimeError("the S3 proxy did not start")
        yield url, Log(log_path)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def serve(upstream: str, log_path: str) -> None:
    host, _, port = urlsplit(upstream).netloc.partition(":")
    with open(log_path, "a", encoding="utf-8") as out:
        handler = type("Handler", (_Handler,), {"upstream": (host, int(port or 80)), "out": out})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
        server.serve_forever()
        server.server_close()


def summary(requests: list[Request]) -> dict[str, Counter[str]]:
    """Counts by operation and by ``operation kind``."""
    return {
        "ops": Counter(r.op for r in requests),
        "kinds": Counter(f"{r.op} {r.kind}" for r in requests),
    }


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
