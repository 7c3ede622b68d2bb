"""A sweep from the Spark driver, as a list of steps: plan, replay, claim a parent, launch.

Before planning, the driver delivers what an earlier sweep spooled while MLflow was down and
marks failed the runs of sweeps that died (no heartbeat for a lease); while it runs, its
parent run carries a heartbeat of its own (see pipeline.tracking.claims). Never imports
TensorFlow.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path

from pyspark.sql import SparkSession

from pipeline.config import SweepConfig, expand_grid
from pipeline.config.resolve import Overrides, resolve
from pipeline.data.manifest import Manifest, load_manifest
from pipeline.model import pairing
from pipeline.storage import recover
from pipeline.tasks import validation_metric
from pipeline.tracking import claims, runs, spool, store
from pipeline.tracking.store import Client
from pipeline.tracking.vocab import FAILED, FINISHED
from pipeline.train.contract import DataRef, RankJob, Runtime, TrackingTarget, Trial, TrialOutcome
from pipeline.train.driver import groups, halving, layout, racing
from pipeline.train.driver.halving import Rung
from pipeline.train.driver.launch import Launches, rank_python, resolve_num_proc
from pipeline.train.driver.plan import plan_trials
from pipeline.train.driver.racing import Race
from pipeline.train.progress import Tracker

logger = logging.getLogger(__name__)


@dataclass
class SweepOptions:
    data_dir: Path
    _: KW_ONLY  # the rest by name only: a new option must not shift the others' positions
    num_proc: int | None = None
    ranks_per_trial: int | None = None  # default the sweep's
    halving: bool | None = None  # successive halving on/off; default the sweep's
    racing: bool | None = None  # adaptive replicates on/off; default the sweep's
    epochs: int | None = None
    repeats: int | None = None  # replicates per configuration; default the sweep's
    experiment: str | None = None
    force: bool = False
    verbose: bool = False
    tracking_uri: str | None = None
    # Per-epoch checkpoints; default checkpoints/<experiment>. Must be shared storage on a
    # cluster: a relaunched rank may run on another host.
    checkpoint_dir: Path | None = None
    # Records MLflow could not take, per run: <spool_dir>/<experiment>/<run_id>.jsonl.
    spool_dir: Path = Path("spool")

    def overrides(self) -> Overrides:
        """What these options set over the sweep file (pipeline.config.resolve merges them)."""
        return Overrides(epochs=self.epochs, repeats=self.repeats, num_proc=self.num_proc,
                         ranks_per_trial=self.ranks_per_trial, halving=self.halving,
                         racing=self.racing)


@dataclass
class SweepResult:
    experiment: str
    experiment_id: str
    parent_run_id: str
    planned: int
    skipped: int
    outcomes: list[TrialOutcome] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    # Each rank's outcomes of the last successful launch (their averaged histories agree).
    rank_outcomes: list[list[TrialOutcome]] = field(default_factory=list)
    # (configuration, reason) of those another sweep had done or was training.
    elsewhere: list[tuple[str, str]] = field(default_factory=list)
    # Spool files of runs whose records MLflow did not take; replayed by the next invocation.
    spooled: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)  # run ids marked failed at the start
    unstarted: dict[str, str] = field(default_factory=dict)  # configuration -> why
    replayed: spool.ReplayReport = field(default_factory=spool.ReplayReport)
    rungs: list[Rung] = field(default_factory=list)  # successive halving's decisions
    pruned: list[str] = field(default_factory=list)  # runs stopped by them
    race: Race | None = None  # racing's rounds and each cell's stop reason


def run_sweep(spark: SparkSession, sweep: SweepConfig, opts: SweepOptions,
              log: Callable[[str], None] = logger.info) -> SweepResult:
    sweep = resolve(sweep, opts.overrides()).sweep  # the command line merged, ranges checked
    halving_on, racing_on = sweep.halving.enabled, sweep.racing.enabled
    restored = recover(opts.data_dir)  # a prepare killed mid-swap left it aside
    if restored:
        log(f"WARNING: {restored}")
    manifest = load_manifest(opts.data_dir, verify=True)  # sizes, rows, sha256
    num_proc = resolve_num_proc(spark, sweep, sweep.num_proc, log)
    shape = choose_layout(spark.sparkContext.master, sweep, num_proc, log)
    trials = plan_trials(sweep, manifest, shape.ranks, opts.epochs, log=log)
    uri = store.tracking_uri(opts.tracking_uri)
    client = store.connect(uri)
    experiment = opts.experiment or sweep.name
    exp_id = store.experiment_id(client, experiment, uri)
    settings = sweep.tracking
    retry = spool.Retry(settings.retries, settings.backoff_seconds)
    spool_dir = (opts.spool_dir / experiment).resolve()
    replayed = replay_spool(client, spool_dir, retry, log)
    findings = preflight(trials, sweep.name, log)
    parent = runs.start_parent(client, exp_id, sweep, manifest, num_proc, len(trials), findings)
    runs.log_planned(client, parent, trials)  # the report finds the skipped ones from it
    # Registered once here, so that ranks starting runs at the same moment only link it.
    store.log_dataset_input(client, parent, manifest.dataset or "dataset", manifest.fingerprint,
                            str(opts.data_dir.resolve()))
    result = SweepResult(experiment, exp_id, parent, len(trials), 0, replayed=replayed)
    status = runs.KILLED  # until the launches return: an interrupt or a crash is not success
    with claims.Heartbeat(uri, parent, settings.lease_seconds):
        try:
            result.orphans = runs.fail_orphans(client, exp_id, sweep, parent, log)
            todo = runs.todo(client, exp_id, trials, manifest.fingerprint, opts.force)
            result.skipped = len(trials) - len(todo)
            cells = len({t.cell_hash for t in trials})
            each = len(trials) // max(cells, 1)
            log(f"sweep {sweep.name}: {cells} configurations"
                + (f" x {'up to ' if racing_on else ''}{each} replicates" if each > 1 else "")
                + f", {result.skipped} already done, {len(todo)} to run: "
                f"{shape.describe()}; MLflow: {store.redact(uri)}")
            ckpt_dir = (opts.checkpoint_dir or Path("checkpoints") / experiment).resolve()
            job = RankJob(
                sweep=sweep.name, trials=todo,
                tracking=TrackingTarget(uri=uri, experiment_id=exp_id, parent_run_id=parent,
                                        spool_dir=str(spool_dir), settings=settings),
                data=DataRef(path=str(opts.data_dir.resolve()), fingerprint=manifest.fingerprint,
                             name=manifest.dataset, task=manifest.task, feed=sweep.feed,
                             probe_rows=sweep.diagnostics_probe_rows,
                             probe_seed=sweep.base.training.seed),
                runtime=Runtime(threads=sweep.threads_per_rank, pin_threads=sweep.pin_threads,
                                verbose=opts.verbose, checkpoint_dir=str(ckpt_dir),
                                force=opts.force))
            launch = Launcher(client, job, shape, sweep.max_attempts, result, log,
                              rank_python(spark), board_host(spark),
                              Tracker([], *validation_metric(manifest.task)))
            interrupted = True  # until the schedule returns: the ranks are stopped, not awaited
            try:
                schedule(launch, client, exp_id, trials, todo, sweep, manifest, racing_on,
                         halving_on, result, log)
                interrupted = False
            finally:
                launch.close(interrupted)
            status = FAILED if result.failed else FINISHED
        except Exception:
            status = FAILED
            raise
        finally:  # KeyboardInterrupt and SystemExit leave the status KILLED
            parent_log = spool.RunLog(client, parent, spool_dir, retry, say=log)
            if runs.finish_parent(parent_log, status):
                result.spooled.append(str(parent_log.path))
    return result


def schedule(launch: Launcher, client: Client, exp_id: str, trials: list[Trial],
             todo: list[Trial], sweep: SweepConfig, manifest: Manifest, racing_on: bool,
             halving_on: bool, result: SweepResult, log: Callable[[str], None]) -> None:
    """The trials to do, as the sweep's schedule hands them to ``launch``: racing's rounds,
    halving's rungs, or all at once."""
    metric = validation_metric(manifest.task)
    if racing_on:
        result.race = racing.run_race(client, exp_id, trials, todo, sweep.racing,
                                      sweep.report.min_effect, metric, launch, log)
    elif halving_on:
        result.rungs, result.pruned = halving.run_rungs(client, exp_id, todo, sweep.halving,
                                                        metric, launch, log)
    else:
        launch(todo)


def board_host(spark: SparkSession) -> str:
    """Where the ranks reach the driver's board: loopback on one machine, else the address
    Spark's executors reach the driver at."""
    context = spark.sparkContext
    if layout.is_local(context.master):
        return "127.0.0.1"
    return context.getConf().get("spark.driver.host", "127.0.0.1")


def choose_layout(master: str, sweep: SweepConfig, num_proc: int,
                  log: Callable[[str], None]) -> groups.Layout:
    """Ranks per trial as asked (``sweep`` resolved), else by the rule in ``layout``; said in
    one line first."""
    runs = len(expand_grid(sweep)) * sweep.repeats
    choice = layout.choose(num_proc, runs, layout.is_local(master), sweep.ranks_per_trial)
    shape = groups.layout(num_proc, choice.ranks_per_trial, log)
    log(f"sweep {sweep.name}: layout: {shape.describe()}; {choice.why}")
    return shape


class Launcher:
    """Trains lists of trials on the sweep's layout and adds what came of them to the result
    (called once, or once per rung of successive halving or round of racing: the groups'
    ranks live across the calls). ``close`` ends them."""

    def __init__(self, client: Client, job: RankJob, shape: groups.Layout, max_attempts: int,
                 result: SweepResult, log: Callable[[str], None], executable: str,
                 host: str, tracker: Tracker) -> None:
        self.client, self.job, self.result = client, job, result
        self.groups = groups.Groups(job, shape, max_attempts, log, executable, host, tracker)

    def __call__(self, trials: list[Trial]) -> None:
        job, result = self.job, self.result
        remaining = self.groups.train(trials)
        for launches in self.groups.launches:  # what each group settled since the last call
            result.outcomes += launches.outcomes
            result.elsewhere += launches.elsewhere
            result.unstarted.update(launches.unstarted)
            result.spooled += [o.spool for o in launches.outcomes if o.spool] + launches.spooled
            # Unstarted configurations have no run (MLflow was down): the next invocation runs them.
            result.failed += list(launches.unstarted)
            launches.outcomes, launches.elsewhere, launches.spooled = [], [], []
            launches.unstarted = {}
        result.failed += [t.name for t in remaining]
        runs.record_failures(self.client, job.tracking.experiment_id, job.tracking.parent_run_id,
                             job.sweep, job.data.fingerprint, remaining)

    def close(self, interrupted: bool) -> None:
        self.groups.close(interrupted)
        self.result.rank_outcomes = _by_rank(self.groups.launches)


def _by_rank(done: list[Launches]) -> list[list[TrialOutcome]]:
    """Rank r's outcomes in every group (each group's rank r: same position in its launch)."""
    ranks = max((len(launches.rank_outcomes) for launches in done), default=0)
    return [[o for launches in done if r < len(launches.rank_outcomes)
             for o in launches.rank_outcomes[r]] for r in range(ranks)]


def preflight(trials: list[Trial], sweep: str, log: Callable[[str], None]) -> list[str]:
    """The pairing rules over each configuration once (not per replicate), printed once."""
    lines = pairing.preflight((t.name.rsplit(" #", 1)[0], t.config) for t in trials
                              if t.replicate == 0)
    log(f"sweep {sweep}: pre-flight check of pairings: "
        + (f"{len(lines)} warnings (the sweep runs them as asked)" if lines else "no findings"))
    for line in lines:
        log(f"  warning: {line}")
    return lines


def replay_spool(client: Client, folder: Path, retry: spool.Retry,
                 log: Callable[[str], None] = logger.info) -> spool.ReplayReport:
    """Deliver what earlier sweeps spooled, one line per run, so done runs count as done."""
    report = spool.replay(client, folder, retry)
    for line in spool.report_lines(report):
        log(line)
    return report
