"""The publish: and serve: sections: strict keys with suggestions, valid target types listed, passwords
secret; the destination registry with its dotted-path escape hatch; capability flags as data."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from lakeforge.config import load_config
from lakeforge.errors import ConfigError
from lakeforge.serve.config import PublishTarget
from lakeforge.serve.destinations import DESTINATIONS, create_destination
from lakeforge.serve.destinations.mysql import MySQLDestination
from lakeforge.serve.destinations.postgres import PostgresDestination
from lakeforge.serve.destinations.text import encode, escaped, hex_digits
from lakeforge.serve.publish import select, target_names
from tests.conftest import write_project

SECRET = "s3cr3t-Pa55"
BASE = """
lake: {path: ./lake}
publish:
  olap:
    type: mysql
    url: mysql://report:${OLAP_PW}@127.0.0.1:3306/olap
    tables: ["gold.*"]
"""


def test_valid_publish_and_serve_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLAP_PW", SECRET)
    monkeypatch.setenv("ANALYST_PW", SECRET)
    write_project(tmp_path, BASE + "    mode: upsert\n    options:\n"
                  "      gold.f: {primary_key: id, indexes: [[a, b]]}\n"
                  "serve:\n  sql: {port: 6543, users: {analyst: '${ANALYST_PW}'}}\n")
    config = load_config(tmp_path)
    target = config.publish["olap"]
    assert (target.host, target.port, target.user, target.database, target.mode) == (
        "127.0.0.1", 3306, "report", "olap", "upsert")
    assert target.secret() == SECRET and target.options["gold.f"].primary_key == ["id"]
    assert config.serve.sql.port == 6543 and config.serve.sql.users["analyst"].get_secret_value() == SECRET
    assert SECRET not in repr(config) and SECRET not in str(config.model_dump())


def test_unknown_publish_key_and_bad_mode_and_type(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLAP_PW", SECRET)
    for body, expected in (
        (BASE + "    tabels: [x]\n", "publish.olap.tabels: unknown key (did you mean 'tables'?)"),
        (BASE + "    mode: merge\n", "'replace' or 'upsert'"),
        (BASE.replace("type: mysql", "type: oracle"), "unknown target type 'oracle'; valid: postgres, mysql"),
        (BASE + "serve:\n  sql: {prot: 1}\n", "serve.sql.prot: unknown key (did you mean 'port'?)"),
    ):
        write_project(tmp_path, body)
        with pytest.raises(ConfigError) as info:
            load_config(tmp_path)
        assert expected in str(info.value) and SECRET not in str(info.value)


class WarehouseDestination(PostgresDestination):
    """A third target speaking the PostgreSQL protocol: a new class, no new branches."""

    TYPE = "warehouse"
    SUPPORTS_UPSERT = False


def test_registry_and_dotted_path() -> None:
    assert set(DESTINATIONS) == {"postgres", "mysql"}
    cfg = PublishTarget(type="postgres", url="postgresql://u@h/db")
    assert isinstance(create_destination("a", cfg), PostgresDestination)
    custom = PublishTarget(type=f"{__name__}:WarehouseDestination", url="postgresql://u@h/db")
    dest = create_destination("w", custom)
    assert isinstance(dest, WarehouseDestination) and not dest.SUPPORTS_UPSERT
    with pytest.raises(ConfigError, match="cannot load type"):
        create_destination("x", PublishTarget(type="no.such.module:Thing", url="postgresql://u@h/db"))
    assert PostgresDestination.TRANSACTIONAL_DDL and not MySQLDestination.TRANSACTIONAL_DDL


def test_selection_and_name_clash() -> None:
    cfg = PublishTarget(type="postgres", url="postgresql://u@h/db", tables=["gold.*", "silver.c*"],
                        exclude=["gold.tmp_*"])
    names = ["bronze.x", "gold.a", "gold.tmp_1", "silver.customers", "silver.orders"]
    assert select(names, cfg) == ["gold.a", "silver.customers"]
    assert target_names("t", ["gold.a", "silver.customers"], cfg) == {"gold.a": "a", "silver.customers": "customers"}
    with pytest.raises(ConfigError, match="would both be published as 'a'"):
        target_names("t", ["gold.a", "silver.a"], cfg)


def test_text_encoding_escapes_and_nulls() -> None:
    batch = pa.record_batch({"s": pa.array(["a\tb", "c\\d\ne\r", None, "", "NULL"]),
                             "b": pa.array([b"\x00\xff", None, b"", b"ab", b"\n"])}).slice(0)
    assert encode(batch, [escaped, hex_digits]) == (
        b"a\\tb\t00ff\nc\\\\d\\ne\\r\t\\N\n\\N\t\n\t6162\nNULL\t0a\n")
    assert encode(batch.slice(3), [escaped, hex_digits]) == b"\t6162\nNULL\t0a\n"


def test_serve_group_keeps_an_existing_serve_command() -> None:
    """Merged with the scheduler's plain ``lakeforge serve`` (docs/operations.md), ``serve`` without a subcommand
    still runs it, with its options; ``serve sql`` and ``serve web`` are added beside it."""
    import click
    from click.testing import CliRunner

    from lakeforge.cli import serve as serve_cli
    from lakeforge.cli.common import Context, command

    calls: list[bool] = []

    @click.group()
    def main() -> None: ...

    @command(main, "serve")
    @click.option("--once", is_flag=True)
    def scheduler(ctx: Context, once: bool) -> int:
        """Run the scheduler."""
        calls.append(once)
        return 0

    serve_cli.register(main)
    runner = CliRunner()
    assert runner.invoke(main, ["serve", "--once"]).exit_code == 0 and calls == [True]
    help_text = runner.invoke(main, ["serve", "--help"]).output
    assert "--once" in help_text and "sql" in help_text and "web" in help_text
    assert "PostgreSQL wire protocol" in runner.invoke(main, ["serve", "sql", "--help"]).output
    assert calls == [True]
