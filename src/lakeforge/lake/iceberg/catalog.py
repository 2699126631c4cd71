"""The Iceberg catalog of a lake: ``lake.catalog`` (``{type: sql, uri}`` or ``{type: rest, uri, credential}``).

Without a ``catalog`` key a local lake keeps a SQLite catalog in ``<lake>/catalog.db``; a lake on object
storage must name one (a SQLite file cannot live on S3). A ``sqlite:///PATH`` catalog is opened with
``sqlite_catalog.SqliteCatalog`` (PyIceberg's SQL catalog tables over ``sqlite3``, no SQLAlchemy); other SQL
URIs (PostgreSQL) with PyIceberg's ``SqlCatalog``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lakeforge.config.models import RestCatalogConfig, SqlCatalogConfig
from lakeforge.errors import ConfigError, MissingExtraError

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog

    from lakeforge.lake.storage import Storage


def open_catalog(catalog: SqlCatalogConfig | RestCatalogConfig | None, storage: Storage) -> Catalog:
    from lakeforge.lake.arrow_import import import_dataset

    import_dataset()  # before PyIceberg imports it: without pandas (lake/arrow_import.py)
    try:
        from pyiceberg.catalog import load_catalog
    except ImportError:
        raise MissingExtraError("pyiceberg", "iceberg") from None
    properties: dict[str, Any] = dict(storage.iceberg_properties())
    if catalog is None or isinstance(catalog, SqlCatalogConfig):
        name = catalog.name if catalog else "lakeforge"
        uri = catalog.uri.get_secret_value() if catalog and catalog.uri else None
        if uri is None:
            if not storage.is_local:
                raise ConfigError(
                    f"lake {storage.root}: an Iceberg lake on object storage needs lake.catalog "
                    "(e.g. {type: sql, uri: postgresql+psycopg2://...} or {type: rest, uri: ...})"
                )
            import os

            os.makedirs(storage.root, exist_ok=True)
            uri = f"sqlite:///{storage.join('catalog.db')}"
        properties.update(type="sql", uri=uri, warehouse=_warehouse(storage))
        from lakeforge.lake.iceberg.sqlite_catalog import SqliteCatalog, sqlite_path

        if sqlite_path(uri) is not None:  # without SQLAlchemy (~0.3 s of CPU per process), same tables
            return SqliteCatalog(name, **properties)
        return load_catalog(name, **properties)
    properties.update(type="rest", uri=catalog.uri)
    if catalog.warehouse:
        properties["warehouse"] = catalog.warehouse
    if catalog.credential is not None:
        properties["credential"] = catalog.credential.get_secret_value()
        properties["oauth2-server-uri"] = catalog.uri.rstrip("/") + "/v1/oauth/tokens"
    if catalog.token is not None:
        properties["token"] = catalog.token.get_secret_value()
    return load_catalog(catalog.name, **properties)


def _warehouse(storage: Storage) -> str:
    return f"file://{storage.root}" if storage.is_local and "://" not in storage.root else storage.root
