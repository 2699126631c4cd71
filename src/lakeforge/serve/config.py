"""The ``publish:`` and ``serve:`` sections of ``lakeforge.yml``, strict like the rest of the file.

.. code-block:: yaml

    publish:
      olap:
        type: mysql                      # postgres | mysql | package.module:Class (a Destination)
        url: mysql://report@127.0.0.1:3306/olap
        password: ${OLAP_PASSWORD}
        tables: ["gold.*"]
        mode: replace                    # replace (shadow table + swap) | upsert (merge by key, apply deletes)
        options:
          gold.fact_order_line: {primary_key: [order_number, product_code], indexes: [[customer_key]]}
    serve:
      sql: {port: 5433, users: {analyst: "${ANALYST_PASSWORD}"}}
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from lakeforge.config.urls import split_into

PublishMode = Literal["replace", "upsert"]
BUILTIN_DESTINATIONS = ("postgres", "mysql")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


def _listify(value: object) -> object:
    return [value] if isinstance(value, str) else value


class PublishTableOptions(Strict):
    """Options of one published lake table (keyed by ``layer.table`` under ``options``)."""

    name: str | None = None
    """Table name in the target; default the lake table's name without its layer."""
    mode: PublishMode | None = None
    """Overrides the target's ``mode`` for this table."""
    primary_key: list[str] | None = None
    """Primary key in the target; default the model's ``unique_key`` when it declares one."""
    indexes: list[list[str]] = Field(default_factory=list)
    """Secondary indexes, each a list of columns."""
    json_columns: list[str] = Field(default_factory=list)
    """String columns holding JSON documents: created as ``json`` (PostgreSQL) / ``JSON`` (MariaDB)."""

    _keys = field_validator("primary_key", mode="before")(_listify)


class PublishTarget(Strict):
    """A database lake tables are published into."""

    type: str
    """``postgres``, ``mysql`` (MariaDB and MySQL) or a dotted path ``package.module:Class``."""
    url: str | None = None
    """Connection URL; a password in it is moved to ``password`` and kept secret."""
    host: str = "127.0.0.1"
    port: int | None = None
    user: str | None = None
    password: SecretStr | None = None
    """Use ``${ENV_VAR}``; never write the password itself in the file."""
    database: str | None = None
    db_schema: str = Field(default="public", alias="schema")
    """PostgreSQL schema the tables go into (created when missing)."""
    tables: list[str] = Field(default_factory=lambda: ["gold.*"])
    """Glob patterns of lake tables (``layer.table``) to publish."""
    exclude: list[str] = Field(default_factory=list)
    """Glob patterns of lake tables to skip; wins over ``tables``."""
    mode: PublishMode = "replace"
    """``replace``: load a shadow table and swap it in atomically; ``upsert``: merge by key and delete the rows
    the lake no longer has, in one transaction."""
    options: dict[str, PublishTableOptions] = Field(default_factory=dict)
    """Per-table options keyed by ``layer.table``."""
    connect_timeout: int = 10
    """Seconds to wait for a connection."""
    chunk_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    """Bytes of encoded rows sent per bulk-load round (MariaDB ``LOAD DATA``): bounds memory and temp disk."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        if value not in BUILTIN_DESTINATIONS and not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", value):
            raise ValueError(
                f"unknown target type '{value}'; valid: {', '.join(BUILTIN_DESTINATIONS)} "
                "or a dotted path package.module:Class to a Destination class"
            )
        return value

    @model_validator(mode="after")
    def _split_url(self) -> PublishTarget:
        split_into(self)
        return self

    def secret(self) -> str | None:
        return self.password.get_secret_value() if self.password is not None else None

    def mode_of(self, table: str) -> PublishMode:
        opts = self.options.get(table)
        return opts.mode if opts and opts.mode else self.mode


class SqlEndpointConfig(Strict):
    """``lakeforge serve sql``: the PostgreSQL-protocol endpoint."""

    host: str = "127.0.0.1"
    """Address to bind; anything but loopback needs at least one user with a password."""
    port: int = Field(default=5433, ge=0, le=65535)
    users: dict[str, SecretStr] = Field(default_factory=dict)
    """User name -> password (``${ENV_VAR}``). Empty: no authentication, allowed on loopback only."""
    database: str = "lakeforge"
    """Database name the endpoint reports (clients may ask for any)."""
    tls_cert: str | None = None
    """PEM certificate file: when set (with ``tls_key``), clients may connect with TLS (``sslmode=require``)."""
    tls_key: str | None = None
    """PEM private key file of ``tls_cert``."""


class WebConfig(Strict):
    """``lakeforge serve web``: dashboards and the operations view."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    dashboards_path: str = "dashboards"
    """Folder of ``*.yml`` dashboards, relative to the project."""
    users: dict[str, SecretStr] = Field(default_factory=dict)
    """User name -> password for HTTP basic auth; required when bound beyond loopback."""


class ServeConfig(Strict):
    sql: SqlEndpointConfig = Field(default_factory=SqlEndpointConfig)
    web: WebConfig = Field(default_factory=WebConfig)
