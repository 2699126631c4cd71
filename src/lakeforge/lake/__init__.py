"""The lakehouse: one :class:`Lake` interface, a table format behind it (Delta or Iceberg), chosen by
``lake.format`` through :data:`FORMATS` (or a dotted path ``package.module:Class``)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from lakeforge.lake.base import Lake, MaintainResult, TableInfo, TableSnapshot
from lakeforge.lake.checkpoint import Checkpoint
from lakeforge.lake.delta import DeltaLake  # cheap: deltalake itself is imported inside its methods

if TYPE_CHECKING:
    from lakeforge.config.models import LakeConfig

FORMATS: dict[str, str] = {
    "delta": "lakeforge.lake.delta:DeltaLake",
    "iceberg": "lakeforge.lake.iceberg:IcebergLake",
}
"""Built-in table formats: name -> ``module:class``. Any other ``lake.format`` is such a path itself."""

__all__ = [
    "FORMATS",
    "Checkpoint",
    "DeltaLake",
    "Lake",
    "MaintainResult",
    "TableInfo",
    "TableSnapshot",
    "lake_class",
    "open_lake",
]


def lake_class(fmt: str) -> type[Lake]:
    from lakeforge.errors import ConfigError, MissingExtraError

    path = FORMATS.get(fmt, fmt)
    module_name, _, attr = path.partition(":") if ":" in path else path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if fmt == "iceberg" and (exc.name or "").startswith("pyiceberg"):
            raise MissingExtraError("pyiceberg", "iceberg") from None
        raise ConfigError(f"lake.format '{fmt}': cannot import {module_name}: {exc}") from None
    cls = getattr(module, attr, None)
    if not (isinstance(cls, type) and issubclass(cls, Lake)):
        raise ConfigError(f"lake.format '{fmt}': {path} is not a subclass of lakeforge.lake.base.Lake")
    return cls


def open_lake(config: LakeConfig, project_dir: str | Path) -> Lake:
    """The project's lake: ``lake.path`` resolved against ``project_dir`` when it is a local folder; a
    :class:`~lakeforge.lake.routed.RoutedLake` when ``lake.layers`` / ``lake.tables`` name other formats."""
    root = config.path
    if "://" not in root:
        root = str((Path(project_dir) / root).resolve())
    if len(config.formats()) > 1:  # per-layer or per-table formats: one lake per format behind one interface
        from lakeforge.lake.routed import RoutedLake

        return RoutedLake.from_config(root, config)
    cls = lake_class(config.format)
    return cls.from_config(root, config)
