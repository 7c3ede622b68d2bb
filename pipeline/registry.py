"""A registry maps a name to a factory; unknown names fail listing the known ones.

A name of the form ``"package.module:attr"`` is imported instead, so users can
plug in their own activation, loss or initializer without touching the project.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from pipeline.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} registered twice")
        self._entries[name] = entry
        return entry

    def __call__(self, name: str) -> Callable[[T], T]:
        """Decorator form: ``@ACTIVATIONS("relu")``."""
        def decorate(entry: T) -> T:
            return self.register(name, entry)
        return decorate

    def get(self, name: str) -> T:
        if name in self._entries:
            return self._entries[name]
        if ":" in name:
            return _import_attr(self.kind, name)
        raise ConfigError(f"unknown {self.kind} {name!r} (known: {', '.join(self.names())})")

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)


def _import_attr(kind: str, spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"custom {kind} {spec!r} cannot be imported ({exc})") from exc
