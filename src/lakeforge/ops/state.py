"""Job runs and incidents as rows of the run history (``table`` = ``job:<name>`` or ``alert:<key>``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from lakeforge.state.history import Event, RunHistory

JOB = "job:"
ALERT = "alert:"


@dataclass
class JobRun:
    job: str
    run_id: str
    status: str
    """running, success, failed, interrupted, timeout"""
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    seconds: float | None = None
    error: str | None = None
    reason: str | None = None


def record_job(history: RunHistory, run: JobRun) -> None:
    history.record(
        Event(
            run.run_id,
            JOB + run.job,
            run.status,
            run.started_at,
            run.finished_at,
            mode="job",
            seconds=run.seconds,
            error=run.error,
            reason=run.reason,
        )
    )


def job_runs(history: RunHistory) -> dict[str, list[JobRun]]:
    """Every job's runs, newest last, each at its newest state."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for event in sorted(history.events(), key=lambda e: e["recorded_at"]):
        if event["table"].startswith(JOB):
            latest[(event["run_id"], event["table"])] = event
    runs: dict[str, list[JobRun]] = {}
    for e in sorted(latest.values(), key=lambda e: e["started_at"]):
        job = e["table"][len(JOB) :]
        runs.setdefault(job, []).append(
            JobRun(
                job, e["run_id"], e["status"], e["started_at"], e["finished_at"], e["seconds"], e["error"], e["reason"]
            )
        )
    return runs


def record_incident(history: RunHistory, key: str, status: str, message: str, when: dt.datetime) -> None:
    history.record(Event(key, ALERT + key, status, when, when, mode="alert", reason=message))


def open_incidents(history: RunHistory) -> dict[str, str]:
    """Incident key -> message of every incident whose newest state is ``open``."""
    state: dict[str, dict[str, Any]] = {}
    for event in sorted(history.events(), key=lambda e: e["recorded_at"]):
        if event["table"].startswith(ALERT):
            state[event["table"][len(ALERT) :]] = event
    return {k: e["reason"] or "" for k, e in state.items() if e["status"] == "open"}
