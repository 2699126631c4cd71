"""A project with MySQL/MariaDB cdc tables but without the ``cdc`` extra fails at check time and before a
run loads anything, saying which ``pip install`` fixes it (the binlog reader's package is hidden from import
here). PostgreSQL CDC needs no extra: its reader uses psycopg 3, a base dependency."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lakeforge import Project
from lakeforge.errors import MissingExtraError
from tests.conftest import write_project

CONFIG = """
lake: {path: ./lake}
sources:
  crm:
    type: postgres
    url: postgresql://nobody@127.0.0.1:1/crm
    include: []
    tables: {orders: {mode: cdc}}
  shop:
    type: mysql
    url: mysql://nobody@127.0.0.1:1/shop
    include: []
    defaults: {mode: cdc}
"""


@pytest.fixture
def no_cdc_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pymysqlreplication", None)  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "psycopg2", None)  # type: ignore[arg-type]


def test_check_says_how_to_install(no_cdc_extra: None, tmp_path: Path) -> None:
    results = {r.source: r for r in Project(write_project(tmp_path, CONFIG)).check()}
    assert not results["shop"].ok
    assert results["shop"].error == (
        "source 'shop': mysql-replication is not installed; install it with: pip install 'lakeforge[cdc]'"
    )
    crm = results["crm"]
    assert not crm.ok and crm.error is not None  # nothing listens on port 1: it fails to connect ...
    assert "is not installed" not in crm.error  # ... and needs no extra


def test_run_fails_before_loading(no_cdc_extra: None, tmp_path: Path) -> None:
    project = Project(write_project(tmp_path, CONFIG))
    with pytest.raises(MissingExtraError, match=r"mysql-replication .* pip install 'lakeforge\[cdc\]'"):
        project.run()
    assert not (tmp_path / "lake").exists()  # not even a run history row


def test_no_cdc_tables_need_no_extra(no_cdc_extra: None, tmp_path: Path) -> None:
    config = CONFIG.replace("defaults: {mode: cdc}", "defaults: {mode: full}")
    results = Project(write_project(tmp_path, config)).check()
    assert all(r.error and "is not installed" not in r.error for r in results)  # they fail to connect instead


def test_gtid_order_check() -> None:
    """A GTID must grow within its domain (what gtid_strict_mode guarantees); other domains are independent."""
    import pytest

    from lakeforge.errors import SourceError
    from lakeforge.sources.mysql.binlog import check_order

    check_order("src", "", "0-1-1")
    check_order("src", "0-1-41", "0-2-42")  # another server in the same domain, still growing
    check_order("src", "0-1-41,1-1-900", "1-3-901")
    check_order("src", "0-1-41,1-1-900", "2-1-1")  # a new domain
    for current, gtid in (("0-1-41", "0-1-41"), ("0-1-41", "0-2-40"), ("1-1-5,0-1-41", "0-1-3")):
        with pytest.raises(SourceError, match=f"binlog GTID {gtid} follows 0-1-41 in domain 0"):
            check_order("src", current, gtid)
