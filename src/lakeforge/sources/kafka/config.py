"""Options of a ``kafka`` source, validated when lakeforge.yml is read."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from lakeforge.sources.records import RecordSourceConfig


class KafkaConfig(RecordSourceConfig):
    type: Literal["kafka"]
    brokers: str
    """Bootstrap servers, ``host:port[,host:port]``."""
    topics: list[str]
    format: Literal["json", "debezium"] = "json"
    """``json``: each message's value is a JSON object, loaded (with key, headers, topic, partition, offset,
    timestamp) into one table, appended. ``debezium``: Debezium change events, one table per topic, applied
    to a current-state table and a change log (``mode: cdc``, see docs/cdc.md)."""
    group_id: str | None = None
    """Consumer group (default ``lakeforge-<source>``). Its offsets are only a mirror of the lake's, committed
    after each lake commit for monitoring; lakeforge reads from the offsets in the lake."""
    start: Literal["earliest", "latest"] = "earliest"
    """Where a partition the lake has never read starts (``format: json``)."""
    idle_seconds: float = Field(default=1.0, gt=0)
    """A run without ``--follow`` ends when no message came for this long (never at the broker's high
    watermark, which some brokers report wrong)."""
    assign_timeout: float = Field(default=30.0, gt=0)
    """Seconds to wait for the broker's list of partitions (the reader assigns itself every partition) before
    failing."""
    options: dict[str, str] = Field(default_factory=dict)
    """More librdkafka settings (``security.protocol``, ``sasl.mechanism``, ``sasl.username``...)."""
    sasl_password: SecretStr | None = None
    """``sasl.password``; write ``${ENV_VAR}``."""

    @model_validator(mode="before")
    @classmethod
    def _default_mode(cls, data: Any) -> Any:
        """Debezium topics are applied as change data capture unless the file says otherwise."""
        if isinstance(data, dict) and data.get("format") == "debezium" and "defaults" not in data:
            return {**data, "defaults": {"mode": "cdc"}}
        return data

    @field_validator("topics")
    @classmethod
    def _some(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one topic")
        return value

    @field_validator("options")
    @classmethod
    def _no_secret_options(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if "password" in key or "secret" in key:
                raise ValueError(f"options.{key}: a secret; use sasl_password (kept secret) instead")
        return value

    def group(self, source: str) -> str:
        return self.group_id or f"lakeforge-{source}"
