"""A sweep's grid: overrides applied to the base configuration, expanded once; hashes."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
from typing import Any

from pipeline.config.parse import parse
from pipeline.config.schema import GridPoint, RunConfig, SweepConfig
from pipeline.errors import ConfigError


def expand_grid(sweep: SweepConfig) -> list[GridPoint]:
    """The cartesian product of the grid axes applied to the base config, in file order."""
    axes = list(sweep.grid.items())
    for axis, values in axes:
        if not values:
            raise ConfigError(f"grid.{axis}: empty list of values")
    base = dataclasses.asdict(sweep.base)
    trials = []
    for combo in itertools.product(*(values for _, values in axes)):
        overrides: dict[str, Any] = {}
        labels = []
        for (axis, _), value in zip(axes, combo, strict=True):
            if isinstance(value, dict):
                overrides.update(value)
                labels.extend(f"{_leaf(k)}={v}" for k, v in value.items())
            else:
                overrides[axis] = value
                labels.append(f"{_leaf(axis)}={value}")
        config = apply_overrides(base, overrides, "grid")
        trials.append(GridPoint(",".join(labels) or "base", overrides, config))
    return trials


def apply_overrides(base: dict[str, Any] | RunConfig, overrides: dict[str, Any],
                    where: str = "override") -> RunConfig:
    """A RunConfig with dotted-path ``overrides`` applied to ``base``, fully re-validated."""
    data = copy.deepcopy(dataclasses.asdict(base) if isinstance(base, RunConfig) else base)
    for dotted, value in overrides.items():
        node = data
        parts = dotted.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"{where}: {dotted!r} is not a configuration key")
            node = node[part]
        if parts[-1] not in node:
            raise ConfigError(f"{where}: {dotted!r} is not a configuration key")
        node[parts[-1]] = value
    return parse(RunConfig, data, where)


def _leaf(dotted: str) -> str:
    return dotted.rsplit(".", 1)[-1]


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain JSON-compatible data for a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"model": {"dropout": 0}}`` -> ``{"model.dropout": 0}``."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def config_hash(cfg: RunConfig, dataset_fingerprint: str) -> str:
    """Identity of a configuration on a dataset: same values + same data -> same hash."""
    payload = json.dumps({"config": to_dict(cfg), "dataset": dataset_fingerprint},
                         sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
