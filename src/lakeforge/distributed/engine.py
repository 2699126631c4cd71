"""``engine:`` -> the extractor a run uses (None for ``{type: local}``: every table loads in one process)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakeforge.config.engine import LocalEngine, RayEngine
    from lakeforge.distributed.extract import DistributedExtractor


def extractor_for(engine: LocalEngine | RayEngine) -> DistributedExtractor | None:
    if engine.type == "local":
        return None
    import importlib.util

    from lakeforge.errors import MissingExtraError

    if importlib.util.find_spec("ray") is None:
        raise MissingExtraError("ray", "scale")
    from lakeforge.distributed.executor import RayExecutor
    from lakeforge.distributed.extract import DistributedExtractor

    return DistributedExtractor(
        RayExecutor(engine), retries=engine.task_retries, snapshot_timeout=engine.snapshot_timeout
    )
