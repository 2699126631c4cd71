"""The scheduler against the real PostgreSQL server: cycles on a controllable clock, a transient failure retried,
a permanent failure alerting once, a build's failed check alerting, lineage events, SIGTERM during a run, and
metrics scraped from ``lakeforge serve``."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from lakeforge import Project
from tests.conftest import write_project
from tests.receivers import Forwarder, webhook
from tests.servers import free_port

T0 = dt.datetime(2026, 12, 1, 10, 0, 30, tzinfo=dt.UTC)


def project(path: Path, url: str, jobs: str, extra: str = "") -> Project:
    body = f"lake:\n  path: ./lakehouse\nsources:\n  crm:\n    type: postgres\n    url: {url}\njobs:\n{jobs}{extra}"
    return Project(write_project(path, body))


def test_an_every_minute_job_runs_each_cycle(pg_db: Any, tmp_path: Path) -> None:
    pg_db.execute("CREATE TABLE orders (id int PRIMARY KEY, amount numeric(8,2))")
    p = project(tmp_path / "p", pg_db.url, "  minutely:\n    schedule: '* * * * *'\n    run: {sources: [crm]}\n",
                "lineage: {file: lineage.jsonl}\n")
    now = [T0]
    scheduler = p.scheduler(clock=lambda: now[0])
    counts = []
    for minute in range(3):
        pg_db.execute(f"INSERT INTO orders VALUES ({minute + 1}, {minute}.25)")
        assert scheduler.tick(now[0]) == []  # at :30 nothing is due; the next fire is on the minute
        now[0] += dt.timedelta(seconds=30)
        assert scheduler.tick(now[0]) == ["minutely"]
        scheduler.wait()
        assert scheduler.results["minutely"].ok, scheduler.results["minutely"]
        counts.append(p.sql("select count(*) n from bronze.crm_orders").to_pylist()[0]["n"])
        now[0] += dt.timedelta(seconds=1)
        assert scheduler.tick(now[0]) == []  # not twice in one minute
        now[0] += dt.timedelta(seconds=29)
    assert counts == [1, 2, 3]
    jobs = p.status().jobs
    assert [(j.job, j.state) for j in jobs] == [("minutely", "success")]
    assert len(jobs[0].recent) == 3 and jobs[0].next_run is not None
    events = [json.loads(line) for line in (p.path / "lineage.jsonl").read_text().splitlines()]
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"] * 3
    assert events[1]["outputs"] == [{"namespace": f"file://{p.lake.root}", "name": "bronze.crm_orders"}]
    assert events[1]["inputs"] == [{"namespace": "lakeforge-source://crm", "name": "public.orders"}]
    # the scheduler restarted: it knows the last run and does not run again within the minute
    again = p.scheduler(clock=lambda: now[0])
    assert again.tick(now[0] - dt.timedelta(seconds=20)) == []


def test_a_transient_failure_is_retried_then_succeeds(pg_db: Any, tmp_path: Path) -> None:
    pg_db.execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2)")
    proxy = Forwarder(5432)  # the source is "down" until the forwarder starts
    url = pg_db.url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    p = project(tmp_path / "p", url, "  load:\n    every: 1h\n    run: true\n    retries: 3\n    retry_backoff: 1s\n",
                "run: {retries: 0}\n")
    scheduler = p.scheduler()
    sleeps: list[float] = []

    def sleep(seconds: float, stop: Any) -> None:  # the first retry waits while the source comes back
        sleeps.append(seconds)
        proxy.start()

    scheduler.runner.sleep = sleep
    try:
        result = scheduler.run_job("load")
    finally:
        proxy.close()
    assert result.ok and result.attempts == 2, result
    assert result.steps[0].transient and "cannot connect" in (result.steps[0].error or "")
    assert 0.75 <= sleeps[0] <= 1.25  # backoff with jitter
    assert p.sql("select count(*) n from bronze.crm_t").to_pylist() == [{"n": 2}]
    assert p.status().jobs[0].recent[0]["status"] == "success"


def test_a_permanent_failure_alerts_once_and_recovers(pg_db: Any, tmp_path: Path) -> None:
    pg_db.execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)")
    with webhook() as hook:
        jobs = "  load:\n    every: 1h\n    run: true\n    retry_backoff: 1s\n"
        alerts = f"alerts:\n  - {{on: [failure], webhook: '{hook.url}'}}\n"
        broken = project(tmp_path / "p", pg_db.url + "_missing", jobs, alerts)
        scheduler = broken.scheduler()
        first = scheduler.run_job("load")
        second = scheduler.run_job("load")
        assert first.status == second.status == "failed" and first.attempts == 1  # terminal: no retry
        assert "does not exist" in (first.error or "")
        assert [p["lakeforge"]["state"] for p in hook.posts] == ["open"]
        fixed = project(tmp_path / "p", pg_db.url, jobs, alerts)
        assert fixed.run_job("load").ok
        assert [p["lakeforge"]["state"] for p in hook.posts] == ["open", "resolved"]
        assert hook.posts[0]["lakeforge"]["incident"] == "failure:job:load"


def test_a_failed_error_check_alerts(pg_db: Any, tmp_path: Path) -> None:
    pg_db.execute("CREATE TABLE t (id int PRIMARY KEY, email text); INSERT INTO t VALUES (1, 'a@x'), (2, NULL)")
    with webhook() as hook:
        p = project(tmp_path / "p", pg_db.url, "  nightly:\n    every: 1d\n    run: true\n    build: true\n",
                    f"alerts:\n  - {{on: [check_error], webhook: '{hook.url}'}}\n")
        models = p.path / "models" / "silver"
        models.mkdir(parents=True)
        (models / "people.sql").write_text(
            "/* lakeforge\nchecks:\n  - {type: not_null, column: email}\n*/\nselect id, email from bronze.crm_t\n")
        result = p.run_job("nightly")
        assert result.status == "failed" and "build" in (result.error or "")
        assert [h["lakeforge"]["incident"] for h in hook.posts] == ["check_error:silver.people.not_null_email"]


def test_sigterm_during_a_run_commits_or_rolls_back_and_metrics_match_history(pg_db: Any, tmp_path: Path) -> None:
    pg_db.execute("CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a SELECT generate_series(1, 5)")
    # a view that takes ~8 s to read (2 ms a row): the run is still reading it when SIGTERM comes
    pg_db.execute("CREATE VIEW slow AS SELECT g AS id FROM generate_series(1, 4000) g "
                  "WHERE pg_sleep(0.002 * (g > 0)::int) IS NOT NULL")
    p = project(tmp_path / "p", pg_db.url + "\n    tables:\n      slow: {}", "  load:\n    every: 1h\n    run: true\n")
    port = free_port()
    serve = subprocess.Popen([sys.executable, "-m", "lakeforge", "serve", "--project", str(p.path),
                              "--metrics-port", str(port), "--log-format", "json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not p.lake.exists("bronze.crm_a") and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # bronze.crm_slow is being read
        serve.send_signal(signal.SIGTERM)
        _, stderr = serve.communicate(timeout=120)
    finally:
        if serve.poll() is None:
            serve.kill()
    assert serve.returncode == 0, stderr
    logs = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert any("stopping" in entry["message"] for entry in logs)
    assert not p.lake.exists("bronze.crm_slow")  # the table in flight rolled back
    run = p.runs()[0]
    assert run["run"]["status"] == "interrupted"
    assert [(t["table"], t["status"]) for t in run["tables"]] == [("bronze.crm_a", "success"),
                                                                 ("bronze.crm_slow", "interrupted")]
    assert p.status().jobs[0].state == "interrupted"

    # restarted: the job runs again at once (its last run was interrupted) and completes; metrics match history
    serve = subprocess.Popen([sys.executable, "-m", "lakeforge", "serve", "--project", str(p.path),
                              "--metrics-port", str(port), "--for", "40"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env={**os.environ})
    try:
        deadline = time.monotonic() + 40
        while not p.lake.exists("bronze.crm_slow") and time.monotonic() < deadline:
            time.sleep(0.3)
        time.sleep(1.0)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        serve.send_signal(signal.SIGTERM)
        serve.communicate(timeout=60)
    finally:
        if serve.poll() is None:
            serve.kill()
    history = p.runs()[0]
    rows = {t["table"]: t["rows"] for t in history["tables"]}
    assert rows == {"bronze.crm_a": 5, "bronze.crm_slow": 4000}
    for table, count in rows.items():
        assert f'lakeforge_table_rows_loaded{{table="{table}"}} {count}' in metrics
    assert 'lakeforge_runs_total{status="success"} 1' in metrics
    assert 'lakeforge_runs_total{status="interrupted"} 1' in metrics


def test_a_follow_job_that_dies_is_restarted_and_alerts_once(pg_db: Any, tmp_path: Path) -> None:
    pg_db.execute("CREATE TABLE t (id int PRIMARY KEY)")  # the local server has wal_level=replica: CDC stops
    with webhook() as hook:
        p = project(tmp_path / "p", pg_db.url + "\n    defaults: {mode: cdc}", "  cdc:\n    follow: [crm]\n",
                    f"alerts:\n  - {{on: [failure], webhook: '{hook.url}'}}\n")
        scheduler = p.scheduler()
        scheduler.tick()
        follower = scheduler.followers["cdc"]
        deadline = time.monotonic() + 30
        while follower.restarts < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        scheduler.stop.set()
        follower.join()
    assert follower.restarts >= 2  # exited, restarted after 2 s, exited again
    assert [h["lakeforge"]["state"] for h in hook.posts] == ["open"]  # one incident, not one per restart
    assert "wal_level" in hook.posts[0]["text"]
