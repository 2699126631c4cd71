"""Options of a ``nats`` source, validated when lakeforge.yml is read."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from lakeforge.sources.records import RecordSourceConfig


class NatsConfig(RecordSourceConfig):
    type: Literal["nats"]
    url: str = "nats://127.0.0.1:4222"
    stream: str
    """The JetStream stream to read (it must exist: lakeforge consumes, it does not create streams)."""
    subjects: list[str] = Field(default_factory=list)
    """Read only these subjects of the stream (wildcards allowed); empty: all. Several need NATS >= 2.10."""
    durable: str | None = None
    """Durable consumer name (default ``lakeforge-<source>``)."""
    user: str | None = None
    password: SecretStr | None = None
    """Write ``${ENV_VAR}``."""
    token: SecretStr | None = None
    """Write ``${ENV_VAR}``."""
    fetch_batch: int = Field(default=5_000, gt=0)
    """Messages asked for in one pull request."""
    idle_seconds: float = Field(default=0.5, gt=0)
    """A run without ``--follow`` ends as soon as a message says the consumer has nothing more pending (its
    ack subject carries the count), or when no message came for this long and the consumer has nothing
    pending."""
    connect_timeout: float = Field(default=5.0, gt=0)

    @field_validator("url")
    @classmethod
    def _nats(cls, value: str) -> str:
        if not value.startswith(("nats://", "tls://")):
            raise ValueError(f"'{value}' is not a NATS URL (nats://host:port)")
        return value
