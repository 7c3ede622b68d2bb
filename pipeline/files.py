"""Where the project's own files are, in a checkout or in an installed wheel.

The wheel carries the jobs (package ``jobs``), the default configuration (conf/) and the GPU
discovery script, so a packed environment runs without a checkout:

    python -m pipeline.files jobs     # the folder holding train_sweep.py, prepare_data.py, ...
    python -m pipeline.files conf     # conf/ with spark/, sweep/, data/, augment/
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

# In a checkout, _files/ holds links to ../conf and ../scripts/gpu-discovery.sh; the wheel
# holds copies of them (pyproject.toml, package-data).
FILES = Path(__file__).parent / "_files"


def conf_dir() -> Path:
    return FILES / "conf"


def jobs_dir() -> Path:
    import jobs

    return Path(jobs.__file__).parent


def gpu_discovery_script() -> Path:
    return FILES / "gpu-discovery.sh"


WHERE = {"conf": conf_dir, "jobs": jobs_dir, "gpu-discovery": gpu_discovery_script}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] not in WHERE:
        print(f"usage: python -m pipeline.files {{{','.join(WHERE)}}}", file=sys.stderr)
        return 2
    print(WHERE[args[0]]())
    return 0


if __name__ == "__main__":
    sys.exit(main())
