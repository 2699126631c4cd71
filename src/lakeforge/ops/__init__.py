"""Operating lakeforge: jobs on schedules (``scheduler``), their execution with retries (``runner``), incidents
and alerts (``alerts``, ``health``), Prometheus metrics (``metrics``) and OpenLineage events (``lineage``).

Job and incident state lives in the lake's run history (``_lakeforge/runs``: rows whose table is
``job:<name>`` or ``alert:<key>``), so a restarted scheduler knows when each job last ran and which
incidents are open.
"""
