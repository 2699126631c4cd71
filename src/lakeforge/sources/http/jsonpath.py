"""The small JSONPath subset record paths use: ``$``, ``.name``, ``['name']``, ``[n]`` and ``[*]``.

``$.data[*]`` yields each element of ``data``; ``$.meta.next_cursor`` the one value (or nothing when a step
is missing); ``$`` the document itself (a list document yields its elements when the path ends in ``[*]``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

_STEP = re.compile(r"\.([A-Za-z_$][\w$-]*)|\[(\*|-?\d+|'[^']*'|\"[^\"]*\")\]")


def parse(path: str) -> list[str | int]:
    """Steps of ``path`` (``"*"`` for a wildcard); ValueError naming the path when it is not in the subset."""
    text = path.strip()
    if not text.startswith("$"):
        raise ValueError(f"'{path}' is not a JSONPath: it must start with $ (e.g. $.data[*])")
    steps: list[str | int] = []
    position = 1
    while position < len(text):
        match = _STEP.match(text, position)
        if match is None:
            raise ValueError(f"'{path}': cannot read from '{text[position:]}'; supported: $, .name, ['name'], [n], [*]")
        name, index = match.groups()
        if name is not None:
            steps.append(name)
        elif index == "*":
            steps.append("*")
        elif index[0] in "'\"":
            steps.append(index[1:-1])
        else:
            steps.append(int(index))
        position = match.end()
    return steps


def find(document: Any, steps: list[str | int]) -> Iterator[Any]:
    """Every value ``steps`` reach in ``document``."""
    if not steps:
        yield document
        return
    step, rest = steps[0], steps[1:]
    if step == "*":
        if isinstance(document, list):
            for item in document:
                yield from find(item, rest)
        elif isinstance(document, dict):
            for item in document.values():
                yield from find(item, rest)
    elif isinstance(step, int):
        if isinstance(document, list) and -len(document) <= step < len(document):
            yield from find(document[step], rest)
    elif isinstance(document, dict) and step in document:
        yield from find(document[step], rest)


def first(document: Any, steps: list[str | int]) -> Any:
    """The first value ``steps`` reach, or None."""
    return next(find(document, steps), None)
