"""``type: python``: a user generator of records (dicts, Arrow, pandas or polars frames) with its own state."""
