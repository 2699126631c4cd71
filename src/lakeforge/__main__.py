"""``python -m lakeforge``: the CLI."""

from lakeforge.cli.main import cli

cli()
