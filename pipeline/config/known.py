"""Every registered name in a sweep file, checked as the file is read, before Spark starts.

A misspelt activation or loss would otherwise surface only once the Spark session is up (on a
cluster, after the executors were waited for). Names are looked up in the TensorFlow-free
registry ``pipeline.model.names``, on the YAML as written, so the refusal names the file, the
key's path in it (``grid.loss[2]``, ``grid.head[1].loss``, ``base.model.hidden_activation``)
and the closest known names. What a dataset's task allows of a head (``check_heads``) needs
the task, read from the prepared dataset's manifest before the session starts.
"""

from __future__ import annotations

import difflib
import itertools
from pathlib import Path
from typing import Any

from pipeline.config.schema import SweepConfig
from pipeline.errors import ConfigError
from pipeline.model import names

# Configuration key (dotted, inside a run configuration) -> the registry its value names.
NAME_KEYS: dict[str, str] = {
    "model.architecture": "architecture",
    "model.hidden_activation": "activation",
    "model.output_activation": "activation",
    "model.kernel_initializer": "initializer",
    "model.bias_initializer": "initializer",
    "loss": "loss",
    "optimizer.name": "optimizer",
    "optimizer.schedule": "schedule",
}

REGISTRIES: dict[str, tuple[str, ...]] = {**names.KINDS, "schedule": names.SCHEDULES}


def check_names(data: dict[str, Any], source: str | Path) -> None:
    """Raise ConfigError for the first unknown name in a sweep file's ``base`` or ``grid``.

    Values that are not strings are left to the type check of ``parse``.
    """
    base = data.get("base")
    if isinstance(base, dict):
        for key in NAME_KEYS:
            value = _dig(base, key)
            if value is not None:
                _check(key, value, f"base.{key}", source)
    grid = data.get("grid")
    if not isinstance(grid, dict):
        return
    for axis, values in grid.items():
        for i, value in enumerate(values if isinstance(values, list) else []):
            if isinstance(value, dict):
                for key, item in value.items():
                    _check(key, item, f"grid.{axis}[{i}].{key}", source)
            else:
                _check(axis, value, f"grid.{axis}[{i}]", source)


def _dig(data: dict[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _check(key: str, value: Any, where: str, source: str | Path) -> None:
    kind = NAME_KEYS.get(key)
    if kind is None or not isinstance(value, str):
        return
    known = REGISTRIES[kind]
    if value in known or (kind in names.KINDS and _custom(value)):
        return
    close = difflib.get_close_matches(value, known, n=3)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ConfigError(f"{source}: {where}: unknown {kind} {value!r}{hint} "
                      f"(known: {', '.join(known)})")


def _custom(value: str) -> bool:
    """``package.module:attr``, a user's own object, imported inside the ranks."""
    module, _, attr = value.partition(":")
    return bool(module and attr)


def check_heads(sweep: SweepConfig, task: str, source: str | Path, images: bool = True) -> None:
    """Every grid point's loss and output activation against what ``task`` refuses
    (``names.check_head``), and a cnn against a dataset of tabular features (``images``
    False), naming the key that set the offending value."""
    for overrides, origins in _points(sweep):
        loss = overrides.get("loss", sweep.base.loss)
        output = overrides.get("model.output_activation", sweep.base.model.output_activation)
        architecture = overrides.get("model.architecture", sweep.base.model.architecture)
        if architecture == "cnn" and not images:
            where = origins.get("model.architecture", "base.model.architecture")
            raise ConfigError(f"{source}: {where}: architecture cnn needs images; the dataset "
                              "has tabular features (use mlp or logreg)")
        if not isinstance(loss, str) or not isinstance(output, str):
            continue  # parse has refused a wrong type already
        errors = names.check_head(task, loss, output).errors
        if errors:
            key = "loss" if errors[0].startswith("loss") else "model.output_activation"
            raise ConfigError(f"{source}: {origins.get(key, f'base.{key}')}: {errors[0]}")


def _points(sweep: SweepConfig) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """Each grid point's overrides, in expand_grid's order, with the key path that set
    each overridden key (a later axis overrides an earlier one, as in expand_grid)."""
    axes = list(sweep.grid.items())
    out = []
    for combo in itertools.product(*(range(len(values)) for _, values in axes)):
        overrides: dict[str, Any] = {}
        origins: dict[str, str] = {}
        for (axis, values), i in zip(axes, combo, strict=True):
            value = values[i]
            items = value.items() if isinstance(value, dict) else [(axis, value)]
            for key, item in items:
                overrides[key] = item
                origins[key] = (f"grid.{axis}[{i}].{key}" if isinstance(value, dict)
                                else f"grid.{axis}[{i}]")
        out.append((overrides, origins))
    return out
