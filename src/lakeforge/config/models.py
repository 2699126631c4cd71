"""The pipeline file, ``lakeforge.yml``, as strict pydantic models.

Every model forbids unknown keys, so a typo fails with the key's path and the valid keys. Passwords are
``SecretStr``: they never appear in a repr, a log line, an error or ``--output json``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import quote

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)

from lakeforge.config.engine import EngineConfig, LocalEngine
from lakeforge.config.urls import split_into
from lakeforge.serve.config import PublishTarget, ServeConfig

Mode = Literal["full", "incremental", "cdc", "append"]
"""How a table is loaded: ``full`` replaces the table atomically, ``incremental`` merges rows past a
cursor, ``cdc`` applies the database log, ``append`` (record sources: files, streams, python) appends the
records past the committed position, each exactly once."""

SOURCE_NAME = re.compile(r"[a-z][a-z0-9_]*")
"""What a source name may be: it becomes part of lake table names and environment variable names."""
_DURATION = re.compile(r"^\s*(\d+)\s*(s|sec|seconds?|m|min|minutes?|h|hours?|d|days?)\s*$", re.I)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_lookback(value: str | int | float) -> float:
    """A lookback as a number: seconds for a time cursor, units for a numeric cursor."""
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"'{value}' is not a duration; write e.g. 30s, 15m, 2h, 1d or a number")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)[0].lower()]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    """``defer_build``: the validator is built on first use, not at import (see the end of this module)."""


class TableConfig(Strict):
    """Options of one source table."""

    mode: Mode | None = None
    """Load mode; defaults to the source's ``defaults.mode``."""
    cursor: list[str] | None = None
    """Cursor column(s) for ``incremental``, compared as a tuple, e.g. ``[updated_at, id]``."""
    lookback: str | int | float | None = None
    """Re-read this far behind the last cursor value to catch late rows: ``2h`` for a time cursor,
    a number for a numeric one. Re-read rows are merged by key, so nothing is duplicated."""
    primary_key: list[str] | None = None
    """Overrides the key read from the database catalog."""
    merge_key: list[str] | None = None
    """Key to merge on when the table has no primary key."""
    name: str | None = None
    """Lake table name (without layer); default ``<prefix>_<table>`` (the prefix defaults to the source's
    name). Use it to give one of two colliding tables its own name."""
    schema_change: Literal["evolve", "replace"] = "evolve"
    """An incompatible column type change (e.g. INT -> VARCHAR): ``evolve`` stops this table with an error
    naming the column; ``replace`` reloads the whole table with the source's new schema in one commit.
    Added, dropped and widened columns always evolve."""
    partition_by: str | None = None
    """Distributed extraction (range tasks, docs/scale-out.md): the column a large table is split on into
    ``run.partitions`` ranges, for a table without a single integer primary key (or to split on another
    column). An integer, date or timestamp column; rows where it is NULL are read by a task of their own."""
    soft_delete: bool = False
    """CDC only: keep deleted rows, flagged in ``_lf_deleted``, instead of removing them."""
    max_bad_fraction: float | None = Field(default=None, ge=0, le=1)
    """Record sources: fail the table (commit nothing) when more than this fraction of the records read
    is malformed; below it, bad records go to ``quarantine.<table>`` and the good ones load. Unset: the
    source's ``defaults.max_bad_fraction`` (itself unset: any fraction is quarantined, none fails)."""

    @field_validator("cursor", "primary_key", "merge_key", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("name")
    @classmethod
    def _lake_name(cls, value: str | None) -> str | None:
        from lakeforge.lake.naming import normalize

        if value is not None and normalize(value) != value:
            raise ValueError(f"'{value}' is not a lake table name; write it as '{normalize(value)}'")
        return value

    @field_validator("lookback")
    @classmethod
    def _check_lookback(cls, value: str | int | float | None) -> str | int | float | None:
        if value is not None:
            parse_lookback(value)
        return value


class TableDefaults(Strict):
    mode: Mode = "full"
    """Mode of every table that does not set its own."""
    max_bad_fraction: float | None = Field(default=None, ge=0, le=1)
    """Record sources: ``max_bad_fraction`` of every table that does not set its own."""


class SourceBase(Strict):
    """What every source's configuration has, whatever its type. A source type brings its own subclass
    (the ``CONFIG`` of its :class:`lakeforge.sources.base.Source` class), found through the source registry
    by ``type`` (see :func:`lakeforge.sources.config_class`)."""

    type: str
    """A built-in type (``postgres``, ``mysql``, ``files``, ``python``, ...), an entry point of the group
    ``lakeforge.sources``, or a dotted path ``package.module:SourceClass``."""
    include: list[str] = Field(default_factory=lambda: ["*"])
    """Glob patterns of tables to load (``orders``, ``sales.*``)."""
    exclude: list[str] = Field(default_factory=list)
    """Glob patterns of tables to skip; wins over include."""
    tables: dict[str, TableConfig] = Field(default_factory=dict)
    """Per-table options, keyed by table name or ``schema.table``. A view or materialized view is loaded
    only when it is named here (full mode, or incremental with a cursor and a ``merge_key``)."""
    defaults: TableDefaults = Field(default_factory=TableDefaults)
    prefix: str | None = None
    """Lake names are ``bronze.<prefix>_<table>``; default: the source's name. ``""`` for none."""

    def secret_values(self) -> list[str]:
        """Strings that must be scrubbed from third-party messages: the value of every ``SecretStr`` in the
        source's options, nested ones too (``storage.secret_access_key``, ``auth.bearer``), and its URL-encoded
        form."""
        found: list[str] = []

        def walk(value: object) -> None:
            if isinstance(value, SecretStr):
                secret = value.get_secret_value()
                if secret:
                    found.extend([secret, quote(secret, safe="")])
            elif isinstance(value, BaseModel):
                for item in value.__dict__.values():
                    walk(item)
            elif isinstance(value, dict | list | tuple):
                for item in value.values() if isinstance(value, dict) else value:
                    walk(item)

        walk(self)
        return found


class DatabaseSourceBase(SourceBase):
    """A database reached by URL or host/port/user/password (PostgreSQL, MySQL/MariaDB)."""

    url: str | None = None
    """Connection URL; a password in it is moved to ``password`` and kept secret."""
    host: str = "127.0.0.1"
    port: int | None = None
    user: str | None = None
    password: SecretStr | None = None
    """Use ``${ENV_VAR}``; never write the password itself in the file."""
    database: str | None = None
    connect_timeout: int = 10
    """Seconds to wait for a connection."""

    @model_validator(mode="after")
    def _split_url(self) -> DatabaseSourceBase:
        split_into(self)
        return self

    def dsn(self, scheme: str, *, with_password: bool = True) -> str:
        """Connection URL for drivers; the password is included only when asked."""
        auth = quote(self.user or "", safe="")
        if with_password and self.password is not None:
            auth += ":" + quote(self.password.get_secret_value(), safe="")
        port = f":{self.port}" if self.port else ""
        return f"{scheme}://{auth}@{self.host}{port}/{quote(self.database or '', safe='')}"


class PostgresSource(DatabaseSourceBase):
    type: Literal["postgres"]
    schemas: list[str] = Field(default_factory=lambda: ["public"])
    """Schemas to read; tables outside ``public`` get the schema in their lake name."""
    slot_name: str | None = None
    """CDC: replication slot name (default ``lakeforge_<source>``)."""
    publication: str | None = None
    """CDC: publication name (default ``lakeforge_<source>``)."""
    max_slot_lag_bytes: int = 1_073_741_824
    """CDC: warn when the slot holds back more WAL than this."""


class MySQLSource(DatabaseSourceBase):
    type: Literal["mysql"]
    server_id: int | None = None
    """CDC: replica server id lakeforge uses to read the binlog."""
    pace: Literal["auto", "always", "never"] = "auto"
    """Flow control of full/incremental reads (the server pauses until lakeforge has taken the rows sent
    before, so memory stays bounded when the lake writer is slower than the database): ``auto`` for tables
    estimated at 256 MiB and more, ``always``, or ``never`` (the driver then reads ahead without bound)."""


def _resolve_source(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """A source's raw mapping validated by the config class its ``type`` registers (the registry is open:
    built-ins, entry points, dotted paths); an unknown type names the valid choices."""
    if isinstance(value, dict):
        from pydantic_core import PydanticCustomError

        from lakeforge.errors import ConfigError
        from lakeforge.sources import config_class, valid_types

        kind = value.get("type")
        if not isinstance(kind, str) or not kind:
            raise PydanticCustomError("source_type", "missing; valid choices: {valid}", {"valid": valid_types()})
        try:
            cls = config_class(kind)
        except ConfigError as exc:
            raise PydanticCustomError("source_type", "{why}", {"why": str(exc)}) from None
        return cls.model_validate(value)
    return handler(value)


SourceConfig = Annotated[SourceBase, WrapValidator(_resolve_source)]
"""Any source's configuration: the class is chosen by ``type`` through the source registry."""


class StorageConfig(Strict):
    """Object storage of an ``s3://bucket/prefix`` lake (any S3-compatible store). Credentials left unset
    come from the environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``)."""

    endpoint: str | None = None
    """``http://127.0.0.1:8333`` for a local store; unset: AWS."""
    region: str | None = None
    access_key_id: SecretStr | None = None
    """Use ``${ENV_VAR}``; never printed."""
    secret_access_key: SecretStr | None = None
    """Use ``${ENV_VAR}``; never printed."""
    path_style: bool = True
    """Address buckets as ``endpoint/bucket`` (most S3-compatible stores) rather than ``bucket.endpoint``."""


class _CatalogCommon(Strict):
    namespace_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9_]*$")
    """Put before each layer's namespace (``dev_`` gives ``dev_bronze``, ``dev_silver``...), so that several
    lakes can share one catalog; tables are still named ``bronze.orders`` in lakeforge."""


class SqlCatalogConfig(_CatalogCommon):
    type: Literal["sql"]
    uri: SecretStr | None = None
    """SQLAlchemy URL of the catalog database; default ``sqlite:///<lake>/catalog.db`` for a local lake.
    PostgreSQL: ``postgresql+psycopg2://user:${PASSWORD}@host/db`` (kept secret: it may hold a password)."""
    name: str = "lakeforge"
    """Catalog name (several lakes may share one catalog database under different names)."""


class RestCatalogConfig(_CatalogCommon):
    type: Literal["rest"]
    uri: str
    """``http://127.0.0.1:8181``"""
    credential: SecretStr | None = None
    """OAuth2 client credential ``id:secret``; never printed."""
    token: SecretStr | None = None
    """A bearer token instead of a credential."""
    warehouse: str | None = None
    """Warehouse name or location the catalog expects; default: the lake's ``path``."""
    name: str = "lakeforge"


CatalogConfig = Annotated[SqlCatalogConfig | RestCatalogConfig, Field(discriminator="type")]


class MaintenanceConfig(Strict):
    compact_every: int | None = Field(default=None, gt=0)
    """Run ``maintain`` on a table after every N commits a run makes to it (unset: only by hand)."""
    target_file_mb: int = Field(default=128, gt=0)
    """Size compaction aims at for each data file."""
    retain: str | int | float = "7d"
    """Keep every version (and its files) younger than this (``7d``, ``12h``, seconds); older unreferenced
    files are removed and older versions can no longer be time-travelled to."""

    @field_validator("retain")
    @classmethod
    def _check_retain(cls, value: str | int | float) -> str | int | float:
        parse_lookback(value)
        return value

    @property
    def retain_seconds(self) -> float:
        return parse_lookback(self.retain)


def _check_format(value: str) -> str:
    if value in ("delta", "iceberg") or re.fullmatch(r"[A-Za-z_][\w.]*[.:][A-Za-z_]\w*", value):
        return value
    raise ValueError(f"unknown format '{value}'; valid: delta, iceberg, or a dotted path package.module:Class")


class FormatOverride(Strict):
    """The table format of one layer or one lake table, instead of ``lake.format``."""

    format: str
    """``delta``, ``iceberg`` or a dotted path ``package.module:Class``."""

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        return _check_format(value)


class LakeConfig(Strict):
    path: str = "./lakehouse"
    """Folder (relative to the project) or URI (``s3://bucket/prefix``) of the lakehouse."""
    format: str = "delta"
    """Table format: ``delta`` (default) or ``iceberg``; a third party's as a dotted path
    ``package.module:LakeClass`` (a subclass of ``lakeforge.lake.base.Lake``)."""
    storage: StorageConfig = Field(default_factory=StorageConfig)
    catalog: CatalogConfig | None = None
    """Iceberg only: ``{type: sql}`` (default: a SQLite file in a local lake) or ``{type: rest, uri: ...}``."""
    maintenance: MaintenanceConfig = Field(default_factory=MaintenanceConfig)
    storage_options: dict[str, str] = Field(default_factory=dict)
    """Delta only: raw object-store options passed to delta-rs (prefer ``storage``)."""
    target_file_size: int | None = Field(default=None, gt=0)
    """Bytes per Parquet file the writer aims at; unset: the format's default (delta-rs: about 100 MB)."""
    layers: dict[str, FormatOverride] = Field(default_factory=dict)
    """Per layer, another table format than ``format``: ``{silver: {format: iceberg}}``."""
    tables: dict[str, FormatOverride] = Field(default_factory=dict)
    """Per lake table (``layer.table``), another table format: ``{bronze.shop_orders: {format: iceberg}}``;
    wins over ``layers``."""

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        return _check_format(value)

    @field_validator("tables")
    @classmethod
    def _layer_dot_table(cls, value: dict[str, FormatOverride]) -> dict[str, FormatOverride]:
        for name in value:
            if name.count(".") != 1 or not all(name.split(".")):
                raise ValueError(f"'{name}': a lake table is named layer.table (e.g. bronze.shop_orders)")
        return value

    def formats(self) -> set[str]:
        """Every table format this lake uses (``format`` and the overrides)."""
        return {self.format, *(o.format for o in self.layers.values()), *(o.format for o in self.tables.values())}

    @model_validator(mode="after")
    def _catalog_needs_iceberg(self) -> LakeConfig:
        if self.catalog is not None and "iceberg" not in self.formats():
            raise ValueError("catalog is for format: iceberg (Delta tables keep their own log)")
        return self


class RunConfig(Strict):
    batch_size: int = Field(default=131_072, gt=0)
    """Rows per Arrow record batch streamed from a source."""
    parallel_min_rows: int = Field(default=2_000_000, ge=0)
    """Tables estimated at this many rows or more are read in primary-key ranges in parallel."""
    partitions: int = Field(default=1, ge=1, le=64)
    """Parallel readers for a large table. 1 (one reader, in its own thread beside the writer) unless the
    database and this machine have cores to spare: on 2 cores, 2 readers of a 10M-row wide table were 6%
    faster and took 1.6 GB instead of 0.9 GB (docs/benchmarks.md)."""
    retries: int = Field(default=3, ge=0)
    """Attempts after a transient failure (connection reset), with exponential backoff."""
    retry_backoff: float = Field(default=1.0, ge=0)
    """Seconds before the first retry; doubled each time."""
    on_error: Literal["continue", "stop"] = "continue"
    """When a table fails: load the other tables (``continue``) or stop the run."""
    cdc_commit_seconds: float = Field(default=5.0, gt=0)
    """CDC: commit a micro-batch at least this often."""
    cdc_commit_changes: int = Field(default=100_000, gt=0)
    """CDC: commit a micro-batch after this many changes (while such a backlog lasts, the current-state table's
    MERGE waits for the next micro-batch, up to ``cdc_commit_seconds``: docs/cdc.md)."""
    commit_bytes: int = Field(default=256 * 2**20, gt=0)
    """Record sources (files, streams, python): commit at the source's next safe point (the end of a file,
    a stream batch) once this many bytes of Arrow data are waiting; bounds memory for huge inputs."""
    stream_commit_seconds: float = Field(default=5.0, gt=0)
    """``--follow`` on a stream source: commit what arrived at least this often."""
    stream_commit_records: int = Field(default=100_000, gt=0)
    """``--follow`` on a stream source: commit after this many records."""


class ProjectConfig(Strict):
    sources: dict[str, SourceConfig] = Field(default_factory=dict)
    """Sources by name; each ``type`` brings its own options (docs/sources.md)."""
    lake: LakeConfig = Field(default_factory=LakeConfig)
    run: RunConfig = Field(default_factory=RunConfig)
    engine: EngineConfig = Field(default_factory=LocalEngine)
    """Where extraction and models run: ``{type: local}`` (one process, DuckDB) or ``{type: ray, address}``."""
    models_path: str = "models"
    """Folder of SQL/Python transform models."""
    timezone: str = "UTC"
    """Time zone of job schedules (an IANA name such as ``Europe/Paris``)."""
    jobs: dict[str, JobConfig] = Field(default_factory=dict)
    """Scheduled and continuous work (``lakeforge serve``, ``lakeforge jobs``); see docs/operations.md."""
    alerts: list[AlertConfig] = Field(default_factory=list)
    freshness: dict[str, str | int] = Field(default_factory=dict)
    """Lake table pattern -> the age after which it is stale, e.g. ``{"gold.*": 2h}``."""
    lineage: LineageConfig | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"'{value}' is not a time zone; write an IANA name such as UTC or Europe/Paris") from None
        return value

    @field_validator("freshness")
    @classmethod
    def _ages(cls, value: dict[str, str | int]) -> dict[str, str | int]:
        for age in value.values():
            parse_lookback(age)
        return value

    @model_validator(mode="after")
    def _job_sources(self) -> ProjectConfig:
        for name, job in self.jobs.items():
            run_sources = job.run.sources if isinstance(job.run, RunStep) else None
            for key, names in (("run.sources", run_sources), ("follow", job.follow)):
                unknown = [n for n in names or [] if n not in self.sources]
                if unknown:
                    valid = ", ".join(self.sources) or "(none configured)"
                    raise ValueError(f"jobs.{name}.{key}: no source {', '.join(unknown)}; sources: {valid}")
        return self

    publish: dict[str, PublishTarget] = Field(default_factory=dict)
    """Databases lake tables are published into (``lakeforge publish``), by target name."""
    serve: ServeConfig = Field(default_factory=ServeConfig)
    """The SQL endpoint and the web app (``lakeforge serve sql|web``)."""

    @field_validator("sources")
    @classmethod
    def _source_names(cls, value: dict[str, object]) -> dict[str, object]:
        for name in value:
            if not SOURCE_NAME.fullmatch(name):
                raise ValueError(f"source name '{name}' must be lower-case letters, digits and _")
        return value


from lakeforge.config.ops import AlertConfig, JobConfig, LineageConfig, RunStep  # noqa: E402

# No ProjectConfig.model_rebuild() here: every config model sets ``defer_build``, so pydantic builds the
# validators on the first validation (and only of the models reached), not at import: ~0.1 s of CPU less
# for every process that imports lakeforge (docs/benchmarks.md, "Fixed cost of a run", third pass).
