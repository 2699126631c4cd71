"""One build for ``bench.daft_driver`` in a fresh process: ``python -m bench.daft_driver_run <project> <mode>
[table|scd2]`` (``driver``: lake tables and results through the driver, as before files were read and written by
Daft's workers; ``scd2-driver``: an SCD2 model's result and diff through the driver's DuckDB, as before they ran
on the workers; ``workers``: the default); prints a JSON line with what was built (``table``: the rows and the
gold total; ``scd2``: two builds of ``gold.dim``, the dimension's rows and current rows, the second build's
opened and closed counts)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from lakeforge import Project


def main() -> None:
    folder, mode = sys.argv[1], sys.argv[2]
    quiet(Path(folder))
    if (sys.argv[3] if len(sys.argv) > 3 else "table") == "scd2":
        scd2(Path(folder), mode)
        return
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


def quiet(folder: Path) -> None:
    """Ray's progress bars and worker logs go to a file in the project: ``bench.measure`` reads the child's
    pipes only when it ends, and a full stderr pipe blocks the build (it did with the SCD2 builds' bars)."""
    import os

    log = os.open(folder / "driver.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(log, 2)
    os.close(log)


def scd2(folder: Path, mode: str) -> None:
    from bench.daft_driver import SCD2_MODELS

    if mode == "scd2-driver":
        from lakeforge.transform import scd2_files

        scd2_files.run_on_workers = lambda *args, **kwargs: None  # type: ignore[assignment]
    project = Project(str(folder))
    detail: dict[str, object] = {}
    for text in SCD2_MODELS:
        (folder / "models" / "gold" / "dim.sql").write_text(text)
        result = project.build()
        if not result.ok:
            print(json.dumps({"error": "; ".join(f"{m.model}: {m.error}" for m in result.models if m.error)}))
            sys.exit(1)
        detail = result.model("gold.dim").detail
    import pyarrow.compute as pc

    data = project.lake.dataset("gold.dim")
    found = {
        "dim_rows": data.count_rows(),
        "current": data.count_rows(filter=pc.field("is_current")),
        "opened": detail.get("opened"),
        "closed": detail.get("closed"),
    }
    print(json.dumps({"scd2": found, "written_by": {"gold.dim": detail.get("written_by", "driver")}}))


if __name__ == "__main__":
    main()
