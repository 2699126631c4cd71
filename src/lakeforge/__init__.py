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
    "TableNotFound",
    "__version__",
]
