"""Typed configs: dataclasses loaded from YAML, overridden by ``key.sub=value``.

Every stage declares a ``@dataclass`` config. ``load_config(Cls, path, overrides)``
builds it, ``validate_config`` runs each dataclass's ``validate()`` (recursively), and
``save_config`` writes the resolved config next to an output.

    cfg = load_config(MidtrainConfig, "configs/midtrain/remit.yaml", ["optim.lr=1e-3"])

Errors are :class:`ConfigError` and name the key (and the file) plus the accepted
keys or values, so a typo never ends in a stack trace.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from remit.errors import ConfigError
from remit.utils.io import atomic_write_text, fingerprint

T = TypeVar("T")

__all__ = [
    "ConfigError",
    "load_config",
    "from_dict",
    "to_dict",
    "save_config",
    "set_dotted",
    "apply_overrides",
    "validate_config",
    "check_choice",
    "check_range",
]


def _suggest(key: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(key, choices, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return f"Accepted keys: {', '.join(sorted(choices))}.{hint}"


def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert a YAML/override value to the annotated type ``tp``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as e:  # try the next member of the union
                errors.append(str(e))
        raise ConfigError(f"{key}: cannot read {value!r} as {tp}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not accepted. Accepted values: {', '.join(map(str, args))}.")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return from_dict(tp, value, prefix=key + ".")
    if origin in (list, tuple) or tp in (list, tuple):
        if isinstance(value, str):
            value = [v for v in value.split(",") if v != ""] if value else []
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        item_t = args[0] if args else Any
        out = [_coerce(v, item_t, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if (origin is tuple or tp is tuple) else out
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        vt = args[1] if len(args) == 2 else Any
        return {k: _coerce(v, vt, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "no", "0", "off"):
            return False
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                f = float(value.replace("_", ""))
            except ValueError:
                raise ConfigError(f"{key}: expected an integer, got {value!r}") from None
            if f.is_integer():
                return int(f)
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        try:
            out = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
        if math.isnan(out):  # no setting means "not a number"; NaN would slip through every range check
            raise ConfigError(f"{key}={value!r} is not a number: give a finite value")
        return out
    if tp is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return None if value is None else str(value)
    return value


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build dataclass ``cls`` from a mapping; unknown keys raise ConfigError."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {data!r}")
    hints = _type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for k, v in data.items():
        if k not in fields:
            raise ConfigError(f"Unknown config key '{prefix}{k}'. {_suggest(k, list(fields))}")
        kwargs[k] = _coerce(v, hints[k], prefix + k)
    try:
        return cls(**kwargs)
    except TypeError as e:  # a required field is missing
        raise ConfigError(f"{prefix.rstrip('.') or cls.__name__}: {e}") from None


def to_dict(cfg: Any) -> Any:
    """Plain, YAML/JSON-safe representation of a config (dataclasses, lists, dicts)."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        # A field marked `omit_if_empty` is left out while empty, so adding such a field to a config class
        # keeps the hashes (and the reuse) of outputs made before it existed.
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)
                if not (f.metadata.get("omit_if_empty") and not getattr(cfg, f.name))}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {str(k): to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, Path):
        return str(cfg)
    return cfg


def _parse_scalar(text: str) -> Any:
    """Parse the right-hand side of ``key=value`` with YAML rules (``1e-3``, ``[a, b]``, ``null``)."""
    try:
        return yaml.safe_load(text) if text != "" else ""
    except yaml.YAMLError:
        return text


def apply_overrides(data: dict[str, Any], overrides: list[str], cls: type | None = None) -> dict[str, Any]:
    """Apply ``a.b=value`` overrides to a nested mapping (in place), checking keys against ``cls``."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"Override '{item}' must look like key=value (for example optim.lr=1e-3).")
        key, raw = item.split("=", 1)
        set_dotted(data, key.strip(), _parse_scalar(raw), cls)
    return data


def set_dotted(data: dict[str, Any], key: str, value: Any, cls: type | None = None, *, shown: str = "") -> None:
    """Set ``a.b.c`` in a nested mapping (in place), checking the key against dataclass ``cls``; an unknown
    key is one ConfigError that names it as ``shown`` (default: the key itself)."""
    parts = key.split(".")
    node, node_cls = data, cls
    for i, part in enumerate(parts):
        if node_cls is not None and dataclasses.is_dataclass(node_cls):
            names = [f.name for f in dataclasses.fields(node_cls)]
            if part not in names:
                where = ".".join(parts[:i]) or "the top level"
                raise ConfigError(f"Unknown config key '{shown or key}' (no '{part}' in {where}). "
                                  f"{_suggest(part, names)}")
            node_cls = _dataclass_in(_type_hints(node_cls)[part])
        if i == len(parts) - 1:
            node[part] = value
        else:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child


def _dataclass_in(tp: Any) -> type | None:
    if dataclasses.is_dataclass(tp):
        return tp
    for arg in typing.get_args(tp):
        if dataclasses.is_dataclass(arg):
            return arg
    return None


def validate_config(cfg: Any, prefix: str = "") -> None:
    """Call ``validate()`` on ``cfg`` and on every nested dataclass (children first)."""
    if not dataclasses.is_dataclass(cfg):
        return
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            validate_config(v, prefix + f.name + ".")
        elif isinstance(v, (list, tuple)):
            for i, item in enumerate(v):
                validate_config(item, f"{prefix}{f.name}[{i}].")
    check = getattr(cfg, "validate", None)
    if callable(check):
        try:
            check()
        except ConfigError as e:
            if prefix and not str(e).startswith(prefix):
                raise ConfigError(f"{prefix}{e}") from None
            raise


def build_config(cls: type[T], data: dict[str, Any], section: str) -> T:
    """A validated ``cls`` from a mapping; an error is prefixed with ``section`` (the config key it came from)."""
    try:
        cfg = from_dict(cls, data)
        validate_config(cfg)
    except ConfigError as e:
        raise ConfigError(f"{section}: {e}") from None
    return cfg


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """YAML file (optional) + overrides -> validated instance of ``cls``."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"Config file not found: {p}")
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"{p}{where}: invalid YAML ({getattr(e, 'problem', e)})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: the top level must be a mapping of keys, got {type(data).__name__}")
    apply_overrides(data, list(overrides or []), cls)
    try:
        cfg = from_dict(cls, data)
        validate_config(cfg)
    except ConfigError as e:
        if path is not None:
            raise ConfigError(f"{path}: {e}") from None
        raise
    return cfg


def save_config(cfg: Any, path: str | Path) -> Path:
    """Write the resolved config as YAML (atomically)."""
    return atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))


def config_hash(cfg: Any) -> str:
    """Stable short hash of a config, used to decide whether a finished stage can be reused.

    A built-in method replaced by a plugin (``register_method(..., replace=True)``) is part of it: an
    output made with the built-in is not reused as the plugin's.
    """
    from remit.methods.registry import replaced_methods

    d = to_dict(cfg)
    replaced = replaced_methods()
    return fingerprint({**d, "replaced_methods": replaced} if replaced else d)


def check_choice(key: str, value: Any, choices: list[Any] | tuple[Any, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{key}={value!r} is not accepted. Accepted values: {', '.join(map(str, choices))}.")


def check_range(key: str, value: float, lo: float | None = None, hi: float | None = None,
                lo_open: bool = False, hi_open: bool = False) -> None:
    """Raise ConfigError unless lo <(=) value <(=) hi (and value is finite: NaN compares false to everything)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key}={value!r} is not accepted: it must be a finite number.")
    bad = (lo is not None and (value <= lo if lo_open else value < lo)) or (
        hi is not None and (value >= hi if hi_open else value > hi))
    if bad:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        rng = f"{left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{right}"
        raise ConfigError(f"{key}={value!r} is out of range: it must be in {rng}.")
