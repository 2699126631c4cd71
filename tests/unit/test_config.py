"""lakeforge.yml validation: every error names the file, the key path and the valid choices, never a password."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeforge.config import load_config
from lakeforge.config.models import parse_lookback
from lakeforge.errors import ConfigError
from tests.conftest import write_project

SECRET = "s3cr3t-Pa55"
BASE = """
lake: {path: ./lake}
sources:
  crm:
    type: postgres
    url: postgresql://app@db:5432/crm
"""


def error_for(tmp_path: Path, body: str) -> str:
    write_project(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    message = str(info.value)
    assert str(tmp_path / "lakeforge.yml") in message
    assert SECRET not in message
    return message


def test_valid_config_with_env_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_PW", SECRET)
    write_project(tmp_path, BASE + "    password: ${CRM_PW}\n    tables:\n      orders: {mode: incremental, "
                  "cursor: [updated_at, id], lookback: 2h}\n")
    config = load_config(tmp_path)
    source = config.sources["crm"]
    assert source.password is not None and source.password.get_secret_value() == SECRET
    assert SECRET not in repr(config) and SECRET not in str(config.model_dump())
    assert source.tables["orders"].cursor == ["updated_at", "id"]
    assert parse_lookback(source.tables["orders"].lookback or 0) == 7200


def test_unknown_key_suggests_and_lists_valid_keys(tmp_path: Path) -> None:
    message = error_for(tmp_path, BASE + "    tables:\n      orders: {mode: incremental, cursr: [id]}\n")
    assert "sources.crm.tables.orders.cursr: unknown key" in message
    assert "did you mean 'cursor'?" in message
    assert "valid keys:" in message and "merge_key" in message and "lookback" in message


def test_unknown_top_level_and_source_keys(tmp_path: Path) -> None:
    message = error_for(tmp_path, BASE + "    hostt: x\nrunn: {}\n")
    assert "sources.crm.hostt: unknown key (did you mean 'host'?)" in message
    assert "runn: unknown key (did you mean 'run'?)" in message


def test_wrong_source_type(tmp_path: Path) -> None:
    message = error_for(tmp_path, BASE.replace("type: postgres", "type: postgress"))
    assert "sources.crm.type: 'postgress' is not a valid source type" in message
    assert "'postgres'" in message and "'mysql'" in message


def test_wrong_mode(tmp_path: Path) -> None:
    message = error_for(tmp_path, BASE + "    tables:\n      orders: {mode: incremntal}\n")
    assert "sources.crm.tables.orders.mode: 'incremntal' is not valid" in message
    assert "'full'" in message and "'incremental'" in message and "'cdc'" in message


def test_missing_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_PASSWORD", raising=False)
    message = error_for(tmp_path, BASE + "    password: ${NOPE_PASSWORD}\n")
    assert "sources.crm.password: environment variable NOPE_PASSWORD is not set" in message
    assert ".env" in message


def test_bad_lookback(tmp_path: Path) -> None:
    tables = "    tables:\n      orders: {mode: incremental, cursor: id, lookback: 2 weeks}\n"
    message = error_for(tmp_path, BASE + tables)
    assert "sources.crm.tables.orders.lookback" in message
    assert "'2 weeks' is not a duration" in message and "15m" in message


def test_password_never_in_messages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a bad value next to a password, a password given twice, and a password of the wrong type
    monkeypatch.setenv("PW", SECRET)
    error_for(tmp_path, BASE + "    password: ${PW}\n    port: notaport\n")
    body = BASE.replace("postgresql://app@db", f"postgresql://app:{SECRET}@db") + "    password: ${PW}\n"
    assert "password is given twice" in error_for(tmp_path, body)
    assert "password" in error_for(tmp_path, BASE + f"    password: [{SECRET}]\n")


def test_env_override_and_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEFORGE__RUN__RETRIES", "7")
    monkeypatch.delenv("DOTENV_PW", raising=False)
    (tmp_path / ".env").write_text(f"DOTENV_PW={SECRET}\n")
    write_project(tmp_path, BASE + "    password: ${DOTENV_PW}\n")
    config = load_config(tmp_path)
    assert config.run.retries == 7
    source = config.sources["crm"]
    assert source.password is not None and source.password.get_secret_value() == SECRET
    monkeypatch.delenv("DOTENV_PW")


def test_bad_schema_change_and_target_file_size(tmp_path: Path) -> None:
    message = error_for(tmp_path, BASE.replace("lake: {path: ./lake}", "lake: {path: ./lake, target_file_size: 0}")
                        + "    tables:\n      orders: {schema_change: drop}\n")
    assert "sources.crm.tables.orders.schema_change: 'drop' is not valid" in message and "'replace'" in message
    assert "lake.target_file_size" in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file; create one with: lakeforge init"):
        load_config(tmp_path)


@pytest.mark.parametrize(("value", "seconds"), [("30s", 30), ("15m", 900), ("2h", 7200), ("1d", 86400), (5, 5)])
def test_parse_lookback(value: str | int, seconds: float) -> None:
    assert parse_lookback(value) == seconds


LAKE_SOURCES = """
sources:
  crm: {type: postgres, url: postgresql://app@db:5432/crm}
"""


def test_lake_config_iceberg_s3_rest_with_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3_SECRET", SECRET)
    write_project(tmp_path, """
lake:
  format: iceberg
  path: s3://lake/wh
  storage: {endpoint: 'http://127.0.0.1:8333', region: eu-west-1, access_key_id: AK, secret_access_key: '${S3_SECRET}'}
  catalog: {type: rest, uri: 'http://127.0.0.1:8181', credential: 'id:${S3_SECRET}'}
  maintenance: {compact_every: 50, target_file_mb: 64, retain: 2d}
""" + LAKE_SOURCES)
    lake = load_config(tmp_path).lake
    assert lake.format == "iceberg" and lake.catalog is not None and lake.catalog.type == "rest"
    assert lake.storage.secret_access_key is not None and lake.storage.secret_access_key.get_secret_value() == SECRET
    assert SECRET not in repr(lake) and SECRET not in str(lake.model_dump())
    assert lake.maintenance.retain_seconds == 2 * 86400 and lake.maintenance.compact_every == 50


def test_unknown_catalog_type_names_the_file_key_and_choices(tmp_path: Path) -> None:
    message = error_for(tmp_path, "lake: {format: iceberg, catalog: {type: glue}}\n" + LAKE_SOURCES)
    assert "lake.catalog" in message and "'glue'" in message and "'sql', 'rest'" in message


def test_unknown_format_and_misplaced_keys(tmp_path: Path) -> None:
    message = error_for(tmp_path, "lake: {format: hudi}\n" + LAKE_SOURCES)
    assert "unknown format 'hudi'; valid: delta, iceberg" in message
    message = error_for(tmp_path, "lake: {catalog: {type: sql}}\n" + LAKE_SOURCES)
    assert "catalog is for format: iceberg" in message
    message = error_for(tmp_path, "lake: {storage: {endpont: x}}\n" + LAKE_SOURCES)
    assert "lake.storage.endpont" in message and "endpoint" in message
    assert "retain" in error_for(tmp_path, "lake: {maintenance: {retain: soon}}\n" + LAKE_SOURCES)
