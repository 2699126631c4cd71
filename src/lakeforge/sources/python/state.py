"""``lakeforge.State``: what a Python source yields to mark a safe point with its new state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class State:
    """``yield State({"page": 7})``: the records yielded before it may be committed with this state; the next
    run (or the run after a crash) calls the function again with it."""

    values: dict[str, Any] = field(default_factory=dict)
