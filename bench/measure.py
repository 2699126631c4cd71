"""Run a command in a fresh process; measure wall time and the peak RSS of its whole process tree."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_POLL = 0.05


@dataclass
class Measured:
    seconds: float
    peak_rss: int
    """Bytes: the largest sum of RSS over the process and all its descendants seen while polling."""
    returncode: int
    output: dict[str, Any]
    error: str = ""
    cpu_seconds: float = 0.0
    """User + system CPU of the process and the descendants it waited for (not the database server's)."""


def measure(cmd: list[str], *, env: dict[str, str] | None = None, timeout: float = 3600) -> Measured:
    import resource

    import psutil

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    if env is None:  # the workers import ``bench`` from the repository, wherever the runner was started
        root = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    root = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss(root))
        if time.perf_counter() - started > timeout:
            proc.kill()
            break
        time.sleep(_POLL)
    stdout, stderr = proc.communicate()
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    output = _parse(stdout)
    error = ""
    if proc.returncode != 0:
        lines = stderr.strip().splitlines() or [f"exit {proc.returncode}"]
        error = str(output.get("error") or lines[-1])
    return Measured(seconds, peak, proc.returncode, output, error[:300], cpu)


def _parse(stdout: str) -> dict[str, Any]:
    """The command's JSON result: all of stdout (lakeforge --output json) or its last JSON line (workers)."""
    text = stdout.strip()
    for candidate in (text, *reversed(text.splitlines())):
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return {}


def _tree_rss(root: Any) -> int:
    import psutil

    total = 0
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            continue
    return total
