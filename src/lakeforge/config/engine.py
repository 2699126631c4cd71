"""``engine:`` of ``lakeforge.yml``: where extraction and models run.

- ``{type: local}`` (the default): one process; models on DuckDB.
- ``transforms: daft`` (either type): SQL models run on Daft instead of DuckDB, locally for ``local`` and
  on the Ray cluster for ``ray`` (docs/scale-out.md); checks, SCD2 diffs run there too
  (``fallback: duckdb`` runs what Daft cannot on DuckDB, visibly).
- ``{type: ray, address: ...}``: full loads of large tables fan out as primary-key range tasks on a Ray
  cluster, each writing Parquet files into the lake's storage; the driver commits them in one table commit
  (docs/scale-out.md).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


Transforms = Literal["duckdb", "daft"]
Fallback = Literal["duckdb"] | None


class LocalEngine(_Strict):
    type: Literal["local"] = "local"
    transforms: Transforms = "duckdb"
    """Where SQL models run: ``duckdb`` (the default) or ``daft`` (``pip install 'lakeforge[scale]'``).
    Models are written in DuckDB's dialect either way; for Daft they are transpiled with sqlglot."""
    fallback: Fallback = None
    """``duckdb``: a model the transforms engine cannot run runs on the build's DuckDB instead, visibly (the
    model's result says ``engine: duckdb`` and the engine's reason, and a warning is logged). None (the
    default): such a model fails with its file and the reason (docs/transforms.md, "Engines")."""


class RayEngine(_Strict):
    type: Literal["ray"]
    address: str = "auto"
    """The cluster: ``ray://head:10001`` (Ray Client), ``127.0.0.1:6379`` (a GCS address on this host) or
    ``auto`` (the cluster this host belongs to). Never a cluster started on demand listening on every
    interface: start it yourself, bound to a private address (docs/scale-out.md)."""
    task_cpus: float = Field(default=0.5, gt=0)
    """CPUs Ray reserves per range task. Tasks mostly wait on the database, so less than one CPU each lets
    every range of a table run at once (MariaDB's snapshot needs that: see docs/scale-out.md)."""
    task_retries: int = Field(default=3, ge=0)
    """Times Ray retries a range task whose worker died (or that raised a transient error)."""
    snapshot_timeout: float = Field(default=120.0, gt=0)
    """MariaDB: seconds to wait for every range task to open its snapshot while the global read lock is held."""
    namespace: str = "lakeforge"
    transforms: Transforms = "duckdb"
    """Where SQL models run: ``duckdb`` (on the driver, the default) or ``daft`` (Daft on this cluster)."""
    fallback: Fallback = None
    """``duckdb``: a model the transforms engine cannot run runs on the build's DuckDB instead, visibly (the
    model's result says ``engine: duckdb`` and the engine's reason, and a warning is logged). None (the
    default): such a model fails with its file and the reason (docs/transforms.md, "Engines")."""


EngineConfig = Annotated[LocalEngine | RayEngine, Field(discriminator="type")]
