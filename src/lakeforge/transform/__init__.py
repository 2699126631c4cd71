"""Transforms: SQL (and Python) models over the lake, run by DuckDB, written as Delta tables.

::

    model.py        discover models in models/<layer>/, their config (header comment or YAML beside)
    parse.py        the tables a SQL model reads (sqlglot)
    graph.py        dependency order, cycles, unknown tables, --select, lineage edges
    session.py      the DuckDB connection of a build: lake tables pinned by Delta version, model views
    materialize.py  table, view, incremental;  scd2.py: slowly changing dimensions type 2
    engine_write.py a table model written by the engine's workers;  scd2_files.py: SCD2 on them
    checks.py       data-quality checks and quarantine
    build.py        lakeforge build;  state.py: results under _lakeforge/;  export.py: training sets

Importing this package is cheap; the heavy libraries load inside the functions that use them.
"""
