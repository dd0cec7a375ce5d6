"""Named factories: drivers and backends register themselves by name."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from quartier.errors import ConfigError

T = TypeVar("T")

Factory = Callable[[Mapping[str, Any], str], T]
"""Builds a T from its config table and the config file path (for errors)."""


class Registry(Generic[T]):
    """Factories by name; refuses duplicates; unknown names give a ConfigError listing the known ones."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Factory[T]] = {}

    def register(self, name: str, factory: Factory[T]) -> None:
        if name in self._factories:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._factories[name] = factory

    def create(self, name: str, options: Mapping[str, Any], config_path: str, key: str) -> T:
        """Build ``name`` from ``options``; ``key`` names the config key that chose it."""
        factory = self._factories.get(name)
        if factory is None:
            raise ConfigError(
                config_path, key, f"unknown {self.kind} {name!r}; choose one of {sorted(self._factories)}"
            )
        return factory(options, config_path)
