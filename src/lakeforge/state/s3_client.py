"""The three S3 calls of the run lock (conditional PUT, GET, DELETE), signed with AWS Signature V4 over
``http.client``.

Why not boto3: importing it and making a client costs ~0.3 s of CPU in every ``lakeforge run`` on object
storage, for three small requests (docs/benchmarks.md, "Object storage"); the data itself goes through
delta-rs and Arrow, which sign their own requests. The methods and replies mirror boto3's (``put_object``,
``get_object``, ``delete_object``; an error carries ``response["Error"]["Code"]``), so the lock reads the same
with either. Without credentials in ``lake.storage`` or the environment, ``Storage.lock_client`` hands out
boto3 instead, whose credential chain (profiles, instance roles) this client does not have.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.client
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit


class S3Error(Exception):
    """An S3 error reply: ``response`` as boto3's ``ClientError`` has it."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code} ({status}): {message}" if message else f"{code} ({status})")
        self.response = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}


@dataclass(frozen=True)
class Body:
    data: bytes

    def read(self) -> bytes:
        return self.data


@dataclass
class S3Client:
    endpoint: str
    """``http(s)://host[:port]``"""
    region: str
    key_id: str
    secret: str
    session_token: str | None = None
    path_style: bool = True
    timeout: float = 30.0

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, IfNoneMatch: str | None = None) -> dict[str, Any]:  # noqa: N803 - boto3's names
        headers = {"If-None-Match": IfNoneMatch} if IfNoneMatch else {}
        _, reply_headers, _ = self._call("PUT", Bucket, Key, Body, headers)
        return {"ETag": reply_headers.get("etag")}

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803
        _, reply_headers, data = self._call("GET", Bucket, Key, b"", {})
        return {"Body": Body(data), "ETag": reply_headers.get("etag")}

    def delete_object(self, *, Bucket: str, Key: str, IfMatch: str | None = None) -> dict[str, Any]:  # noqa: N803
        self._call("DELETE", Bucket, Key, b"", {"If-Match": IfMatch} if IfMatch else {})
        return {}

    def _call(
        self, method: str, bucket: str, key: str, body: bytes, extra: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(self.endpoint)
        host = parts.netloc if self.path_style else f"{bucket}.{parts.netloc}"
        path = "/" + quote(f"{bucket}/{key}" if self.path_style else key, safe="/~")
        headers = {**extra, **self._signed(method, host, path, body)}
        conn_type = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = conn_type(host, timeout=self.timeout)
        try:
            conn.request(method, path, body=body or None, headers=headers)
            reply = conn.getresponse()
            data = reply.read()
            reply_headers = {k.lower(): v for k, v in reply.getheaders()}
        finally:
            conn.close()
        if reply.status >= 300:
            raise S3Error(reply.status, _tag(data, "Code") or str(reply.status), _tag(data, "Message"))
        return reply.status, reply_headers, data

    def _signed(self, method: str, host: str, path: str, body: bytes) -> dict[str, str]:
        """Signature V4 headers (host, x-amz-date, x-amz-content-sha256 [, x-amz-security-token] signed)."""
        now = dt.datetime.now(dt.UTC)
        stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        payload = hashlib.sha256(body).hexdigest()
        signed = {"host": host, "x-amz-content-sha256": payload, "x-amz-date": stamp}
        if self.session_token:
            signed["x-amz-security-token"] = self.session_token
        names = ";".join(sorted(signed))
        canonical = "\n".join([method, path, "", *(f"{k}:{signed[k]}" for k in sorted(signed)), "", names, payload])
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        key = f"AWS4{self.secret}".encode()
        for part in (day, self.region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        auth = f"AWS4-HMAC-SHA256 Credential={self.key_id}/{scope}, SignedHeaders={names}, Signature={signature}"
        headers = {("Host" if k == "host" else k): v for k, v in signed.items()}  # as signed, port included
        headers["Authorization"] = auth
        return headers


def _tag(xml: bytes, name: str) -> str:
    found = re.search(rf"<{name}>(.*?)</{name}>".encode(), xml, re.S)
    return found.group(1).decode(errors="replace") if found else ""
