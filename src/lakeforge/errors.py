"""Every error lakeforge raises on purpose derives from :class:`LakeforgeError`.

::

    LakeforgeError
    ├── ConfigError              the project file is wrong: names the file, the key and the valid choices
    ├── MissingExtraError        an optional dependency is not installed: says which ``pip install`` fixes it
    ├── SourceError              a source database failed: names the source, never its password
    │   ├── SourceUnreachable    cannot connect (refused, unknown host, auth failed); ``transient`` says which
    │   └── TableNotFound        a configured table does not exist or cannot be read
    ├── SchemaDriftError         a source column changed type in a way the lake cannot follow
    ├── ConversionError          a source value has no exact lake value (NaN in a decimal column): names both
    ├── LakeError                a lake table cannot be read or written
    ├── ModelError               a transform model failed: names the model's file
    ├── EngineError              a model engine (Daft) cannot run a query: the reason (callers add the file)
    ├── CheckFailed              a data-quality check with severity ``error`` failed
    ├── PublishError             publishing to a target failed: names the target (and table), never its password
    └── RunInProgress            another lakeforge run holds the project's lock

``transient`` on an error tells retry loops whether trying again can help. Every message is passed through
:func:`shorten`, so a value quoted by a database (a 50 MB string in a conversion error) never floods a
terminal or the run history.
"""

from __future__ import annotations

import re

MAX_VALUE = 200
"""Characters of one quoted value (or unbroken run) kept in a message; longer ones keep their first 80."""
MAX_MESSAGE = 4_000
"""Characters of a whole message kept."""
_N = "{" + str(MAX_VALUE) + ",}"
_LONG = re.compile(r"'[^'\n]" + _N + r"'|\"[^\"\n]" + _N + r"\"|[^\s'\"]" + _N)


def shorten(message: str) -> str:
    """``message`` with every quoted value or unbroken run over ``MAX_VALUE`` characters cut to its first
    80 (saying how long it was), and the whole cut to ``MAX_MESSAGE``."""

    def cut(match: re.Match[str]) -> str:
        text = match.group(0)
        quote = text[0] if text[0] in "'\"" else ""
        inner = text[1:-1] if quote else text
        return f"{quote}{inner[:80]}…{quote} [{len(inner):,} characters]"

    short = _LONG.sub(cut, message)
    if len(short) > MAX_MESSAGE:
        short = short[:MAX_MESSAGE] + f"… [message cut: {len(short):,} characters]"
    return short


class LakeforgeError(Exception):
    """Root of every error lakeforge raises on purpose."""

    transient: bool = False

    def __init__(self, message: str, *, transient: bool | None = None) -> None:
        super().__init__(shorten(message))
        if transient is not None:
            self.transient = transient


class ConfigError(LakeforgeError):
    """The project configuration is invalid."""


class MissingExtraError(LakeforgeError):
    """An optional dependency is missing."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(f"{package} is not installed; install it with: pip install 'lakeforge[{extra}]'")
        self.package = package
        self.extra = extra


class SourceError(LakeforgeError):
    """A source database failed."""

    def __init__(self, source: str, message: str, *, transient: bool | None = None) -> None:
        super().__init__(f"source '{source}': {message}", transient=transient)
        self.source = source


class SourceUnreachable(SourceError):
    """The source cannot be connected to."""


class TableNotFound(SourceError):
    """A configured table does not exist in the source."""


class SchemaDriftError(LakeforgeError):
    """A column changed type incompatibly."""

    def __init__(self, table: str, column: str, old: str, new: str) -> None:
        super().__init__(
            f"table {table}: column '{column}' changed type from {old} to {new}, which the lake cannot "
            "follow (only widening changes evolve); set schema_change: replace on the table to reload it "
            "with the new type, or cast the column in the source"
        )
        self.table = table
        self.column = column
        self.old = old
        self.new = new


class ConversionError(LakeforgeError):
    """A source value cannot be stored exactly in its column's lake type (never rounded, never NULLed)."""


class LakeError(LakeforgeError):
    """A lake table cannot be read or written."""


class EngineError(LakeforgeError):
    """A model engine refused or failed a query; ``str()`` is the reason (the build names the model's file)."""


class ModelError(LakeforgeError):
    """A transform model failed."""


class CheckFailed(LakeforgeError):
    """A data-quality check with severity error failed."""


class PublishError(LakeforgeError):
    """Publishing lake tables into a target database failed."""

    def __init__(self, target: str, message: str, *, transient: bool | None = None) -> None:
        super().__init__(f"target '{target}': {message}", transient=transient)
        self.target = target


class RunInProgress(LakeforgeError):
    """Another run holds the project's lock (transient: it will be released)."""

    transient = True
