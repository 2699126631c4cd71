"""Sources, found by the ``type`` of their configuration through one registry.

A type resolves, in this order, to:

1. a built-in (:data:`SOURCES`: ``postgres``, ``mysql``, ``files``, ``python``, ...);
2. an installed plugin: an entry point of the group ``lakeforge.sources`` whose name is the type
   (``[project.entry-points."lakeforge.sources"] ftp = "lakeforge_ftp:FtpSource"``);
3. a dotted path ``package.module:SourceClass``.

The class is a :class:`lakeforge.sources.base.Source` subclass; its ``CONFIG`` (a pydantic model derived from
:class:`lakeforge.config.models.SourceBase`) validates the source's options, so a new type brings its own
options without editing lakeforge. Resolving a type imports only the source's light module (config and
capabilities); its client library is imported when it first connects.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING

from lakeforge.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

    from lakeforge.config.models import SourceBase
    from lakeforge.sources.base import Source

SOURCES: dict[str, str] = {
    "postgres": "lakeforge.sources.postgres.source:PostgresSource",
    "mysql": "lakeforge.sources.mysql.source:MySQLSource",
    "files": "lakeforge.sources.files.source:FilesSource",
    "python": "lakeforge.sources.python.source:PythonSource",
    "kafka": "lakeforge.sources.kafka.source:KafkaSource",
    "nats": "lakeforge.sources.nats.source:NatsSource",
    "http": "lakeforge.sources.http.source:HttpSource",
}
ENTRY_POINT_GROUP = "lakeforge.sources"


def valid_types() -> str:
    """The valid choices, as an error message lists them."""
    names = [*SOURCES, *(n for n in _entry_points() if n not in SOURCES)]
    listed = ", ".join(f"'{n}'" for n in names)
    return f"{listed}, or a dotted path 'package.module:SourceClass'"


def source_class(kind: str) -> type[Source]:
    """The Source class of ``kind``; ConfigError naming the valid choices when there is none."""
    from lakeforge.sources.base import Source

    target = SOURCES.get(kind) or _entry_points().get(kind) or (kind if ":" in kind else "")
    if not target:
        raise ConfigError(f"'{kind}' is not a valid source type; valid choices: {valid_types()}")
    module_name, _, class_name = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"source type '{kind}' cannot be loaded from {target}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Source)):
        raise ConfigError(f"source type '{kind}': {target} is not a subclass of lakeforge.sources.base.Source")
    return cls


def config_class(kind: str) -> type[SourceBase]:
    """The pydantic model that validates a ``kind`` source's options."""
    return source_class(kind).CONFIG


def create_source(name: str, config: SourceBase, project_dir: Path | None = None) -> Source:
    """The source ``name`` of type ``config.type``; relative paths in its options start at ``project_dir``."""
    try:
        cls = source_class(config.type)
    except ConfigError as exc:
        raise ConfigError(f"source '{name}': {exc}") from None
    source = cls(name, config)
    if project_dir is not None:
        source.project_dir = project_dir
    return source


@cache
def _entry_points() -> dict[str, str]:
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
