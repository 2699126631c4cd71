"""What a run reports while it works: the CLI draws rich progress bars from these events."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakeforge.load.table import TableResult


class Progress:
    """Receives progress events; the CLI draws rich progress bars from them. Default: silent."""

    def table_started(self, table: str, estimated_rows: int) -> None: ...
    def rows(self, table: str, count: int) -> None: ...
    def table_finished(self, result: TableResult) -> None: ...
    def warning(self, message: str) -> None: ...
