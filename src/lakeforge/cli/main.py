"""``lakeforge``: the command group. Commands live in modules listed in ``COMMANDS``."""

from __future__ import annotations

import importlib

import click

COMMANDS = [
    "lakeforge.cli.load",
    "lakeforge.cli.cdc",
    "lakeforge.cli.query",
    "lakeforge.cli.transform",
    "lakeforge.cli.serve",
]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lakeforge")
def main() -> None:
    """lakeforge: PostgreSQL and MySQL/MariaDB into a Delta Lake lakehouse, exactly once."""


for module in COMMANDS:
    importlib.import_module(module).register(main)
