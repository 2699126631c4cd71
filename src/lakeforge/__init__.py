"""lakeforge: merge PostgreSQL and MySQL/MariaDB into a Delta Lake lakehouse.

Importing this package is cheap: the heavy libraries (pyarrow, deltalake, duckdb, drivers) are imported by
the functions that need them.
"""

from __future__ import annotations

from lakeforge.errors import (
    CheckFailed,
    ConfigError,
    ConversionError,
    LakeError,
    LakeforgeError,
    MissingExtraError,
    ModelError,
    RunInProgress,
    SchemaDriftError,
    SourceError,
    SourceUnreachable,
    TableNotFound,
)
from lakeforge.project import Project
from lakeforge.sources.python.state import State

__version__ = "0.1.0"

__all__ = [
    "CheckFailed",
    "ConfigError",
    "ConversionError",
    "LakeError",
    "LakeforgeError",
    "MissingExtraError",
    "ModelError",
    "Project",
    "RunInProgress",
    "SchemaDriftError",
    "SourceError",
    "SourceUnreachable",
    "State",
    "TableNotFound",
    "__version__",
]
