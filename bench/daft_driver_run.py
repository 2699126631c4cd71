"""One build for ``bench.daft_driver`` in a fresh process: ``python -m bench.daft_driver_run <project> <mode>``
(``driver``: lake tables and results through the driver, as before files were read and written by Daft's
workers; ``workers``: the default); prints a JSON line with the rows built and the gold total."""

from __future__ import annotations

import json
import sys

from lakeforge import Project


def main() -> None:
    folder, mode = sys.argv[1], sys.argv[2]
    if mode == "driver":
        from lakeforge.engines.daft import DaftEngine

        DaftEngine.READS_FILES = False  # register() gets no file listing: Arrow from the driver
        DaftEngine.WRITES_FILES = False  # results come back to the driver's DuckDB, which writes them
    project = Project(folder)
    result = project.build()
    if not result.ok:
        print(json.dumps({"error": "; ".join(f"{m.model}: {m.error}" for m in result.models if m.error)}))
        sys.exit(1)
    import pyarrow.compute as pc

    silver = project.lake.dataset("silver.big").count_rows()
    total = pc.sum(project.lake.read("gold.by_grp").column("total")).as_py()
    written = {m.model: m.detail.get("written_by", "driver") for m in result.models}
    print(json.dumps({"silver_rows": silver, "gold_total": f"{total:.2f}", "written_by": written}))


if __name__ == "__main__":
    main()
