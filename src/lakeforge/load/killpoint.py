"""Crash-test hook: ``LAKEFORGE_TEST_KILL_AT=<point>:<layer.table>`` makes this process SIGKILL itself there
(``LAKEFORGE_TEST_KILL_SIGNAL=INT`` sends SIGINT instead: a Ctrl-C at that point).

Used only by ``tests/integration/test_crash.py`` to prove that a run killed at any point, then started again,
ends with exactly the source's rows. Unset (always, outside that test) it costs one dict lookup per call.

Points, in the order a table load passes them:

``extract``
    the first record batch has been read from the source; nothing has been handed to the Delta writer.
``write``
    the Delta writer has taken the first batch and asks for the next (a write or MERGE is in flight).
``files``
    Parquet files of the new version are on disk but the Delta commit has not been made (needs files to be
    flushed during the stream: a small ``lake.target_file_size`` and enough rows; local lakes only).
``commit``
    Iceberg: the write or MERGE has written its data files and is about to make its catalog commit (a kill
    *during the commit*: files on storage that no snapshot references). Delta writes and commits in one call.
``committed``
    the table's commit (data + checkpoint) has landed; the run history has not recorded it and the next
    table has not started: a kill *between tables*.

Record source points (``load/records.py``: files, streams, python), for a bronze table ``<name>``:

``quarantined``
    the bad records of a commit interval are committed to ``quarantine.<table>``; the bronze commit that
    carries the same position has not been made.
``files`` (also)
    Delta, a bounded read: the interval's staged Parquet files are written, its commit (rows + position) is
    not made (``load/interval_files.py``).
``interval_committed``
    one commit interval (rows + position) has landed; the rest of the read has not (a kill between the
    commits of one run), and the source has not been told (a NATS ack, the Kafka group offsets mirror):
    the broker still holds the messages as unacknowledged.

Publish points (``serve/publish.py``, ``serve/destinations/mysql.py``), for a lake table ``<name>``:

``publish``
    the first record batch has been handed to the target's bulk load; the load has not finished.
``publish_swapped``
    MariaDB ``replace``: the shadow table has been renamed in; ``_lakeforge_published`` not yet updated.

CDC points (``mode: cdc``, ``load/cdc.py`` and ``load/cdc_apply.py``), for a current-state table ``<name>``:

``cdc_snapshot``
    the snapshot's first batch has been read; nothing of the table is committed.
``cdc_snapshot_committed``
    the snapshot's current-state table has committed; its change-log table has not been created.
``cdc_buffer``
    a log change for the table has been buffered; nothing of its micro-batch is committed.
``cdc_flush``
    a micro-batch is about to be applied to the table: the tables flushed before it in the same
    micro-batch have committed (a kill *between tables* of one micro-batch), this one has not.
``cdc_log_committed``
    the change log ``<name>_changes`` has committed the micro-batch; the current-state table has not:
    the window between the two Delta commits of one micro-batch.
``cdc_committed``
    both tables have committed the micro-batch; the next table and the log acknowledgement have not run.

Distributed extraction point (``engine: {type: ray}``, ``distributed/task.py``):

``range``
    a range task has written its first batch into a Parquet file; the task has not returned. With
    ``LAKEFORGE_TEST_KILL_ONCE=<file>`` the worker kills itself only if that file does not exist yet (it
    creates it first), so the retried task completes. The executor forwards ``LAKEFORGE_TEST_*`` to workers.

Maintenance point (``lakeforge maintain``):

``maintain``
    Iceberg: the compaction is rewriting the table (data files being written, no commit); Delta: the
    compaction has committed, the log checkpoint and the vacuum have not run.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

ENV = "LAKEFORGE_TEST_KILL_AT"
_SPEC = os.environ.get(ENV)
_SIGNAL = signal.Signals["SIG" + os.environ.get("LAKEFORGE_TEST_KILL_SIGNAL", "KILL")]
"""Read once: the hook is set on the process before it starts, and CDC passes a point for every change."""
T = TypeVar("T")


def kill_at(point: str, table: str) -> None:
    """SIGKILL (or the configured signal to) this process if ``LAKEFORGE_TEST_KILL_AT`` names this point and
    table."""
    if _SPEC is not None and f"{point}:{table}" == _SPEC:
        os.kill(os.getpid(), _SIGNAL)


def kill_once(point: str, table: str) -> None:
    """``kill_at``, but only the first time across processes: ``LAKEFORGE_TEST_KILL_ONCE`` names a marker file
    created just before the kill (a worker killed mid-task, then its retry runs to the end)."""
    if _SPEC is None or f"{point}:{table}" != _SPEC:
        return
    marker = os.environ.get("LAKEFORGE_TEST_KILL_ONCE")
    if marker:
        try:
            with open(marker, "x"):
                pass
        except FileExistsError:
            return
    os.kill(os.getpid(), _SIGNAL)


def watch(table: str, batches: Iterable[T], location: str) -> Iterator[T]:
    """Pass ``batches`` through, calling the ``extract``, ``write`` and ``files`` points on the way."""
    if not (_SPEC or "").endswith(":" + table):
        yield from batches
        return
    folder = Path(location)
    before = _parquet_files(folder)
    for i, batch in enumerate(batches):
        kill_at("extract" if i == 0 else "write", table)
        if f"files:{table}" == _SPEC and i >= 4:
            _wait_for_files(folder, before)  # a file the writer flushes in the background may land late
        if _parquet_files(folder) - before:
            kill_at("files", table)
        yield batch
    kill_at("write", table)  # a one-batch stream: the writer holds it and has asked for more


def _parquet_files(folder: Path) -> set[str]:
    return {str(p) for p in folder.rglob("*.parquet")} if folder.is_dir() else set()


def _wait_for_files(folder: Path, before: set[str], timeout: float = 0.5) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not (_parquet_files(folder) - before) and time.monotonic() < deadline:
        time.sleep(0.05)
