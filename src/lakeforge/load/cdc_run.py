"""The CDC part of ``Project.run``: stream one source's cdc tables, record them in the run history, and with
``follow`` stop cleanly (commit, acknowledge) on SIGINT/SIGTERM."""

from __future__ import annotations

import contextlib
import datetime as dt
import signal
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from lakeforge.errors import LakeforgeError

if TYPE_CHECKING:
    from lakeforge.load.batches import Stamp
    from lakeforge.load.table import TableResult
    from lakeforge.project import Progress, Project
    from lakeforge.sources.base import Source
    from lakeforge.state.history import RunHistory


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Set ``stop`` on SIGINT/SIGTERM (main thread only); restore the old handlers afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_cdc(project: Project, source: Source, items: list[Any], stamp: Stamp, progress: Progress,
            history: RunHistory, results: list[TableResult], errors: list[str], *, follow: bool,
            resnapshot: bool, stop: threading.Event | None) -> bool:
    """Returns True when the run must stop (a failure with ``on_error: stop``)."""
    from lakeforge.load.cdc import load_cdc_source
    from lakeforge.load.context import LoadContext
    from lakeforge.load.table import TableResult
    from lakeforge.state.history import Event

    stop = stop or threading.Event()
    started = dt.datetime.now(dt.UTC)
    for _, _, table in items:
        progress.table_started(table, 0)
    ctx = LoadContext(project.lake, project.config.run, stamp, lambda n: None)
    try:
        with stop_on_signals(stop) if follow else contextlib.nullcontext():
            done = load_cdc_source(ctx, source, items, follow=follow, stop=stop, resnapshot=resnapshot)
    except LakeforgeError as exc:
        done = [TableResult(source.name, ref.qualified, table, "cdc", "failed", error=str(exc))
                for ref, _, table in items]
    for result in done:
        results.append(result)
        progress.table_finished(result)
        history.record(Event(stamp.run_id, result.table, result.status, started, dt.datetime.now(dt.UTC),
                             source.name, result.source_table, "cdc", result.rows, round(result.seconds, 3),
                             result.delta_version, result.error))
    return any(r.status == "failed" for r in done) and project.config.run.on_error == "stop"
