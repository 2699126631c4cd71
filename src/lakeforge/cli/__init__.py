"""Command line: thin commands over :class:`lakeforge.Project`."""
