"""Load strategies: full (atomic replace), incremental (cursor + merge), cdc (log changes)."""
