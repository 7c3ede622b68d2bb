"""What a Horovod rank pays to import before it trains, side by side in one run.

Each sample is a fresh interpreter importing Horovod's task entry point (what Spark starts),
the rank's entry module and TensorFlow with Horovod's Keras binding: the imports of a rank
other than 0. "rank 0" adds MLflow's client, which only rank 0 uses. "everything" adds what
the ranks used to import at start-up as well (MLflow, scipy.stats, pyarrow.dataset with
pandas), to show what leaving them out saves. The three kinds alternate, so the machine's
load falls on each alike; the medians and their ratios are reported.

    python -m bench.rank_imports [--repeats 5]   # writes bench/results/rank_imports.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from bench.common import ROOT, median

RANK = ("horovod.spark.task.gloo_exec_fn", "pipeline.train.rank.entry",
        "horovod.tensorflow.keras")
KINDS = {
    "other rank": RANK,
    "rank 0": (*RANK, "mlflow.tracking"),
    "everything": (*RANK, "mlflow.tracking", "scipy.stats", "pyarrow.dataset"),
}


def sample(modules: tuple[str, ...]) -> dict:
    """Wall and CPU seconds of one fresh interpreter importing ``modules``."""
    code = ("import os, sys, time; t = time.perf_counter(); "
            f"[__import__(m) for m in {list(modules)!r}]; "
            "c = os.times(); print(time.perf_counter() - t, c.user + c.system, "
            "'mlflow' in sys.modules)")
    env = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, text=True,
                         capture_output=True, check=True).stdout.split()
    return {"wall": float(out[0]), "cpu": float(out[1]), "mlflow": out[2] == "True"}


def measure(repeats: int) -> dict:
    got: dict[str, list[dict]] = {k: [] for k in KINDS}
    for _ in range(repeats):
        for kind, modules in KINDS.items():
            got[kind].append(sample(modules))
    out = {kind: {"wall_median": median([s["wall"] for s in runs]),
                  "cpu_median": median([s["cpu"] for s in runs]),
                  "imports_mlflow": runs[0]["mlflow"], "samples": runs}
           for kind, runs in got.items()}
    base = out["everything"]["cpu_median"]
    out["ratios"] = {f"{k}_cpu_over_everything": out[k]["cpu_median"] / base
                     for k in ("other rank", "rank 0")}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "rank_imports.json"))
    args = p.parse_args(argv)
    result = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), **measure(args.repeats)}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    for kind in KINDS:
        r = result[kind]
        print(f"{kind:11s} wall {r['wall_median']:.2f} s, CPU {r['cpu_median']:.2f} s, "
              f"MLflow imported: {r['imports_mlflow']}")
    print(json.dumps(result["ratios"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
