"""``engine:`` in lakeforge.yml, the extractor it selects, and the SQL the distributed snapshot relies on."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeforge import Project
from lakeforge.config import load_config
from lakeforge.distributed.executor import RayExecutor
from lakeforge.distributed.mysql import guard
from lakeforge.distributed.snapshot import SNAPSHOTS, snapshot_class
from lakeforge.errors import ConfigError
from tests.conftest import write_project


def test_default_engine_is_local_and_loads_in_one_process(tmp_path: Path) -> None:
    write_project(tmp_path, "sources: {}\n")
    assert load_config(tmp_path).engine.type == "local"
    assert Project(tmp_path).extractor is None


def test_ray_engine_builds_a_ray_extractor(tmp_path: Path) -> None:
    body = "engine: {type: ray, address: 'ray://head:10001', task_cpus: 0.25}\nrun: {partitions: 16}\n"
    write_project(tmp_path, body)
    config = load_config(tmp_path)
    assert config.engine.type == "ray" and config.engine.address == "ray://head:10001"
    assert config.engine.task_cpus == 0.25 and config.run.partitions == 16
    extractor = Project(tmp_path).extractor
    assert extractor is not None and isinstance(extractor.executor, RayExecutor)
    assert extractor.retries == 3 and extractor.snapshot_timeout == 120.0


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("engine: {type: spark}\n", "local"),  # the tag's valid choices are named
        ("engine: {type: ray, adress: x}\n", "address"),  # a typo suggests the key
        ("engine: {type: ray, task_cpus: 0}\n", "task_cpus"),
    ],
)
def test_bad_engine_config_names_the_key(tmp_path: Path, body: str, expected: str) -> None:
    write_project(tmp_path, body)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path)
    assert "engine" in str(err.value) and expected in str(err.value)


def test_every_built_in_source_shares_its_snapshot() -> None:
    assert set(SNAPSHOTS) == {"postgres", "mysql"}
    assert all(snapshot_class(kind) is not None for kind in SNAPSHOTS)
    assert snapshot_class("files") is None


def test_mariadb_guard_checks_the_transaction_and_the_binlog_position() -> None:
    assert guard("") == "(SELECT 1 UNION ALL SELECT 2 FROM DUAL WHERE @@in_transaction <> 1) = 1"
    text = guard("binlog.000003:1234")
    assert "BINLOG_SNAPSHOT_FILE') <> 'binlog.000003'" in text and "BINLOG_SNAPSHOT_POSITION') <> '1234'" in text
