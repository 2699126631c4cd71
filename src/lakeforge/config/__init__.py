"""Project configuration: models of ``lakeforge.yml`` and the loader."""

from lakeforge.config.loader import CONFIG_FILE, load_config
from lakeforge.config.models import (
    LakeConfig,
    MySQLSource,
    PostgresSource,
    ProjectConfig,
    RunConfig,
    SourceConfig,
    TableConfig,
)

__all__ = [
    "CONFIG_FILE",
    "LakeConfig",
    "MySQLSource",
    "PostgresSource",
    "ProjectConfig",
    "RunConfig",
    "SourceConfig",
    "TableConfig",
    "load_config",
]
