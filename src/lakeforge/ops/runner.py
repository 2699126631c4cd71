"""Run one job: its steps in order, each as ``python -m lakeforge <step> --output json`` in a child process.

A child process per step keeps the scheduler alive whatever a step does, and lets a timeout or a shutdown
interrupt it the way a user would: SIGINT first (a load commits table by table; the table in flight rolls back
and the run history records what committed), SIGKILL after a grace period. A failed step is retried with
exponential backoff and jitter only when lakeforge marked its error ``transient``; a terminal error fails
the job at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakeforge.config.models import parse_lookback
from lakeforge.config.ops import BuildStep, JobConfig, RunStep

LOG = logging.getLogger("lakeforge.ops")
GRACE_SECONDS = 60.0
"""How long an interrupted step may take to commit and stop before it is killed."""


@dataclass
class StepResult:
    step: str
    ok: bool
    transient: bool = False
    error: str | None = None
    output: Any = None
    """The step's ``--output json`` document."""
    seconds: float = 0.0
    interrupted: bool = False


@dataclass
class JobResult:
    job: str
    status: str
    """success, failed, interrupted or timeout"""
    steps: list[StepResult] = field(default_factory=list)
    attempts: int = 1
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "success"


def step_command(step: str, job: JobConfig) -> list[str]:
    """The ``lakeforge`` arguments of one step of ``job``."""
    if step == "run":
        args = ["run"]
        if isinstance(job.run, RunStep):
            for pattern in [*(job.run.sources or []), *(job.run.select or [])]:
                args += ["--select", pattern]
        return args
    if step == "build":
        args = ["build"]
        if isinstance(job.build, BuildStep):
            for pattern in job.build.select or []:
                args += ["--select", pattern]
            if job.build.full_refresh:
                args.append("--full-refresh")
        return args
    if step == "publish":
        return ["publish", *(job.publish or [])]
    if step == "maintain":
        return ["maintain"]
    raise ValueError(f"unknown step {step}")


class JobRunner:
    def __init__(
        self,
        project_dir: Path,
        *,
        stop: threading.Event | None = None,
        sleep: Callable[[float, threading.Event], None] | None = None,
    ) -> None:
        self.project_dir = project_dir
        self.stop = stop or threading.Event()
        self.sleep = sleep or (lambda seconds, stop: stop.wait(seconds) and None)

    def run(self, name: str, job: JobConfig) -> JobResult:
        timeout = parse_lookback(job.timeout) if job.timeout is not None else None
        backoff = parse_lookback(job.retry_backoff)
        result = JobResult(name, "success")
        for step in job.steps():
            attempt = 0
            while True:
                attempt += 1
                outcome = self.run_step(step, job, timeout)
                result.steps.append(outcome)
                result.attempts = max(result.attempts, attempt)
                if outcome.ok or outcome.interrupted or not outcome.transient or attempt > job.retries:
                    break
                delay = backoff * 2 ** (attempt - 1) * random.uniform(0.75, 1.25)  # noqa: S311 - jitter
                LOG.warning(
                    "job %s: %s failed (transient), retry %d/%d in %.1f s: %s",
                    name,
                    step,
                    attempt,
                    job.retries,
                    delay,
                    outcome.error,
                )
                self.sleep(delay, self.stop)
                if self.stop.is_set():
                    break
            if not outcome.ok:
                result.status = "interrupted" if outcome.interrupted else "failed"
                if outcome.error and "timed out" in outcome.error:
                    result.status = "timeout"
                result.error = f"{step}: {outcome.error}"
                break
        return result

    def run_step(self, step: str, job: JobConfig, timeout: float | None) -> StepResult:
        command = [
            sys.executable,
            "-m",
            "lakeforge",
            *step_command(step, job),
            "--project",
            str(self.project_dir),
            "--output",
            "json",
        ]
        started = time.monotonic()
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out: list[str] = []
        reader = threading.Thread(target=lambda: out.append(child.communicate()[0] or ""), daemon=True)
        reader.start()
        why, since = None, 0.0
        while reader.is_alive():
            reader.join(0.2)
            if why is None and self.stop.is_set():
                why, since = "interrupted: the scheduler is stopping", time.monotonic()
                _interrupt(child)
            elif why is None and timeout is not None and time.monotonic() - started > timeout:
                why, since = f"timed out after {timeout:.0f} s", time.monotonic()
                _interrupt(child)
            if why is not None and time.monotonic() - since > GRACE_SECONDS:
                child.kill()
        reader.join()
        seconds = time.monotonic() - started
        document = parse_json(out[0] if out else "")
        ok = child.returncode == 0 and why is None
        error = why or step_error(document, child.returncode)
        transient = bool(document.get("transient")) if isinstance(document, dict) else False
        return StepResult(
            step,
            ok,
            transient and why is None,
            None if ok else error,
            document,
            seconds,
            interrupted=why is not None and "stopping" in why,
        )


def _interrupt(child: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        child.send_signal(signal.SIGINT)


def parse_json(text: str) -> Any:
    try:
        return json.loads(text) if text.strip() else None
    except json.JSONDecodeError:
        return None


def step_error(document: Any, code: int | None) -> str:
    if isinstance(document, dict):
        if document.get("error"):
            return str(document["error"])
        failed = [t for t in document.get("tables", []) + document.get("models", []) if t.get("error")]
        messages = [*document.get("errors", []), *(f"{t.get('table') or t.get('model')}: {t['error']}" for t in failed)]
        if messages:
            return "; ".join(messages)
        if document.get("status"):
            return f"status {document['status']}"
    return f"exit code {code}"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
