"""Driver side of a sweep: expand the grid, skip what is done, launch Horovod, retry.

All configurations still to do go to one ``horovod.spark.run`` launch. If the launch
fails (a rank crashed, a host went away), the configurations that finished are already
in MLflow; the driver marks the interrupted one failed and relaunches with the rest,
up to ``max_attempts`` launches.

Before planning, the driver delivers what an earlier sweep spooled while MLflow was down
and marks failed the runs of sweeps that died (no heartbeat for a lease); while it runs,
its parent run carries a heartbeat of its own (see pipeline.claims).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from mlflow.tracking import MlflowClient
from pyspark.sql import SparkSession

from pipeline import claims, spool, tracking
from pipeline.config import (
    RunConfig,
    SweepConfig,
    Trial,
    apply_overrides,
    config_hash,
    expand_grid,
)
from pipeline.data import feed
from pipeline.data.manifest import Manifest, load_manifest
from pipeline.errors import ConfigError
from pipeline.spark import available_slots
from pipeline.train.worker import TrialSpec, WorkerJob, run_worker


@dataclass
class SweepOptions:
    data_dir: Path
    num_proc: int | None = None
    epochs: int | None = None
    experiment: str | None = None
    force: bool = False
    verbose: bool = False
    tracking_uri: str | None = None
    # Per-epoch checkpoints; default checkpoints/<experiment>. Must be shared storage on a
    # cluster: a relaunched rank may run on another host.
    checkpoint_dir: Path | None = None
    # Records MLflow could not take, per run: <spool_dir>/<experiment>/<run_id>.jsonl.
    spool_dir: Path = Path("spool")


@dataclass
class SweepResult:
    experiment: str
    experiment_id: str
    parent_run_id: str
    planned: int
    skipped: int
    summaries: list[dict] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    # Each rank's summaries of the last successful launch (their averaged histories agree).
    rank_summaries: list[list[dict]] = field(default_factory=list)
    # (configuration, reason) of those another sweep had done or was training.
    elsewhere: list[tuple[str, str]] = field(default_factory=list)
    # Spool files of runs whose records MLflow did not take; replayed by the next invocation.
    spooled: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)  # run ids marked failed at the start
    unstarted: dict[str, str] = field(default_factory=dict)  # configuration -> why
    replayed: spool.ReplayReport = field(default_factory=spool.ReplayReport)


def plan_trials(sweep: SweepConfig, manifest: Manifest, num_proc: int,
                epochs: int | None) -> list[TrialSpec]:
    """Resolve every grid point and check it can run, before anything starts."""
    from pipeline.model import blocks
    from pipeline.model.build import ARCHITECTURES

    specs = []
    for trial in expand_grid(sweep):
        cfg = trial.config
        if epochs is not None:
            cfg = apply_overrides(cfg, {"training.epochs": epochs}, "--epochs")
        _check_trial(trial, cfg, num_proc, manifest)
        # Unknown names fail here with the list of known ones, not inside a rank.
        for name in (cfg.model.hidden_activation, cfg.model.output_activation):
            blocks.activation(name)
        blocks.LOSSES.get(cfg.loss)
        blocks.INITIALIZERS.get(cfg.model.kernel_initializer)
        blocks.INITIALIZERS.get(cfg.model.bias_initializer)
        blocks.OPTIMIZERS.get(cfg.optimizer.name)
        ARCHITECTURES.get(cfg.model.architecture)
        specs.append(TrialSpec(trial.name, cfg, config_hash(cfg, manifest.fingerprint)))
    return specs


MONITORS = ("loss", "accuracy", "val_loss", "val_accuracy")


def _check_trial(trial: Trial, cfg: RunConfig, num_proc: int, manifest: Manifest) -> None:
    t = cfg.training
    local = t.batch_size
    if t.batch_mode == "global":
        if t.batch_size % num_proc:
            raise ConfigError(f"{trial.name}: training.batch_size {t.batch_size} is not "
                              f"divisible by {num_proc} ranks (it is the global batch)")
        local = t.batch_size // num_proc
    if t.early_stopping.monitor not in MONITORS:
        raise ConfigError(f"{trial.name}: training.early_stopping.monitor must be one of "
                          f"{', '.join(MONITORS)}")
    manifest.shard_files(Path("."), "train", 0, num_proc)  # raises if too few shards
    feed.steps_per_epoch(manifest, "train", num_proc, local)


def resolve_num_proc(spark: SparkSession, sweep: SweepConfig, requested: int | None) -> int:
    slots = available_slots(spark)
    num_proc = requested or sweep.num_proc or slots
    if num_proc < 1:
        raise ConfigError(f"--num-proc: must be at least 1, got {num_proc}")
    if num_proc > slots:
        # Horovod needs all ranks running at once; more would wait until the start timeout.
        raise ConfigError(f"--num-proc: {num_proc} ranks requested but Spark can run only "
                          f"{slots} tasks at once (executor cores / spark.task.cpus)")
    return num_proc


def run_sweep(spark: SparkSession, sweep: SweepConfig, opts: SweepOptions,
              log: Callable[[str], None] = print) -> SweepResult:
    manifest = load_manifest(opts.data_dir, verify=True)  # sizes, rows, sha256
    num_proc = resolve_num_proc(spark, sweep, opts.num_proc)
    specs = plan_trials(sweep, manifest, num_proc, opts.epochs)
    uri = tracking.tracking_uri(opts.tracking_uri)
    client = tracking.connect(uri)
    experiment = opts.experiment or sweep.name
    exp_id = tracking.experiment_id(client, experiment, uri)
    settings = sweep.tracking
    retry = spool.Retry(settings.retries, settings.backoff_seconds)
    spool_dir = (opts.spool_dir / experiment).resolve()
    replayed = replay_spool(client, spool_dir, retry, log)
    parent = _start_parent(client, exp_id, sweep, manifest, num_proc, len(specs))
    with claims.Heartbeat(uri, parent, settings.lease_seconds):
        orphans = _fail_orphans(client, exp_id, sweep, parent, log)
        todo = _todo(client, exp_id, specs, manifest, opts.force)
        log(f"sweep {sweep.name}: {len(specs)} configurations, {len(specs) - len(todo)} "
            f"already done, {len(todo)} to run on {num_proc} Horovod ranks; MLflow: {uri}")
        result = SweepResult(experiment, exp_id, parent, len(specs), len(specs) - len(todo),
                             orphans=orphans, replayed=replayed)
        ckpt_dir = (opts.checkpoint_dir or Path("checkpoints") / experiment).resolve()
        job = WorkerJob(str(opts.data_dir.resolve()), sweep.name, todo, uri, exp_id, parent,
                        manifest.fingerprint, str(ckpt_dir), sweep.threads_per_rank,
                        opts.verbose, str(spool_dir), settings, opts.force,
                        pin_threads=sweep.pin_threads, feed=sweep.feed)
        try:
            _launch_with_retries(client, job, num_proc, sweep.max_attempts, result, log)
        finally:
            _finish_parent(spool.RunLog(client, parent, spool_dir, retry, say=log), result)
    return result


def _fail_orphans(client: MlflowClient, exp_id: str, sweep: SweepConfig, parent: str,
                  log: Callable[[str], None]) -> list[str]:
    """Runs a dead sweep left 'running' are marked failed, one line each."""
    orphans = [r.info.run_id for r in claims.mark_orphans(client, exp_id, sweep.tracking,
                                                           parent)]
    for run_id in orphans:
        log(f"sweep {sweep.name}: marked run {run_id} failed: left running by a sweep that "
            f"stopped (no heartbeat for {sweep.tracking.lease_seconds:g}s)")
    return orphans


def _todo(client: MlflowClient, exp_id: str, specs: list[TrialSpec], manifest: Manifest,
          force: bool) -> list[TrialSpec]:
    """Configurations not done yet; a rank still claims each before it starts (another
    sweep planned at the same moment sees the same list)."""
    done = set() if force else tracking.done_hashes(client, exp_id, manifest.fingerprint)
    return [s for s in specs if s.config_hash not in done]


def replay_spool(client: MlflowClient, folder: Path, retry: spool.Retry,
                 log: Callable[[str], None] = print) -> spool.ReplayReport:
    """Deliver what earlier sweeps spooled, one line per run, so done runs count as done."""
    report = spool.replay(client, folder, retry)
    for run_id, n in report.delivered.items():
        log(f"spool: delivered {n} records of run {run_id} to MLflow")
    for path, why in report.pending.items():
        log(f"spool: kept {path}: {why}")
    return report


def _launch_with_retries(client: MlflowClient, job: WorkerJob, num_proc: int,
                         max_attempts: int, result: SweepResult,
                         log: Callable[[str], None]) -> None:
    import horovod.spark

    remaining = list(job.trials)
    for attempt in range(1, max_attempts + 1):
        if not remaining:
            break
        started = time.perf_counter()
        try:
            per_rank = horovod.spark.run(run_worker, args=(replace(job, trials=remaining),),
                                         num_proc=num_proc, use_gloo=True, env=_rank_env(job),
                                         verbose=1 if job.verbose else 0)
            _sort_summaries(per_rank[0], result)
            result.rank_summaries = per_rank
            remaining = []
        except Exception as exc:  # a failed launch is retried, not fatal
            line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            log(f"launch {attempt}/{max_attempts} failed after "
                f"{time.perf_counter() - started:.0f}s: {line}")
            _fail_stale_children(client, job)
            finished = tracking.done_hashes(client, job.experiment_id, job.fingerprint)
            result.summaries.extend(_summaries_from_mlflow(client, job, finished, remaining))
            remaining = [t for t in remaining if t.config_hash not in finished]
    # Unstarted configurations have no run (MLflow was down): the next invocation runs them.
    result.failed = [t.name for t in remaining] + list(result.unstarted)
    _record_failures(client, job, remaining)


def _sort_summaries(summaries: list[dict], result: SweepResult) -> None:
    """Rank 0's summaries: trained, done elsewhere, or not started (MLflow was down)."""
    for s in summaries:
        if s["status"] == tracking.SKIPPED:
            result.elsewhere.append((s["name"], s["reason"]))
        elif s["status"] == tracking.UNSTARTED:
            result.unstarted[s["name"]] = s["reason"]
        else:
            result.summaries.append(s)
            if s.get("spool"):
                result.spooled.append(s["spool"])


def _rank_env(job: WorkerJob) -> dict[str, str]:
    """Environment overlaid on each rank's: thread counts and quiet TensorFlow logs."""
    env = {"OMP_NUM_THREADS": str(job.threads), "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONUNBUFFERED": "1", "MLFLOW_TRACKING_URI": job.tracking_uri,
           "HOROVOD_CYCLE_TIME": horovod_cycle_time_ms(t.config.model.architecture
                                                       for t in job.trials)}
    # MLflow's own HTTP retries (minutes by default) would hide an outage from RunLog's.
    passed = ("PYTHONPATH", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
              "MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")
    for key, value in os.environ.items():
        if key in passed or key.startswith("HOROVOD_"):  # the user's Horovod tuning wins
            env[key] = value
    return env


# Horovod's background loop wakes every cycle time to start pending allreduces, on the core
# the rank computes on. A dense model's short step waits on that loop: at 0.1 ms the MLP
# trained 27% faster than at 1 ms. A convolutional step is long, and the loop's wake-ups
# take its compute: at 1 ms the CNN trained 8-15% faster (side by side, bench/README.md).
CYCLE_TIME_MS_BY_ARCHITECTURE = {"cnn": 1.0}
DEFAULT_CYCLE_TIME_MS = 0.1


def horovod_cycle_time_ms(architectures: Iterable[str]) -> str:
    """The launch's cycle time: the longest any of its architectures asks for, since the
    slowest steps dominate a mixed sweep's time."""
    wanted = [CYCLE_TIME_MS_BY_ARCHITECTURE.get(a, DEFAULT_CYCLE_TIME_MS) for a in architectures]
    return str(max(wanted, default=DEFAULT_CYCLE_TIME_MS))


def _start_parent(client: MlflowClient, exp_id: str, sweep: SweepConfig, manifest: Manifest,
                  num_proc: int, n_configs: int) -> str:
    name = f"{sweep.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    run = client.create_run(exp_id, run_name=name, tags={
        tracking.TAG_ROLE: "sweep", tracking.TAG_SWEEP: sweep.name,
        tracking.TAG_DATASET: manifest.fingerprint, tracking.TAG_STATUS: tracking.RUNNING,
        claims.TAG_HEARTBEAT: str(claims.now_ms())})
    for key, value in {"num_proc": num_proc, "configurations": n_configs,
                       "dataset": manifest.dataset, "grid_axes": ",".join(sweep.grid)}.items():
        client.log_param(run.info.run_id, key, value)
    return run.info.run_id


def _finish_parent(log: spool.RunLog, result: SweepResult) -> None:
    """Through a RunLog: an outage at the very end must not lose the parent's outcome."""
    status = tracking.FAILED if result.failed else tracking.FINISHED
    log.set_tag(tracking.TAG_STATUS, status)
    log.set_terminated("FAILED" if result.failed else "FINISHED")
    log.close()
    if log.offline:
        result.spooled.append(str(log.path))


def _fail_stale_children(client: MlflowClient, job: WorkerJob) -> None:
    """Runs left 'running' by a crashed launch are marked failed, so none looks in progress.

    A run that is only a claim (no epoch logged, no checkpoint: rank 0 claims the next
    configuration while one trains) is deleted instead, as a losing claim is: it trained
    nothing, and the relaunch claims that configuration afresh.
    """
    from pipeline.train import checkpoint

    for run in tracking.children(client, job.experiment_id, job.parent_run_id):
        if run.data.tags.get(tracking.TAG_STATUS) != tracking.RUNNING:
            continue
        folder = checkpoint.trial_dir(job.checkpoint_dir, run.data.tags.get(tracking.TAG_HASH, ""))
        if not run.data.metrics and checkpoint.read_state(folder) is None:
            client.delete_run(run.info.run_id)
            continue
        client.set_tag(run.info.run_id, tracking.TAG_STATUS, tracking.FAILED)
        client.set_terminated(run.info.run_id, "FAILED")


def _record_failures(client: MlflowClient, job: WorkerJob, failed: list[TrialSpec]) -> None:
    """Every configuration that never finished gets a failed run, so reports list it."""
    if not failed:
        return  # no MLflow call: after an outage the store may still be down
    have = {r.data.tags.get(tracking.TAG_HASH)
            for r in tracking.children(client, job.experiment_id, job.parent_run_id)}
    for trial in failed:
        if trial.config_hash in have:
            continue  # the rank created its run; _fail_stale_children marked it failed
        run = client.create_run(job.experiment_id, run_name=trial.name, tags={
            tracking.TAG_PARENT: job.parent_run_id, tracking.TAG_ROLE: "config",
            tracking.TAG_SWEEP: job.sweep, tracking.TAG_HASH: trial.config_hash,
            tracking.TAG_DATASET: job.fingerprint, tracking.TAG_STATUS: tracking.FAILED,
            "error": "training did not complete; see the sweep's console output"})
        tracking.log_config_params(client, run.info.run_id, trial.config)
        client.set_terminated(run.info.run_id, "FAILED")


def _summaries_from_mlflow(client: MlflowClient, job: WorkerJob, finished: set[str],
                           launched: list[TrialSpec]) -> list[dict]:
    """Summaries of configurations a failed launch completed, read back from MLflow."""
    hashes = {t.config_hash for t in launched} & finished
    out = []
    for run in tracking.children(client, job.experiment_id, job.parent_run_id):
        tags, metrics = run.data.tags, run.data.metrics
        if tags.get(tracking.TAG_HASH) in hashes and tags.get(tracking.TAG_STATUS) in \
                tracking.DONE_STATUSES:
            out.append({"name": run.info.run_name, "config_hash": tags[tracking.TAG_HASH],
                        "status": tags[tracking.TAG_STATUS], **metrics})
            hashes.discard(tags[tracking.TAG_HASH])
    return out
