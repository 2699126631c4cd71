"""Prometheus metrics at ``/metrics`` (text exposition format 0.0.4), computed from the run history and the
scheduler's last health check, served on 127.0.0.1 by default."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lakeforge.state.history import RUN_ROW


def render(
    events: list[dict[str, Any]], freshness: dict[str, float | None], lags: dict[str, float], now: dt.datetime
) -> str:
    """The metrics text: per lake table its last load (rows, seconds, status), failures, freshness and CDC
    lag; per run status a count; per job its last run."""
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[dict[str, str], float]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            text = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
            lines.append(f"{name}{{{text}}} {value:g}" if text else f"{name} {value:g}")

    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for e in sorted(events, key=lambda e: e["recorded_at"]):
        latest[(e["run_id"], e["table"])] = e
    final = [e for e in latest.values() if e["status"] != "running"]
    tables = [e for e in final if e["table"] != RUN_ROW and ":" not in e["table"]]
    runs = [e for e in final if e["table"] == RUN_ROW]
    jobs = [e for e in final if e["table"].startswith("job:")]
    last_table = {e["table"]: e for e in sorted(tables, key=lambda e: e["started_at"])}
    counts: dict[str, int] = {}
    for e in runs:
        counts[e["status"]] = counts.get(e["status"], 0) + 1
    failures: dict[str, int] = {}
    for e in tables:
        failures[e["table"]] = failures.get(e["table"], 0) + (e["status"] == "failed")
    last_job = {e["table"][4:]: e for e in sorted(jobs, key=lambda e: e["started_at"])}
    metric(
        "lakeforge_runs_total",
        "counter",
        "Runs recorded in the run history, by final status.",
        [({"status": k}, v) for k, v in sorted(counts.items())],
    )
    metric(
        "lakeforge_table_rows_loaded",
        "gauge",
        "Rows written by the table's last load.",
        [({"table": t}, e["rows"] or 0) for t, e in sorted(last_table.items())],
    )
    metric(
        "lakeforge_table_load_seconds",
        "gauge",
        "Duration of the table's last load.",
        [({"table": t}, e["seconds"] or 0) for t, e in sorted(last_table.items())],
    )
    metric(
        "lakeforge_table_last_load_success",
        "gauge",
        "1 when the table's last load succeeded.",
        [({"table": t}, float(e["status"] in ("success", "unchanged"))) for t, e in sorted(last_table.items())],
    )
    metric(
        "lakeforge_table_failures_total",
        "counter",
        "Failed loads of the table in the run history.",
        [({"table": t}, v) for t, v in sorted(failures.items())],
    )
    metric(
        "lakeforge_table_freshness_seconds",
        "gauge",
        "Seconds since the table's last commit.",
        [({"table": t}, v) for t, v in sorted(freshness.items()) if v is not None],
    )
    metric(
        "lakeforge_cdc_lag_seconds",
        "gauge",
        "Seconds a CDC table is behind its source.",
        [({"table": t}, v) for t, v in sorted(lags.items())],
    )
    metric(
        "lakeforge_job_last_run_seconds",
        "gauge",
        "Duration of the job's last run.",
        [({"job": j, "status": e["status"]}, e["seconds"] or 0) for j, e in sorted(last_job.items())],
    )
    metric(
        "lakeforge_job_last_run_timestamp_seconds",
        "gauge",
        "When the job's last run started (Unix time).",
        [({"job": j}, e["started_at"].timestamp()) for j, e in sorted(last_job.items())],
    )
    metric("lakeforge_scrape_timestamp_seconds", "gauge", "When these metrics were computed.", [({}, now.timestamp())])
    return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def serve_metrics(host: str, port: int, text: Callable[[], str]) -> ThreadingHTTPServer:
    """Serve ``text()`` at ``/metrics`` in a background thread; returns the server (``shutdown()`` stops it)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404, "only /metrics here")
                return
            body = text().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the http.server API
            return

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
