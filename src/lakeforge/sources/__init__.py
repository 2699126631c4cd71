"""Sources: one folder per database type. Built-ins are registered by ``type``; a third-party source is
named by a dotted path ``package.module:Class`` in ``type``."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from lakeforge.errors import ConfigError

if TYPE_CHECKING:
    from lakeforge.config.models import SourceBase
    from lakeforge.sources.base import Source

SOURCES: dict[str, str] = {
    "postgres": "lakeforge.sources.postgres.source:PostgresSource",
    "mysql": "lakeforge.sources.mysql.source:MySQLSource",
}


def create_source(name: str, config: SourceBase) -> Source:
    kind = getattr(config, "type", "")
    target = SOURCES.get(kind, kind if ":" in kind else "")
    if not target:
        raise ConfigError(f"source '{name}': unknown type '{kind}'; valid choices: {', '.join(SOURCES)}")
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(name, config)  # type: ignore[no-any-return]
