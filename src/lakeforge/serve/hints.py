"""What the transform models declare that publishing uses: a key and the columns worth an index.

The key, in order of preference: an ``incremental`` model's ``unique_key``; an ``scd2`` model's surrogate key;
the first ``unique`` check of severity ``error`` (the build fails when it does not hold). Every
``relationships`` check's column (a foreign key of a star schema) gets an index, and a foreign key constraint
when the referenced table is published to the same target with that column as its whole primary key.
"""

from __future__ import annotations

from pathlib import Path

from lakeforge.serve.publish import TableHints


def model_hints(models_dir: Path) -> dict[str, TableHints]:
    from lakeforge.transform.config import Relationships, Unique
    from lakeforge.transform.model import discover

    hints: dict[str, TableHints] = {}
    for model in discover(models_dir):
        cfg = model.config
        key: list[str] = []
        if cfg.materialized == "incremental" and cfg.unique_key:
            key = list(cfg.unique_key)
        elif cfg.materialized == "scd2":
            key = [cfg.surrogate_key or f"{model.table}_sk"]
        else:
            unique = [c for c in cfg.checks if isinstance(c, Unique) and c.severity == "error"]
            key = list(unique[0].column) if unique else []
        relationships = [c for c in cfg.checks if isinstance(c, Relationships)]
        indexes = [[c.column] for c in relationships]
        references = [(c.column, c.to, c.field or c.column) for c in relationships]
        hints[model.name] = TableHints(key, indexes, references)
    return hints
