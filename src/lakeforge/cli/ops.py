"""jobs list, jobs run, status, serve (the scheduler with its /metrics endpoint)."""

from __future__ import annotations

import json
import logging
import signal
import threading
from typing import Any

import click

from lakeforge.cli.common import Context, command, err, esc, out, print_json, print_rows


def register(main: click.Group) -> None:
    @main.group("jobs")
    def jobs() -> None:
        """Scheduled and continuous jobs (``jobs:`` in lakeforge.yml)."""

    @command(jobs, "list")
    def list_jobs(ctx: Context) -> int:
        """Each job: steps, schedule, last run, next run."""
        status = ctx.project.status()
        if ctx.json:
            print_json(status.jobs)
            return 0
        print_rows(
            None,
            ["job", "steps", "schedule", "last", "started", "seconds", "next run", "error"],
            [
                [
                    j.job,
                    " > ".join(j.steps),
                    j.schedule,
                    j.state,
                    _when(j.last_started),
                    j.last_seconds,
                    _when(j.next_run),
                    j.last_error or "",
                ]
                for j in status.jobs
            ],
        )
        return 0

    @command(jobs, "run")
    @click.argument("name")
    @click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
    def run_job(ctx: Context, name: str, log_format: str) -> int:
        """Run one job now: its steps in order, with its retries and alerts."""
        configure_logging(log_format, ctx.debug)
        result = ctx.project.run_job(name)
        if ctx.json:
            print_json(result)
        else:
            print_rows(
                f"job {name}: {result.status}",
                ["step", "ok", "seconds", "error"],
                [[s.step, s.ok, f"{s.seconds:.1f}", s.error or ""] for s in result.steps],
            )
        return 0 if result.ok else 1

    @command(main, "status")
    def status(ctx: Context) -> int:
        """What is running, what is late, what failed, and the next runs."""
        state = ctx.project.status()
        if ctx.json:
            print_json(state)
            return 0
        print_rows(
            "jobs",
            ["job", "state", "last started", "next run", "error"],
            [[j.job, j.state, _when(j.last_started), _when(j.next_run), j.last_error or ""] for j in state.jobs],
        )
        if state.late:
            print_rows(
                "late tables",
                ["table", "age", "limit", "last commit"],
                [
                    [t["table"], _age(t["age_seconds"]), _age(t["limit_seconds"]), _when(t["last_commit"])]
                    for t in state.late
                ],
            )
        for key, message in state.incidents.items():
            err.print(f"[red]open incident[/red] {esc(key)}: {esc(message)}", highlight=False)
        if not state.jobs and not state.late:
            out.print("no jobs configured (jobs: in lakeforge.yml)", highlight=False)
        return 0

    @command(main, "serve")
    @click.option(
        "--metrics-port",
        type=int,
        default=9108,
        show_default=True,
        help="Port of the Prometheus /metrics endpoint (0: none).",
    )
    @click.option("--host", default="127.0.0.1", show_default=True, help="Address the endpoint binds.")
    @click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
    @click.option(
        "--health-every",
        type=float,
        default=60.0,
        show_default=True,
        help="Seconds between freshness and CDC lag checks.",
    )
    @click.option(
        "--for",
        "duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="Stop after this long (demos and tests); default: until SIGTERM/SIGINT.",
    )
    @click.option(
        "--once",
        is_flag=True,
        help="Start the jobs due now, wait for them, check health and exit "
        "(for cron or a system timer); exit 1 if one failed.",
    )
    def serve(
        ctx: Context,
        metrics_port: int,
        host: str,
        log_format: str,
        health_every: float,
        duration: float | None,
        once: bool,
    ) -> int:
        """Run the scheduler: due jobs, supervised follow jobs, alerts, /metrics; stop with SIGTERM."""
        from lakeforge.ops.metrics import render, serve_metrics

        configure_logging(log_format, ctx.debug)
        scheduler = ctx.project.scheduler()
        if once:
            return _once(ctx, scheduler)
        server = None
        if metrics_port:

            def text() -> str:
                h = scheduler.health
                return render(scheduler.history.events(), h.freshness, h.lags, scheduler.clock())

            server = serve_metrics(host, metrics_port, text)
            logging.getLogger("lakeforge.ops").info("metrics at http://%s:%d/metrics", host, metrics_port)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: scheduler.stop.set())
        if duration is not None:
            threading.Timer(duration, scheduler.stop.set).start()
        logging.getLogger("lakeforge.ops").info("scheduler started with %d job(s)", len(ctx.project.config.jobs))
        try:
            scheduler.serve_forever(health_every=health_every)
        finally:
            if server is not None:
                server.shutdown()
        logging.getLogger("lakeforge.ops").info("scheduler stopped")
        return 0


def _once(ctx: Context, scheduler: Any) -> int:
    started = scheduler.tick()
    scheduler.wait()
    scheduler.check_health()
    scheduler.alerter.flush()
    results = {name: scheduler.results[name].status for name in started}
    if ctx.json:
        print_json({"jobs": results, "incidents": scheduler.alerter.open})
    else:
        print_rows("jobs run", ["job", "status"], [[k, v] for k, v in results.items()])
    return 0 if all(v == "success" for v in results.values()) else 1


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": record.getMessage(),
            }
        )


def configure_logging(fmt: str, debug: bool) -> None:
    """Logs of lakeforge.ops to stderr: one line each, as text or as JSON objects (``--log-format json``)."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        _JsonFormatter() if fmt == "json" else logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    )
    logger = logging.getLogger("lakeforge.ops")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    logger.propagate = False


def _when(value: Any) -> str:
    return value.isoformat(timespec="seconds") if value is not None else ""


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"
