"""`make demo` pointed at Iceberg on a local SeaweedFS (its S3 API and Iceberg REST catalog) through the
documented ``LAKEFORGE__LAKE__*`` settings (docs/lake.md): the same figures as the default Delta demo."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


@pytest.mark.slow
def test_demo_on_iceberg_on_seaweedfs_gives_the_same_figures(demo: tuple[Path, dict[str, str]], seaweed: Any) -> None:
    folder, env = demo
    env = {
        **env,
        "LAKEFORGE__LAKE__FORMAT": "iceberg",
        "LAKEFORGE__LAKE__PATH": f"s3://{seaweed.bucket}/demo-{secrets.token_hex(3)}",
        "LAKEFORGE__LAKE__STORAGE__ENDPOINT": seaweed.s3,
        "LAKEFORGE__LAKE__STORAGE__REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": seaweed.key,
        "AWS_SECRET_ACCESS_KEY": seaweed.secret,
        "LAKEFORGE__LAKE__CATALOG__TYPE": "rest",
        "LAKEFORGE__LAKE__CATALOG__URI": seaweed.iceberg,
        "LAKEFORGE__LAKE__CATALOG__CREDENTIAL": f"{seaweed.key}:{seaweed.secret}",
        "LAKEFORGE__LAKE__CATALOG__NAMESPACE_PREFIX": f"demo{secrets.token_hex(3)}_",
    }
    done = subprocess.run([sys.executable, str(folder / "run_demo.py"), "--no-cdc"], env=env,
                          capture_output=True,
                          text=True, timeout=900)
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    assert "lake and sources agree: 22 countries, total revenue 9,604,190.61" in out
    assert "published 17 tables" in out and "MISMATCH" not in out
    assert "files: gold equals the drops joined with PostgreSQL for 12 customers" in out
    assert "run 2: bronze.events success, 150 new events" in out  # the stream part, on Iceberg too
    assert "stream position committed with the data: {'sequence': 753" in out
    assert not (folder / "project" / "lakehouse").exists()  # nothing written locally: the lake is on S3
    assert seaweed.secret not in out + done.stderr
