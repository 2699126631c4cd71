"""Runs tests/scale (a Ray cluster with throwaway PostgreSQL and MariaDB servers) inside a loopback-only
network namespace: Ray listens on every interface, so here it only ever sees ``lo``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_ray_suite_in_a_loopback_namespace() -> None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("needs unshare and ip (util-linux, iproute2)")
    inner = f"ip link set lo up && exec {sys.executable} -m pytest -q -p no:cacheprovider tests/scale -x"
    env = {**os.environ, "LAKEFORGE_IN_NETNS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.run(
        ["unshare", "-n", "sh", "-c", inner], cwd=REPO, env=env, capture_output=True, text=True, timeout=1500
    )
    tail = proc.stdout[-6000:] + proc.stderr[-3000:]
    assert proc.returncode == 0, tail
    passed = re.search(r"(\d+) passed", proc.stdout)
    assert passed and int(passed.group(1)) == _collected() and "skipped" not in proc.stdout, tail


def _collected() -> int:
    """How many tests tests/scale holds (every one must run and pass inside the namespace)."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "tests/scale"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    found = re.search(r"(\d+) tests? collected", done.stdout)
    assert found, done.stdout[-2000:] + done.stderr[-2000:]
    return int(found.group(1))
