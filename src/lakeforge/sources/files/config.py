"""Options of a ``type: files`` source."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lakeforge.config.models import StorageConfig
from lakeforge.sources.records import RecordSourceConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CsvOptions(_Strict):
    header: bool = True
    """The first row names the columns; without it, ``columns`` does (or ``f0, f1, ...``)."""
    columns: list[str] | None = None
    """Column names when there is no header row."""
    delimiter: str = ","
    quote: str | None = '"'
    """Quote character (None: fields are never quoted)."""
    escape: str | None = None
    """Escape character inside quoted fields (default: none; a doubled quote is a quote)."""
    encoding: str = "utf-8"
    """The files' text encoding (``latin-1``, ``cp1252``, ...); other than UTF-8 is transcoded (slower)."""
    null_values: list[str] = Field(default_factory=lambda: [""])
    """Field values read as NULL, exactly (default: only the empty field; ``NULL`` stays the text ``NULL``
    unless listed here)."""
    skip_rows: int = Field(default=0, ge=0)
    """Rows to skip before the header (or the data)."""

    @field_validator("delimiter", "quote", "escape")
    @classmethod
    def _one_char(cls, value: str | None) -> str | None:
        if value is not None and len(value) != 1:
            raise ValueError(f"'{value}' must be one character")
        return value


class JsonOptions(_Strict):
    nested: Literal["struct", "flatten"] = "struct"
    """Nested objects as struct columns, or flattened into ``parent_child`` columns."""


class FilesSourceConfig(RecordSourceConfig):
    path: str
    """A folder (relative to the project) or ``s3://bucket/prefix``."""
    pattern: str = "*"
    """Glob of the file names to read (``*.csv*``); with ``recursive``, matched against the path under ``path``
    too (``2024/*/orders-*.csv``)."""
    recursive: bool = False
    """Also read the files of sub-folders."""
    format: Literal["csv", "json", "parquet"]
    """``json`` reads JSON lines and JSON arrays (told apart by the first character)."""
    compression: Literal["auto", "none", "gzip", "zstd"] = "auto"
    """``auto``: by extension, ``.gz`` or ``.zst``."""
    csv: CsvOptions = Field(default_factory=CsvOptions)
    json_options: JsonOptions = Field(default_factory=JsonOptions, alias="json")
    """Options of ``format: json`` (written ``json:``)."""
    storage: StorageConfig = Field(default_factory=StorageConfig)
    """For ``s3://`` paths: endpoint, region and credentials (unset: the environment's)."""
    block_bytes: int = Field(default=4 << 20, ge=1 << 12)
    """Bytes parsed at a time (a CSV block, a block of JSON lines): memory per block, and how often a large
    file can be committed part way (``run.commit_bytes``)."""
    sample_bytes: int = Field(default=1 << 20, gt=0)
    """CSV: bytes of each file read to infer the types of undeclared columns."""
