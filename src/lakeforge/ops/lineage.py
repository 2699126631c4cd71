"""OpenLineage run events (START, COMPLETE, FAIL) for job steps, sent to an HTTP endpoint and/or appended to
a JSON-lines file. Inputs are the source tables a run read and the lake tables a build read; outputs are
the lake tables written. Spec: https://openlineage.io/spec/2-0-2/OpenLineage.json (RunEvent)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from lakeforge.config.ops import LineageConfig

LOG = logging.getLogger("lakeforge.ops")
PRODUCER = "https://github.com/lakeforge/lakeforge"
SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/definitions/RunEvent"


class LineageEmitter:
    def __init__(self, config: LineageConfig | None, project_dir: Path, lake_root: str) -> None:
        self.config = config
        self.project_dir = project_dir
        self.lake_namespace = lake_root if "://" in lake_root else f"file://{lake_root}"

    @property
    def enabled(self) -> bool:
        return self.config is not None and (self.config.url is not None or self.config.file is not None)

    def emit(
        self,
        event_type: str,
        job: str,
        run_id: str,
        *,
        inputs: list[dict[str, str]] | None = None,
        outputs: list[dict[str, str]] | None = None,
        error: str | None = None,
    ) -> dict[str, Any] | None:
        if not self.enabled or self.config is None:
            return None
        run: dict[str, Any] = {"runId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"lakeforge:{run_id}"))}
        if error:
            run["facets"] = {
                "errorMessage": {
                    "_producer": PRODUCER,
                    "_schemaURL": SCHEMA,
                    "message": error,
                    "programmingLanguage": "python",
                }
            }
        event = {
            "eventType": event_type,
            "eventTime": dt.datetime.now(dt.UTC).isoformat(),
            "run": run,
            "job": {"namespace": self.config.namespace, "name": job},
            "inputs": inputs or [],
            "outputs": outputs or [],
            "producer": PRODUCER,
            "schemaURL": SCHEMA,
        }
        self._send(event)
        return event

    def datasets(self, step_output: Any) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
        """Inputs and outputs of a step from its ``--output json`` document (run or build)."""
        inputs: list[dict[str, str]] = []
        outputs: list[dict[str, str]] = []
        if not isinstance(step_output, dict):
            return inputs, outputs
        for table in step_output.get("tables", []):
            if table.get("status") in ("success", "unchanged"):
                inputs.append({"namespace": f"lakeforge-source://{table['source']}", "name": table["source_table"]})
                outputs.append({"namespace": self.lake_namespace, "name": table["table"]})
        for model in step_output.get("models", []):
            if model.get("status") in ("success", "unchanged"):
                outputs.append({"namespace": self.lake_namespace, "name": model["model"]})
        return inputs, outputs

    def _send(self, event: dict[str, Any]) -> None:
        assert self.config is not None
        line = json.dumps(event)
        if self.config.file:
            path = Path(self.config.file)
            path = path if path.is_absolute() else self.project_dir / path
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as out:
                out.write(line + "\n")
        if self.config.url is not None:
            request = urllib.request.Request(
                self.config.url.get_secret_value(),
                data=line.encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            try:
                with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - the user's own endpoint
                    pass
            except OSError as exc:
                LOG.warning("OpenLineage event not delivered: %s", type(exc).__name__)
