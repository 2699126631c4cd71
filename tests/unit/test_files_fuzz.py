"""Fuzz the file readers (hypothesis): nothing crashes and nothing is silently dropped. Every generated record
is either loaded with exactly its values, or quarantined with its line; blank lines are the only records
skipped, and they are counted."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakeforge.config.models import TableConfig
from lakeforge.sources.base import TableRef
from lakeforge.sources.files.config import FilesSourceConfig
from lakeforge.sources.files.source import FilesSource
from lakeforge.sources.records import ReadRequest

SETTINGS = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "60")),  # 600 passed too
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
COLUMNS = ["a", "b", "c"]

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\x00"), max_size=12)
field = st.one_of(text, st.sampled_from([",", '"', '""', "a,b", 'x"y', "\n", "line\nbreak", "NULL", " ", "12.5"]))
good_row = st.lists(field, min_size=3, max_size=3)
short_or_long = st.lists(field.filter(lambda f: "\n" not in f), min_size=1, max_size=5).filter(lambda r: len(r) != 3)
bad_utf8 = st.tuples(field, field).map(lambda p: [p[0], "\udcff", p[1]])  # becomes the byte \xff
short_or_long_utf8 = short_or_long.map(lambda r: [r[0] + "\udcfe", *r[1:]])  # wrong count AND not UTF-8
record = st.one_of(good_row, good_row, good_row, short_or_long, bad_utf8, short_or_long_utf8)


def _field_bytes(value: str) -> bytes:
    raw = value.encode("utf-8", "surrogateescape")
    if any(c in value for c in (",", '"', "\n")) or value.startswith(" ") or value == "":
        return b'"' + raw.replace(b'"', b'""') + b'"'
    return raw


def _read(tmp: Path, name: str, body: bytes, fmt: str, **options: Any) -> tuple[list[dict[str, Any]], list[Any]]:
    folder = tmp / "drops"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    (folder / name).write_bytes(body)
    config = FilesSourceConfig.model_validate({"type": "files", "path": str(folder), "format": fmt, **options})
    source = FilesSource("fz", config)
    plan = source.describe(TableRef("", "fz"), TableConfig())
    rows: list[dict[str, Any]] = []
    bad: list[Any] = []
    for chunk in source.read(plan, ReadRequest({}, 1000)):
        if chunk.batch is not None:
            rows += pa.Table.from_batches([chunk.batch]).to_pylist()
        bad += chunk.bad
    return rows, bad


@SETTINGS
@given(records=st.lists(record, min_size=1, max_size=25))
def test_csv_every_record_is_loaded_or_quarantined(tmp_path: Path, records: list[list[str]]) -> None:
    body = b",".join(c.encode() for c in COLUMNS) + b"\n"
    lines, line = [], 2
    for fields in records:
        lines.append(line)
        encoded = b",".join(_field_bytes(f) for f in fields) + b"\n"
        line += encoded.count(b"\n")
        body += encoded
    strings = {c: "string" for c in COLUMNS}
    rows, bad = _read(tmp_path, "f.csv", body, "csv", csv={"null_values": []}, sample_bytes=64, schema=strings)
    expected_good = [
        (i, r) for i, r in enumerate(records) if len(r) == 3 and "\udcff" not in r and any(f != "" for f in r)
    ]
    blank = [r for r in records if len(r) == 3 and all(f == "" for f in r)]
    assert len(rows) + len(bad) + len(blank) == len(records)
    assert [(row["_lf_row"], [row[c] for c in COLUMNS]) for row in rows] == [(i + 1, r) for i, r in expected_good]
    expected_bad = [i for i, r in enumerate(records) if len(r) != 3 or "\udcff" in r]
    assert sorted(b.offset for b in bad) == [i + 1 for i in expected_bad]
    assert sorted(b.line for b in bad) == [lines[i] for i in expected_bad]
    assert all(b.file == "f.csv" and b.reason for b in bad)


lines_strategy = st.lists(
    st.one_of(
        st.dictionaries(st.sampled_from(["id", "name", "n"]), st.one_of(st.integers(-10, 10), text, st.none())),
        st.sampled_from(["{", "[1]", "42", '"s"', '{"id": }', "\udcff", "null", "  "]),
        text.filter(lambda t: "\n" not in t),
    ),
    min_size=1,
    max_size=25,
)


@SETTINGS
@given(lines=lines_strategy)
def test_json_lines_every_line_is_loaded_or_quarantined(tmp_path: Path, lines: list[Any]) -> None:
    encoded = [json.dumps(x).encode() if isinstance(x, dict) else x.encode("utf-8", "surrogateescape") for x in lines]
    if encoded and not encoded[0].strip() and not any(e.strip() for e in encoded):
        encoded.append(b"{}")
        lines.append({})
    body = b"\n".join(encoded) + b"\n"
    rows, bad = _read(tmp_path, "f.jsonl", body, "json")
    blank = [e for e in encoded if not e.strip()]
    assert len(rows) + len(bad) + len(blank) == len(lines)
    good_lines = sorted(b for b in [row["_lf_row"] for row in rows])
    bad_lines = sorted(b.line for b in bad)
    assert sorted(good_lines + bad_lines) == [i + 1 for i, e in enumerate(encoded) if e.strip()]
    for row in rows:
        original = lines[row["_lf_row"] - 1]
        assert isinstance(original, dict)
        assert {k: v for k, v in row.items() if not k.startswith("_lf_") and v is not None} == {
            k: v for k, v in original.items() if v is not None
        }


@SETTINGS
@given(body=st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_a_reader(tmp_path: Path, body: bytes) -> None:
    for name, fmt in (("f.csv", "csv"), ("f.jsonl", "json")):
        rows, bad = _read(tmp_path, name, body, fmt, sample_bytes=64)
        assert all(b.reason and b.file == name for b in bad)
        assert len(rows) + len(bad) <= body.count(b"\n") + 1
