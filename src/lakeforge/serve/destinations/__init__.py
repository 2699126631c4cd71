"""Publish targets. Built-ins are registered by ``type``; a third-party one is named by a dotted path
``package.module:Class`` (a :class:`~lakeforge.serve.destinations.base.Destination` subclass) in ``type``."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from lakeforge.errors import ConfigError

if TYPE_CHECKING:
    from lakeforge.serve.config import PublishTarget
    from lakeforge.serve.destinations.base import Destination

DESTINATIONS: dict[str, str] = {
    "postgres": "lakeforge.serve.destinations.postgres:PostgresDestination",
    "mysql": "lakeforge.serve.destinations.mysql:MySQLDestination",
}


def create_destination(name: str, config: PublishTarget) -> Destination:
    from lakeforge.serve.destinations.base import Destination

    target = DESTINATIONS.get(config.type, config.type if ":" in config.type else "")
    if not target:
        raise ConfigError(f"publish target '{name}': unknown type '{config.type}'; valid: {', '.join(DESTINATIONS)}")
    module_name, _, class_name = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"publish target '{name}': cannot load type '{config.type}': {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Destination)):
        raise ConfigError(f"publish target '{name}': type '{config.type}' is not a Destination subclass")
    return cls(name, config)
