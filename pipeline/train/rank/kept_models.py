"""Compiled models of paused trials, kept in the rank's memory for their next rung.

Successive halving pauses every trial at a rung's budget and resumes the promoted ones at the
next. The ranks live for the whole sweep, so a promoted trial that comes back to the group
that paused it can go on with the model it left: built, compiled, its training function
already traced, its optimizer state in place. Reading the checkpoint back into a fresh model
would pay the build, the compile and the tracing again for every resumed segment.

A kept model is used only when it is exactly what the checkpoint holds (same run, same
epoch) and every rank of the group kept it; otherwise the checkpoint is read as before.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pipeline.train.rank import distributed

if TYPE_CHECKING:
    import tensorflow as tf

    from pipeline.model.build import BuiltModel
    from pipeline.train.checkpoints import CheckpointState

# Paused trials kept at once, and the bytes their variables (weights and optimizer slots) may
# hold in all; the oldest goes first. A default-sweep MLP is about 2 MB with its slots; a
# 5 x 1,000-unit one about 60 MB.
LIMIT = 64
LIMIT_BYTES = 512 * 2**20


@dataclass(frozen=True)
class Kept:
    built: BuiltModel
    ckpt: tf.train.Checkpoint
    run_id: str
    epoch: int  # epochs trained: the checkpoint's "epoch"
    nbytes: int = 0  # what its variables hold


def variable_bytes(ckpt: tf.train.Checkpoint) -> int:
    """Bytes held by the model's and the optimizer's variables (the checkpoint's objects)."""
    model, opt = ckpt.model, ckpt.optimizer
    variables = [*model.variables, *(opt.variables() if callable(opt.variables)
                                     else opt.variables)]
    return sum(int(np.prod(v.shape)) * v.dtype.size for v in variables)


class KeptModels:
    """This rank's kept models, by configuration hash."""

    def __init__(self, limit: int = LIMIT, limit_bytes: int = LIMIT_BYTES) -> None:
        self._kept: OrderedDict[str, Kept] = OrderedDict()
        self._limit, self._limit_bytes = limit, limit_bytes

    def keep(self, config_hash: str, kept: Kept) -> None:
        self._kept[config_hash] = kept
        self._kept.move_to_end(config_hash)
        while self._kept and (len(self._kept) > self._limit or sum(
                k.nbytes for k in self._kept.values()) > self._limit_bytes):
            self._kept.popitem(last=False)

    def take(self, config_hash: str, state: CheckpointState) -> Kept | None:
        """The kept model of ``config_hash`` if every rank holds one matching the checkpoint
        ``state``; None (and nothing kept for it) otherwise. [hvd] one allreduce, on every
        rank of the group, for every resumed trial."""
        kept = self._kept.pop(config_hash, None)
        usable = kept is not None and (kept.run_id, kept.epoch) == (state.run_id, state.epoch)
        missing = distributed.allreduce_sum(np.array([0.0 if usable else 1.0]),
                                            name=f"kept.{config_hash}.{state.epoch}")
        return kept if usable and not missing[0] else None

    def __len__(self) -> int:
        return len(self._kept)
