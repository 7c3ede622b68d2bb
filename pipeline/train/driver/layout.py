"""How many ranks each trial gets when the user did not say (``--ranks-per-trial`` or the
sweep's ``ranks_per_trial``): the rule, and the measurements it rests on.

On one machine (a ``local`` master) a trial's ranks share its cores, so a data-parallel trial
pays Horovod's allreduce for no extra compute, while one-rank trials side by side each get a
core of their own. BENCHMARKS.md holds the figures: "Scheduling" times the default sweep with
both ranks on each trial, as one-rank trials at once, and as a plain one-process Keras loop
(the one-rank trials were the fastest, and the only layout faster than the plain loop, with
the same best cell); "Training throughput" compares two Horovod ranks with one two-thread
Keras process per step, for the MLP and the CNN (below one for both: neither model is large
enough for data parallelism to pay on one machine). So the model's size does not enter the
rule until a measurement shows where data parallelism starts to pay there. On one machine:

- at least as many runs as slots: one-rank trials, one per slot;
- fewer runs than slots: the slots shared among the runs (a single run takes them all), since
  slots left idle help no one.

On a cluster (any other master) every rank trains each trial, data parallel: that spreads a
trial's shards and memory over the hosts, and no measurement here compares the layouts
across hosts.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Choice:
    """Ranks per trial, and the reason to print on the sweep's first line."""

    ranks_per_trial: int
    why: str


def is_local(master: str) -> bool:
    """``local``, ``local[N]``, ``local[*]``, ``local[N,F]``: one JVM on one machine
    (``local-cluster`` starts executors apart, like a cluster)."""
    master = master.strip()
    return master == "local" or master.startswith("local[")


def choose(slots: int, runs: int, local: bool, asked: int | None = None) -> Choice:
    """The ranks per trial for ``runs`` runs on ``slots`` ranks (``asked`` wins)."""
    if asked is not None:
        return Choice(asked, "as asked (--ranks-per-trial or the sweep's ranks_per_trial)")
    if not local:
        return Choice(slots, "a cluster: every rank on each trial spreads its data and memory "
                             "over the hosts (--ranks-per-trial overrides)")
    if runs >= slots:
        return Choice(1, f"one machine, {runs} runs for {slots} slots: one-rank trials side by "
                         "side, faster than data-parallel ranks on one machine (BENCHMARKS.md, "
                         "Scheduling; --ranks-per-trial overrides)")
    return Choice(max(1, slots // max(runs, 1)),
                  f"one machine, {runs} run{'s' if runs != 1 else ''} for {slots} slots: "
                  "data-parallel ranks, so no slot stays idle (--ranks-per-trial overrides)")
