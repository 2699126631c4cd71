"""A model's configuration, from a ``/* lakeforge ... */`` header comment or a YAML file beside the model.

Strict like ``lakeforge.yml``: unknown keys fail with the model's file, the key and the valid keys.

.. code-block:: sql

    /* lakeforge
    materialized: scd2
    unique_key: customer_number
    checks:
      - {type: not_null, column: customer_number}
    */
    select ... from silver.customers
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lakeforge.config.models import parse_lookback

Materialized = Literal["table", "view", "incremental", "scd2"]
Severity = Literal["warn", "error"]
OnFail = Literal["report", "quarantine"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _listify(value: object) -> object:
    return [value] if isinstance(value, str) else value


class CheckBase(Strict):
    type: str
    """The check's kind; each subclass narrows it to its own literal (the tag of the union)."""
    name: str | None = None
    """Name shown in results and quarantine; default ``<type>_<column>``."""
    severity: Severity = "error"
    """``error`` fails the model (its downstream models are skipped); ``warn`` only reports."""
    on_fail: OnFail = "report"
    """``quarantine`` moves the failing rows to ``quarantine.<model>`` and writes the good rows."""

    QUARANTINE: ClassVar[bool] = False
    """Capability: the check names failing rows of the model itself, so they can be quarantined."""

    def default_name(self) -> str:
        raise NotImplementedError


class NotNull(CheckBase):
    type: Literal["not_null"]
    column: list[str]
    QUARANTINE: ClassVar[bool] = True

    _column = field_validator("column", mode="before")(_listify)

    def default_name(self) -> str:
        return "not_null_" + "_".join(self.column)


class Unique(CheckBase):
    type: Literal["unique"]
    column: list[str]
    """One column or several that together must be unique."""
    QUARANTINE: ClassVar[bool] = True

    _column = field_validator("column", mode="before")(_listify)

    def default_name(self) -> str:
        return "unique_" + "_".join(self.column)


class AcceptedValues(CheckBase):
    type: Literal["accepted_values"]
    column: str
    values: list[str | int | float | bool]
    QUARANTINE: ClassVar[bool] = True

    def default_name(self) -> str:
        return f"accepted_values_{self.column}"


class Relationships(CheckBase):
    type: Literal["relationships"]
    column: str
    """Key column of this model (NULL keys are not checked: pair with not_null)."""
    to: str
    """The table the key must exist in, ``layer.table``."""
    field: str | None = None
    """Column of ``to``; default the same name as ``column``."""
    QUARANTINE: ClassVar[bool] = True

    def default_name(self) -> str:
        return f"relationships_{self.column}_{self.to.replace('.', '_')}"


class Expression(CheckBase):
    type: Literal["expression"]
    expression: str
    """A SQL condition every good row meets, e.g. ``amount >= 0``."""
    QUARANTINE: ClassVar[bool] = True

    def default_name(self) -> str:
        return "expression"


class Sql(CheckBase):
    type: Literal["sql"]
    sql: str
    """A query returning the failing rows (``{this}`` is the model's table); no rows means pass."""

    def default_name(self) -> str:
        return "sql"


class RowCount(CheckBase):
    type: Literal["row_count"]
    compare_to: str | None = None
    """A lake table, ``layer.table`` (e.g. the bronze table the model comes from)."""
    source: str | None = None
    """Or a source table, ``<source>.<table>`` of ``lakeforge.yml``, counted in the source database."""
    where: str | None = None
    """Condition applied to both counts."""
    tolerance: float = 0
    """Allowed difference: a count, or a fraction of the other side when below 1 (0.01 = 1 %)."""

    def default_name(self) -> str:
        return "row_count_" + (self.compare_to or self.source or "").replace(".", "_")


class Freshness(CheckBase):
    type: Literal["freshness"]
    column: str
    """Timestamp (or date) column whose newest value must be recent."""
    max_age: str | int | float
    """``30m``, ``6h``, ``2d`` or seconds."""

    @field_validator("max_age")
    @classmethod
    def _duration(cls, value: str | int | float) -> str | int | float:
        parse_lookback(value)
        return value

    def default_name(self) -> str:
        return f"freshness_{self.column}"


Check = Annotated[
    NotNull | Unique | AcceptedValues | Relationships | Expression | Sql | RowCount | Freshness,
    Field(discriminator="type"),
]


class ModelConfig(Strict):
    materialized: Materialized = "table"
    """``table`` (atomic replace), ``view`` (not stored), ``incremental`` (merge by unique_key), ``scd2``."""
    unique_key: list[str] | None = None
    """Key of ``incremental`` (merge) and ``scd2`` (business key) models."""
    incremental_from: list[str] | None = None
    """Inputs read only for rows added since the last build (default: the model's only input)."""
    watermark: str = "_lf_extracted_at"
    """Column of ``incremental_from`` inputs that grows with every load (bronze tables have it)."""
    surrogate_key: str | None = None
    """SCD2: name of the surrogate key column (default ``<table>_sk``)."""
    check_cols: list[str] | None = None
    """SCD2: columns whose change opens a new version (default: every column but the key)."""
    initial_valid_from: dt.datetime | dt.date | None = None
    """SCD2: ``valid_from`` of the versions written by the first build (default: the build time)."""
    as_of: dict[str, str] = Field(default_factory=dict)
    """Point-in-time inputs: ``{layer.table: event_time_column}``. When built as of a date, the model sees only
    rows of those inputs whose event time is before that date (no leakage of later rows)."""
    checks: list[Check] = Field(default_factory=list)
    description: str | None = None
    tags: list[str] = Field(default_factory=list)

    _keys = field_validator("unique_key", "incremental_from", "check_cols", mode="before")(_listify)
