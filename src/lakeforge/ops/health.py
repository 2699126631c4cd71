"""What is late or behind: table freshness against ``freshness:`` and CDC lag against the alerts' limit."""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakeforge.config.models import parse_lookback

if TYPE_CHECKING:
    from lakeforge.lake.base import Lake


@dataclass
class Freshness:
    table: str
    last_commit: dt.datetime | None
    age_seconds: float | None
    limit_seconds: float

    @property
    def stale(self) -> bool:
        return self.age_seconds is None or self.age_seconds > self.limit_seconds


def freshness(lake: Lake, rules: dict[str, str | int], now: dt.datetime) -> list[Freshness]:
    """Every lake table a ``freshness`` pattern names (the first pattern that matches sets its limit)."""
    found: list[Freshness] = []
    names = lake.names()
    for pattern, age in rules.items():
        limit = parse_lookback(age)
        matched = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        for name in matched:
            if any(f.table == name for f in found):
                continue
            last = last_commit(lake, name)
            seconds = (now - last).total_seconds() if last else None
            found.append(Freshness(name, last, seconds, limit))
    return found


def last_commit(lake: Lake, name: str) -> dt.datetime | None:
    info = lake.info(name)
    return dt.datetime.fromisoformat(info.last_load) if info.last_load else None


def cdc_lags(statuses: Iterable[Any]) -> dict[str, float]:
    """Lake table -> seconds behind its source, from ``Project.cdc_status()``."""
    return {t.table: float(t.lag_seconds) for s in statuses for t in s.tables if t.lag_seconds is not None}


def failed_checks(build_output: Any) -> list[tuple[str, str]]:
    """``(model.check, message)`` of each check of severity error that failed, from ``build --output json``."""
    failed = []
    for model in (build_output or {}).get("models", []) if isinstance(build_output, dict) else []:
        for check in model.get("checks", []):
            if check.get("severity") == "error" and check.get("status") in ("fail", "error"):
                failed.append((f"{model['model']}.{check['check']}", str(check.get("message", ""))))
    return failed


CdcStatus = Callable[[], list[Any]]
