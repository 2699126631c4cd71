"""``lakeforge init`` and URLs: strict parsing, no secret in the config, no silently dropped duplicate."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lakeforge import Project
from lakeforge.config.urls import UrlError, parse_db_url
from lakeforge.errors import ConfigError
from tests.conftest import write_project

PASSWORD = "p@ss:w/rd"


def init(project: Path, *sources: str) -> subprocess.CompletedProcess[str]:
    args = [a for s in sources for a in ("--source", s)]
    return subprocess.run([sys.executable, "-m", "lakeforge", "init", *args, "--project", str(project)],
                          capture_output=True, text=True, timeout=60)


def test_duplicate_source_names_in_init_are_an_error(tmp_path: Path) -> None:
    done = init(tmp_path / "p", "a=mysql://root@127.0.0.1:3306/x", "a=postgresql://u@127.0.0.1:5432/y")
    assert done.returncode == 1 and "--source a is given twice" in done.stderr
    assert not (tmp_path / "p" / "lakeforge.yml").exists()


def test_duplicate_keys_in_the_config_file_are_an_error(tmp_path: Path) -> None:
    write_project(tmp_path, """\
        sources:
          a:
            type: mysql
            url: mysql://root@127.0.0.1:3306/x
          a:
            type: postgres
            url: postgresql://u@127.0.0.1:5432/y
        """)
    with pytest.raises(ConfigError, match=r"lakeforge.yml: key 'a' is given twice in one mapping \(lines 2 and 5\)"):
        _ = Project(tmp_path).config


def test_a_password_with_reserved_characters_goes_whole_to_env(tmp_path: Path) -> None:
    done = init(tmp_path / "p", f"my=mysql://root:{PASSWORD}@127.0.0.1:3306/x")
    assert done.returncode == 0, done.stderr
    config = (tmp_path / "p" / "lakeforge.yml").read_text()
    for part in ("p@ss", "ss:w", "w/rd", "rd@", PASSWORD):
        assert part not in config
    assert "url: mysql://root@127.0.0.1:3306/x" in config and "password: ${MY_PASSWORD}" in config
    assert "%40" in done.stderr and "percent-encode" in done.stderr  # says how to write it next time
    source = Project(tmp_path / "p").config.sources["my"]
    assert source.password is not None and source.password.get_secret_value() == PASSWORD
    assert (source.host, source.port, source.database, source.user) == ("127.0.0.1", 3306, "x", "root")
    assert (tmp_path / "p" / ".env").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("password", ["pa ss#1", "it's", "d$ollar${X}", "ü€\\", "a\"b"])
def test_any_password_round_trips_through_env(tmp_path: Path, password: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from urllib.parse import quote

    monkeypatch.delenv("DB_PASSWORD", raising=False)  # .env never overrides the environment
    Project.init(tmp_path, {"db": f"postgresql://u:{quote(password, safe='')}@127.0.0.1:5432/d"})
    secret = Project(tmp_path).config.sources["db"].password
    monkeypatch.delenv("DB_PASSWORD", raising=False)
    assert secret is not None and secret.get_secret_value() == password
    assert password not in (tmp_path / "lakeforge.yml").read_text()


def test_an_unparseable_url_says_how_to_encode_and_hides_the_password(tmp_path: Path) -> None:
    done = init(tmp_path / "p", "my=mysql://root:sec#ret:99x@127.0.0.1:33o6/x")
    assert done.returncode == 1 and "percent-encode" in done.stderr and "%40" in done.stderr
    assert "sec#ret" not in done.stderr and "99x" not in done.stderr
    write_project(tmp_path / "q", "sources:\n  my:\n    type: mysql\n    url: mysql://root:sec/ret@h:1x/db\n")
    with pytest.raises(ConfigError) as caught:
        _ = Project(tmp_path / "q").config
    assert "percent-encode" in str(caught.value) and "sec/ret" not in str(caught.value)


def test_url_parsing() -> None:
    url = parse_db_url("mysql://root:p@ss:w/rd@127.0.0.1:3306/x")
    assert (url.user, url.password, url.host, url.port, url.database, url.ambiguous) == (
        "root", PASSWORD, "127.0.0.1", 3306, "x", True)
    assert parse_db_url("postgresql://u:p%40ss@[::1]:5432/d?sslmode=require").without_password() == (
        "postgresql://u@[::1]:5432/d?sslmode=require")
    assert not parse_db_url("postgresql://u:p%40ss@h/d").ambiguous
    with pytest.raises(UrlError, match="not a URL"):
        parse_db_url("127.0.0.1:5432/d")


def test_publish_target_urls_are_parsed_strictly_too() -> None:
    from lakeforge.serve.config import PublishTarget

    url = f"mysql://report:{PASSWORD}@127.0.0.1:3306/olap"
    target = PublishTarget.model_validate({"type": "mysql", "url": url})
    assert (target.user, target.host, target.port, target.database) == ("report", "127.0.0.1", 3306, "olap")
    assert target.secret() == PASSWORD


def test_a_bad_publish_url_names_the_key_and_hides_the_password(tmp_path: Path) -> None:
    write_project(tmp_path, "publish:\n  olap:\n    type: mysql\n    url: mysql://r:sec/ret@h:1x/db\n")
    with pytest.raises(ConfigError, match=r"publish\.olap: .*percent-encode") as caught:
        _ = Project(tmp_path).config
    assert "sec/ret" not in str(caught.value)
