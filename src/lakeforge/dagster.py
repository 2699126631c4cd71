"""``from lakeforge.dagster import definitions``: the Dagster integration (``pip install 'lakeforge[dagster]'``).

Defined in :mod:`lakeforge.integrations.dagster`; see docs/orchestrators.md."""

from lakeforge.integrations.dagster import asset_key, check_name, definitions, for_dagster

__all__ = ["asset_key", "check_name", "definitions", "for_dagster"]
