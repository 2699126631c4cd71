"""CSV rows whose bytes are not valid text: pyarrow refuses them, the Python parser takes the rest of the file
over (csv_python.py); just those rows are quarantined, every other record loads exactly once."""

from __future__ import annotations

import decimal
import gzip
from pathlib import Path
from typing import Any

from lakeforge.project import Project

D = decimal.Decimal

SOURCE = """sources:
  drops:
    type: files
    path: drops
    pattern: "*.csv*"
    format: csv
    block_bytes: 4096
    schema: {amount: "decimal(12,2)"}
lake: {path: lh}
"""

GOOD = b"".join(f"{i},name-{i},{i}.50\n".encode() for i in range(1, 301))  # 5.4 KB: more than a block
TAIL = (
    b"301,caf\xe9,1.00,extra\n"  # wrong field count AND not UTF-8 (the case pyarrow cannot hand over)
    b'302,"multi\nline",2.00\n'
    b"303,bad \xff\xfe,3.00\n"  # right field count, not UTF-8
    b"\n"
    b"305,ok,5.00\n"
    b"306,x,not-a-number\n"
    b"307,last \xc3\xa9,7.00\n"
)
BODY = b"id,name,amount\n" + GOOD + TAIL


def _project(tmp_path: Path, files: dict[str, bytes]) -> Project:
    (tmp_path / "drops").mkdir()
    for name, data in files.items():
        (tmp_path / "drops" / name).write_bytes(data)
    (tmp_path / "lakeforge.yml").write_text(SOURCE)
    return Project(tmp_path)


def _rows(project: Project) -> list[tuple[Any, ...]]:
    rows = project.lake.read("bronze.drops").to_pylist()
    return sorted((r["_lf_file"], r["_lf_row"], r["id"], r["name"], r["amount"]) for r in rows)


def _expected_rows(file: str) -> list[tuple[Any, ...]]:
    good = [(file, i, i, f"name-{i}", D(f"{i}.50")) for i in range(1, 301)]
    return good + [
        (file, 302, 302, "multi\nline", D("2.00")),
        (file, 305, 305, "ok", D("5.00")),
        (file, 307, 307, "last é", D("7.00")),
    ]


def _expected_bad(file: str) -> list[tuple[Any, ...]]:
    return [
        (file, 302, 301, "expected 3 fields, found 4", "301,caf\\xe9,1.00,extra"),
        (file, 305, 303, "column name: not valid utf-8", "303,bad \\xff\\xfe,3.00"),
        (file, 308, 306, "column amount: 'not-a-number' is not a valid decimal(12,2)", "306,x,not-a-number"),
    ]


def test_rows_that_are_not_utf8_are_quarantined_and_the_rest_loads_once(tmp_path: Path) -> None:
    project = _project(tmp_path, {"a.csv": BODY, "b.csv.gz": gzip.compress(BODY)})
    result = project.run()
    assert result.ok and result.tables[0].rows == 2 * 303
    assert _rows(project) == _expected_rows("a.csv") + _expected_rows("b.csv.gz")
    bad = sorted((r["file"], r["line"], r["offset"], r["reason"], r["raw"]) for r in project.quarantine())
    assert bad == _expected_bad("a.csv") + _expected_bad("b.csv.gz")
    again = project.run()  # nothing new: no row and no bad record twice
    assert again.ok and len(project.lake.read("bronze.drops")) == 2 * 303 and len(project.quarantine()) == 6


def test_a_bad_row_in_the_first_block_and_a_file_with_only_bad_bytes(tmp_path: Path) -> None:
    first = b"id,name,amount\n1,\xff,1.00,x\n2,two,2.00\n"
    only_bad = b"id,name,amount\n\xff\xfe\n"
    project = _project(tmp_path, {"first.csv": first, "only.csv": only_bad})
    result = project.run()
    assert result.ok
    assert _rows(project) == [("first.csv", 2, 2, "two", D("2.00"))]
    bad = sorted((r["file"], r["line"], r["offset"], r["reason"], r["raw"]) for r in project.quarantine())
    assert bad == [
        ("first.csv", 2, 1, "expected 3 fields, found 4", "1,\\xff,1.00,x"),
        ("only.csv", 2, 1, "expected 3 fields, found 1", "\\xff\\xfe"),
    ]
