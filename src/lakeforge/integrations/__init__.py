"""Orchestrator integrations: :mod:`lakeforge.airflow` (extra ``airflow``) and :mod:`lakeforge.dagster` (extra
``dagster``). :mod:`~lakeforge.integrations.steps` is what both share and imports neither orchestrator."""
