"""SCD2: a dimension that keeps every version of each business key.

Columns added to the model's own: the surrogate key (``<table>_sk`` unless ``surrogate_key`` names it),
``valid_from``, ``valid_to`` (NULL while current) and ``is_current``. Each build compares the model's result
with the current versions by ``unique_key``:

- a new key opens a version (``valid_from`` = build time, or ``initial_valid_from`` on the first build);
- a key whose ``check_cols`` (default: every non-key column) changed closes its current version
  (``valid_to`` = build time, ``is_current`` = false) and opens a new one;
- an unchanged key writes nothing;
- a key gone from the result is closed (it reopens as a new version if it comes back).

Closing and opening land in one Delta MERGE (on the surrogate key) carrying the checkpoint.
"""

from __future__ import annotations

import datetime as dt

from lakeforge.errors import ModelError
from lakeforge.transform import write
from lakeforge.transform.materialize import BuildContext, Outcome, checkpoint, compute
from lakeforge.transform.model import Model
from lakeforge.transform.session import RESULT, Session, literal, quoted

VALID_FROM, VALID_TO, IS_CURRENT = "valid_from", "valid_to", "is_current"


def surrogate_key(model: Model) -> str:
    return model.config.surrogate_key or f"{model.table}_sk"


def run_scd2(session: Session, model: Model, ctx: BuildContext) -> Outcome:
    keys = model.config.unique_key
    if not keys:
        raise ModelError(f"{model.path}: materialized: scd2 needs unique_key (the business key)")
    sk = surrogate_key(model)
    compute(session, model, ctx)
    columns = list(session.con.sql(f"SELECT * FROM {RESULT} LIMIT 0").columns)
    _validate(session, model, columns, keys, sk)
    if not session.lake.exists(model.name) or ctx.full_refresh:
        return _first(session, model, ctx, keys, sk)
    opened, closed = _diff(session, model, columns, keys, sk)
    if opened == 0 and closed == 0:
        return Outcome(status="unchanged", detail={"opened": 0, "closed": 0})
    write.merge(
        session,
        model.name,
        _versions_sql(session, model, ctx, columns, keys, sk),
        [sk],
        checkpoint(session, model, ctx),
    )
    session.register(model.name)
    return Outcome(rows=opened, delta_version=session.versions[model.name], detail={"opened": opened, "closed": closed})


def _first(session: Session, model: Model, ctx: BuildContext, keys: list[str], sk: str) -> Outcome:
    """The first build (or a full refresh): every key opens a version."""
    start = literal(_initial(model)) if model.config.initial_valid_from else literal(ctx.started)
    sql = (
        f'SELECT row_number() OVER (ORDER BY {_list(keys)})::BIGINT AS "{sk}", r.*, '
        f"{start}::TIMESTAMPTZ AS {VALID_FROM}, NULL::TIMESTAMPTZ AS {VALID_TO}, TRUE AS {IS_CURRENT} "
        f"FROM {RESULT} r"
    )
    write.overwrite(session, model.name, sql, checkpoint(session, model, ctx))
    session.register(model.name)
    rows = int(session.scalar(f"SELECT count(*) FROM {quoted(model.name)}"))
    return Outcome(rows=rows, delta_version=session.versions[model.name], detail={"opened": rows})


def _diff(session: Session, model: Model, columns: list[str], keys: list[str], sk: str) -> tuple[int, int]:
    """Fill ``__lf_open`` (result rows that open a version) and ``__lf_close`` (current versions to close)."""
    target = quoted(model.name)
    target_cols = set(session.con.sql(f"SELECT * FROM {target} LIMIT 0").columns)
    compared = [c for c in (model.config.check_cols or [c for c in columns if c not in keys]) if c in target_cols]
    same_key = " AND ".join(f'r."{k}" = t."{k}"' for k in keys)
    changed = " OR ".join(f'r."{c}" IS DISTINCT FROM t."{c}"' for c in compared) or "FALSE"
    current = f"(SELECT * FROM {target} WHERE {IS_CURRENT})"
    session.con.execute(f"""CREATE OR REPLACE TEMP TABLE __lf_open AS
        SELECT r.* FROM {RESULT} r LEFT JOIN {current} t ON {same_key}
        WHERE t."{sk}" IS NULL OR {changed}""")
    session.con.execute(f"""CREATE OR REPLACE TEMP TABLE __lf_close AS
        SELECT t.* FROM {current} t LEFT JOIN {RESULT} r ON {same_key}
        WHERE r."{keys[0]}" IS NULL OR {changed}""")
    return int(session.scalar("SELECT count(*) FROM __lf_open")), int(session.scalar("SELECT count(*) FROM __lf_close"))


def _versions_sql(
    session: Session, model: Model, ctx: BuildContext, columns: list[str], keys: list[str], sk: str
) -> str:
    """Closed versions (valid_to = now) and opened ones (new surrogate keys), in the table's column order."""
    target = quoted(model.name)
    now = literal(ctx.started)
    top = int(session.scalar(f'SELECT coalesce(max("{sk}"), 0) FROM {target}'))
    ordered = list(session.con.sql(f"SELECT * FROM {target} LIMIT 0").columns)
    opening = {
        sk: f'({top} + row_number() OVER (ORDER BY {_list(keys)}))::BIGINT AS "{sk}"',
        VALID_FROM: f"{now}::TIMESTAMPTZ AS {VALID_FROM}",
        VALID_TO: f"NULL::TIMESTAMPTZ AS {VALID_TO}",
        IS_CURRENT: f"TRUE AS {IS_CURRENT}",
    }
    closing = {VALID_TO: f"{now}::TIMESTAMPTZ AS {VALID_TO}", IS_CURRENT: f"FALSE AS {IS_CURRENT}"}
    added = [c for c in columns if c not in ordered and c not in opening]  # columns new in the model
    opened = [opening.get(c) or (f'"{c}"' if c in columns else f'NULL AS "{c}"') for c in ordered]
    closed = [closing.get(c) or f'"{c}"' for c in ordered]
    opened += [f'"{c}"' for c in added]
    closed += [f'NULL AS "{c}"' for c in added]
    return f"SELECT {', '.join(closed)} FROM __lf_close UNION ALL BY NAME SELECT {', '.join(opened)} FROM __lf_open"


def _list(keys: list[str]) -> str:
    return ", ".join(f'"{k}"' for k in keys)


def _validate(session: Session, model: Model, columns: list[str], keys: list[str], sk: str) -> None:
    missing = [k for k in keys if k not in columns]
    if missing:
        raise ModelError(f"{model.path}: unique_key {', '.join(missing)} is not a column of the result")
    clash = [c for c in (sk, VALID_FROM, VALID_TO, IS_CURRENT) if c in columns]
    if clash:
        raise ModelError(f"{model.path}: scd2 adds column(s) {', '.join(clash)}; the model must not return them")
    nulls = session.scalar(f"SELECT count(*) FROM {RESULT} WHERE " + " OR ".join(f'"{k}" IS NULL' for k in keys))
    if nulls:
        raise ModelError(f"model {model.name} ({model.path}): {nulls} row(s) have a NULL business key")
    dupes = session.scalar(
        f"SELECT count(*) FROM (SELECT {_list(keys)} FROM {RESULT} GROUP BY ALL HAVING count(*) > 1)"
    )
    if dupes:
        raise ModelError(
            f"model {model.name} ({model.path}): {dupes} business key(s) appear more than once "
            f"in the result; an SCD2 source needs one row per {', '.join(keys)}"
        )


def _initial(model: Model) -> dt.datetime:
    value = model.config.initial_valid_from
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value or dt.date.min, dt.time())
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
