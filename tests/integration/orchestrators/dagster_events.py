"""Print, as JSON, what the Dagster instance in DAGSTER_HOME recorded: per step its success/failure and retry
counts, the latest materialization of each asset and every asset check evaluation. Run in a subprocess by
test_dagster.py, so Dagster's own warnings stay out of the test process."""

from __future__ import annotations

import json
from collections import Counter

from dagster import DagsterEventType, DagsterInstance, EventRecordsFilter

KINDS = [
    DagsterEventType.STEP_SUCCESS,
    DagsterEventType.STEP_FAILURE,
    DagsterEventType.STEP_UP_FOR_RETRY,
    DagsterEventType.ASSET_MATERIALIZATION,
    DagsterEventType.ASSET_CHECK_EVALUATION,
]

instance = DagsterInstance.get()
steps: Counter[str] = Counter()
materialized: dict[str, dict[str, object]] = {}
checks: dict[str, dict[str, object]] = {}
for kind in KINDS:
    for record in instance.get_event_records(EventRecordsFilter(event_type=kind), limit=1000):
        event = record.event_log_entry.dagster_event
        assert event is not None
        if kind == DagsterEventType.ASSET_MATERIALIZATION:
            m = event.event_specific_data.materialization  # type: ignore[union-attr]
            materialized["/".join(m.asset_key.path)] = {k: v.value for k, v in m.metadata.items()}
        elif kind == DagsterEventType.ASSET_CHECK_EVALUATION:
            e = event.event_specific_data
            key = "/".join(e.asset_key.path) + ":" + e.check_name  # type: ignore[union-attr]
            checks[key] = {"passed": e.passed, "severity": e.severity.value,  # type: ignore[union-attr]
                           "status": e.metadata["status"].value}  # type: ignore[union-attr]
        else:
            steps[f"{event.step_key}:{kind.value}"] += 1
print(json.dumps({"steps": steps, "materialized": materialized, "checks": checks}, default=str))
