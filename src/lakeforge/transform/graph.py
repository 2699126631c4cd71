"""The dependency graph of models, from the tables their SQL reads.

An input is either another model or a table already in the lake (a bronze table loaded by ``lakeforge
run``). Anything else, and any cycle, is an error naming the model's file.

Selection, as in ``lakeforge build --select``: ``gold.fact_order_line`` (one model), ``gold.*`` (glob),
``gold.fact_order_line+`` (it and everything downstream), ``+gold.fact_order_line`` (it and everything
upstream).
"""

from __future__ import annotations

import fnmatch
import heapq
from collections.abc import Iterable

from lakeforge.errors import ModelError
from lakeforge.transform.model import Model


class Graph:
    def __init__(self, models: list[Model], lake_tables: Iterable[str]) -> None:
        self.models = {m.name: m for m in models}
        self.lake_tables = set(lake_tables)
        self.upstream: dict[str, list[str]] = {}
        self.downstream: dict[str, list[str]] = {name: [] for name in self.models}
        for model in models:
            for name in model.inputs:
                if name == model.name:
                    raise ModelError(f"{model.path}: model {model.name} reads itself")
                if name not in self.models and name not in self.lake_tables:
                    raise ModelError(
                        f"{model.path}: reads {name}, which is neither a model nor a lake table"
                        + _close(name, [*self.models, *self.lake_tables])
                        + ("; load it first with: lakeforge run" if name.startswith("bronze.") else "")
                    )
            for name in model.check_inputs:
                if name not in self.models and name not in self.lake_tables:
                    raise ModelError(
                        f"{model.path}: a check reads {name}, which is neither a model nor a lake table"
                        + _close(name, [*self.models, *self.lake_tables])
                    )
            unread = [n for n in model.config.as_of if n not in model.inputs]
            if unread:
                raise ModelError(f"{model.path}: as_of names {', '.join(unread)}, which the model does not read")
            deps = {*model.inputs, *model.check_inputs} - {model.name}
            self.upstream[model.name] = sorted(n for n in deps if n in self.models)
            for parent in self.upstream[model.name]:
                self.downstream[parent].append(model.name)
        self.order = self._topological()

    def _topological(self) -> list[str]:
        waiting = {name: len(ups) for name, ups in self.upstream.items()}
        ready = [name for name, n in waiting.items() if n == 0]
        heapq.heapify(ready)
        order: list[str] = []
        while ready:
            name = heapq.heappop(ready)
            order.append(name)
            for child in self.downstream[name]:
                waiting[child] -= 1
                if waiting[child] == 0:
                    heapq.heappush(ready, child)
        if len(order) < len(self.models):
            cycle = self._cycle({n for n in self.models if n not in order})
            files = ", ".join(str(self.models[n].path) for n in cycle[:-1])
            raise ModelError(f"models form a cycle: {' -> '.join(cycle)} (files: {files})")
        return order

    def _cycle(self, stuck: set[str]) -> list[str]:
        start = min(stuck)
        path, seen = [start], {start}
        node = start
        while True:
            node = min(n for n in self.upstream[node] if n in stuck)
            if node in seen:
                return [*path[path.index(node) :], node]
            path.append(node)
            seen.add(node)

    def closure(self, name: str, direction: str) -> set[str]:
        """Every model (and, upstream, lake table) reachable from ``name``, excluding itself."""
        edges = self.downstream if direction == "down" else {m.name: m.inputs for m in self.models.values()}
        found: set[str] = set()
        stack = list(edges.get(name, []))
        while stack:
            node = stack.pop()
            if node not in found:
                found.add(node)
                stack.extend(edges.get(node, []))
        return found

    def select(self, patterns: list[str] | None) -> list[str]:
        """Model names matched by ``patterns`` (all when None), in build order."""
        if not patterns:
            return list(self.order)
        chosen: set[str] = set()
        for raw in patterns:
            pattern = raw.strip()
            up, down = pattern.startswith("+"), pattern.endswith("+")
            core = pattern.strip("+")
            matched = [n for n in self.models if fnmatch.fnmatchcase(n, core)]
            if not matched:
                raise ModelError(f"--select {raw}: no model matches; models: {', '.join(self.order) or '(none)'}")
            for name in matched:
                chosen.add(name)
                if down:
                    chosen |= self.closure(name, "down")
                if up:
                    chosen |= {n for n in self.closure(name, "up") if n in self.models}
        return [n for n in self.order if n in chosen]

    def edges(self) -> list[tuple[str, str]]:
        """(upstream table, model) pairs: the table-level lineage."""
        return sorted((src, m.name) for m in self.models.values() for src in m.inputs)


def _close(name: str, known: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]}?)" if close else ""
