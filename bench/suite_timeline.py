"""Summarise a test-suite timeline (``pytest --timeline FILE``, tests/helpers/suite.py): the
wall time, each worker's busy time and when it went idle, and the modules and tests that took
longest (setup + call + teardown, as the workers saw them). When the timeline has CPU seconds
(each phase's, with every process it started: tests/helpers/cpu.py), the same by CPU, which
is what a suite running on every core at once is short of.

    python bench/suite_timeline.py reports/test-timeline.tsv [--top 20] [--against OLD.tsv]

``--against`` adds each module's CPU seconds in this run beside another run's, with their
ratio: where a change saved (or cost) CPU, module by module.
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
    for r in rows:
        per_test[r["nodeid"]] += r["cpu"]
    per_module = _cpu_by_module(rows)
    total = sum(per_test.values())
    lines = [f"CPU {total:.0f} core-seconds, {total / wall:.2f} cores busy on average",
             "", f"modules by CPU seconds (top {top})"]
    lines += [f"{s:7.0f}  {100 * s / total:4.1f}%  {m}"
              for m, s in sorted(per_module.items(), key=lambda kv: -kv[1])[:top]]
    lines += ["", f"tests by CPU seconds (top {top})"]
    lines += [f"{s:7.0f}  {t}" for t, s in sorted(per_test.items(), key=lambda kv: -kv[1])[:top]]
    return lines


def compare(rows: list[dict], old_rows: list[dict], top: int) -> str:
    """Each module's CPU seconds in ``rows`` against ``old_rows``, the old run's largest
    first."""
    new, old = _cpu_by_module(rows), _cpu_by_module(old_rows)
    total, before_total = sum(new.values()), sum(old.values())
    lines = [f"CPU by module against the other run: {total:.0f} against {before_total:.0f} "
             f"core-seconds ({_ratio(total, before_total)})", "", "    old      new  ratio  module"]
    for module, before in sorted(old.items(), key=lambda kv: -kv[1])[:top]:
        after = new.get(module, 0.0)
        lines.append(f"{before:7.0f}  {after:7.0f}  {_ratio(after, before):>5}  {module}")
    return "\n".join(lines)


def _cpu_by_module(rows: list[dict]) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for r in rows:
        out[r["nodeid"].split("::", 1)[0]] += r["cpu"] or 0.0
    return out


def _ratio(new: float, old: float) -> str:
    return f"{new / old:.2f}" if old else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("timeline", type=Path)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--against", type=Path, metavar="OLD",
                        help="another run's timeline: CPU by module beside it")
    args = parser.parse_args(argv)
    rows = load(args.timeline)
    print(summarise(rows, args.top))
    if args.against:
        print("\n" + compare(rows, load(args.against), args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
