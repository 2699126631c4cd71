"""Read range queries of one table in background threads, with bounded memory.

Each query runs in its own thread (the drivers release the GIL while fetching), also when there is only
one: the fetch then overlaps the Delta writer's encoding instead of alternating with it. ``transform``
(the cast to the lake schema) runs in the reader threads too. Batches meet in a queue of a few slots, so a
slow writer holds the readers back instead of letting memory grow.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from lakeforge import interrupt

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeforge.sources.sql import SqlSource

_DONE = object()


def read_partitioned(
    source: SqlSource,
    queries: list[str],
    batch_size: int,
    transform: Callable[[pa.RecordBatch], pa.RecordBatch] | None = None,
) -> Iterator[pa.RecordBatch]:
    slots: queue.Queue[object] = queue.Queue(maxsize=2 * len(queries))
    stop = threading.Event()

    def work(sql: str) -> None:
        try:
            for raw in source.stream(sql, batch_size):
                batch = transform(raw) if transform is not None else raw
                while not stop.is_set():
                    try:
                        slots.put(batch, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - connectorx panics derive from BaseException
            slots.put(exc)

    threads = [threading.Thread(target=work, args=(q,), daemon=True) for q in queries]
    for t in threads:
        t.start()
    finished = 0
    try:
        while finished < len(threads):
            try:
                item = slots.get(timeout=0.2)
            except queue.Empty:
                interrupt.check()  # a slow source must not keep a stop request waiting
                continue
            if item is _DONE:
                finished += 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        stop.set()
