"""`make demo` end to end, in a copy of demo/ with its own databases: the lake's cross-source figures must
equal the same figures computed directly from PostgreSQL and MariaDB (run_demo.py exits 1 otherwise), and
running it twice gives the same result."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path


def test_demo_twice_matches_sources(demo: tuple[Path, dict[str, str]]) -> None:
    folder, env = demo
    outputs = []
    for _ in range(2):
        done = subprocess.run([sys.executable, str(folder / "run_demo.py")], env=env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        outputs.append(done.stdout)
    for out in outputs:
        assert "lake and sources agree: 22 countries, total revenue 9,604,190.61" in out
    # the figures table is identical on both runs (run ids and timings aside)
    table = [re.findall(r"│ (\w[\w ]*?) +│ ([\d,.]+) +│ (\d+) +│", o) for o in outputs]
    assert table[0] and table[0] == table[1]
