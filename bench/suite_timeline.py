"""Summarise a test-suite timeline (``pytest --timeline FILE``, tests/helpers/suite.py): the
wall time, each worker's busy time and when it went idle, and the modules and tests that took
longest (setup + call + teardown, as the workers saw them). When the timeline has CPU seconds
(each phase's, with every process it started: tests/helpers/cpu.py), the same by CPU, which
is what a suite running on every core at once is short of.

    python bench/suite_timeline.py reports/test-timeline.tsv [--top 20]
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path


def load(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    for row in rows:
        row["start"], row["stop"] = float(row["start"]), float(row["stop"])
        row["cpu"] = float(row["cpu"]) if row.get("cpu") else None
    return rows


def summarise(rows: list[dict], top: int) -> str:
    t0 = min(r["start"] for r in rows)
    wall = max(r["stop"] for r in rows) - t0
    per_test: dict[str, float] = defaultdict(float)
    per_module: dict[str, float] = defaultdict(float)
    busy: dict[str, float] = defaultdict(float)
    last: dict[str, float] = defaultdict(float)
    for r in rows:
        took = r["stop"] - r["start"]
        per_test[r["nodeid"]] += took
        per_module[r["nodeid"].split("::", 1)[0]] += took
        busy[r["worker"]] += took
        last[r["worker"]] = max(last[r["worker"]], r["stop"] - t0)
    lines = [f"wall {wall:.0f} s ({wall / 60:.1f} min), {len(per_test)} tests, "
             f"summed test time {sum(per_test.values()):.0f} s", "", "worker  busy s  done at s"]
    lines += [f"{w:6}  {busy[w]:6.0f}  {last[w]:9.0f}" for w in sorted(busy)]
    lines += ["", f"modules by summed time (top {top})"]
    lines += [f"{s:7.0f}  {m}" for m, s in sorted(per_module.items(), key=lambda kv: -kv[1])[:top]]
    lines += ["", f"tests by time (top {top})"]
    lines += [f"{s:7.0f}  {t}" for t, s in sorted(per_test.items(), key=lambda kv: -kv[1])[:top]]
    if all(r["cpu"] is not None for r in rows):
        lines += ["", *_cpu_lines(rows, wall, top)]
    return "\n".join(lines)


def _cpu_lines(rows: list[dict], wall: float, top: int) -> list[str]:
    per_test: dict[str, float] = defaultdict(float)
    per_module: dict[str, float] = defaultdict(float)
    for r in rows:
        per_test[r["nodeid"]] += r["cpu"]
        per_module[r["nodeid"].split("::", 1)[0]] += r["cpu"]
    total = sum(per_test.values())
    lines = [f"CPU {total:.0f} core-seconds, {total / wall:.2f} cores busy on average",
             "", f"modules by CPU seconds (top {top})"]
    lines += [f"{s:7.0f}  {100 * s / total:4.1f}%  {m}"
              for m, s in sorted(per_module.items(), key=lambda kv: -kv[1])[:top]]
    lines += ["", f"tests by CPU seconds (top {top})"]
    lines += [f"{s:7.0f}  {t}" for t, s in sorted(per_test.items(), key=lambda kv: -kv[1])[:top]]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("timeline", type=Path)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)
    print(summarise(load(args.timeline), args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
