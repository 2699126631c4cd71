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

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from lakeforge.lake.base import Lake, MaintainResult, TableInfo
    from lakeforge.load.cdc_ops import CdcSourceStatus
    from lakeforge.load.cdc_run import CdcItem
    from lakeforge.load.table import TableResult
    from lakeforge.sources.base import Source
    from lakeforge.sources.cdc import Problem
    from lakeforge.transform.build import BuildResult
    from lakeforge.transform.export import ExportResult
    from lakeforge.transform.lineage import Lineage


class Progress:
    """Receives progress events; the CLI draws rich progress bars from them. Default: silent."""

    def table_started(self, table: str, estimated_rows: int) -> None: ...
    def rows(self, table: str, count: int) -> None: ...
    def table_finished(self, result: TableResult) -> None: ...
    def warning(self, message: str) -> None: ...


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
    def init(cls, path: str | Path, sources: dict[str, str], *, force: bool = False) -> Project:
        """Write ``lakeforge.yml`` (every table of each source, full mode) and ``.env.example``."""
        from lakeforge.config.init_file import write_project

        write_project(Path(path), sources, force=force)
        return cls(path)

    @cached_property
    def lake(self) -> Lake:
        """The lakehouse, in the table format of ``lake.format`` (Delta or Iceberg), local or on S3."""
        from lakeforge.lake import open_lake

        return open_lake(self.config.lake, self.path)

    def source(self, name: str) -> Source:
        from lakeforge.errors import ConfigError
        from lakeforge.sources import create_source

        if name not in self.config.sources:
            valid = ", ".join(self.config.sources) or "(none configured)"
            raise ConfigError(f"{self.path / CONFIG_FILE}: no source '{name}'; sources: {valid}")
        return create_source(name, self.config.sources[name])

    # -- commands -----------------------------------------------------------------------------------
    def check(self) -> list[SourceCheck]:
        """Validate the configuration and connect to every source; for cdc tables, check the server is ready
        for CDC (each problem with its fix)."""
        from lakeforge.load.cdc_run import cdc_items, missing_extra, readiness
        from lakeforge.selection import select_tables

        results = []
        for name, cfg in self.config.sources.items():
            missing = missing_extra(cfg)
            if missing is not None:
                results.append(SourceCheck(name, cfg.type, False, error=f"source '{name}': {missing}"))
                continue
            source = self.source(name)
            try:
                detail = source.check()
                tables = select_tables(name, cfg, source.list_tables())
                problems = readiness(source, cdc_items(source, cfg, tables))
                results.append(SourceCheck(name, cfg.type, not problems, detail, len(tables), problems=problems))
            except LakeforgeError as exc:
                results.append(SourceCheck(name, cfg.type, False, error=str(exc)))
            finally:
                source.close()
        return results

    def run(self, *, select: list[str] | None = None, progress: Progress | None = None, follow: bool = False,
            resnapshot: bool = False, stop: Any = None) -> RunResult:
        """Load every selected table into the lake (each table in one atomic commit).

        ``mode: cdc`` tables are streamed after the other tables, every source at once; ``follow`` keeps
        applying changes until SIGINT/SIGTERM (or ``stop``, a ``threading.Event``, is set), then commits what
        it has and returns; ``resnapshot`` reloads the cdc tables whose changes the log no longer holds."""
        from lakeforge.config.models import TableConfig
        from lakeforge.load.batches import Stamp
        from lakeforge.load.cdc_run import CdcWork, require_extras, run_cdc
        from lakeforge.load.context import LoadContext
        from lakeforge.load.table import lake_name, load_table
        from lakeforge.selection import options_for, select_tables
        from lakeforge.state.history import RUN_ROW, Event, RunHistory
        from lakeforge.state.lock import lake_lock

        progress = progress or Progress()
        require_extras(self.config)
        with lake_lock(self.lake, "run"):
            run_id = new_run_id()
            started = dt.datetime.now(dt.UTC)
            history = RunHistory(self.lake)
            history.record(Event(run_id, RUN_ROW, "running", started))
            results: list[TableResult] = []
            errors: list[str] = []
            warnings: list[str] = []
            cdc_work: list[CdcWork] = []  # sources with cdc tables stay open until those are streamed
            halt = False  # on_error: stop, after a failure
            for name, cfg in self.config.sources.items():
                if halt:
                    break
                source = self.source(name)
                try:
                    refs = select_tables(name, cfg, source.list_tables())
                except LakeforgeError as exc:
                    errors.append(str(exc))
                    halt = self.config.run.on_error == "stop"
                    source.close()
                    continue
                stamp = Stamp(name, run_id, dt.datetime.now(dt.UTC))
                cdc_items: list[Any] = []
                for ref in refs:
                    options = options_for(cfg, ref) or TableConfig()
                    table = lake_name(source, ref, options)
                    if select and not any(_selected(p, table, name, ref.qualified) for p in select):
                        continue
                    mode = options.mode or cfg.defaults.mode
                    if mode == "cdc":
                        cdc_items.append((ref, options, table))
                        continue
                    progress.table_started(table, 0)
                    ctx = LoadContext(self.lake, self.config.run, stamp, functools.partial(_rows, progress, table),
                                      self.config.lake.maintenance)
                    table_started = dt.datetime.now(dt.UTC)
                    result = load_table(ctx, source, ref, options, mode)
                    results.append(result)
                    progress.table_finished(result)
                    history.record(Event(
                        run_id, result.table, result.status, table_started, dt.datetime.now(dt.UTC),
                        name, ref.qualified, mode, result.rows, round(result.seconds, 3),
                        result.delta_version, result.error,
                    ))
                    if result.status == "failed" and self.config.run.on_error == "stop":
                        halt = True
                        break
                if cdc_items and not halt:
                    cdc_work.append(CdcWork(source, cdc_items, stamp))
                else:
                    source.close()
            try:
                if cdc_work and not halt:
                    run_cdc(self, cdc_work, progress, history, results, warnings, follow=follow,
                            resnapshot=resnapshot, stop=stop)
            finally:
                for work in cdc_work:
                    work.source.close()
            failed = errors or any(r.status == "failed" for r in results)
            status = "failed" if failed else "success"
            total = sum(r.rows for r in results)
            history.record(Event(
                run_id, RUN_ROW, status, started, dt.datetime.now(dt.UTC), rows=total,
                seconds=round((dt.datetime.now(dt.UTC) - started).total_seconds(), 3),
                error="; ".join(errors) or None,
            ))
            return RunResult(run_id, status, results, errors, warnings)

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

    def resnapshot(self, source: str, *, tables: list[str] | None = None,
                   progress: Progress | None = None) -> RunResult:
        """Run ``source``'s cdc tables (or those matching ``tables``), re-snapshotting the ones whose changes
        the log no longer holds (dropped or lost slot, purged binlog); the others just catch up."""
        from lakeforge.errors import ConfigError

        src = self.source(source)
        try:
            items = self._cdc_tables(src)
        finally:
            src.close()
        if tables:
            items = [(ref, options, name) for ref, options, name in items
                     if any(fnmatch.fnmatchcase(c, p) for p in tables
                            for c in (name, name.partition(".")[2], ref.name, ref.qualified))]
        if not items:
            wanted = f" matching {', '.join(tables)}" if tables else ""
            raise ConfigError(f"{self.path / CONFIG_FILE}: source '{source}' has no mode: cdc tables{wanted}")
        return self.run(select=[name for _, _, name in items], progress=progress, resnapshot=True)

    def _cdc_tables(self, source: Source) -> list[CdcItem]:
        from lakeforge.load.cdc_run import cdc_items
        from lakeforge.selection import select_tables

        cfg = self.config.sources[source.name]
        return cdc_items(source, cfg, select_tables(source.name, cfg, source.list_tables()))

    def tables(self, layers: list[str] | None = None) -> list[TableInfo]:
        return [self.lake.info(name) for name in self.lake.names(layers)]

    def maintain(self, tables: list[str] | None = None) -> list[MaintainResult]:
        """Compact, tidy and vacuum lake tables (all, or those matching the ``tables`` globs) under the run
        lock, per ``lake.maintenance``; each result reports data files and bytes before and after."""
        from lakeforge.state.lock import lake_lock

        names = self.lake.names()
        if tables:
            names = [n for n in names if any(fnmatch.fnmatchcase(c, p) for p in tables for c in (n, n.split(".")[1]))]
        cfg = self.config.lake.maintenance
        size = cfg.target_file_mb * 2**20
        with lake_lock(self.lake, "run"):
            return [self.lake.maintain(n, retain_seconds=cfg.retain_seconds, target_file_size=size) for n in names]

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
        from lakeforge.transform.build import build

        return build(self, select=select, as_of=as_of, full_refresh=full_refresh)

    def checks(self) -> list[dict[str, Any]]:
        """The newest result of every data-quality check."""
        from lakeforge.transform.state import latest_checks

        return latest_checks(self.lake)

    def lineage(self, table: str | None = None) -> Lineage:
        """Table-level lineage parsed from the models: of one table, or (table=None) every edge."""
        from lakeforge.transform.lineage import lineage

        return lineage(self, table)

    def export(
        self, model: str | None = None, *, to: str | Path | None = None, as_of: dt.datetime | None = None,
        from_manifest: str | Path | None = None,
    ) -> ExportResult:
        """Write a model's rows (as of a date) to Parquet with a manifest of the Delta versions read."""
        from lakeforge.transform.export import export

        return export(self, model, to=to, as_of=as_of, from_manifest=from_manifest)


def _selected(pattern: str, table: str, source: str, source_table: str) -> bool:
    return any(
        fnmatch.fnmatchcase(candidate, pattern)
        for candidate in (table, table.partition(".")[2], f"{source}.{source_table}", source)
    )


def _rows(progress: Progress, table: str, rows: int) -> None:
    progress.rows(table, rows)
