"""YAML in, typed configuration out.

Every key is checked: an unknown key, a missing required key or a value of the
wrong type raises ConfigError naming the key's full path (``base.model.dropout``),
so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from pipeline.errors import ConfigError


def parse(cls: type, data: Any, path: str = "") -> Any:
    """Build dataclass ``cls`` from plain data, checking keys and types."""
    return _coerce(cls, data, path)


def _coerce(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _coerce_dataclass(tp, value, path)
    if tp is Any:
        return value
    if origin is Literal:
        if value not in typing.get_args(tp):
            allowed = ", ".join(repr(a) for a in typing.get_args(tp))
            raise ConfigError(f"{path}: {value!r} is not one of {allowed}")
        return value
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(tp, value, path)
    if origin in (list, tuple):
        return _coerce_sequence(tp, origin, value, path)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__}")
        _, val_tp = typing.get_args(tp)
        return {str(k): _coerce(val_tp, v, f"{path}.{k}") for k, v in value.items()}
    return _coerce_scalar(tp, value, path)


def _coerce_dataclass(cls: type, value: Any, path: str) -> Any:
    if not isinstance(value, dict):
        raise ConfigError(f"{path or 'top level'}: expected a mapping, got {type(value).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown key {_join(path, unknown[0])!r} (known here: {', '.join(fields)})"
        )
    kwargs = {}
    for name, f in fields.items():
        if name in value:
            kwargs[name] = _coerce(hints[name], value[name], _join(path, name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing required key {_join(path, name)!r}")
    return cls(**kwargs)


def _coerce_union(tp: Any, value: Any, path: str) -> Any:
    args = typing.get_args(tp)
    if value is None and type(None) in args:
        return None
    errors = []
    for arg in args:
        if arg is type(None):
            continue
        try:
            return _coerce(arg, value, path)
        except ConfigError as exc:
            errors.append(str(exc))
    raise ConfigError(errors[0] if len(errors) == 1 else f"{path}: invalid value {value!r}")


def _coerce_sequence(tp: Any, origin: type, value: Any, path: str) -> Any:
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{path}: expected a list, got {type(value).__name__}")
    item_tp = typing.get_args(tp)[0]
    items = [_coerce(item_tp, v, f"{path}[{i}]") for i, v in enumerate(value)]
    return tuple(items) if origin is tuple else items


def _coerce_scalar(tp: Any, value: Any, path: str) -> Any:
    # bool is a subclass of int in Python; YAML's `yes` must not pass as a number.
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp in (int, str, bool) and type(value) is tp:
        return value
    raise ConfigError(f"{path}: expected {tp.__name__}, got {type(value).__name__} {value!r}")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key



def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with a one-line error for a missing or malformed file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: configuration file not found")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" line {where.line + 1}" if where else ""
        raise ConfigError(f"{p}:{line} is not valid YAML") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level")
    return data
