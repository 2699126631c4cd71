"""``lake/arrow_import.py``: ``pyarrow.dataset`` without pandas, and pyarrow still sees pandas once it is imported.

Each case runs in a fresh interpreter (the point is what a process imports)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pandas")


def _run(code: str, tmp_path: Path) -> dict[str, object]:
    script = tmp_path / "case.py"
    script.write_text(code, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_dataset_without_pandas_then_pandas_works(tmp_path: Path) -> None:
    out = _run(
        """
import json, sys
from lakeforge.lake.arrow_import import import_dataset
import_dataset()
before = "pandas" in sys.modules
import pyarrow as pa, pyarrow.dataset as ds, pyarrow.parquet as pq
pq.write_table(pa.table({"id": [1, 2, 3], "v": ["a", None, "c"]}), sys.argv[0] + ".parquet")
scanned = ds.dataset(sys.argv[0] + ".parquet").to_table(filter=ds.field("id") >= 2).to_pylist()
after_scan = "pandas" in sys.modules
import pandas as pd
series = pa.array(pd.Series([1, None, 3], dtype="Int64"))
frame = pd.DataFrame({"a": [1, 2], "c": pd.array([5, None], dtype="Int64"), "t": pd.to_datetime(["2020-01-01", None])})
table = pa.Table.from_pandas(frame, preserve_index=False)
back = table.to_pandas()
print(json.dumps({
    "before": before, "after_scan": after_scan, "scanned": scanned,
    "series": [str(series.type), series.to_pylist()],
    "table": [str(t) for t in table.schema.types], "rows": table.to_pylist()[1]["c"],
    "roundtrip": back.equals(frame),
}, default=str))
""",
        tmp_path,
    )
    assert out["before"] is False and out["after_scan"] is False
    assert out["scanned"] == [{"id": 2, "v": None}, {"id": 3, "v": "c"}]
    # pyarrow treats the pandas objects as pandas (a nullable Int64 series keeps its null, not NaN or object)
    assert out["series"] == ["int64", [1, None, 3]]
    table_types = list(out["table"])  # type: ignore[call-overload]
    assert table_types[:2] == ["int64", "int64"] and table_types[2].startswith("timestamp[")
    assert out["rows"] is None
    assert out["roundtrip"] is True


def test_pandas_already_imported_is_left_alone(tmp_path: Path) -> None:
    out = _run(
        """
import json, sys
import pandas as pd
finders = len(sys.meta_path)
from lakeforge.lake.arrow_import import import_dataset
import_dataset()
import pyarrow as pa
print(json.dumps({"finders": len(sys.meta_path) - finders,
                  "series": pa.array(pd.Series([1.5, None])).to_pylist()}))
""",
        tmp_path,
    )
    assert out == {"finders": 0, "series": [1.5, None]}


def test_list_conversion_without_pandas_then_pandas_works(tmp_path: Path) -> None:
    out = _run(
        """
import json, sys
from lakeforge.lake.arrow_import import skip_pandas_check
skip_pandas_check()
import decimal, pyarrow as pa
converted = pa.array([decimal.Decimal("1.50"), None], pa.decimal128(12, 2)).to_pylist()
after_lists = "pandas" in sys.modules
import pandas as pd
series = pa.array(pd.Series([1, None, 3], dtype="Int64"))
print(json.dumps({"after_lists": after_lists, "converted": [str(v) for v in converted],
                  "series": [str(series.type), series.to_pylist()]}))
""",
        tmp_path,
    )
    assert out["after_lists"] is False
    assert out["converted"] == ["1.50", "None"]
    assert out["series"] == ["int64", [1, None, 3]]  # pyarrow sees the pandas object once pandas is imported
