"""When a job runs next: a cron expression in the project's time zone, or a fixed interval.

DST: fire times are computed in local time and converted to UTC. When clocks go back, a job at fixed hours
(``30 2 * * *``) runs once, at the first 02:30; when they go forward past its time, it runs at the first
valid minute after the gap (03:00). Hourly jobs run every real hour.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from lakeforge.config.models import parse_lookback
from lakeforge.config.ops import JobConfig


class Schedule:
    def __init__(self, job: JobConfig, timezone: str = "UTC") -> None:
        self.cron = job.schedule
        self.interval = dt.timedelta(seconds=parse_lookback(job.every)) if job.every is not None else None
        self.zone = zoneinfo.ZoneInfo(timezone)

    @property
    def timed(self) -> bool:
        return self.cron is not None or self.interval is not None

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        """The first fire time strictly after ``moment`` (aware, UTC)."""
        if self.interval is not None:
            return moment.astimezone(dt.UTC) + self.interval
        if self.cron is None:
            raise ValueError("this job has no schedule")
        from croniter import croniter

        fixed_hour = self.cron.split()[1] != "*"
        fire: dt.datetime = moment.astimezone(self.zone)
        while True:
            fire = croniter(self.cron, fire).get_next(dt.datetime)
            # when clocks go back, a wall time such as 02:30 happens twice; a job at fixed hours runs at the
            # first (fold 0) only, as cron does. Hourly jobs run in both hours: they are distinct hours.
            if not (fixed_hour and fire.astimezone(self.zone).fold == 1):
                return fire.astimezone(dt.UTC)

    def due(self, last: dt.datetime | None, now: dt.datetime, *, catch_up: bool, started: dt.datetime) -> bool:
        """Should the job start at ``now``? ``last``: its last start (None: never); ``started``: when the
        scheduler started. A fire time missed while the scheduler was down runs once with ``catch_up`` and is
        skipped otherwise (the next fire time since the start counts)."""
        since_start = self.next_after(started - dt.timedelta(microseconds=1)) <= now
        if last is None:
            return self.interval is not None or since_start
        upcoming = self.next_after(last)
        if upcoming > now:
            return False
        return upcoming >= started or catch_up or since_start
