"""One load for ``bench.scale`` in a fresh process: ``python -m bench.scale_run <project folder>``; prints a
JSON line with rows, seconds, the lake's sum(amount) and each range task's figures."""

from __future__ import annotations

import json
import sys
import time

from lakeforge import Project


def main() -> None:
    project = Project(sys.argv[1])
    started = time.perf_counter()
    result = project.run()
    seconds = time.perf_counter() - started
    if not result.ok:
        print(json.dumps({"error": "; ".join(str(t.error) for t in result.tables if t.error)}))
        sys.exit(1)
    table = project.lake.dataset("bronze.src_big")
    import pyarrow.compute as pc

    amount = pc.sum(table.to_table(columns=["amount"]).column("amount")).as_py()
    extractor = project.extractor
    tasks = [
        {"index": t.index, "rows": t.rows, "seconds": t.seconds, "peak_rss": t.peak_rss, "pid": t.pid}
        for t in (extractor.results if extractor is not None else [])
    ]
    rows = sum(t.rows for t in result.tables)
    print(json.dumps({"rows": rows, "seconds": seconds, "sum_amount": f"{amount:.2f}", "tasks": tasks}))


if __name__ == "__main__":
    main()
