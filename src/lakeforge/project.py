"""The Python API. The CLI only calls this.

>>> project = Project("demo")              # folder holding lakeforge.yml
>>> result = project.run()                 # load every selected table into the lake
>>> project.sql("select count(*) from bronze.crm_customers")
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import functools
import secrets
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeforge.config.loader import CONFIG_FILE, load_config
from lakeforge.config.models import ProjectConfig
from lakeforge.errors import LakeforgeError
from lakeforge.load.progress import Progress

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from lakeforge.distributed.extract import DistributedExtractor
    from lakeforge.engines.base import ModelEngine
    from lakeforge.lake.base import Lake, MaintainResult, TableInfo
    from lakeforge.load.cdc_ops import CdcSourceStatus
    from lakeforge.load.cdc_run import CdcItem
    from lakeforge.load.plan import PlannedTable
    from lakeforge.load.table import TableResult
    from lakeforge.ops.runner import JobResult
    from lakeforge.ops.scheduler import Scheduler
    from lakeforge.ops.status import Status
    from lakeforge.serve.pgwire.server import EndpointServer
    from lakeforge.serve.publish import PublishedTable
    from lakeforge.serve.web.app import WebApp
    from lakeforge.sources.base import Source
    from lakeforge.sources.cdc import Problem
    from lakeforge.transform.build import BuildResult
    from lakeforge.transform.export import ExportResult
    from lakeforge.transform.graph import Graph
    from lakeforge.transform.lineage import Lineage


@dataclass
class SourceCheck:
    source: str
    type: str
    ok: bool
    detail: dict[str, str] = field(default_factory=dict)
    tables: int = 0
    error: str | None = None
    problems: list[Problem] = field(default_factory=list)
    """Why the server is not ready for the source's cdc tables, each with its fix."""


@dataclass
class RunResult:
    run_id: str
    status: str
    tables: list[TableResult]
    errors: list[str] = field(default_factory=list)
    """Source-level failures (unreachable database, missing table) that stopped a whole source."""
    warnings: list[str] = field(default_factory=list)
    """Things to look at that did not fail the run (a replication slot holding back too much WAL)."""
    transient: bool = False
    """The run failed, and every failure may pass by itself (a source down, a connection reset)."""

    @property
    def ok(self) -> bool:
        return self.status == "success"


def new_run_id() -> str:
    now = dt.datetime.now(dt.UTC)
    return now.strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)


class Project:
    """A lakeforge project: a folder with ``lakeforge.yml`` (and ``models/``)."""

    def __init__(self, path: str | Path = ".", *, config: ProjectConfig | None = None) -> None:
        self.path = Path(path).resolve()
        self._config = config

    # -- configuration ------------------------------------------------------------------------------
    @property
    def config(self) -> ProjectConfig:
        if self._config is None:
            self._config = load_config(self.path)
        return self._config

    @classmethod
    def init(cls, path: str | Path, sources: dict[str, str] | list[str], *, force: bool = False) -> Project:
        """Write ``lakeforge.yml`` (every table of each source, full mode), ``.env.example`` and, when a URL
        holds a password, ``.env`` with it. ``sources``: ``{name: url}`` or ``["name=url", ...]`` (a name
        given twice is an error)."""
        from lakeforge.config.init_file import parse_source_args, write_project

        args = sources if isinstance(sources, list) else [f"{n}={u}" for n, u in sources.items()]
        write_project(Path(path), parse_source_args(args), force=force)
        return cls(path)

    @cached_property
    def lake(self) -> Lake:
        """The lakehouse, in the table format of ``lake.format`` (Delta or Iceberg), local or on S3."""
        from lakeforge.lake import open_lake

        return open_lake(self.config.lake, self.path)

    @cached_property
    def extractor(self) -> DistributedExtractor | None:
        """``engine: {type: ray}``: the driver of distributed full loads (None: one process)."""
        from lakeforge.distributed.engine import extractor_for

        return extractor_for(self.config.engine)

    def source(self, name: str) -> Source:
        from lakeforge.errors import ConfigError
        from lakeforge.sources import create_source

        if name not in self.config.sources:
            valid = ", ".join(self.config.sources) or "(none configured)"
            raise ConfigError(f"{self.path / CONFIG_FILE}: no source '{name}'; sources: {valid}")
        return create_source(name, self.config.sources[name], self.path)

    # -- commands -----------------------------------------------------------------------------------
    def check(self) -> list[SourceCheck]:
        """Validate the configuration and connect to every source; for cdc tables, check the server is ready
        for CDC (each problem with its fix)."""
        from lakeforge.load.cdc_run import cdc_items, missing_extra, readiness
        from lakeforge.load.plan import check_collisions, plan_source
        from lakeforge.selection import select_tables

        results = []
        planned: list[PlannedTable] = []
        for name, cfg in self.config.sources.items():
            missing = missing_extra(cfg)
            if missing is not None:
                results.append(SourceCheck(name, cfg.type, False, error=f"source '{name}': {missing}"))
                continue
            source = self.source(name)
            try:
                detail = source.check()
                tables = select_tables(name, cfg, source.list_tables())
                planned += plan_source(source, cfg, tables)
                problems = readiness(source, cdc_items(source, cfg, tables))
                results.append(SourceCheck(name, cfg.type, not problems, detail, len(tables), problems=problems))
            except LakeforgeError as exc:
                results.append(SourceCheck(name, cfg.type, False, error=str(exc)))
            finally:
                source.close()
        try:
            check_collisions(planned)
        except LakeforgeError as exc:
            results.append(SourceCheck("*", "lake names", False, error=str(exc)))
        return results

    def run(
        self,
        *,
        select: list[str] | None = None,
        progress: Progress | None = None,
        follow: bool = False,
        resnapshot: bool = False,
        stop: Any = None,
        allow_empty: bool = False,
    ) -> RunResult:
        """Load every selected table into the lake (each table in one atomic commit).

        The run is planned first: every source is listed, and a lake name two source tables share, or a
        ``select`` that matches nothing (unless ``allow_empty``), stops the run before anything is written.
        ``mode: cdc`` tables are streamed after the other tables, every source at once; ``follow`` keeps
        applying changes until SIGINT/SIGTERM (or ``stop``, a ``threading.Event``, is set), then commits what
        it has and returns; ``resnapshot`` reloads the cdc tables whose changes the log no longer holds."""
        from lakeforge.load.batches import Stamp
        from lakeforge.load.cdc_run import CdcSettings, CdcWork, require_extras, run_cdc
        from lakeforge.state.history import RUN_ROW, Event, RunHistory
        from lakeforge.state.lock import lake_lock

        progress = progress or Progress()
        require_extras(self.config)
        with lake_lock(self.lake, "run"):
            sources, planned, errors = self._plan()
            try:
                chosen = self._choose(planned, select, allow_empty=allow_empty, failed=bool(errors))
                run_id = new_run_id()
                started = dt.datetime.now(dt.UTC)
                history = RunHistory(self.lake)
                history.record(Event(run_id, RUN_ROW, "running", started))
                results: list[TableResult] = []
                warnings: list[str] = []
                halt = bool(errors) and self.config.run.on_error == "stop"
                cdc_work: list[CdcWork] = []
                try:
                    for name, source in [] if halt else sources.items():
                        mine = [p for p in chosen if p.source == name]
                        stamp = Stamp(name, run_id, dt.datetime.now(dt.UTC))
                        halt = self._load_tables(
                            source,
                            [p for p in mine if p.mode != "cdc"],
                            stamp,
                            history,
                            results,
                            progress,
                            follow=follow,
                            stop=stop,
                        )
                        cdc_items = [(p.ref, p.options, p.table) for p in mine if p.mode == "cdc"]
                        if cdc_items and not halt:
                            cdc_work.append(CdcWork(source, cdc_items, stamp))
                        if halt:
                            break
                    if cdc_work and not halt:
                        run_cdc(
                            CdcSettings(self.lake, self.config.run, self.config.lake.maintenance, self.extractor),
                            cdc_work,
                            progress,
                            history,
                            results,
                            warnings,
                            follow=follow,
                            resnapshot=resnapshot,
                            stop=stop,
                        )
                except BaseException as exc:  # Ctrl-C: what was committed is in the history, then the run
                    history.record(
                        Event(
                            run_id,
                            RUN_ROW,
                            _ended(exc),
                            started,
                            dt.datetime.now(dt.UTC),
                            rows=sum(r.rows for r in results),
                            error=_interruption(exc),
                        )
                    )
                    raise
            finally:
                for source in sources.values():
                    source.close()
            failed = errors or any(r.status == "failed" for r in results)
            status = "failed" if failed else "success"
            total = sum(r.rows for r in results)
            history.record(
                Event(
                    run_id,
                    RUN_ROW,
                    status,
                    started,
                    dt.datetime.now(dt.UTC),
                    rows=total,
                    seconds=round((dt.datetime.now(dt.UTC) - started).total_seconds(), 3),
                    error="; ".join(str(e) for e in errors) or None,
                )
            )
            failures = [r.transient for r in results if r.status == "failed"] + [e.transient for e in errors]
            transient = bool(failures) and all(failures)
            return RunResult(run_id, status, results, [str(e) for e in errors], warnings, transient)

    def plan(self) -> list[PlannedTable]:
        """The lake table each selected source table becomes (what ``run`` would load); raises when a source
        cannot be listed or two source tables would share a lake table."""
        sources, planned, errors = self._plan()
        for source in sources.values():
            source.close()
        if errors:
            raise LakeforgeError("cannot plan the tables to load: " + "; ".join(str(e) for e in errors))
        return planned

    def _plan(self) -> tuple[dict[str, Source], list[PlannedTable], list[LakeforgeError]]:
        """Every configured source (open), the lake table each selected source table becomes, and the
        sources that could not be listed; two source tables with one lake name raise ConfigError here."""
        from lakeforge.load.plan import check_collisions, plan_source
        from lakeforge.selection import select_tables

        sources: dict[str, Source] = {}
        planned: list[PlannedTable] = []
        errors: list[LakeforgeError] = []
        try:
            for name, cfg in self.config.sources.items():
                source = self.source(name)
                try:
                    refs = select_tables(name, cfg, source.list_tables())
                except LakeforgeError as exc:
                    errors.append(exc)
                    source.close()
                    continue
                sources[name] = source
                planned += plan_source(source, cfg, refs)
            check_collisions(planned)
        except BaseException:
            for source in sources.values():
                source.close()
            raise
        return sources, planned, errors

    @staticmethod
    def _choose(
        planned: list[PlannedTable], select: list[str] | None, *, allow_empty: bool, failed: bool
    ) -> list[PlannedTable]:
        from lakeforge.load.plan import apply_select

        # a source that could not be listed fails the run on its own: no second error for an empty plan
        return apply_select(planned, select, allow_empty=allow_empty or failed)

    def _load_tables(
        self,
        source: Source,
        items: list[PlannedTable],
        stamp: Any,
        history: Any,
        results: list[TableResult],
        progress: Progress,
        *,
        follow: bool = False,
        stop: Any = None,
    ) -> bool:
        """Load ``items`` of one source in turn, recording each in the history; True: stop the run. With
        ``follow``, a stream source's table keeps reading until SIGINT/SIGTERM or ``stop`` (tables of one
        source are followed one after the other)."""
        import contextlib
        import threading

        from lakeforge.load.cdc_run import stop_on_signals

        streaming = follow and source.SUPPORTS_STREAM
        stop = stop or (threading.Event() if streaming else None)
        with stop_on_signals(stop) if streaming else contextlib.nullcontext():
            return self._load_each(source, items, stamp, history, results, progress, follow=streaming, stop=stop)

    def _load_each(
        self,
        source: Source,
        items: list[PlannedTable],
        stamp: Any,
        history: Any,
        results: list[TableResult],
        progress: Progress,
        *,
        follow: bool,
        stop: Any,
    ) -> bool:
        from lakeforge import interrupt
        from lakeforge.load.context import LoadContext
        from lakeforge.load.table import load_table, record_interrupted
        from lakeforge.state.history import Event

        for item in items:
            progress.table_started(item.table, 0)
            ctx = LoadContext(
                self.lake,
                self.config.run,
                stamp,
                functools.partial(_rows, progress, item.table),
                self.config.lake.maintenance,
                extractor=self.extractor,
                follow=follow,
                stop=stop,
            )
            table_started = dt.datetime.now(dt.UTC)
            try:
                result = load_table(ctx, source, item)
            except BaseException as exc:
                landed = record_interrupted(self.lake, item, stamp.run_id, _interruption(exc))
                if landed is not None:
                    results.append(landed)
                    history.record(Event.of(landed, stamp.run_id, table_started, dt.datetime.now(dt.UTC)))
                raise
            results.append(result)
            progress.table_finished(result)
            history.record(Event.of(result, stamp.run_id, table_started, dt.datetime.now(dt.UTC)), defer=True)
            if interrupt.requested.is_set():
                raise KeyboardInterrupt  # recorded as an interrupted run by run()
            if result.status == "failed" and self.config.run.on_error == "stop":
                return True
        return False

    # -- change data capture (lakeforge.load.cdc_run, lakeforge.load.cdc_ops) ------------------------------
    def cdc_status(self, source: str | None = None) -> list[CdcSourceStatus]:
        """Per cdc source (or just ``source``): the server's slot / binlog position, and per table the position
        the lake has committed and how far behind the server it is, in seconds and (PostgreSQL) bytes."""
        from lakeforge.load.cdc_ops import source_status
        from lakeforge.load.cdc_run import uses_cdc

        names = [source] if source else [n for n, cfg in self.config.sources.items() if uses_cdc(cfg)]
        statuses = []
        for name in names:
            src = self.source(name)
            try:
                statuses.append(source_status(self.lake, src, self._cdc_tables(src)))
            finally:
                src.close()
        return statuses

    def drop_slot(self, source: str) -> tuple[str, bool]:
        """Drop ``source``'s PostgreSQL replication slot (name, whether it existed); refused while in use.
        Its cdc tables then need ``resnapshot`` to go on."""
        from lakeforge.load.cdc_ops import drop_slot

        src = self.source(source)
        try:
            return drop_slot(src)
        finally:
            src.close()

    def resnapshot(
        self, source: str, *, tables: list[str] | None = None, progress: Progress | None = None
    ) -> RunResult:
        """Run ``source``'s cdc tables (or those matching ``tables``), re-snapshotting the ones whose changes
        the log no longer holds (dropped or lost slot, purged binlog); the others just catch up."""
        from lakeforge.errors import ConfigError

        src = self.source(source)
        try:
            items = self._cdc_tables(src)
        finally:
            src.close()
        if tables:
            items = [
                (ref, options, name)
                for ref, options, name in items
                if any(
                    fnmatch.fnmatchcase(c, p)
                    for p in tables
                    for c in (name, name.partition(".")[2], ref.name, ref.qualified)
                )
            ]
        if not items:
            wanted = f" matching {', '.join(tables)}" if tables else ""
            raise ConfigError(f"{self.path / CONFIG_FILE}: source '{source}' has no mode: cdc tables{wanted}")
        return self.run(select=[name for _, _, name in items], progress=progress, resnapshot=True)

    def _cdc_tables(self, source: Source) -> list[CdcItem]:
        from lakeforge.load.cdc_run import cdc_items
        from lakeforge.selection import select_tables

        cfg = self.config.sources[source.name]
        return cdc_items(source, cfg, select_tables(source.name, cfg, source.list_tables()))

    def quarantine(self, tables: list[str] | None = None, *, limit: int = 100) -> list[dict[str, Any]]:
        """The newest bad records of record sources (source, file and line or partition and offset, reason,
        raw text, run id), from the ``quarantine.*`` tables matching ``tables`` (globs; all by default)."""
        from lakeforge.load.quarantine import read_quarantine

        return read_quarantine(self.lake, tables, limit)

    def tables(self, layers: list[str] | None = None) -> list[TableInfo]:
        return [self.lake.info(name) for name in self.lake.names(layers)]

    def maintain(self, tables: list[str] | None = None) -> list[MaintainResult]:
        """Compact, tidy and vacuum lake tables (all, or those matching the ``tables`` globs) per
        ``lake.maintenance``; each result reports data files and bytes before and after. lakeforge's own tables
        (``_lakeforge.*``: run history, transform state) come last: a Delta one gains a small file per event;
        an Iceberg one also trims itself as it grows (lake/iceberg/trim.py). Takes the maintenance lock, not the
        run lock: it may run beside a run, committing optimistically (lake/maintenance.py)."""
        from lakeforge.lake.base import INTERNAL
        from lakeforge.lake.maintenance import maintain_table
        from lakeforge.state.lock import lake_lock

        names = self.lake.names() + self.lake.names([INTERNAL])
        if tables:
            names = [n for n in names if any(fnmatch.fnmatchcase(c, p) for p in tables for c in (n, n.split(".")[1]))]
        cfg = self.config.lake.maintenance
        size = cfg.target_file_mb * 2**20
        with lake_lock(self.lake, "maintain"):
            return [
                maintain_table(self.lake, n, retain_seconds=cfg.retain_seconds, target_file_size=size) for n in names
            ]

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        from lakeforge.state.history import RunHistory

        return RunHistory(self.lake).latest(limit=limit, lock_free=not self._locked())

    def _locked(self) -> bool:
        from lakeforge.state.lock import is_locked

        return is_locked(self.lake, "run")

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with every lake table as a view ``layer.table``."""
        from lakeforge.engines.duckdb import connect

        return connect(self.lake)

    def sql(self, query: str) -> pa.Table:
        """Run SQL over the lake with DuckDB and return an Arrow table."""
        from lakeforge.engines.duckdb import run_sql

        return run_sql(self.lake, query)

    # -- transforms (lakeforge.transform) -----------------------------------------------------------
    def build(
        self, *, select: list[str] | None = None, as_of: dt.datetime | None = None, full_refresh: bool = False
    ) -> BuildResult:
        """Run the models in dependency order, each followed by its data-quality checks."""
        from lakeforge.transform.build import build, source_counter

        return build(
            self.lake,
            self._graph(),
            count_source=source_counter(self.source),
            select=select,
            as_of=as_of,
            full_refresh=full_refresh,
            engine=self._model_engine(),
        )

    def _model_engine(self) -> ModelEngine | None:
        """``engine.transforms``: where SQL models run (None: DuckDB)."""
        from lakeforge.config.engine import RayEngine
        from lakeforge.engines.base import model_engine

        engine = self.config.engine
        address = engine.address if isinstance(engine, RayEngine) else None
        return model_engine(engine.transforms, ray_address=address, fallback=engine.fallback)

    def _graph(self) -> Graph:
        from lakeforge.transform.build import load_graph

        return load_graph(self.path / self.config.models_path, self.lake)

    def checks(self) -> list[dict[str, Any]]:
        """The newest result of every data-quality check."""
        from lakeforge.transform.state import latest_checks

        return latest_checks(self.lake)

    def lineage(self, table: str | None = None) -> Lineage:
        """Table-level lineage parsed from the models: of one table, or (table=None) every edge."""
        from lakeforge.transform.lineage import lineage

        return lineage(self._graph(), table)

    def export(
        self,
        model: str | None = None,
        *,
        to: str | Path | None = None,
        as_of: dt.datetime | None = None,
        from_manifest: str | Path | None = None,
    ) -> ExportResult:
        """Write a model's rows (as of a date) to Parquet with a manifest of the Delta versions read."""
        from lakeforge.transform.export import export

        return export(self.lake, self._graph, model, to=to, as_of=as_of, from_manifest=from_manifest)

    # -- operations (lakeforge.ops) ---------------------------------------------------------------------
    def scheduler(self, **kwargs: Any) -> Scheduler:
        """The scheduler of this project's ``jobs`` (``lakeforge serve``); ``kwargs`` go to ``Scheduler``."""
        from lakeforge.ops.scheduler import Scheduler

        return Scheduler(
            self.path, self.config, self.lake, secrets_=self.secret_values(), cdc_status=self.cdc_status, **kwargs
        )

    def run_job(self, name: str) -> JobResult:
        """Run one job now (its steps, retries and alerts as the scheduler would)."""
        self.job(name)
        return self.scheduler().run_job(name)

    def job(self, name: str) -> Any:
        import difflib

        from lakeforge.errors import ConfigError

        if name not in self.config.jobs:
            close = difflib.get_close_matches(name, list(self.config.jobs), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            valid = ", ".join(self.config.jobs) or "(none configured)"
            raise ConfigError(f"{self.path / CONFIG_FILE}: no job '{name}'{hint}; jobs: {valid}")
        return self.config.jobs[name]

    def status(self) -> Status:
        """Jobs (last and next runs), late tables and open incidents."""
        from lakeforge.ops.status import status

        return status(self.config, self.lake, dt.datetime.now(dt.UTC))

    def secret_values(self) -> list[str]:
        """Every secret of the configuration (passwords, webhook URLs), to scrub from messages."""
        from pydantic import BaseModel, SecretStr

        found: list[str] = []

        def walk(value: Any) -> None:
            if isinstance(value, SecretStr):
                found.append(value.get_secret_value())
            elif isinstance(value, BaseModel):
                for item in value.__dict__.values():
                    walk(item)
            elif isinstance(value, dict | list | tuple):
                for item in value.values() if isinstance(value, dict) else value:
                    walk(item)

        walk(self.config)
        return [s for s in found if s]

    # -- serving (lakeforge.serve) -----------------------------------------------------------------------
    def publish(
        self, target: str | None = None, *, tables: list[str] | None = None, force: bool = False
    ) -> list[PublishedTable]:
        """Publish lake tables into the ``publish:`` targets (or ``target``); unchanged ones skip unless ``force``."""
        from lakeforge.errors import ConfigError
        from lakeforge.serve.hints import model_hints
        from lakeforge.serve.publish import publish_target

        targets = self.config.publish
        if target is not None and target not in targets:
            valid = ", ".join(targets) or "(none configured)"
            raise ConfigError(f"{self.path / CONFIG_FILE}: no publish target '{target}'; targets: {valid}")
        hints = model_hints(self.path / self.config.models_path)
        results: list[PublishedTable] = []
        for name in [target] if target else list(targets):
            results += publish_target(name, targets[name], self.lake, hints=hints, tables=tables, force=force)
        return results

    def serve_sql(self, *, host: str | None = None, port: int | None = None) -> EndpointServer:
        """The PostgreSQL-protocol endpoint, bound: ``serve_forever()`` or ``start()``, then ``shutdown()``."""
        from lakeforge.serve.pgwire.server import EndpointServer

        return EndpointServer(self.lake, self.config.serve.sql, host=host, port=port)

    def serve_web(self, *, host: str | None = None, port: int | None = None) -> WebApp:
        """The dashboards and operations web app, bound: ``serve_forever()`` or ``start()``, then ``shutdown()``."""
        from lakeforge.serve.web.app import WebApp

        cfg = self.config.serve.web
        return WebApp(self.lake, self, cfg, self.path / cfg.dashboards_path, host=host, port=port)


def _ended(exc: BaseException) -> str:
    return "interrupted" if isinstance(exc, KeyboardInterrupt | SystemExit) else "failed"


def _interruption(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (SIGINT)"
    return f"interrupted: {type(exc).__name__}: {exc}"


def _rows(progress: Progress, table: str, rows: int) -> None:
    progress.rows(table, rows)
