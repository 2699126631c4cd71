"""``lakeforge``: the command group. Commands live in modules listed in ``COMMANDS``."""

from __future__ import annotations

import importlib

import click

COMMANDS = [
    "lakeforge.cli.load",
    "lakeforge.cli.cdc",
    "lakeforge.cli.query",
    "lakeforge.cli.transform",
    "lakeforge.cli.ops",
    "lakeforge.cli.serve",
    "lakeforge.cli.quarantine",
]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lakeforge")
def main() -> None:
    """lakeforge: PostgreSQL and MySQL/MariaDB into a Delta Lake lakehouse, exactly once."""


for module in COMMANDS:
    importlib.import_module(module).register(main)


def cli() -> None:
    """The ``lakeforge`` console script: native libraries' stderr goes to the debug log, then the commands.

    OpenBLAS (loaded by numpy, which pyarrow imports) starts one thread per core at import, ~0.035 s of CPU
    a process; lakeforge does no linear algebra, so the CLI asks for one thread unless the user set a count
    (docs/benchmarks.md, "Fixed cost of a run", third pass).

    Once the command has returned (or raised), every object left is moved to the collector's permanent
    generation (``gc.freeze``): the interpreter's shutdown then frees what reference counting frees, as
    before, but its final collections no longer walk the ~50,000 container objects of the imported modules
    (pydantic, numpy, pyarrow). Everything the command wrote is committed or closed by then; only garbage in
    reference cycles is left to the operating system instead of the collector (docs/benchmarks.md, "Fixed
    cost of a run", fourth pass: 0.05-0.13 s of CPU a process).

    The memory allocators are set before anything loads pyarrow (``allocators.py``)."""
    import gc
    import os
    import sys

    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

    from lakeforge.cli.allocators import tune
    from lakeforge.cli.native import route_native_stderr

    tune()

    route_native_stderr(debug="--debug" in sys.argv[1:])
    try:
        main()
    finally:
        gc.freeze()
