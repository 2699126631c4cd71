"""Table-level lineage, parsed from the models' SQL (the same graph ``build`` runs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lakeforge.errors import ModelError

if TYPE_CHECKING:
    from lakeforge.transform.graph import Graph


@dataclass
class Lineage:
    table: str | None
    upstream: list[str] = field(default_factory=list)
    """Every table the table is built from, nearest first."""
    downstream: list[str] = field(default_factory=list)
    """Every model built from the table, in build order."""
    edges: list[tuple[str, str]] = field(default_factory=list)
    """(upstream, model) pairs involved."""
    files: dict[str, str] = field(default_factory=dict)
    """Model -> its file."""


def lineage(graph: Graph, table: str | None) -> Lineage:
    edges = graph.edges()
    files = {n: str(m.path) for n, m in graph.models.items()}
    if table is None:
        return Lineage(None, edges=edges, files=files)
    known = set(graph.models) | graph.lake_tables
    if table not in known:
        raise ModelError(f"lineage: {table} is neither a model nor a lake table")
    parents: dict[str, set[str]] = {}
    children: dict[str, set[str]] = {}
    for up, down in edges:
        parents.setdefault(down, set()).add(up)
        children.setdefault(up, set()).add(down)
    upstream = _walk(table, parents)
    downstream = _walk(table, children)
    order = {n: i for i, n in enumerate(graph.order)}
    involved = {table, *upstream, *downstream}
    return Lineage(
        table,
        upstream=upstream,
        downstream=sorted(downstream, key=lambda n: order.get(n, -1)),
        edges=[
            (a, b)
            for a, b in edges
            if a in involved and b in involved and (a in upstream or a == table or b in downstream)
        ],
        files={n: f for n, f in files.items() if n in involved},
    )


def _walk(start: str, links: dict[str, set[str]]) -> list[str]:
    """Breadth-first: nearest tables first, each once."""
    seen: list[str] = []
    frontier = sorted(links.get(start, ()))
    while frontier:
        nxt: list[str] = []
        for node in frontier:
            if node not in seen:
                seen.append(node)
                nxt.extend(sorted(links.get(node, ())))
        frontier = nxt
    return seen
