"""Registries of Keras building blocks: activations, losses, initializers, optimizers.

Names are what configurations use; ``"module:attr"`` names a custom object instead.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from pipeline.config import OptimizerConfig
from pipeline.model import names
from pipeline.registry import Registry

keras = tf.keras

# ---------------------------------------------------------------------------
# Activations: name -> a Keras activation identifier that survives model saving.

ACTIVATIONS: Registry[str] = Registry("activation")
for _name in names.ACTIVATIONS:
    ACTIVATIONS.register(_name, _name)


def activation(name: str) -> str | Callable:
    return ACTIVATIONS.get(name)


# ---------------------------------------------------------------------------
# Losses

# name -> Keras loss class; what each loss needs from labels and outputs is in names.LOSSES.
LOSSES: Registry[Callable[..., keras.losses.Loss]] = Registry("loss")
for _name, _cls in {
    "mse": keras.losses.MeanSquaredError,
    "mae": keras.losses.MeanAbsoluteError,
    "huber": keras.losses.Huber,
    "log_cosh": keras.losses.LogCosh,
    "binary_crossentropy": keras.losses.BinaryCrossentropy,
    "categorical_crossentropy": keras.losses.CategoricalCrossentropy,
    "sparse_categorical_crossentropy": keras.losses.SparseCategoricalCrossentropy,
    "kl_divergence": keras.losses.KLDivergence,
    "poisson": keras.losses.Poisson,
    "hinge": keras.losses.Hinge,
    "squared_hinge": keras.losses.SquaredHinge,
    "categorical_hinge": keras.losses.CategoricalHinge,
}.items():
    LOSSES.register(_name, _cls)


def build_loss(name: str, output_activation: str,
               reduction: str = "mean") -> tuple[keras.losses.Loss, bool]:
    """The loss object, and whether the model should emit logits for it."""
    factory, info = LOSSES.get(name), names.loss_info(name)
    if info is None:  # a custom "module:attr" loss: used as given
        return factory, False
    from_logits = info.fuses is not None and info.fuses == output_activation
    kwargs = {"reduction": _REDUCTIONS[reduction]}
    if from_logits:
        kwargs["from_logits"] = True
    return factory(**kwargs), from_logits


_REDUCTIONS = {"mean": keras.losses.Reduction.SUM_OVER_BATCH_SIZE,
               "sum": keras.losses.Reduction.SUM}


# ---------------------------------------------------------------------------
# Initializers: name -> factory(seed) so every layer gets its own reproducible stream.

INITIALIZERS: Registry[Callable[[int], keras.initializers.Initializer]] = Registry("initializer")
INITIALIZERS.register("zeros", lambda seed: keras.initializers.Zeros())
INITIALIZERS.register("ones", lambda seed: keras.initializers.Ones())
INITIALIZERS.register("constant", lambda seed: keras.initializers.Constant(0.01))
for _name, _cls in {
    "glorot_normal": keras.initializers.GlorotNormal,
    "glorot_uniform": keras.initializers.GlorotUniform,
    "he_normal": keras.initializers.HeNormal,
    "he_uniform": keras.initializers.HeUniform,
    "lecun_normal": keras.initializers.LecunNormal,
    "lecun_uniform": keras.initializers.LecunUniform,
    "random_normal": keras.initializers.RandomNormal,
    "random_uniform": keras.initializers.RandomUniform,
}.items():
    INITIALIZERS.register(_name, lambda seed, _cls=_cls: _cls(seed=seed))
# Glorot & Bengio's "standard" U[-1/sqrt(n), 1/sqrt(n)], n = fan-in: variance scaling draws
# uniformly within sqrt(3 * scale / n), so scale 1/3 gives exactly 1/sqrt(n), and the
# model saves and loads with a built-in Keras class.
INITIALIZERS.register("standard", lambda seed: keras.initializers.VarianceScaling(
    scale=1.0 / 3.0, mode="fan_in", distribution="uniform", seed=seed))


def initializer(name: str, seed: int) -> keras.initializers.Initializer:
    entry = INITIALIZERS.get(name)
    return entry(seed) if name in INITIALIZERS else entry


# ---------------------------------------------------------------------------
# Optimizers: name -> factory(config, learning_rate)

OPTIMIZERS: Registry[Callable[[OptimizerConfig, float], keras.optimizers.Optimizer]] = \
    Registry("optimizer")
# The legacy optimizers are the ones Horovod 0.28's DistributedOptimizer wraps in TF 2.15.
_opt = keras.optimizers.legacy
OPTIMIZERS.register("sgd", lambda c, lr: _opt.SGD(lr, momentum=c.momentum, nesterov=c.nesterov))
OPTIMIZERS.register("adam", lambda c, lr: _opt.Adam(lr))
OPTIMIZERS.register("rmsprop", lambda c, lr: _opt.RMSprop(lr, momentum=c.momentum))
OPTIMIZERS.register("adagrad", lambda c, lr: _opt.Adagrad(lr))


def optimizer(cfg: OptimizerConfig, learning_rate: float) -> keras.optimizers.Optimizer:
    return OPTIMIZERS.get(cfg.name)(cfg, learning_rate)


# ---------------------------------------------------------------------------
# Learning-rate schedules: name -> factory(config, lr, steps_per_epoch)

LearningRateSchedule = keras.optimizers.schedules.LearningRateSchedule
SCHEDULES: Registry[Callable[[OptimizerConfig, float, int], float | LearningRateSchedule]] = \
    Registry("learning-rate schedule")
SCHEDULES.register("constant", lambda c, lr, spe: lr)
SCHEDULES.register("exponential", lambda c, lr, spe: keras.optimizers.schedules.ExponentialDecay(
    lr, c.decay_steps, c.decay_rate))
SCHEDULES.register("inverse_time", lambda c, lr, spe: keras.optimizers.schedules.InverseTimeDecay(
    lr, c.decay_steps, c.decay_rate))
# Staircase decay once per epoch: lr * decay_rate ** epoch.
SCHEDULES.register("per_epoch", lambda c, lr, spe: keras.optimizers.schedules.ExponentialDecay(
    lr, spe, c.decay_rate, staircase=True))


class LinearWarmup(LearningRateSchedule):
    """Ramps linearly from ``start_factor`` x the schedule to the full schedule."""

    def __init__(self, after: float | LearningRateSchedule, warmup_steps: int,
                 start_factor: float) -> None:
        super().__init__()
        self.after = after
        self.warmup_steps = max(1, warmup_steps)
        self.start_factor = start_factor

    def __call__(self, step: tf.Tensor) -> tf.Tensor:
        step = tf.cast(step, tf.float32)
        base = self.after(step) if callable(self.after) else tf.constant(self.after, tf.float32)
        progress = tf.minimum(1.0, (step + 1.0) / float(self.warmup_steps))
        return base * (self.start_factor + (1.0 - self.start_factor) * progress)

    def get_config(self) -> dict:
        return {"warmup_steps": self.warmup_steps, "start_factor": self.start_factor}


def learning_rate(cfg: OptimizerConfig, lr: float, steps_per_epoch: int,
                  warmup_start: float = 0.0) -> float | LearningRateSchedule:
    """The configured schedule around ``lr``, with the warm-up ramp when one is set."""
    schedule = SCHEDULES.get(cfg.schedule)(cfg, lr, steps_per_epoch)
    if cfg.warmup_epochs > 0:
        return LinearWarmup(schedule, int(cfg.warmup_epochs * steps_per_epoch), warmup_start)
    return schedule
