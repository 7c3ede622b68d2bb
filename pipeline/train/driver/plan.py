"""The driver's plan: every grid point resolved, checked and batch-planned before anything starts.

No TensorFlow here: names are checked against ``pipeline.model.names``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from pipeline.config import RunConfig, SweepConfig, apply_overrides, config_hash
from pipeline.config.known import check_heads
from pipeline.config.resolve import Overrides, check_numbers, resolve
from pipeline.data.manifest import MANIFEST_NAME, Manifest, load_manifest
from pipeline.errors import ConfigError, DataError
from pipeline.model import names
from pipeline.tasks import epoch_metrics, task_spec
from pipeline.train.contract import Trial, plan_batches

logger = logging.getLogger(__name__)


def plan_trials(sweep: SweepConfig, manifest: Manifest, num_proc: int,
                epochs: int | None, repeats: int | None = None,
                log: Callable[[str], None] = logger.info) -> list[Trial]:
    """Resolve every grid point and each of its replicates, and check they can run, before
    anything starts. Grid points that resolve to the same configuration are planned once.
    The command line's values and every range are checked by ``pipeline.config.resolve``;
    here, what needs the dataset."""
    resolved = resolve(sweep, Overrides(epochs=epochs, repeats=repeats))
    manifest.shard_files(Path("."), "train", 0, num_proc)  # raises if too few shards
    spec = task_spec(manifest.task)
    log(f"sweep {sweep.name}: {manifest.dataset} is a {manifest.task} dataset: {spec.head}, "
        f"ranked by {spec.primary_metric} ({'higher' if spec.higher_is_better else 'lower'} "
        "is better); heads and losses checked against its rules")
    trials: list[Trial] = []
    seen: dict[str, str] = {}
    for point in resolved.points:
        cell = point.config
        check_names(cell)
        check_training(point.name, cell, manifest.task)
        warnings = check_task(point.name, cell, manifest)
        cell_hash = config_hash(cell, manifest.fingerprint)
        if cell_hash in seen:
            log(f"sweep {sweep.name}: {point.name} is the same configuration as "
                f"{seen[cell_hash]}; planned once")
            continue
        seen[cell_hash] = point.name
        for line in warnings:
            log(f"sweep {sweep.name}: warning: {point.name}: {line}")
        trials += _replicates(point.name, cell, cell_hash, resolved.sweep.repeats, manifest,
                              num_proc, tuple(warnings))
    return trials


def check_heads_before_session(sweep: SweepConfig, source: str | Path, data_dir: Path) -> None:
    """The dataset's task against every grid point's head, from the manifest alone, so a
    head the task refuses is refused before the Spark session starts. A missing or damaged
    manifest is left to the sweep, which first recovers a dataset a killed prepare left."""
    if not (data_dir / MANIFEST_NAME).is_file():
        return
    try:
        manifest = load_manifest(data_dir)
    except DataError:
        return
    check_heads(sweep, manifest.task, source, images=manifest.input_kind == "image")


def check_task(name: str, cfg: RunConfig, manifest: Manifest) -> list[str]:
    """The dataset's task against the configuration's head and architecture (the rules in
    ``pipeline.model.names``): an error refuses the sweep in one line; warnings returned."""
    if cfg.model.architecture == "cnn" and manifest.input_kind != "image":
        raise ConfigError(f"{name}: architecture cnn needs images; dataset "
                          f"{manifest.dataset} has tabular features (use mlp or logreg)")
    head = names.check_head(manifest.task, cfg.loss, cfg.model.output_activation)
    if head.errors:
        raise ConfigError(f"{name}: {head.errors[0]}")
    return head.warnings


def _replicates(name: str, cell: RunConfig, cell_hash: str, repeats: int, manifest: Manifest,
                num_proc: int, warnings: tuple[str, ...] = ()) -> list[Trial]:
    """Replicate r trains with seed + r; replicate 0 is the cell itself (same hash as a
    single-seed sweep of it, so earlier results count)."""
    batches = plan_batches(cell, manifest, num_proc, name)
    out = []
    for r in range(repeats):
        cfg = cell if r == 0 else apply_overrides(
            cell, {"training.seed": cell.training.seed + r}, "repeats")
        label = f"{name} #{r + 1}" if repeats > 1 else name
        check_numbers(label, cfg)  # its seed too
        out.append(Trial(label, cfg, config_hash(cfg, manifest.fingerprint), batches,
                         cell_hash, r, warnings))
    return out


def check_names(cfg: RunConfig) -> None:
    """Unknown names fail here with the list of known ones, not inside a rank."""
    m = cfg.model
    for kind, name in (("activation", m.hidden_activation), ("activation", m.output_activation),
                       ("loss", cfg.loss), ("initializer", m.kernel_initializer),
                       ("initializer", m.bias_initializer), ("optimizer", cfg.optimizer.name),
                       ("architecture", m.architecture)):
        names.check(kind, name)


def check_training(name: str, cfg: RunConfig, task: str = "multiclass") -> None:
    """What the dataset's task decides: the metric early stopping watches."""
    monitors = epoch_metrics(task)
    if cfg.training.early_stopping.monitor not in monitors:
        raise ConfigError(f"{name}: training.early_stopping.monitor must be one of "
                          f"{', '.join(monitors)} for a {task} dataset")
