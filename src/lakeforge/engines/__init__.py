"""Where SQL runs: DuckDB embedded (default)."""
