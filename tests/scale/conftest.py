"""A local Ray cluster (head + two worker nodes) and throwaway PostgreSQL/MariaDB servers, all inside a
loopback-only network namespace: Ray listens on every interface, so it never runs outside one here.

These tests run only inside the namespace (``LAKEFORGE_IN_NETNS=1``): ``tests/integration/test_scale_out.py``
re-runs pytest on this folder under ``unshare -n`` (after ``ip link set lo up``). The machine's own database
servers are not reachable from a new namespace, so the session starts its own on the default ports
(127.0.0.1:5432 and :3306 are free in the namespace), which the shared fixtures and kits then use unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

IN_NAMESPACE = os.environ.get("LAKEFORGE_IN_NETNS") == "1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/scale/" not in str(item.fspath):
            continue
        item.add_marker(pytest.mark.integration)
        item.add_marker(pytest.mark.slow)
        if not IN_NAMESPACE:
            why = "runs in a loopback-only namespace: tests/integration/test_scale_out.py"
            item.add_marker(pytest.mark.skip(reason=why))


@pytest.fixture(scope="session", autouse=True)
def namespace_servers() -> Iterator[None]:
    if not IN_NAMESPACE:
        yield
        return
    from tests.servers import mariadb_server, postgres_server

    with postgres_server(5432), mariadb_server(3306):
        yield


@pytest.fixture(scope="session")
def ray_address(namespace_servers: None) -> Iterator[str]:
    """Head (no CPUs: it only schedules) + two worker nodes of 2 CPUs each, bound to 127.0.0.1."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "node_ip_address": "127.0.0.1", "include_dashboard": False},
    )
    for _ in range(2):
        cluster.add_node(num_cpus=2, node_ip_address="127.0.0.1")
    cluster.wait_for_nodes()
    try:
        yield str(cluster.address)
    finally:
        ray.shutdown()
        cluster.shutdown()


def ray_nodes() -> list[dict[str, Any]]:
    import ray

    return [n for n in ray.nodes() if n["Alive"]]
