"""Read-ahead probe: ``python -m bench.slow_consumer --table wide_1m --delay 0.5 [--src /tmp/before/src]``.

Reads a MariaDB bench table through lakeforge's reader (``MySQLSource.read``, the batch size a full load
uses) with a consumer that sleeps ``--delay`` seconds per batch, i.e. a writer slower than the fetch; prints
rows, the id checksum, wall, CPU and the process's peak RSS (polled every 50 ms). What the reader buffers
ahead of a slow consumer shows in the peak. ``--src``: another lakeforge source tree (before/after).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.slow_consumer", description=__doc__.splitlines()[0])
    p.add_argument("--table", default="wide_1m")
    p.add_argument("--delay", type=float, default=0.5)
    p.add_argument("--src", default=None)
    args = p.parse_args()
    if args.src:
        sys.path.insert(0, args.src)
    import psutil
    import pyarrow.compute as pc

    from bench.data import DATABASE, MY_URL
    from lakeforge.config.models import MySQLSource as MySQLConfig
    from lakeforge.config.models import TableConfig
    from lakeforge.load.full import fetch_rows
    from lakeforge.sources.base import TableRef
    from lakeforge.sources.mysql.source import MySQLSource

    source = MySQLSource("src", MySQLConfig(type="mysql", url=MY_URL))
    plan = source.describe(TableRef(DATABASE, args.table), TableConfig())
    proc, peak, stop = psutil.Process(), [0], threading.Event()

    def poll() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.05)

    threading.Thread(target=poll, daemon=True).start()
    started, cpu, rows, ids = time.perf_counter(), time.process_time(), 0, 0
    for batch in source.read(plan, batch_size=fetch_rows(100_000, plan.arrow_schema())):
        rows += batch.num_rows
        ids += pc.sum(batch.column(0)).as_py()
        time.sleep(args.delay)
    stop.set()
    source.close()
    print(f"{args.table} delay={args.delay}s: rows={rows} id_sum={ids} wall={time.perf_counter() - started:.1f}s "
          f"cpu={time.process_time() - cpu:.1f}s peak_rss={peak[0] // 2**20} MB")


if __name__ == "__main__":
    main()
