"""A supervised ``follow`` job: ``lakeforge run --follow`` in a child process, restarted with exponential
backoff (1 s doubling to 5 min, reset after 10 min of good running) whenever it exits while the scheduler
runs. On shutdown the child gets SIGTERM, which makes it commit what it has, acknowledge and exit."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from lakeforge.config.ops import JobConfig
from lakeforge.ops.runner import parse_json, step_error

LOG = logging.getLogger("lakeforge.ops")
MAX_BACKOFF = 300.0
HEALTHY_AFTER = 600.0
RECOVERED_AFTER = 30.0
"""A restarted follower up this long clears its incident."""


class Follower:
    def __init__(
        self,
        project_dir: Path,
        name: str,
        job: JobConfig,
        stop: threading.Event,
        on_change: Callable[[str, str | None], None],
    ) -> None:
        self.project_dir = project_dir
        self.name = name
        self.job = job
        self.stop = stop
        self.on_change = on_change
        self.restarts = 0
        self.thread: threading.Thread | None = None
        self.child: subprocess.Popen[str] | None = None

    def ensure(self, now: dt.datetime) -> None:
        if self.thread is None and not self.stop.is_set():
            self.thread = threading.Thread(target=self._supervise, name=f"follow-{self.name}", daemon=True)
            self.thread.start()

    def join(self) -> None:
        if self.child is not None and self.child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.child.send_signal(signal.SIGTERM)
        if self.thread is not None:
            self.thread.join()

    def _supervise(self) -> None:
        backoff = 1.0
        command = [
            sys.executable,
            "-m",
            "lakeforge",
            "run",
            "--follow",
            "--project",
            str(self.project_dir),
            "--output",
            "json",
        ]
        for source in self.job.follow or []:
            command += ["--select", source]
        while not self.stop.is_set():
            started = dt.datetime.now(dt.UTC)
            self.child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            try:
                stdout, _ = self.child.communicate(timeout=RECOVERED_AFTER)
            except subprocess.TimeoutExpired:
                if self.restarts:
                    self.on_change(self.name, None)  # up for a while after a restart: the incident clears
                stdout, _ = self.child.communicate()
            if self.stop.is_set():
                break
            ran = (dt.datetime.now(dt.UTC) - started).total_seconds()
            backoff = 1.0 if ran > HEALTHY_AFTER else min(backoff * 2, MAX_BACKOFF)
            message = step_error(parse_json(stdout or ""), self.child.returncode)
            LOG.warning("follow job %s stopped (%s); restarting in %.0f s", self.name, message, backoff)
            self.on_change(self.name, message)
            self.restarts += 1
            self.stop.wait(backoff)
