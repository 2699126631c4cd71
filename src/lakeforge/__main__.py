"""``python -m lakeforge``: the CLI."""

from lakeforge.cli.main import main

main()
