"""How far the sweep's "about ... left" estimate was from what was left, read from its console.

    python bench/progress_estimate.py SWEEP_LOG [SWEEP_LOG ...] [--json OUT]

Each progress line ("HH:MM:SS  k/N runs done in ...; about 1m06s left") is compared with
the time from that line to the sweep's last progress line (the last run settled). The
error is (said - actual) / actual: positive when the estimate ran high. Lines from a
sweep with later rounds (halving's rungs, racing's rounds) are left out: their runs are not
planned when the estimate is made, so it cannot see them.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

LINE = re.compile(r"(\d\d):(\d\d):(\d\d)\s+(\d+)/(\d+) runs done in .*?(?:; about (\S+) left)?$")
CLOCK = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def seconds(clock: str) -> int:
    h, m, s = (int(g or 0) for g in CLOCK.fullmatch(clock).groups())
    return 3600 * h + 60 * m + s


def progress(text: str) -> list[tuple[int, int, int, int | None]]:
    """(time of day in s, runs done, runs planned, estimate in s or None) per progress line."""
    found = []
    for raw in text.splitlines():
        m = LINE.search(raw.strip())
        if m:
            hh, mm, ss, done, total, left = m.groups()
            at = 3600 * int(hh) + 60 * int(mm) + int(ss)
            found.append((at, int(done), int(total), seconds(left) if left else None))
    return found


def errors(lines: list[tuple[int, int, int, int | None]]) -> list[tuple[int, int, int, float]]:
    """(runs done, said, actual, relative error) for each line with an estimate."""
    if not lines:
        return []
    end, total = lines[-1][0], lines[-1][2]
    out = []
    for at, done, planned, said in lines:
        actual = (end - at) % 86400  # past midnight
        if said is None or planned != total or actual <= 0:
            continue
        out.append((done, said, actual, (said - actual) / actual))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("logs", nargs="+", type=Path)
    p.add_argument("--json", type=Path, help="also write every estimate here")
    args = p.parse_args(argv)
    found = {}
    for log in args.logs:
        rows = errors(progress(log.read_text(errors="replace")))
        found[log.name] = [{"after_run": d, "said_s": s, "left_s": a, "error": round(e, 3)}
                           for d, s, a, e in rows]
        print(f"{log}: {len(rows)} estimates")
        for done, said, actual, err in rows:
            print(f"  after run {done:3d}: said {said:5d}s, {actual:5d}s left  {err:+.0%}")
    if args.json:
        args.json.write_text(json.dumps(found, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
