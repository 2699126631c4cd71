"""A run asked to stop (Ctrl-C, SIGTERM from a scheduler or a timeout): the table in flight rolls back.

Python runs signal handlers only on the main thread, and during a load the main thread sits in the Delta
writer (native code) while batches are pulled on other threads, so a plain ``KeyboardInterrupt`` would only
surface after the table's commit. The command line therefore turns SIGINT/SIGTERM into :data:`requested`;
the batch stream checks it (also while it waits for a slow source) and raises :class:`RunInterrupted`, which
makes the writer abandon its uncommitted files; the run then records the table as ``interrupted`` and stops.
A second signal ends the process at once.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from lakeforge.errors import LakeforgeError

requested = threading.Event()


class RunInterrupted(LakeforgeError):
    """The run was asked to stop; the table in flight was not committed."""


def check() -> None:
    if requested.is_set():
        raise RunInterrupted("interrupted: the table in flight was rolled back (nothing of it was committed)")


SIGNALS = {signal.SIGINT, signal.SIGTERM}


@contextmanager
def graceful_signals() -> Iterator[None]:
    """While inside: the first SIGINT/SIGTERM sets :data:`requested`, a second ends the process (exit 130).

    The signals are blocked in this thread, and so in every thread started inside (the Delta writer's
    threads among them), and a watcher thread takes them with ``sigtimedwait``: a Python handler would only
    run once the main thread leaves the native writer, after the table has committed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if signal.sigtimedwait(SIGNALS, 0.2) is None:
                continue
            if requested.is_set():
                import os

                os._exit(130)  # the second signal: stop now (every commit is atomic; nothing half-written)
            requested.set()

    previous = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    watcher = threading.Thread(target=watch, name="signals", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        # Not joined: the watcher notices ``done`` within 0.2 s on its own (a daemon thread), and waiting for it
        # added up to 0.2 s to every command. Its own mask keeps the signals blocked, so once this thread
        # unblocks them a later signal is delivered here, as before the block.
        done.set()
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def block_in_this_thread() -> None:
    """For helper threads started before :func:`graceful_signals` (they must not take the signals)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
