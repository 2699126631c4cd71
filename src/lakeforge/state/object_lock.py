"""The run lock of a lake on object storage: a lock object created with a conditional put.

``<lake>/_lakeforge/<kind>.lock`` is written with ``If-None-Match: *``, so exactly one of two racing runs
creates it; the other gets HTTP 412 and fails with :class:`RunInProgress`. The object holds an expiry that
the holder pushes forward every ``TTL / 4`` seconds from a background thread; a run killed without
releasing it (SIGKILL, power loss) blocks others only until that expiry, after which the next run deletes the
stale object (conditionally on its ETag, so two runs cannot both take over) and takes the lock. A holder
that ran on this machine (same boot, same PID namespace) and whose process is gone is stale at once: a run
killed on this machine does not block the next one here for the TTL.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any

from lakeforge.errors import LakeError, RunInProgress

if TYPE_CHECKING:
    from lakeforge.lake.base import Lake

TTL = 120.0
"""Seconds a lock stays valid without renewal."""


class ObjectLock:
    def __init__(self, lake: Lake, kind: str, *, ttl: float = TTL) -> None:
        from lakeforge.lake.storage import Storage

        storage = getattr(lake, "storage", None)
        if not isinstance(storage, Storage):
            raise LakeError(f"lake {lake.root}: no object storage configured for the run lock")
        self.storage = storage
        self.bucket, self.key = storage.bucket_and_key("_lakeforge", f"{kind}.lock")
        self.where = f"s3://{self.bucket}/{self.key}"
        self.ttl = ttl
        self._client: Any = None
        self._etag: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self.storage.lock_client()
        return self._client

    def _body(self) -> bytes:
        until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.ttl)
        body = {"pid": os.getpid(), "host": socket.gethostname(), "expires": until.isoformat(), "space": _pid_space()}
        return json.dumps(body).encode()

    def __enter__(self) -> ObjectLock:
        for _ in range(2):
            if self._try_create():
                self._thread = threading.Thread(target=self._renew, name="lakeforge-lock", daemon=True)
                self._thread.start()
                return self
            holder = self._read()
            if holder is None:
                continue  # released meanwhile
            body, etag = holder
            if dt.datetime.fromisoformat(body["expires"]) > dt.datetime.now(dt.UTC) and not _dead_here(body):
                raise RunInProgress(
                    f"another lakeforge run holds {self.where} (pid {body.get('pid')} on "
                    f"{body.get('host')}, valid until {body['expires']}); wait for it to finish"
                )
            self._call("delete_object", Bucket=self.bucket, Key=self.key, IfMatch=etag)  # stale: take it over
        raise RunInProgress(f"another lakeforge run took {self.where} meanwhile; wait for it to finish")

    def _try_create(self) -> bool:
        try:
            reply = self.client.put_object(Bucket=self.bucket, Key=self.key, Body=self._body(), IfNoneMatch="*")
        except Exception as exc:
            if _is_reply(exc) and _code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
                return False
            raise self._error(exc) from None
        self._etag = reply.get("ETag")
        return True

    def _read(self) -> tuple[dict[str, Any], str] | None:
        try:
            reply = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except Exception as exc:
            if _is_reply(exc) and _code(exc) in ("NoSuchKey", "404"):
                return None
            raise self._error(exc) from None
        return json.loads(reply["Body"].read()), reply["ETag"]

    def held(self) -> bool:
        holder = self._read()
        if holder is None or _dead_here(holder[0]):
            return False
        return dt.datetime.fromisoformat(holder[0]["expires"]) > dt.datetime.now(dt.UTC)

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl / 4):
            try:
                reply = self.client.put_object(Bucket=self.bucket, Key=self.key, Body=self._body())
                self._etag = reply.get("ETag")
            except Exception:  # a missed renewal is retried next tick; expiry is TTL away
                continue

    def _call(self, method: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, method)(**kwargs)
        except Exception as exc:
            if _is_reply(exc) and _code(exc) in ("PreconditionFailed", "412", "NoSuchKey", "404"):
                return None
            raise self._error(exc) from None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._call("delete_object", Bucket=self.bucket, Key=self.key)

    def _error(self, exc: BaseException) -> LakeError:
        return storage_error(self.storage.root, exc, self.storage.scrub, self.bucket, self.storage.config.endpoint)


def _pid_space() -> str | None:
    """This machine's boot and this process's PID namespace: a pid means the same process only within both."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            boot = f.read().strip()
        return f"{boot}/{os.readlink('/proc/self/ns/pid')}"
    except OSError:  # not Linux: holders are only ever judged by their expiry
        return None


def _dead_here(body: dict[str, Any]) -> bool:
    """The holder ran on this machine, since its boot, in this PID namespace, and its process is gone (a run
    killed by SIGKILL): the lock is stale before its expiry."""
    space = _pid_space()
    if space is None or body.get("space") != space or body.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(body["pid"]), 0)
    except ProcessLookupError:
        return True
    except (OSError, KeyError, ValueError):
        return False
    return False


def _is_reply(exc: BaseException) -> bool:
    """An error reply of the store (boto3 ``ClientError`` or ``s3_client.S3Error``), not a transport failure."""
    return isinstance(getattr(exc, "response", None), dict)


def _code(exc: Any) -> str:
    error = getattr(exc, "response", {}).get("Error", {})
    return str(error.get("Code") or getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode"))


def storage_error(root: str, exc: BaseException, scrub: Any, bucket: str, endpoint: str | None) -> LakeError:
    """One line naming the lake and the cause (unreachable endpoint, wrong credentials, missing bucket)."""
    unreachable: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError, socket.gaierror)
    no_credentials: tuple[type[BaseException], ...] = ()
    try:  # boto3 is the client only without credentials in the config or the environment
        from botocore.exceptions import EndpointConnectionError, NoCredentialsError

        unreachable, no_credentials = (*unreachable, EndpointConnectionError), (NoCredentialsError,)
    except ImportError:
        pass
    if isinstance(exc, unreachable):
        return LakeError(f"lake {root}: cannot reach the storage endpoint {endpoint or 'AWS S3'}", transient=True)
    if isinstance(exc, no_credentials):
        return LakeError(
            f"lake {root}: no storage credentials (set lake.storage.access_key_id/secret_access_key "
            "or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
        )
    if _is_reply(exc):
        code = _code(exc)
        if code in ("NoSuchBucket",):
            return LakeError(f"lake {root}: bucket '{bucket}' does not exist")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403", "InvalidToken"):
            return LakeError(
                f"lake {root}: storage refused the credentials ({code}); check "
                "lake.storage.access_key_id / secret_access_key"
            )
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return LakeError(f"lake {root}: storage failed: {scrub(text)}")
