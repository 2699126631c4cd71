"""The lake: table formats and storage. Delta Lake is the default (and, for now, only) format."""

from lakeforge.lake.checkpoint import Checkpoint
from lakeforge.lake.delta import DeltaLake, TableInfo

__all__ = ["Checkpoint", "DeltaLake", "TableInfo"]
