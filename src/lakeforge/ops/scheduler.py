"""The scheduler behind ``lakeforge serve``: starts due jobs, supervises ``follow`` jobs, checks freshness and
CDC lag, alerts, and emits lineage events.

``tick(now)`` does one round and is what tests drive with a chosen clock; ``serve_forever`` calls it every
second until ``stop`` is set (SIGTERM/SIGINT), then interrupts running steps (SIGINT to each child: committed
tables stay, the table in flight rolls back) and waits for them, so nothing is lost or half-written. A job
never overlaps itself; two jobs that both load are serialised by the lake's run lock (the second retries).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakeforge.config.models import ProjectConfig
from lakeforge.config.ops import JobConfig
from lakeforge.ops.alerts import Alerter
from lakeforge.ops.follow import Follower
from lakeforge.ops.health import cdc_lags, failed_checks, freshness
from lakeforge.ops.lineage import LineageEmitter
from lakeforge.ops.runner import JobResult, JobRunner, utcnow
from lakeforge.ops.schedule import Schedule
from lakeforge.ops.state import JobRun, job_runs, record_job
from lakeforge.state.history import RunHistory

LOG = logging.getLogger("lakeforge.ops")


@dataclass
class Health:
    freshness: dict[str, float | None] = field(default_factory=dict)
    lags: dict[str, float] = field(default_factory=dict)
    checked_at: dt.datetime | None = None


class Scheduler:
    def __init__(
        self,
        project_dir: Path,
        config: ProjectConfig,
        lake: Any,
        *,
        secrets_: list[str] | None = None,
        cdc_status: Callable[[], list[Any]] | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        runner: JobRunner | None = None,
    ) -> None:
        self.project_dir = project_dir
        self.config = config
        self.lake = lake
        self.clock = clock
        self.stop = threading.Event()
        self.runner = runner or JobRunner(project_dir, stop=self.stop)
        self.history = RunHistory(lake)
        self.started = clock()
        self.schedules = {n: Schedule(j, config.timezone) for n, j in config.jobs.items() if j.follow is None}
        runs = job_runs(self.history)
        self.last = {job: mine[-1].started_at for job, mine in runs.items() if mine}
        self.rerun = {job for job, mine in runs.items() if mine and mine[-1].status in ("interrupted", "running")}
        """Jobs whose last run a shutdown interrupted (or a dead scheduler left ``running``): run again at once."""
        self.running: dict[str, threading.Thread] = {}
        self.results: dict[str, JobResult] = {}
        self.alerter = Alerter(config.alerts, self.history, project_dir.name, secrets=secrets_ or [])
        self.lineage = LineageEmitter(config.lineage, project_dir, lake.root)
        self.cdc_status = cdc_status
        self.health = Health()
        self.followers = {
            n: Follower(project_dir, n, j, self.stop, self._follower_died)
            for n, j in config.jobs.items()
            if j.follow is not None
        }
        self._record = threading.Lock()

    # -- one round -------------------------------------------------------------------------------------
    def tick(self, now: dt.datetime | None = None) -> list[str]:
        """Start every due job that is not running; returns the jobs started."""
        now = now or self.clock()
        started = []
        for name, schedule in self.schedules.items():
            if self.stop.is_set() or (name in self.running and self.running[name].is_alive()):
                continue
            job = self.config.jobs[name]
            catch_up = job.missed == "catch_up"
            if name in self.rerun or (
                schedule.timed and schedule.due(self.last.get(name), now, catch_up=catch_up, started=self.started)
            ):
                self.rerun.discard(name)
                self.start(name, now)
                started.append(name)
        for follower in self.followers.values():
            follower.ensure(now)
        self.alerter.flush()
        return started

    def start(self, name: str, now: dt.datetime | None = None) -> threading.Thread:
        now = now or self.clock()
        self.last[name] = now
        thread = threading.Thread(target=self.run_job, args=(name, now), name=f"job-{name}", daemon=True)
        self.running[name] = thread
        thread.start()
        return thread

    def wait(self, timeout: float | None = None) -> None:
        for thread in list(self.running.values()):
            thread.join(timeout)

    # -- a job run -------------------------------------------------------------------------------------
    def run_job(self, name: str, started: dt.datetime | None = None) -> JobResult:
        job = self.config.jobs[name]
        started = started or self.clock()
        run_id = started.strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)
        with self._record:
            record_job(self.history, JobRun(name, run_id, "running", started))
        self.lineage.emit("START", name, run_id)
        LOG.info("job %s started (%s)", name, ", ".join(job.steps()))
        result = self.runner.run(name, job)
        finished = self.clock()
        seconds = round((finished - started).total_seconds(), 3)
        reason = f"{result.attempts} attempts" if result.attempts > 1 else None
        with self._record:
            record_job(
                self.history, JobRun(name, run_id, result.status, started, finished, seconds, result.error, reason)
            )
            self._alert(name, job, result)
        inputs, outputs = [], []
        for step in result.steps:
            i, o = self.lineage.datasets(step.output)
            inputs += i
            outputs += o
        self.lineage.emit(
            "COMPLETE" if result.ok else "FAIL", name, run_id, inputs=inputs, outputs=outputs, error=result.error
        )
        LOG.info("job %s %s in %.1f s%s", name, result.status, seconds, f": {result.error}" if result.error else "")
        self.results[name] = result
        return result

    def _alert(self, name: str, job: JobConfig, result: JobResult) -> None:
        if result.status == "interrupted":
            return  # a shutdown, not an incident
        if result.ok:
            self.alerter.clear("failure", f"job:{name}", f"job {name} succeeded again")
        else:
            self.alerter.raise_("failure", f"job:{name}", f"job {name} {result.status}: {result.error}")
        builds = [s for s in result.steps if s.step == "build"]
        if builds:
            failing = dict(failed_checks(builds[-1].output))
            for check, message in failing.items():
                self.alerter.raise_("check_error", check, f"check {check} failed: {message}")
            for key in [k for k in self.alerter.open if k.startswith("check_error:")]:
                check = key.partition(":")[2]
                if check not in failing and isinstance(builds[-1].output, dict):
                    self.alerter.clear("check_error", check, f"check {check} passes again")

    def _follower_died(self, name: str, message: str | None) -> None:
        with self._record:
            if message is None:
                self.alerter.clear("failure", f"job:{name}", f"follow job {name} is running again")
            else:
                self.alerter.raise_("failure", f"job:{name}", f"follow job {name} stopped: {message}")

    # -- health ----------------------------------------------------------------------------------------
    def check_health(self, now: dt.datetime | None = None) -> Health:
        """Freshness of the tables ``freshness:`` names and CDC lag; opens and clears their incidents."""
        now = now or self.clock()
        fresh = freshness(self.lake, self.config.freshness, now) if self.config.freshness else []
        lags: dict[str, float] = {}
        if self.cdc_status is not None and any("cdc_lag" in a.on for a in self.config.alerts):
            try:
                lags = cdc_lags(self.cdc_status())
            except Exception as exc:  # noqa: BLE001 - a source down must not stop the scheduler
                LOG.warning("CDC lag not checked: %s", exc)
        with self._record:
            for f in fresh:
                age = "never loaded" if f.age_seconds is None else f"{f.age_seconds / 60:.1f} min old"
                if f.stale:
                    self.alerter.raise_("stale", f.table, f"{f.table} is {age} (limit {f.limit_seconds / 60:.0f} min)")
                else:
                    self.alerter.clear("stale", f.table, f"{f.table} is fresh again ({age})")
            self._lag_incidents(lags)
        self.health = Health({f.table: f.age_seconds for f in fresh}, lags, now)
        return self.health

    def _lag_incidents(self, lags: dict[str, float]) -> None:
        from lakeforge.config.models import parse_lookback

        limits = [parse_lookback(a.cdc_lag) for a in self.config.alerts if "cdc_lag" in a.on]
        if not limits:
            return
        limit = min(limits)
        for table, lag in lags.items():
            if lag > limit:
                self.alerter.raise_("cdc_lag", table, f"{table} is {lag:.0f} s behind its source (limit {limit:.0f} s)")
            else:
                self.alerter.clear("cdc_lag", table, f"{table} caught up ({lag:.0f} s behind)")

    # -- the loop --------------------------------------------------------------------------------------
    def serve_forever(self, *, poll: float = 1.0, health_every: float = 60.0) -> None:
        next_health = self.clock()
        while not self.stop.is_set():
            self.tick()
            if self.clock() >= next_health:
                self.check_health()
                next_health = self.clock() + dt.timedelta(seconds=health_every)
            self.stop.wait(poll)
        LOG.info("stopping: waiting for running jobs to commit or roll back")
        for follower in self.followers.values():
            follower.join()
        self.wait()
        self.alerter.flush()
