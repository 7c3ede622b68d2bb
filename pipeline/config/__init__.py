"""Typed configuration: schema (every dataclass), parse (strict YAML), grid (expanded once).

The public names are re-exported here, so callers write ``from pipeline.config import X``.
"""

from pipeline.config.grid import apply_overrides, config_hash, expand_grid, flatten, to_dict
from pipeline.config.load import load_augment_config, load_data_config, load_sweep_config
from pipeline.config.parse import parse, read_yaml
from pipeline.config.schema import (
    AugmentConfig,
    DataConfig,
    EarlyStoppingConfig,
    GenerateConfig,
    GridPoint,
    HalvingConfig,
    ModelConfig,
    OptimizerConfig,
    RacingConfig,
    RunConfig,
    SourceConfig,
    SplitConfig,
    SweepConfig,
    TrackingConfig,
    TrainingConfig,
)

__all__ = [
    "AugmentConfig",
    "DataConfig",
    "EarlyStoppingConfig",
    "GenerateConfig",
    "GridPoint",
    "HalvingConfig",
    "ModelConfig",
    "OptimizerConfig",
    "RacingConfig",
    "RunConfig",
    "SourceConfig",
    "SplitConfig",
    "SweepConfig",
    "TrackingConfig",
    "TrainingConfig",
    "apply_overrides",
    "config_hash",
    "expand_grid",
    "flatten",
    "load_augment_config",
    "load_data_config",
    "load_sweep_config",
    "parse",
    "read_yaml",
    "to_dict",
]
