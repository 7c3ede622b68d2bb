"""The benchmarks: `make bench` runs them all (about 11 minutes on 2 cores).

    python bench/run.py [--sections throughput,feed,sweeps,data,scale,scheduling] [--repeats 3]
        [--quick]
    python bench/run.py --sections mnist8m [--keep]     # opt-in: `make bench-scale`, ~20 min

Every comparison is measured side by side in one run and reported as a ratio, because these
machines are shared and noisy. Writes bench/results/latest.json and BENCHMARKS.md.
``--quick`` shrinks every section to a smoke test (the test suite uses it).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: `python bench/run.py`

from bench import (  # noqa: E402
    data_prep,
    input_feed,
    mnist8m,
    report,
    scheduling,
    sweeps,
    throughput,
)

SECTIONS = ("throughput", "feed", "sweeps", "data", "scale", "scheduling")
OPT_IN = ("mnist8m",)  # not in the default list: it writes and reads about 8 million rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sections", default=",".join(SECTIONS),
                   help=f"comma-separated subset of {', '.join(SECTIONS + OPT_IN)}")
    p.add_argument("--data", default=str(ROOT / "data" / "processed" / "mnist"))
    p.add_argument("--x10", default=str(ROOT / "data" / "processed" / "mnist_x10"),
                   help="the augmented set the scale section compares against --data")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--raw", default=str(ROOT / "data" / "raw" / "mnist.pkl.gz"))
    p.add_argument("--augment-config", default=str(ROOT / "conf/augment/mnist_x10.yaml"))
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks that it all runs")
    p.add_argument("--scale-memory", action="store_true",
                   help="scale section: also measure the in-memory feed, for contrast (~70 s)")
    p.add_argument("--copies", type=int, default=mnist8m.COPIES,
                   help="mnist8m section: distorted copies of each training image")
    p.add_argument("--keep", action="store_true",
                   help="mnist8m section: keep the generated sets under data/processed/")
    p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    p.add_argument("--markdown", default=str(ROOT / "BENCHMARKS.md"))
    args = p.parse_args(argv)
    args.sections = [s for s in args.sections.split(",") if s]
    unknown = set(args.sections) - set(SECTIONS + OPT_IN)
    if unknown:
        p.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    return args


def run_throughput(args: argparse.Namespace, log) -> dict:
    data = str(Path(args.data).resolve())
    size = {"epochs": 2, "global_batch": 32} if args.quick else {"epochs": 3, "global_batch": 256}
    mlp = throughput.Setup(data, "mlp", **size)
    cnn = throughput.Setup(data, "cnn", **size, max_steps=2 if args.quick else 40)
    out = {"mlp": throughput.measure(mlp, args.repeats, log)}
    if not args.quick:  # the same code with another model: the smoke test skips it
        out["cnn"] = throughput.measure(cnn, args.repeats, log)
    return out


def run_feed(args: argparse.Namespace, log) -> dict:
    return input_feed.measure(str(Path(args.data).resolve()), batch=16 if args.quick else 128,
                              epochs=2 if args.quick else 3, repeats=args.repeats)


def run_sweeps(args: argparse.Namespace, spark, log) -> dict:
    quick = args.quick
    default = sweeps.run(spark, "conf/sweep/default.yaml", args.data,
                         epochs=1 if quick else None,
                         grid={"model.hidden_activation": ["relu", "tanh"]} if quick else None,
                         **({"repeats": 1} if quick else {}))
    log(f"  default sweep: {len(default['outcomes'])} configurations in "
        f"{default['wall_seconds']:.0f}s")
    out = {"overhead": sweeps.overhead(default), "mlp_accuracy": sweeps.accuracy(default)}
    if quick:  # the other sweeps run the same code: the smoke test skips them
        return out
    cnn = sweeps.run(spark, "conf/sweep/cnn.yaml", args.data, epochs=6,
                     grid={"model.hidden_activation": ["relu"]})
    log(f"  cnn: {cnn['outcomes'][0].metric('test_accuracy'):.4f}")
    repro = sweeps.run(spark, "conf/sweep/seed_repro.yaml", args.data, epochs=1)
    return {**out, "cnn_accuracy": sweeps.accuracy(cnn), "seed_repro": sweeps.accuracy(repro)}


def run_scale(args: argparse.Namespace, spark, log) -> dict:
    """Peak RSS of a rank, one epoch of one configuration, on each dataset and feed."""
    if not (Path(args.x10) / "manifest.json").is_file():
        raise SystemExit(f"bench: {args.x10} is not prepared; run the data section first "
                         "(or make augment)")
    one = {"head": [{"model.output_activation": "softmax", "loss": "categorical_crossentropy"}]}
    out = {}
    for feed in ("stream", "memory") if args.scale_memory else ("stream",):
        for name, data in (("base", args.data), ("x10", args.x10)):
            swept = sweeps.run(spark, "conf/sweep/default.yaml", data, epochs=1,
                               grid={"model.hidden_activation": ["relu"], **one}, feed=feed)
            out[f"{feed}_{name}"] = {"peak_rss_mib": max(swept["rank_peak_rss_mib"]),
                                     "epoch_seconds": swept["outcomes"][0].train_seconds}
            log(f"  {feed} {name}: peak rank RSS {out[f'{feed}_{name}']['peak_rss_mib']:.0f} MiB")
        out[f"{feed}_ratio"] = out[f"{feed}_x10"]["peak_rss_mib"] / out[f"{feed}_base"][
            "peak_rss_mib"]
    return out


def run_data(args: argparse.Namespace, log) -> dict:
    mnist = data_prep.measure(Path(args.raw).resolve())
    log(f"  prepare MNIST: Spark/numpy {mnist['prepare']['ratio_spark_over_numpy']:.2f}")
    x10 = data_prep.measure_x10(Path(args.augment_config).resolve())
    return {"mnist": mnist, "x10": x10}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from pipeline.spark import build_session

    spark = build_session(overrides={"spark.master": "local[2]"})
    started = time.perf_counter()
    results: dict = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "quick": args.quick,
                     "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
                     "versions": report.versions()}
    runners = {"throughput": lambda: run_throughput(args, print),
               "feed": lambda: run_feed(args, print),
               "sweeps": lambda: run_sweeps(args, spark, print),
               "data": lambda: run_data(args, print),
               "scale": lambda: run_scale(args, spark, print),
               "scheduling": lambda: scheduling.measure(spark, str(Path(args.data).resolve()),
                                                        args.quick, print),
               "mnist8m": lambda: mnist8m.measure(spark, Path(args.data).resolve(),
                                                  args.copies, args.keep, print)}
    for section in args.sections:
        t0 = time.perf_counter()
        print(f"{section} ...", flush=True)
        results[section] = runners[section]()
        results[section]["section_seconds"] = time.perf_counter() - t0
    results["total_seconds"] = time.perf_counter() - started
    if not args.quick:
        for key in report.carry_over(results, Path(args.out)):
            print(f"{key}: kept from the previous results (not measured in this run)")
    report.write(results, Path(args.out), Path(args.markdown))
    print(f"done in {results['total_seconds']:.0f}s; wrote {args.out}/latest.json and "
          f"{args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
