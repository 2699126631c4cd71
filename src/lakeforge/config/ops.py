"""The operations part of ``lakeforge.yml``: ``jobs``, ``alerts``, ``freshness``, ``lineage``, ``timezone``.

Strict like the rest (unknown keys fail with the valid ones); webhook URLs and SMTP passwords are secrets.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from lakeforge.config.models import parse_lookback

AlertOn = Literal["failure", "check_error", "stale", "cdc_lag"]
"""failure: a job failed; check_error: a check of severity error failed in a build; stale: a table is older than
its ``freshness``; cdc_lag: a CDC table is further behind its source than ``cdc_lag``."""


def _every_kind() -> list[AlertOn]:
    return ["failure", "check_error", "stale", "cdc_lag"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


def _duration(value: str | int | float | None) -> str | int | float | None:
    if value is not None:
        parse_lookback(value)
    return value


class RunStep(_Strict):
    sources: list[str] | None = None
    """Sources to load (default: every source)."""
    select: list[str] | None = None
    """Table patterns, as ``lakeforge run --select``."""


class BuildStep(_Strict):
    select: list[str] | None = None
    """Models, as ``lakeforge build --select`` (``gold+``, ``silver.orders``)."""
    full_refresh: bool = False


class JobConfig(_Strict):
    """A job: steps run in order (run, build, publish, maintain) on a schedule, or a supervised ``follow``."""

    schedule: str | None = None
    """Cron expression (5 fields) in the project's ``timezone``, e.g. ``0 * * * *``; DST is handled."""
    every: str | int | None = None
    """Or an interval: ``15m``, ``1h``, seconds as a number."""
    run: RunStep | bool | None = None
    build: BuildStep | bool | None = None
    publish: list[str] | None = None
    """Publish targets (``lakeforge publish TARGET``)."""
    maintain: bool = False
    """Compact and clean the lake tables (``lakeforge maintain``)."""
    follow: list[str] | None = None
    """CDC sources to follow continuously (``lakeforge run --follow``); restarted with backoff if it dies."""
    timeout: str | int | None = "1h"
    """A step running longer is interrupted (SIGINT: committed tables stay, the table in flight rolls back)."""
    retries: int = Field(default=3, ge=0)
    """Attempts after a transient failure (a source down, the lake locked by another run)."""
    retry_backoff: str | int = "30s"
    """Before the first retry; doubled each time, with +-25% jitter."""
    missed: Literal["skip", "catch_up"] = "catch_up"
    """A run missed while the scheduler was down: ``catch_up`` runs it once at start, ``skip`` waits."""

    _check_durations = field_validator("every", "timeout", "retry_backoff")(_duration)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from croniter import croniter

        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise ValueError(
                f"'{value}' is not a cron expression (5 fields: minute hour day month weekday, "
                "e.g. '0 * * * *' for hourly, '30 2 * * *' for 02:30 daily)"
            )
        return value

    @model_validator(mode="after")
    def _shape(self) -> JobConfig:
        timed = [k for k in ("schedule", "every") if getattr(self, k) is not None]
        if self.follow is not None:
            if timed or self.run or self.build or self.publish or self.maintain:
                raise ValueError("a follow job runs continuously: it takes no schedule/every and no other step")
            return self
        if len(timed) > 1:
            raise ValueError("give schedule or every, not both")
        if not (self.run or self.build or self.publish or self.maintain):
            raise ValueError("a job needs at least one step: run, build, publish, maintain (or follow)")
        return self

    def steps(self) -> list[str]:
        return [s for s in ("run", "build", "publish", "maintain") if getattr(self, s)]


class SmtpConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = 25
    user: str | None = None
    password: SecretStr | None = None
    starttls: bool = False
    timeout: float = 10.0


class EmailConfig(_Strict):
    to: list[str]
    sender: str = Field(default="lakeforge@localhost", alias="from")
    smtp: SmtpConfig = Field(default_factory=SmtpConfig)

    @field_validator("to", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


class AlertConfig(_Strict):
    on: list[AlertOn] = Field(default_factory=_every_kind)
    """Incidents that alert; each alerts once when it opens and once when it clears."""
    webhook: SecretStr | None = None
    """An HTTP URL receiving ``{"text": ...}`` JSON (Slack and Teams incoming webhooks take it)."""
    email: EmailConfig | None = None
    cdc_lag: str | int = "5m"
    """A CDC table further behind its source than this is an incident (``cdc_lag``)."""

    _check_lag = field_validator("cdc_lag")(_duration)

    @model_validator(mode="after")
    def _target(self) -> AlertConfig:
        if self.webhook is None and self.email is None:
            raise ValueError("an alert needs a webhook or an email")
        return self


class LineageConfig(_Strict):
    """Where OpenLineage run events go: an HTTP endpoint (``/api/v1/lineage``), a JSON-lines file, or both."""

    url: SecretStr | None = None
    file: str | None = None
    namespace: str = "lakeforge"
