"""Models: SQL or Python files in ``models/<layer>/``, each becoming the lake table ``layer.file_stem``.

A SQL model's inputs are the ``layer.table`` names its query reads, found by parsing it with sqlglot
(never a hand-written list). A Python model declares ``INPUTS = {"arg": "layer.table"}`` and a function
``model(**inputs)`` that receives Arrow tables (Polars data frames with ``FORMAT = "polars"``) and returns
anything Arrow can read (``pyarrow.Table``, a Polars or pandas frame).
"""

from __future__ import annotations

import ast
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from lakeforge.errors import ModelError
from lakeforge.transform.config import ModelConfig

_HEADER = re.compile(r"\A\s*/\*\s*lakeforge\b(.*?)\*/", re.S)
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
RESERVED_LAYERS = ("quarantine", "_lakeforge")


@dataclass
class Model:
    name: str
    """``layer.table``"""
    path: Path
    kind: str
    """``sql`` or ``python``"""
    config: ModelConfig
    sql: str = ""
    """The file's text (SQL models), run as written so the engine's line numbers match the file."""
    inputs: list[str] = field(default_factory=list)
    """Lake tables read, ``layer.table``, sorted."""
    python_inputs: dict[str, str] = field(default_factory=dict)
    """Python models: argument name -> ``layer.table``."""

    @property
    def check_inputs(self) -> list[str]:
        """Tables the model's checks read (relationships, row_count): built before its checks run."""
        found = {getattr(c, "to", None) or getattr(c, "compare_to", None) for c in self.config.checks}
        return sorted(n for n in found if n)

    @property
    def layer(self) -> str:
        return self.name.partition(".")[0]

    @property
    def table(self) -> str:
        return self.name.partition(".")[2]

    @property
    def stored(self) -> bool:
        return self.config.materialized != "view"

    def where(self, line: int | None = None) -> str:
        return f"{self.path}:{line}" if line else str(self.path)


def discover(models_dir: Path) -> list[Model]:
    """Every model under ``models_dir`` (``<layer>/<name>.sql|.py``), sorted by name."""
    if not models_dir.is_dir():
        return []
    found: dict[str, Model] = {}
    for path in sorted(models_dir.glob("*/*")):
        if path.suffix not in (".sql", ".py") or path.name.startswith(("_", ".")):
            continue
        layer, stem = path.parent.name, path.stem
        for part in (layer, stem):
            if not _NAME.match(part):
                raise ModelError(f"{path}: '{part}' is not a valid lake name (lower-case letters, digits, _)")
        if layer in RESERVED_LAYERS:
            raise ModelError(f"{path}: layer '{layer}' is reserved for lakeforge; use another folder")
        name = f"{layer}.{stem}"
        if name in found:
            raise ModelError(f"{path}: model {name} is defined twice (also {found[name].path})")
        found[name] = _load_sql(name, path) if path.suffix == ".sql" else _load_python(name, path)
    return [found[k] for k in sorted(found)]


def _load_sql(name: str, path: Path) -> Model:
    from lakeforge.transform.parse import tables_read

    text = path.read_text(encoding="utf-8")
    header = _HEADER.match(text)
    raw = _yaml(path, header.group(1)) if header else None
    config = _config(path, raw, path.with_suffix(".yml"))
    inputs = tables_read(text, path)
    return Model(name, path, "sql", config, sql=text, inputs=inputs)


def _load_python(name: str, path: Path) -> Model:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    values: dict[str, Any] = {}
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
        if (
            isinstance(node, ast.Assign)
            and isinstance(target, ast.Name)
            and target.id in ("INPUTS", "CONFIG", "FORMAT")
        ):
            try:
                values[target.id] = ast.literal_eval(node.value)
            except ValueError:
                raise ModelError(f"{path}:{node.lineno}: {target.id} must be a literal") from None
    if not any(isinstance(n, ast.FunctionDef) and n.name == "model" for n in tree.body):
        raise ModelError(f"{path}: a Python model defines a function model(**inputs) returning a table")
    inputs = values.get("INPUTS", {})
    if not isinstance(inputs, dict) or not all(isinstance(v, str) and "." in v for v in inputs.values()):
        raise ModelError(f"{path}: INPUTS must map argument names to lake tables, e.g. {{'orders': 'silver.orders'}}")
    config = _config(path, values.get("CONFIG"), path.with_suffix(".yml"))
    return Model(name, path, "python", config, inputs=sorted(set(inputs.values())), python_inputs=dict(inputs))


def _yaml(path: Path, text: str) -> Any:
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ModelError(f"{path}: the config is not valid YAML: {exc}") from None


def _config(path: Path, inline: Any, beside: Path) -> ModelConfig:
    raw = inline
    source = path
    if beside.is_file():
        if inline is not None:
            raise ModelError(f"{path}: config is given twice (in the file and in {beside.name}); keep one")
        raw, source = _yaml(beside, beside.read_text(encoding="utf-8")), beside
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ModelError(f"{source}: the model config must be a mapping of keys")
    try:
        return ModelConfig.model_validate(raw)
    except ValidationError as exc:
        raise ModelError(format_config_error(exc, source)) from None


def format_config_error(exc: ValidationError, path: Path) -> str:
    lines = [f"{path}: invalid model config"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        kind = err["type"]
        if kind == "extra_forbidden":
            valid = _valid_keys(err["loc"])
            close = difflib.get_close_matches(str(err["loc"][-1]), valid, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            lines.append(f"  {loc}: unknown key{hint}; valid keys: {', '.join(valid)}")
        elif kind == "union_tag_invalid":
            ctx = err.get("ctx", {})
            lines.append(f"  {loc}.type: '{ctx.get('tag')}' is not a check type; valid: {ctx.get('expected_tags')}")
        elif kind == "literal_error":
            lines.append(f"  {loc}: {err['input']!r} is not valid; valid choices: {err['ctx']['expected']}")
        else:
            lines.append(f"  {loc}: {err['msg']}")
    return "\n".join(lines)


def _valid_keys(loc: tuple[Any, ...]) -> list[str]:
    from lakeforge.transform import config as cfg

    if len(loc) >= 4 and loc[0] == "checks":
        by_type = {
            c.model_fields["type"].annotation.__args__[0]: c  # type: ignore[union-attr]
            for c in (
                cfg.NotNull,
                cfg.Unique,
                cfg.AcceptedValues,
                cfg.Relationships,
                cfg.Expression,
                cfg.Sql,
                cfg.RowCount,
                cfg.Freshness,
            )
        }
        model = by_type.get(loc[2])
        return list(model.model_fields) if model else []
    return list(ModelConfig.model_fields)
