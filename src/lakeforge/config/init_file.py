"""``lakeforge init``: write a working ``lakeforge.yml``, ``.env.example`` and ``.gitignore``.

Passwords never reach ``lakeforge.yml``: each URL is parsed strictly (:mod:`lakeforge.config.urls`), written
back without its password, and the whole password goes to ``.env`` (mode 600) as ``<NAME>_PASSWORD``.
"""

from __future__ import annotations

from pathlib import Path

from lakeforge.config.loader import CONFIG_FILE
from lakeforge.config.models import SOURCE_NAME
from lakeforge.config.urls import DbUrl, UrlError, encoding_hint, parse_db_url
from lakeforge.errors import ConfigError

SCHEMES = {"postgresql": "postgres", "postgres": "postgres", "mysql": "mysql", "mariadb": "mysql"}


def parse_source_args(args: list[str]) -> dict[str, DbUrl]:
    """``NAME=URL`` arguments as parsed URLs by name; a name given twice is an error."""
    parsed: dict[str, DbUrl] = {}
    for arg in args:
        name, eq, url = arg.partition("=")
        name = name.strip()
        if not eq or not name or not url.strip():
            raise ConfigError("--source: write NAME=URL, e.g. crm=postgresql://user@host:5432/crm")
        if not SOURCE_NAME.fullmatch(name):
            raise ConfigError(f"--source {name}: a source name must be lower-case letters, digits and _")
        if name in parsed:
            raise ConfigError(f"--source {name} is given twice; each source needs its own name")
        try:
            parts = parse_db_url(url)
        except UrlError as exc:
            raise ConfigError(f"--source {name}: the URL {exc}") from None
        if parts.scheme not in SCHEMES:
            raise ConfigError(f"--source {name}: unknown URL scheme '{parts.scheme}'; valid: {', '.join(SCHEMES)}")
        parsed[name] = parts
    return parsed


def ambiguity_warnings(sources: dict[str, DbUrl]) -> list[str]:
    """What to tell the user about URLs whose password needed the last-``@`` rule to parse."""
    return [
        f"--source {name}: the password holds characters a URL reserves; lakeforge read it as everything "
        f"between the first ':' and the last '@' and moved it to .env. In URLs elsewhere, {encoding_hint()}"
        for name, url in sources.items()
        if url.ambiguous
    ]


def write_project(path: Path, sources: dict[str, DbUrl], *, force: bool = False) -> None:
    path.mkdir(parents=True, exist_ok=True)
    target = path / CONFIG_FILE
    if target.exists() and not force:
        raise ConfigError(f"{target} exists; pass --force to overwrite it")
    lines = ["# lakeforge project: see docs/ for every key", "lake:", "  path: ./lakehouse", "sources:"]
    env_example = ["# Copy to .env and fill in; .env is read automatically and never committed"]
    env_values = []
    for name, url in sources.items():
        var = f"{name.upper()}_PASSWORD"
        lines += [f"  {name}:", f"    type: {SCHEMES[url.scheme]}", f"    url: {url.without_password()}"]
        if url.password is not None:
            lines.append(f"    password: ${{{var}}}")
            env_values.append(f"{var}={_env_quote(url.password)}")
        else:
            lines.append(f"    # password: ${{{var}}}")
        env_example.append(f"{var}=")
        lines += [
            "    include: ['*']",
            "    defaults:",
            "      mode: full",
            "    # tables:",
            "    #   orders: {mode: incremental, cursor: [updated_at], lookback: 1h}",
        ]
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (path / ".env.example").write_text("\n".join(env_example) + "\n", encoding="utf-8")
    if env_values:
        env = path / ".env"
        env.touch(mode=0o600)
        env.chmod(0o600)
        env.write_text("\n".join(env_values) + "\n", encoding="utf-8")
    ignore = path / ".gitignore"
    if not ignore.exists():
        ignore.write_text(".env\nlakehouse/\n", encoding="utf-8")


def _env_quote(value: str) -> str:
    """A literal value for ``.env``: single-quoted with ``\\`` and ``'`` escaped, as python-dotenv reads it
    (lakeforge loads ``.env`` without ``${}`` expansion, so ``$`` stays literal too)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
