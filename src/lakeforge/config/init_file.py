"""``lakeforge init``: write a working ``lakeforge.yml``, ``.env.example`` and ``.gitignore``."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from lakeforge.config.loader import CONFIG_FILE
from lakeforge.errors import ConfigError

SCHEMES = {"postgresql": "postgres", "postgres": "postgres", "mysql": "mysql", "mariadb": "mysql"}


def parse_source_arg(arg: str) -> tuple[str, str]:
    name, eq, url = arg.partition("=")
    if not eq or not name or not url:
        raise ConfigError(f"--source '{_hide(arg)}': write NAME=URL, e.g. crm=postgresql://user@host:5432/crm")
    return name.strip(), url.strip()


def _hide(arg: str) -> str:
    name, _, url = arg.partition("=")
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
        url = urlunsplit(parts._replace(netloc=netloc))
    return f"{name}={url}" if url else arg


def write_project(path: Path, sources: dict[str, str], *, force: bool = False) -> None:
    path.mkdir(parents=True, exist_ok=True)
    target = path / CONFIG_FILE
    if target.exists() and not force:
        raise ConfigError(f"{target} exists; pass --force to overwrite it")
    lines = ["# lakeforge project: see docs/ for every key", "lake:", "  path: ./lakehouse", "sources:"]
    env_example = ["# Copy to .env and fill in; .env is read automatically and never committed"]
    env_values = []
    for name, url in sources.items():
        parts = urlsplit(url)
        kind = SCHEMES.get(parts.scheme)
        if kind is None:
            raise ConfigError(
                f"--source {name}: unknown URL scheme '{parts.scheme}'; valid: {', '.join(SCHEMES)}"
            )
        var = f"{name.upper()}_PASSWORD"
        clean = parts._replace(netloc=parts.netloc.replace(":" + (parts.password or "") + "@", "@"))
        lines += [f"  {name}:", f"    type: {kind}", f"    url: {urlunsplit(clean._replace(scheme=parts.scheme))}"]
        if parts.password:
            lines.append(f"    password: ${{{var}}}")
            env_values.append(f"{var}={unquote(parts.password)}")
        else:
            lines.append(f"    # password: ${{{var}}}")
        env_example.append(f"{var}=")
        lines += ["    include: ['*']", "    defaults:", "      mode: full",
                  "    # tables:", "    #   orders: {mode: incremental, cursor: [updated_at], lookback: 1h}"]
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (path / ".env.example").write_text("\n".join(env_example) + "\n", encoding="utf-8")
    if env_values:
        env = path / ".env"
        env.write_text("\n".join(env_values) + "\n", encoding="utf-8")
        env.chmod(0o600)
    ignore = path / ".gitignore"
    if not ignore.exists():
        ignore.write_text(".env\nlakehouse/\n", encoding="utf-8")
