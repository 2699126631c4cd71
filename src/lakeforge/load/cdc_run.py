"""The CDC part of ``Project.run``: stream each source's cdc tables (one thread per source when there are
several, so every source is followed at once), record them in the run history, and with ``follow`` stop
cleanly (commit, acknowledge) on SIGINT/SIGTERM. Also what ``check`` needs before a run: the ``cdc`` extra
and the reader's readiness problems."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import importlib.util
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakeforge.errors import LakeforgeError, MissingExtraError

if TYPE_CHECKING:
    from lakeforge.config.models import MaintenanceConfig, ProjectConfig, RunConfig, SourceBase, TableConfig
    from lakeforge.distributed.extract import DistributedExtractor
    from lakeforge.lake.base import Lake
    from lakeforge.load.batches import Stamp
    from lakeforge.load.progress import Progress
    from lakeforge.load.table import TableResult
    from lakeforge.sources.base import Source, TableRef
    from lakeforge.sources.cdc import Problem
    from lakeforge.state.history import RunHistory

CdcItem = tuple["TableRef", "TableConfig", str]
"""A cdc table: source table, its options, lake name."""

EXTRAS = {"mysql": ("pymysqlreplication", "mysql-replication")}
"""Per source type: the module its log reader imports and the package of the ``cdc`` extra that has it.
PostgreSQL's reader speaks the replication protocol through psycopg 3, a base dependency."""


# -- before a run ---------------------------------------------------------------------------------------
def uses_cdc(config: SourceBase) -> bool:
    """Whether the file sets any table of this source (or its default) to ``mode: cdc``."""
    return config.defaults.mode == "cdc" or any(t.mode == "cdc" for t in config.tables.values())


def missing_extra(config: SourceBase) -> MissingExtraError | None:
    """The error to show when a source has cdc tables but the log reader's package is not installed."""
    kind = getattr(config, "type", "")
    if not uses_cdc(config) or kind not in EXTRAS:
        return None
    module, package = EXTRAS[kind]
    return None if importlib.util.find_spec(module) is not None else MissingExtraError(package, "cdc")


def require_extras(config: ProjectConfig) -> None:
    """Fail before anything is loaded, not in the middle of a run, when the ``cdc`` extra is missing."""
    for cfg in config.sources.values():
        error = missing_extra(cfg)
        if error is not None:
            raise error


def cdc_items(source: Source, config: SourceBase, refs: list[TableRef]) -> list[CdcItem]:
    """The selected tables of ``source`` that are in ``mode: cdc``."""
    from lakeforge.load.plan import plan_source

    return [(p.ref, p.options, p.table) for p in plan_source(source, config, refs) if p.mode == "cdc"]


def readiness(source: Source, items: list[CdcItem]) -> list[Problem]:
    """What keeps the server from CDC for these tables, each with its fix (empty: ready)."""
    from lakeforge.load.cdc import create_reader

    if not items:
        return []
    reader = create_reader(source, [source.describe(ref, options) for ref, options, _ in items])
    try:
        return reader.check()
    finally:
        reader.close()


def slot_warning(source: Source) -> str | None:
    """The reader's warning about the log it holds back (a PostgreSQL slot over ``max_slot_lag_bytes``)."""
    from lakeforge.load.cdc import create_reader

    reader = create_reader(source, [])
    try:
        warning = reader.status().get("warning")
    except LakeforgeError:
        return None  # the load itself reports an unreachable or unready server
    finally:
        reader.close()
    return str(warning) if warning else None


# -- the run --------------------------------------------------------------------------------------------
@dataclass
class CdcWork:
    """One source's cdc tables in a run."""

    source: Source
    items: list[CdcItem]
    stamp: Stamp


@dataclass(frozen=True)
class CdcSettings:
    """What the CDC part of a run needs from the project: the lake and the ``run:`` / ``lake.maintenance``
    settings (the strategy receives them; it does not reach back into the ``Project``)."""

    lake: Lake
    run: RunConfig
    maintenance: MaintenanceConfig
    extractor: DistributedExtractor | None = None
    """The distributed extractor of ``engine:`` (snapshots read in parallel tasks), or None."""


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


def run_cdc(
    settings: CdcSettings,
    work: list[CdcWork],
    progress: Progress,
    history: RunHistory,
    results: list[TableResult],
    warnings: list[str],
    *,
    follow: bool,
    resnapshot: bool,
    stop: threading.Event | None,
) -> None:
    """Stream every source's cdc tables; several sources at once (a thread each, one shared ``stop``), since
    with ``follow`` a source never finishes and the next would never start."""
    stop = stop or threading.Event()
    run_source = functools.partial(
        _run_source,
        settings,
        progress=progress,
        history=history,
        results=results,
        warnings=warnings,
        record=threading.Lock(),  # one writer of the run history and the result list at a time
        follow=follow,
        resnapshot=resnapshot,
        stop=stop,
    )
    with stop_on_signals(stop) if follow else contextlib.nullcontext():
        if len(work) == 1:
            run_source(work[0])
            return
        failures: list[BaseException] = []

        def target(w: CdcWork) -> None:
            try:
                run_source(w)
            except BaseException as exc:  # re-raised in the calling thread below, never lost
                failures.append(exc)
                stop.set()

        threads = [threading.Thread(target=target, args=(w,), name=f"cdc-{w.source.name}") for w in work]
        for thread in threads:
            thread.start()
        try:
            while any(t.is_alive() for t in threads):
                for thread in threads:
                    thread.join(0.2)  # short waits: the main thread keeps handling signals
        except BaseException:
            stop.set()  # e.g. Ctrl-C without --follow: let every source commit what it has, then stop
            for thread in threads:
                thread.join()
            raise
        if failures:
            raise failures[0]


def _run_source(
    settings: CdcSettings,
    work: CdcWork,
    progress: Progress,
    history: RunHistory,
    results: list[TableResult],
    warnings: list[str],
    record: threading.Lock,
    *,
    follow: bool,
    resnapshot: bool,
    stop: threading.Event,
) -> None:
    from lakeforge.load.cdc import load_cdc_source
    from lakeforge.load.context import LoadContext
    from lakeforge.load.table import TableResult
    from lakeforge.state.history import Event

    source, items, stamp = work.source, work.items, work.stamp
    started = dt.datetime.now(dt.UTC)
    for _, _, table in items:
        progress.table_started(table, 0)
    if follow:  # a follower runs for long: warn now; a catch-up run warns after it has acknowledged
        _warn(source, progress, warnings, record)
    ctx = LoadContext(settings.lake, settings.run, stamp, lambda n: None, settings.maintenance, settings.extractor)
    try:
        done = load_cdc_source(ctx, source, items, follow=follow, stop=stop, resnapshot=resnapshot)
    except LakeforgeError as exc:
        done = [
            TableResult(source.name, ref.qualified, table, "cdc", "failed", error=str(exc)) for ref, _, table in items
        ]
    if not follow:
        _warn(source, progress, warnings, record)
    with record:
        for result in done:
            results.append(result)
            progress.table_finished(result)
        ended = dt.datetime.now(dt.UTC)
        history.record(*(Event.of(r, stamp.run_id, started, ended) for r in done), defer=True)
    if any(r.status == "failed" for r in done) and settings.run.on_error == "stop":
        stop.set()


def _warn(source: Source, progress: Progress, warnings: list[str], record: threading.Lock) -> None:
    warning = slot_warning(source)
    if warning:
        with record:
            warnings.append(warning)
            progress.warning(warning)
