"""Keep native libraries' stderr out of the user's terminal.

Rust and C libraries (connectorx, delta-rs, ADBC) write to file descriptor 2 directly: a connectorx panic
prints ``thread '<unnamed>' panicked at ... arrow_batch_iter.rs`` and a backtrace even though lakeforge turns
the panic into one clear error. The command-line entry point therefore points Python's ``sys.stderr`` (rich's
progress bars, warnings, tracebacks) at a copy of the terminal's descriptor, and descriptor 2 itself at a
pipe whose lines go to the ``lakeforge.native`` logger at debug level: shown with ``--debug``, hidden
otherwise. Library users of :class:`lakeforge.Project` keep their process's stderr as it is.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

LOGGER = logging.getLogger("lakeforge.native")


def route_native_stderr(*, debug: bool) -> None:
    """Send what native code writes to descriptor 2 to the debug log (see the module docstring)."""
    try:
        sys.stderr.flush()
        terminal = os.dup(2)
        read_end, write_end = os.pipe()
    except OSError:  # no descriptor 2 (a daemon): nothing to protect
        return
    sys.stderr = os.fdopen(terminal, "w", buffering=1, encoding="utf-8", errors="replace", closefd=True)
    os.dup2(write_end, 2)
    os.close(write_end)
    if debug:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("debug: %(name)s: %(message)s"))
        LOGGER.addHandler(handler)
        LOGGER.setLevel(logging.DEBUG)
    threading.Thread(target=_drain, args=(read_end,), name="native-stderr", daemon=True).start()


def _drain(read_end: int) -> None:
    from lakeforge.interrupt import block_in_this_thread

    block_in_this_thread()  # SIGINT/SIGTERM go to the main thread or the run's signal watcher, never here
    with os.fdopen(read_end, "r", encoding="utf-8", errors="replace") as pipe:
        for line in pipe:
            LOGGER.debug(line.rstrip("\n"))
