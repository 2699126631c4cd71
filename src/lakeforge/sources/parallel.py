"""Read several range queries of one table at once, with bounded memory.

Each query runs in its own thread (the drivers release the GIL while fetching); batches meet in a
queue of a few slots, so a slow writer holds the readers back instead of letting memory grow.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeforge.sources.base import Source

_DONE = object()


def read_partitioned(source: Source, queries: list[str], batch_size: int) -> Iterator[pa.RecordBatch]:
    slots: queue.Queue[object] = queue.Queue(maxsize=2 * len(queries))
    stop = threading.Event()

    def work(sql: str) -> None:
        try:
            for batch in source.stream(sql, batch_size):
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
            item = slots.get()
            if item is _DONE:
                finished += 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item  # type: ignore[misc]
    finally:
        stop.set()
