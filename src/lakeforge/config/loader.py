"""Read ``lakeforge.yml``: ``.env``, ``${VAR}`` interpolation, ``LAKEFORGE__A__B`` overrides, validation.

Errors name the file, the key path and the valid choices.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from lakeforge.config.models import ProjectConfig, SourceBase
from lakeforge.errors import ConfigError

CONFIG_FILE = "lakeforge.yml"
ENV_PREFIX = "LAKEFORGE__"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def load_config(project_dir: Path, file_name: str = CONFIG_FILE) -> ProjectConfig:
    """Load and validate the project file, reading ``.env`` beside it first."""
    path = project_dir / file_name
    if not path.is_file():
        raise ConfigError(f"{path}: no such file; create one with: lakeforge init --source NAME=URL")
    _load_dotenv(project_dir / ".env")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader) or {}  # noqa: S506 - a SafeLoader
    except _DuplicateKey as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys (sources, lake, run)")
    data = _interpolate(raw, path, ())
    _apply_overrides(data, os.environ)
    try:
        return ProjectConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, path, data)) from None


class _DuplicateKey(yaml.YAMLError):
    pass


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, but a key given twice in one mapping is an error (PyYAML keeps the last one), and
    only ``true``/``false`` are booleans, as in YAML 1.2: YAML 1.1 also reads ``on``, ``off``, ``yes``, ``no``
    as booleans, which would turn an alert's ``on:`` key (or a table named ``no``) into ``True``."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise _DuplicateKey(
                    f"key '{key}' is given twice in one mapping (lines {seen[key]} and {line}); "
                    "YAML would silently keep the last one: remove or rename one of them"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _load_dotenv(path: Path) -> None:
    if path.is_file():
        from dotenv import load_dotenv

        # values are literal: a password holding "$" or "${X}" is not expanded (and so not cut short)
        load_dotenv(path, override=False, interpolate=False)


def _interpolate(value: Any, path: Path, loc: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, path, (*loc, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, path, (*loc, str(i))) for i, v in enumerate(value)]
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise ConfigError(
                f"{path}: {'.'.join(loc)}: environment variable {name} is not set "
                f"(set it, or put {name}=... in .env beside {path.name})"
            )

        return _VAR.sub(replace, value)
    return value


def _apply_overrides(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    """``LAKEFORGE__LAKE__PATH=/x`` sets ``lake.path``; keys are lower-cased."""
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        parts = [p.lower() for p in key[len(ENV_PREFIX) :].split("__") if p]
        node = data
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            if parts:
                node[parts[-1]] = value


def format_validation_error(exc: ValidationError, path: Path, data: dict[str, Any]) -> str:
    lines = [f"{path}: {exc.error_count()} problem(s)"]
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        key = ".".join(loc) or "(top level)"
        kind = err["type"]
        if kind == "extra_forbidden":
            valid = _valid_keys(ProjectConfig, loc[:-1], data)
            hint = _suggest(loc[-1], valid)
            lines.append(f"  {key}: unknown key{hint}; valid keys: {', '.join(valid)}")
        elif kind == "union_tag_invalid":
            ctx = err.get("ctx", {})
            lines.append(
                f"  {key}.type: '{ctx.get('tag')}' is not a valid source type; "
                f"valid choices: {ctx.get('expected_tags', '')}"
            )
        elif kind == "source_type":
            lines.append(f"  {key}.type: {err['msg']}")
        elif kind == "union_tag_not_found":
            lines.append(f"  {key}.type: missing; valid choices: {err.get('ctx', {}).get('expected_tags', '')}")
        elif kind == "literal_error":
            lines.append(f"  {key}: {err['input']!r} is not valid; valid choices: {err['ctx']['expected']}")
        elif kind == "missing":
            lines.append(f"  {key}: required key is missing")
        elif isinstance(err["input"], dict | list):
            lines.append(f"  {key}: {err['msg']}")
        else:
            lines.append(f"  {key}: {err['msg']} (got {_safe_input(loc, err['input'])})")
    text = "\n".join(lines)
    for secret in _secrets(data):
        text = text.replace(secret, "***")
    return text


def _secrets(value: Any) -> list[str]:
    """Every password in the raw config (``password`` keys and passwords inside URLs), to scrub messages."""
    from urllib.parse import quote

    from lakeforge.config.urls import UrlError, parse_db_url

    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "password" and isinstance(item, str | int) and str(item):
                found += [str(item), quote(str(item), safe="")]
            elif key == "url" and isinstance(item, str):
                with contextlib.suppress(UrlError):
                    password = parse_db_url(item).password
                    if password:
                        found += [password, quote(password, safe="")]
            else:
                found += _secrets(item)
    elif isinstance(value, list):
        for item in value:
            found += _secrets(item)
    return [s for s in found if len(s) >= 3]


def _safe_input(loc: list[str], value: object) -> str:
    if loc and loc[-1] == "password":
        return "a secret value"
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."


def _suggest(word: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(word, valid, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _valid_keys(model: type[BaseModel], loc: list[str], data: Any) -> list[str]:
    """The field names of the model found at ``loc``, following dicts and the source type tag."""
    import typing

    current: Any = model
    node = data
    i = 0
    while i < len(loc):
        part = loc[i]
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(part)
            if field is None:
                return []
            current = field.annotation
            node = node.get(part) if isinstance(node, dict) else None
            i += 1
            continue
        origin = typing.get_origin(current)
        args = typing.get_args(current)
        if origin is dict:
            current = args[1]
            node = node.get(part) if isinstance(node, dict) else None
            i += 1
            continue
        current = _pick(current, node)
        if current is None:
            return []
    current = _pick(current, node)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _pick(annotation: Any, node: Any) -> Any:
    """Resolve ``Annotated``/``Optional``/tagged unions to one model class."""
    import typing

    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if annotation is SourceBase and isinstance(node, dict) and isinstance(node.get("type"), str):
        from lakeforge.sources import config_class

        with contextlib.suppress(ConfigError):
            return config_class(node["type"])
    args = typing.get_args(annotation)
    if not args or typing.get_origin(annotation) is dict:
        return annotation
    models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
    tag = node.get("type") if isinstance(node, dict) else None
    for candidate in models:
        field = candidate.model_fields.get("type")
        if field is not None and tag in typing.get_args(field.annotation):
            return candidate
    return models[0] if len(models) == 1 else None
