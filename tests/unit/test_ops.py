"""Schedules, missed runs, config errors, alerts and metrics without database servers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from lakeforge import Project
from lakeforge.config.ops import AlertConfig, EmailConfig, JobConfig
from lakeforge.errors import ConfigError
from lakeforge.lake.delta import DeltaLake
from lakeforge.ops.alerts import Alerter
from lakeforge.ops.metrics import render
from lakeforge.ops.schedule import Schedule
from lakeforge.state.history import RunHistory
from tests.conftest import write_project
from tests.receivers import smtp_server, webhook

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(UTC)


def test_cron_in_the_project_time_zone_across_dst() -> None:
    daily = Schedule(JobConfig(schedule="30 2 * * *", run=True), "Europe/Paris")
    fires, moment = [], at("2026-10-23T12:00:00+00:00")
    for _ in range(3):  # 02:30 Paris is 00:30 UTC in summer, 01:30 UTC in winter; on 25 October it occurs twice
        moment = daily.next_after(moment)
        fires.append(moment)
    assert fires == [at("2026-10-24T00:30:00+00:00"), at("2026-10-25T00:30:00+00:00"), at("2026-10-26T01:30:00+00:00")]
    spring = daily.next_after(at("2026-03-28T12:00:00+00:00"))  # 02:30 does not exist on 29 March
    assert spring == at("2026-03-29T01:00:00+00:00")  # 03:00 CEST, the first minute after the gap
    hourly = Schedule(JobConfig(schedule="0 * * * *", run=True), "Europe/Paris")
    fires, moment = [], at("2026-10-24T23:30:00+00:00")
    for _ in range(4):  # the night clocks go back: 02:00 CEST and 02:00 CET are two distinct hours
        moment = hourly.next_after(moment)
        fires.append(moment)
    assert fires == [at(f"2026-10-25T0{h}:00:00+00:00") for h in range(4)]
    assert len(set(fires)) == 4


def test_missed_runs_catch_up_once_or_skip() -> None:
    hourly = JobConfig(schedule="0 * * * *", run=True)
    schedule = Schedule(hourly, "UTC")
    last, started = at("2026-12-01T08:00:00+00:00"), at("2026-12-01T11:20:00+00:00")  # down 09:00-11:20
    assert schedule.due(last, started, catch_up=True, started=started)  # 09:00 missed: once now
    assert not schedule.due(last, started, catch_up=False, started=started)
    assert schedule.due(last, at("2026-12-01T12:00:00+00:00"), catch_up=False, started=started)
    after_catch_up = started
    assert not schedule.due(after_catch_up, at("2026-12-01T11:59:00+00:00"), catch_up=True, started=started)
    every = Schedule(JobConfig(every="15m", run=True), "UTC")
    assert every.due(None, started, catch_up=False, started=started)
    assert not every.due(started, started + dt.timedelta(minutes=14), catch_up=False, started=started)
    assert every.due(started, started + dt.timedelta(minutes=15), catch_up=False, started=started)


def test_bad_job_config_names_the_key(tmp_path: Path) -> None:
    write_project(tmp_path, """\
        sources:
          crm: {type: postgres, url: "postgresql://u@127.0.0.1:5432/d"}
        jobs:
          hourly: {schedule: "0 * * *", run: true}
        """)
    with pytest.raises(ConfigError, match=r"jobs\.hourly\.schedule: .*'0 \* \* \*' is not a cron expression"):
        _ = Project(tmp_path).config
    write_project(tmp_path, """\
        sources:
          crm: {type: postgres, url: "postgresql://u@127.0.0.1:5432/d"}
        jobs:
          hourly: {schedule: "0 * * * *", run: {sources: [crn]}}
        """)
    with pytest.raises(ConfigError, match=r"jobs.hourly.run.sources: no source crn; sources: crm"):
        _ = Project(tmp_path).config
    write_project(tmp_path, """\
        jobs:
          hourly: {every: 1h, run: true}
        """)
    with pytest.raises(ConfigError, match=r"no job 'hourli' \(did you mean 'hourly'\?\); jobs: hourly"):
        Project(tmp_path).run_job("hourli")


def test_one_alert_per_incident_a_recovery_and_no_secret(tmp_path: Path) -> None:
    history = RunHistory(DeltaLake(tmp_path / "lake"))
    with webhook() as hook, smtp_server() as (port, mails):
        alerts = [AlertConfig(webhook=hook.url, on=["failure"]),
                  AlertConfig(email=EmailConfig.model_validate({"to": "data@example.com",
                                                                "smtp": {"port": port}}), on=["failure"])]
        alerter = Alerter(alerts, history, "proj", secrets=["hunter2"])
        alerter.raise_("failure", "job:hourly", "password hunter2 rejected")
        alerter.raise_("failure", "job:hourly", "again")  # still open: no second message
        assert [p["lakeforge"]["state"] for p in hook.posts] == ["open"]
        assert "hunter2" not in str(hook.posts) and "***" in hook.posts[0]["text"]
        # a restarted scheduler knows the incident is open
        again = Alerter(alerts, RunHistory(DeltaLake(tmp_path / "lake")), "proj")
        again.raise_("failure", "job:hourly", "still failing")
        assert len(hook.posts) == 1
        again.clear("failure", "job:hourly", "job hourly succeeded again")
        assert [p["lakeforge"]["state"] for p in hook.posts] == ["open", "resolved"]
        assert len(mails) == 2 and "hunter2" not in mails[0].content.decode()
        assert mails[1].rcpt_tos == ["data@example.com"]


def test_an_alert_target_that_is_down_is_retried(tmp_path: Path) -> None:
    history = RunHistory(DeltaLake(tmp_path / "lake"))
    with webhook(status=503) as hook:
        alerter = Alerter([AlertConfig(webhook=hook.url)], history, "proj")
        alerter.raise_("stale", "gold.x", "gold.x is 3 h old")
        assert hook.posts == [] and len(alerter.pending) == 1 and "503" in (alerter.pending[0].error or "")
        hook.status = 200
        alerter.flush()
        assert len(hook.posts) == 1 and alerter.pending == []


def test_metrics_text() -> None:
    now = at("2026-12-01T12:00:00+00:00")
    events = [
        {"run_id": "r1", "table": "*", "status": "success", "started_at": now, "recorded_at": now, "rows": 5,
         "seconds": 1.5},
        {"run_id": "r1", "table": "bronze.t", "status": "success", "started_at": now, "recorded_at": now,
         "rows": 5, "seconds": 1.2},
        {"run_id": "j1", "table": "job:hourly", "status": "failed", "started_at": now, "recorded_at": now,
         "rows": None, "seconds": 3.0},
    ]
    text = render(events, {"bronze.t": 60.0}, {"bronze.c": 2.5}, now)
    assert 'lakeforge_runs_total{status="success"} 1' in text
    assert 'lakeforge_table_rows_loaded{table="bronze.t"} 5' in text
    assert 'lakeforge_table_freshness_seconds{table="bronze.t"} 60' in text
    assert 'lakeforge_cdc_lag_seconds{table="bronze.c"} 2.5' in text
    assert 'lakeforge_job_last_run_seconds{job="hourly",status="failed"} 3' in text
