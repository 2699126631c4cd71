"""Operating CDC between runs: how far each lake table is behind its source's log (``lakeforge cdc status``)
and dropping a PostgreSQL slot that is no longer wanted (``lakeforge cdc drop-slot``).

Lag is measured from what the lake has committed: each cdc table's checkpoint holds the log position and the
source commit time of the last change it applied (see load/cdc.py). A table is *caught up* when that position
has reached the server's current one; otherwise its lag in seconds is the time since that last applied source
commit (an upper bound: the server's log may have moved on with changes to other tables only), and for
PostgreSQL its lag in bytes is the WAL written since.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakeforge.errors import ConfigError, LakeforgeError

if TYPE_CHECKING:
    from lakeforge.lake.base import Lake
    from lakeforge.load.cdc_run import CdcItem
    from lakeforge.sources.base import Source


@dataclass
class CdcTableStatus:
    table: str
    """Current-state lake table; its change log is ``<table>_changes``."""
    source_table: str
    position: str | None = None
    """The log position the lake has committed (LSN, GTID), None before the first load."""
    position_value: int | None = None
    source_commit_time: dt.datetime | None = None
    """Source commit time of the last change applied (after a snapshot only: when the snapshot was
    committed to the lake)."""
    lake_commit_time: dt.datetime | None = None
    """When the lake table last committed."""
    rows: int | None = None
    caught_up: bool | None = None
    lag_seconds: float | None = None
    lag_bytes: int | None = None
    """PostgreSQL: WAL bytes between the committed position and the server's current LSN."""


@dataclass
class CdcSourceStatus:
    source: str
    type: str
    log: dict[str, Any] = field(default_factory=dict)
    """What the server says: slot (PostgreSQL) or binlog (MySQL/MariaDB) position, lag, retention."""
    tables: list[CdcTableStatus] = field(default_factory=list)
    warning: str | None = None
    error: str | None = None
    """The server could not be asked (the lake positions are still shown)."""


def source_status(lake: Lake, source: Source, items: list[CdcItem]) -> CdcSourceStatus:
    from lakeforge.load.cdc import create_reader

    status = CdcSourceStatus(source.name, source.type_name)
    reader = create_reader(source, [])
    try:
        status.log = reader.status()
    except LakeforgeError as exc:
        status.error = str(exc)
    finally:
        reader.close()
    status.warning = status.log.get("warning")
    current, in_bytes = _server_position(status.log)
    now = dt.datetime.now(dt.UTC)
    for ref, _, name in items:
        status.tables.append(_table_status(lake, name, ref.qualified, current, in_bytes, now))
    return status


def _server_position(log: dict[str, Any]) -> tuple[int | None, bool]:
    """The server's current log position as a value comparable with the lake's, and whether it counts bytes."""
    if log.get("current_lsn"):
        from lakeforge.sources.postgres.pgoutput import lsn_value

        return lsn_value(str(log["current_lsn"])), True
    if log.get("gtid_binlog_pos"):
        from lakeforge.sources.mysql.binlog import gtid_position

        return gtid_position(str(log["gtid_binlog_pos"])).value, False
    return None, False


def _table_status(
    lake: Lake, name: str, source_table: str, current: int | None, in_bytes: bool, now: dt.datetime
) -> CdcTableStatus:
    from lakeforge.load.cdc_apply import changes_name

    status = CdcTableStatus(name, source_table)
    positions = [
        cp.position
        for cp in (lake.checkpoint(name), lake.checkpoint(changes_name(name)))
        if cp is not None and cp.mode == "cdc" and "value" in cp.position
    ]
    if not positions or not lake.exists(name):
        return status
    position = min(positions, key=lambda p: int(p["value"]))  # where the table resumes from
    status.position, status.position_value = str(position.get("text", "")), int(position["value"])
    info = lake.info(name)
    status.rows = info.rows
    status.lake_commit_time = dt.datetime.fromisoformat(info.last_load) if info.last_load else None
    committed = position.get("commit_time")
    status.source_commit_time = dt.datetime.fromisoformat(committed) if committed else status.lake_commit_time
    if current is None:
        return status
    status.caught_up = status.position_value >= current
    if in_bytes:
        status.lag_bytes = max(current - status.position_value, 0)
    if status.caught_up:
        status.lag_seconds = 0.0
    elif status.source_commit_time is not None:
        status.lag_seconds = round(max((now - status.source_commit_time).total_seconds(), 0.0), 3)
    return status


def drop_slot(source: Source) -> tuple[str, bool]:
    """Drop the source's replication slot; returns its name and whether it existed. Refused while a consumer
    holds it (the reader raises, naming the process)."""
    from lakeforge.load.cdc import create_reader

    reader = create_reader(source, [])
    try:
        drop = getattr(reader, "drop_slot", None)
        if drop is None:
            raise ConfigError(
                f"source '{source.name}' ({source.type_name}) has no replication slot to drop: "
                f"its {reader.LOG_NAME} reader holds nothing on the server (only PostgreSQL "
                "sources have a slot)"
            )
        return str(getattr(reader, "slot", "")), bool(drop())
    finally:
        reader.close()
