"""bench/results/latest.json and the readable BENCHMARKS.md, from one run's results."""

from __future__ import annotations

import json
import platform
from pathlib import Path


def versions() -> dict[str, str]:
    from importlib.metadata import version

    names = ("tensorflow-cpu", "horovod", "pyspark", "mlflow", "numpy")
    return {n: version(n) for n in names} | {"python": platform.python_version()}


def carry_over(results: dict, out_dir: Path) -> list[str]:
    """Sections this run did not measure, taken from the previous results (with their date),
    so that running one section does not drop the others from BENCHMARKS.md."""
    previous = out_dir / "latest.json"
    if not previous.is_file():
        return []
    old = json.loads(previous.read_text())
    kept = []
    for key, _ in SECTIONS:
        if key not in results and key in old:
            results[key] = {**old[key], "measured": old[key].get("measured", old.get("date"))}
            kept.append(key)
    return kept


# BENCHMARKS.md's sections below this line are measured by other means (the test suite, the
# statistics simulation) and written by hand: a bench run keeps them as they are.
KEPT_MARK = "<!-- Measured outside make bench: kept as written by every bench run. -->"


def kept_tail(markdown: Path) -> list[str]:
    text = markdown.read_text() if markdown.is_file() else ""
    if KEPT_MARK not in text:
        return []
    return [KEPT_MARK, "", *text.split(KEPT_MARK, 1)[1].strip("\n").split("\n")]


def write(results: dict, out_dir: Path, markdown: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# Benchmarks", "",
        f"Measured {results['date']} on {results['machine']['cpus']} cores "
        f"({results['machine']['platform']}) by `make bench` in "
        f"{results['total_seconds'] / 60:.1f} min"
        + (" (quick mode: smoke-test sizes, not representative)" if results["quick"] else "")
        + ". Comparisons are measured alternately in one run; figures are medians.", "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()), "",
    ]
    for key, render in SECTIONS:
        if key in results:
            section = render(results[key])
            if "measured" in results[key]:  # carried over from an earlier run
                section.insert(1, f"\n_Measured {results[key]['measured']}, in an earlier run._")
            lines += [*section, ""]
    markdown.write_text("\n".join([*lines, *kept_tail(markdown)]).rstrip("\n") + "\n")


def _runs(values: list[float]) -> str:
    return ", ".join(f"{v:.0f}" for v in values)


def _throughput(r: dict) -> list[str]:
    out = ["## Training throughput (samples/s, MNIST train split)", "",
           "Horovod on Spark, 2 ranks x 1 thread (each rank on its own core, as the sweep runs "
           "them) against plain Keras, 1 process x 2 threads; same model, data, global batch.",
           "", "| model | global batch | plain Keras | Horovod | ratio | runs (plain; Horovod) |",
           "|---|---|---|---|---|---|"]
    for name in ("mlp", "cnn"):
        if name not in r:
            continue
        t = r[name]
        steps = f", {t['max_steps']} steps/epoch" if t["max_steps"] else ""
        out.append(f"| {name}{steps} | {t['global_batch']} | {t['plain_median']:.0f} | "
                   f"{t['horovod_median']:.0f} | **{t['ratio']:.2f}** | "
                   f"{_runs(t['plain'])}; {_runs(t['horovod'])} |")
    return out


def _feed(r: dict) -> list[str]:
    m = r["medians"]
    return [f"## Input feed (one rank of two, 1 thread, batch {r['batch']})", "",
            "| feed | rows/s delivered | MLP training samples/s |", "|---|---|---|",
            f"| arrays in memory | {m['memory_rows_per_sec']:.0f} | {m['memory_train']:.0f} |",
            f"| Parquet shards streamed | {m['stream_rows_per_sec']:.0f} | "
            f"{m['stream_train']:.0f} |",
            f"| ratio stream / memory | {r['ratio_rows']:.2f} | **{r['ratio_train']:.2f}** |"]


def _sweeps(r: dict) -> list[str]:
    o, mlp = r["overhead"], r["mlp_accuracy"]
    out = ["## Sweeps: overhead and accuracy", "",
           f"Default sweep, {o['configurations']} configurations, one Horovod launch: "
           f"{o['wall_seconds']:.0f} s wall, {o['train_seconds']:.0f} s training; "
           f"**{o['overhead_per_config']:.1f} s overhead per configuration** (set-up "
           f"{o['setup_per_config']:.1f} s, input teardown after fit() "
           f"{o.get('teardown_per_config', 0.0):.1f} s, test {o['test_per_config']:.1f} s, "
           f"waiting for "
           f"MLflow records {o['record_wait_per_config']:.1f} s, launch and driver "
           f"{o['launch_and_driver_seconds'] / o['configurations']:.1f} s; the records "
           f"themselves took {o['record_background_per_config']:.1f} s per configuration in "
           f"rank 0's background thread, beside the next configuration's training)."
           + (" A Horovod launch failed and was retried in this run: the figure includes it."
              if o["relaunched"] else ""), "",
           f"Configurations here are replicate runs (the default sweep trains each "
           f"configuration {o.get('replicates', 1)} times). Per-epoch diagnostics took "
           f"{o.get('diagnostics_seconds', 0.0):.1f} s of the {o['train_seconds']:.0f} s of "
           f"training: **{100 * o.get('diagnostics_share', 0.0):.1f}%** (target under 5%).", "",
           "| what | test accuracy | epochs | configuration |", "|---|---|---|---|",
           f"| best default-sweep MLP | **{mlp['best_test_accuracy']:.4f}** | {mlp['epochs']} | "
           f"{mlp['best']} |"]
    if "cnn_accuracy" in r:
        cnn, repro = r["cnn_accuracy"], r["seed_repro"]
        out.append(f"| CNN | **{cnn['best_test_accuracy']:.4f}** | {cnn['epochs']} | "
                   f"{cnn['best']} |")
        out += [f"| seed_repro | {acc:.4f} | {repro['epochs']} | {name} |"
                for name, acc in repro["all"].items()]
    return out


def _data(r: dict) -> list[str]:
    p, x = r["mnist"]["prepare"], r["x10"]
    xa, xp = x["augment"], x["prepare"]
    return [
        "## Data preparation", "",
        "| job | rows | Spark local[2] rows/s | one-process numpy/pyarrow rows/s | "
        "Spark / numpy | driver peak RSS (MiB) |", "|---|---|---|---|---|---|",
        f"| prepare MNIST (pkl.gz) | {p['rows']} | {p['spark_rows_per_sec']:.0f} | "
        f"{p['numpy_rows_per_sec']:.0f} | {p['ratio_spark_over_numpy']:.2f} | "
        f"{p['driver_peak_rss_mib']:.0f} |",
        f"| augment x{xa['copies']} | {xa['rows_written']} | {xa['spark_rows_per_sec']:.0f} | "
        f"{xa['numpy_rows_per_sec']:.0f} (first {xa['numpy_rows']} rows) | "
        f"{xa['ratio_spark_over_numpy']:.2f} | {xa['driver_peak_rss_mib']:.0f} |",
        f"| prepare the x10 set (Parquet source) | {xp['rows']} | "
        f"{xp['spark_rows_per_sec']:.0f} | {xp['numpy_rows_per_sec']:.0f} | "
        f"{xp['ratio_spark_over_numpy']:.2f} | {xp['driver_peak_rss_mib']:.0f} |",
        "", "Spark's wall time includes its start-up (JVM, session) in each job; driver RSS is "
        "the Python driver's (the pkl.gz reader loads the pickle there; the other jobs' "
        "drivers hold no rows).",
    ]


def _scale(r: dict) -> list[str]:
    out = ["## Scale: peak resident memory of a rank, one epoch", "",
           "| feed | MNIST (MiB) | x10 (MiB) | x10 / MNIST |", "|---|---|---|---|"]
    for feed in ("stream", "memory"):
        if f"{feed}_ratio" not in r:
            continue
        out.append(f"| {feed} | {r[f'{feed}_base']['peak_rss_mib']:.0f} | "
                   f"{r[f'{feed}_x10']['peak_rss_mib']:.0f} | **{r[f'{feed}_ratio']:.2f}** |")
    return out


def _scheduling(r: dict) -> list[str]:
    q = r["ratios"]
    rows = [("plain Keras loop (1 process, 2 threads; no Spark, Horovod or tracking)", "plain"),
            ("sequential: every rank on one trial at a time (`--ranks-per-trial 2`)",
             "sequential"),
            ("concurrent: 2 one-rank trials at once (`ranks_per_trial: 1`; the default on one "
             "machine)", "concurrent"),
            ("successive halving on the concurrent layout (`--halving`, eta 2)", "halving")]
    out = ["## Scheduling: the whole default sweep, four ways", "",
           f"{r['plain']['runs_finished']} runs (cells x replicates) of the default sweep's grid; "
           "best cell by the mean test accuracy of its replicates. Measured one after another "
           "in one run.", "",
           "| schedule | wall (s) | configurations per hour | best cell | its mean test accuracy |",
           "|---|---|---|---|---|"]
    for label, key in rows:
        x = r[key]
        per_hour = 3600 * r["plain"]["cells_finished"] / x["wall_seconds"]
        out.append(f"| {label} | {x['wall_seconds']:.0f} | {per_hour:.0f} | {x['best_cell']} | "
                   f"{x['best_mean']:.4f} |")
    out += ["", f"- sequential sweep / plain loop wall time: **{q['sequential_over_plain']:.2f}** "
            "(target <= 1.25)",
            f"- concurrent / sequential configurations per hour: "
            f"**{q['concurrent_configs_per_hour_gain']:.2f}x** (target >= 1.3x)",
            f"- halving / full grid wall time (both concurrent): **{q['halving_over_full']:.2f}** "
            f"(target <= 0.5); same best cell: **{'yes' if q['halving_same_best'] else 'no'}**",
            "- best mean accuracy, plain loop minus sweep: "
            f"{q['plain_best_minus_sweep_best']:+.4f}"]
    return out


def _num(value: float | None) -> str:
    return "not recorded" if value is None else f"{value:.0f}"


def _mnist8m(r: dict) -> list[str]:
    t = r["train"]
    out = ["## MNIST-8M scale (`make bench-scale`)", "",
           f"{r['copies']} distorted copies of each MNIST training image plus the originals; "
           f"whole run {r['total_seconds'] / 60:.1f} min (target under 45). Driver memory: the "
           "Python driver and its JVM, which in local mode runs the executors too.", "",
           "| stage | rows | wall (s) | rows/s | driver Python peak (MiB) | driver JVM peak "
           "(MiB) | on disk (MiB) |", "|---|---|---|---|---|---|---|"]
    for name in ("augment", "prepare"):
        s = r[name]
        cells = [_num(s.get(k)) for k in ("seconds", "rows_per_sec", "driver_python_peak_rss_mib",
                                          "driver_jvm_peak_rss_mib", "disk_mib")]
        out.append(f"| {name} | {s['rows']} | {' | '.join(cells)} |")
    if r.get("note"):
        out += ["", r["note"]]
    out += ["", "One epoch of one configuration (relu, softmax + cross-entropy), streamed, "
            "2 ranks:", "",
            "| dataset | train rows | epoch (s) | rows/s | test accuracy | rank peak RSS (MiB) |",
            "|---|---|---|---|---|---|"]
    for name, label in (("mnist", "MNIST"), ("big", "MNIST-8M")):
        x = t[name]
        out.append(f"| {label} | {x['rows']} | {x['epoch_seconds']:.0f} | "
                   f"{x['rows_per_sec']:.0f} | {x['test_accuracy']:.4f} | "
                   f"{', '.join(f'{v:.0f}' for v in x['rank_peak_rss_mib'])} |")
    out += ["", f"- rank peak memory, MNIST-8M / MNIST: **{t['rank_peak_ratio']:.2f}** "
            "(target <= 1.5)"]
    return out


SECTIONS = (("throughput", _throughput), ("feed", _feed), ("sweeps", _sweeps),
            ("data", _data), ("scale", _scale), ("scheduling", _scheduling),
            ("mnist8m", _mnist8m))
