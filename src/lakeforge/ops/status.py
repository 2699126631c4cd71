"""``lakeforge status`` and ``lakeforge jobs list``: what runs, what is late, what failed, what runs next."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from lakeforge.config.models import ProjectConfig, parse_lookback
from lakeforge.ops.health import freshness
from lakeforge.ops.schedule import Schedule
from lakeforge.ops.state import JobRun, job_runs, open_incidents
from lakeforge.state.history import RunHistory


@dataclass
class JobStatus:
    job: str
    steps: list[str]
    schedule: str | None
    state: str
    """running, success, failed, interrupted, timeout, never run, or follow"""
    last_started: dt.datetime | None
    last_seconds: float | None
    last_error: str | None
    next_run: dt.datetime | None
    recent: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Status:
    jobs: list[JobStatus]
    late: list[dict[str, Any]]
    incidents: dict[str, str]
    checked_at: dt.datetime


def job_statuses(config: ProjectConfig, history: RunHistory, now: dt.datetime, *, recent: int = 5) -> list[JobStatus]:
    runs = job_runs(history)
    statuses = []
    for name, job in config.jobs.items():
        mine: list[JobRun] = runs.get(name, [])
        last = mine[-1] if mine else None
        state = "never run" if last is None else last.status
        if last is not None and last.status == "running" and _abandoned(last, job.timeout, now):
            state = "interrupted"
        schedule = Schedule(job, config.timezone)
        if job.follow is not None:
            when, label = None, f"follow {', '.join(job.follow)}"
        else:
            if last is None and schedule.interval is not None:
                when = now  # an interval job runs as soon as a scheduler starts
            else:
                when = schedule.next_after(last.started_at if last else now) if schedule.timed else None
            if when is not None and when < now:
                when = now  # overdue: runs at the next tick of a running scheduler
            label = job.schedule or (f"every {job.every}" if job.every is not None else "manual")
        statuses.append(
            JobStatus(
                name,
                job.steps() or ["follow"],
                label,
                state,
                last.started_at if last else None,
                last.seconds if last else None,
                last.error if last else None,
                when,
                [
                    {
                        "run_id": r.run_id,
                        "status": r.status,
                        "started_at": r.started_at,
                        "seconds": r.seconds,
                        "error": r.error,
                    }
                    for r in reversed(mine[-recent:])
                ],
            )
        )
    return statuses


def status(config: ProjectConfig, lake: Any, now: dt.datetime) -> Status:
    history = RunHistory(lake)
    late = [
        {"table": f.table, "age_seconds": f.age_seconds, "limit_seconds": f.limit_seconds, "last_commit": f.last_commit}
        for f in (freshness(lake, config.freshness, now) if config.freshness else [])
        if f.stale
    ]
    return Status(job_statuses(config, history, now), late, open_incidents(history), now)


def _abandoned(run: JobRun, timeout: str | int | None, now: dt.datetime) -> bool:
    """A ``running`` row older than the job's timeout (plus a grace) belongs to a scheduler that died."""
    limit = parse_lookback(timeout) if timeout is not None else 86_400.0
    return (now - run.started_at).total_seconds() > limit + 120
