"""Delta Lake tables through delta-rs (``deltalake``): the only package that imports it."""

from lakeforge.lake.base import TableInfo
from lakeforge.lake.delta.lake import DeltaLake

__all__ = ["DeltaLake", "TableInfo"]
