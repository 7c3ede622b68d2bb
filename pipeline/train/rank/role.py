"""What a rank does besides training, decided once at start-up.

Rank 0 claims configurations, records them in MLflow (in a thread, beside the next
configuration's training) and prints progress; the other ranks hold do-nothing twins of
each, so the training code calls them all unconditionally and never asks which rank it is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.tracking.null_recorder import NullRecorder
from pipeline.train.contract import RankJob, TrialOutcome
from pipeline.train.rank.background import Background
from pipeline.train.rank.claim_ahead import ClaimAhead, NoClaims
from pipeline.train.rank.kept_models import KeptModels
from pipeline.train.rank.pull import BoardLink, JobList, source_for

if TYPE_CHECKING:
    import tensorflow as tf

    from pipeline.tracking.recorder import Recorder

log = logging.getLogger("pipeline.rank")


class Discard:
    """The records thread of ranks other than 0: the task is not run."""

    def submit(self, task: Callable[[], None]) -> float:
        return 0.0

    def wait(self) -> float:
        return 0.0


@dataclass
class Role:
    root: bool
    claims: ClaimAhead | NoClaims
    records: Background | Discard
    job: RankJob
    trials: JobList | BoardLink | None = None  # rank 0's source of trials (rank.pull)
    # Every rank's: paused trials' compiled models, for their next rung (rank.kept_models).
    kept: KeptModels = field(default_factory=KeptModels)

    def report(self, outcome: TrialOutcome) -> None:
        """Rank 0 tells the driver a trial is settled, its records written."""
        if self.trials is not None:
            self.trials.report(outcome)

    def recorder(self, run_id: str, held: dict[str, int] | None = None) -> Recorder:
        """The recorder for a claimed run: live on rank 0, a do-nothing twin elsewhere.
        ``held``: the last step MLflow has of each metric (a resumed run), not logged again."""
        if not self.root:
            return NullRecorder()
        from pipeline.tracking.recorder import open_recorder

        target = self.job.tracking
        return open_recorder(target.uri, target.settings, run_id, target.spool_dir,
                             say=self.say, held=held)

    def checkpointer(self, folder: Path, ckpt: tf.train.Checkpoint,
                     recorder: Recorder) -> tf.keras.callbacks.Callback:
        """Rank 0 writes each epoch's checkpoint; the others hold a callback that does nothing."""
        import tensorflow as tf

        if not self.root:
            return tf.keras.callbacks.Callback()
        from pipeline.train.rank.epoch_checkpoint import EpochCheckpoint

        return EpochCheckpoint(folder, ckpt, recorder)

    def say(self, message: str) -> None:
        """A progress line on the driver's console, from rank 0 only."""
        if self.root:
            log.info(self.job.runtime.label + message)


def role_for(rank: int, job: RankJob) -> Role:
    if rank == 0:
        return Role(True, ClaimAhead(job), Background(), job, source_for(job, root=True))
    return Role(False, NoClaims(), Discard(), job)
