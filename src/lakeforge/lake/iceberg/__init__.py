"""Apache Iceberg tables through PyIceberg (``pip install 'lakeforge[iceberg]'``): the only package that
imports ``pyiceberg``. Layers are catalog namespaces; the catalog is SQL (SQLite by default, PostgreSQL) or
REST."""

from lakeforge.lake.iceberg.lake import IcebergLake

__all__ = ["IcebergLake"]
