"""What each Horovod rank runs: the sweep's trials, one after another, as the driver hands
them out (rank.pull), until the sweep is over.

One Horovod launch lives for the whole sweep (every rung of successive halving, every round
of racing), so the sweep pays TensorFlow's import, the task services and Gloo's rendezvous
once, not per configuration nor per round. Each rank reads its own shards
once and reuses them for every configuration. Only rank 0 talks to MLflow (see Role).
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path

from pipeline.cli import console_logging
from pipeline.data.manifest import load_manifest
from pipeline.errors import DataError
from pipeline.tasks import validation_metric
from pipeline.train.contract import RankJob, TrialOutcome
from pipeline.train.progress import Tracker
from pipeline.train.rank import distributed
from pipeline.train.rank.data import load_rank_data
from pipeline.train.rank.devices import pin_cpu_cores, use_one_gpu
from pipeline.train.rank.pinning import pin_cores
from pipeline.train.rank.pull import assignments
from pipeline.train.rank.role import role_for
from pipeline.train.rank.trainer import train_trial


def run_rank(job: RankJob) -> list[TrialOutcome]:
    """Entry point of every rank. Returns this rank's outcome of each configuration."""
    _quiet_tensorflow(job)
    distributed.init()  # [hvd] joins the Gloo ring of this launch
    gpu = use_one_gpu(distributed.task_gpu_addresses(), distributed.local_rank(),
                      os.environ.get("CUDA_VISIBLE_DEVICES"))
    runtime, ref = job.runtime, job.data
    if pin_cpu_cores(runtime.pin_threads, gpu):
        pin_cores(distributed.local_rank(), distributed.local_size(), runtime.threads,
                  runtime.first_slot)
    root = Path(ref.path)
    manifest = load_manifest(root)
    if manifest.fingerprint != ref.fingerprint:  # rewritten since the sweep was planned
        raise DataError(f"{root}: dataset changed after the sweep began (fingerprint "
                        f"{manifest.fingerprint}, planned on {ref.fingerprint})")
    data = load_rank_data(root, manifest, distributed.rank(), distributed.size(),
                          ref.feed == "stream", ref.probe_rows, ref.probe_seed)
    role = role_for(distributed.rank(), job)
    # Where rank 0 runs from and on what: on a cluster, the shipped environment's interpreter
    # and package, never the driver's paths.
    role.say(f"rank 0 of {distributed.size()}: {sys.executable}, package "
             f"{Path(__file__).parents[2]}, {gpu.reason if gpu else 'CPU'}")
    outcomes = []
    # Progress lines: the driver's board prints them for a sweep (it sees every group);
    # a job with its own list of trials prints its own.
    tracker = Tracker(list(job.trials), *validation_metric(ref.task)) if job.board is None else None
    try:
        for got in assignments(role.trials):
            trial = got.trial
            role.say(f"{time.strftime('%H:%M:%S')} [{got.number}/{got.total}] {trial.name} "
                     f"({trial.config_hash})")
            started = time.monotonic()
            outcomes.append(train_trial(job, trial, manifest, data, role, got.following))
            if tracker is not None:
                tracker.record(trial, outcomes[-1], time.monotonic() - started)
                for line in tracker.lines():
                    role.say(line)
    finally:
        role.records.wait()  # what finished is recorded, even when a later one failed
        if role.trials is not None:
            role.trials.close()
    return outcomes  # every rank's: tests compare them


def _quiet_tensorflow(job: RankJob) -> None:
    """Threads, log levels and progress lines, set before TensorFlow starts its pools."""
    import tensorflow as tf

    console_logging()  # progress lines reach the driver through stdout (rank 0's, see Role)
    tf.config.threading.set_intra_op_parallelism_threads(job.runtime.threads)
    tf.config.threading.set_inter_op_parallelism_threads(max(2, job.runtime.threads))
    tf.get_logger().setLevel("ERROR")  # keep rank output to our progress lines
    # HDF5 is chosen on purpose (pipeline.tracking.models); MLflow checks the logged input
    # example by predicting it with a progress bar: neither belongs in the sweep's output.
    warnings.filterwarnings("ignore", message="You are saving your model as an HDF5 file")
    if not job.runtime.verbose:
        tf.keras.utils.disable_interactive_logging()
