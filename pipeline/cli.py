"""Shared plumbing for the jobs: one-line errors and exit codes."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from pipeline.errors import PipelineError

EXIT_OK, EXIT_USAGE_OR_INPUT, EXIT_FAILED = 0, 2, 1
# Everything trained, but some records wait in the spool for MLflow (see pipeline.spool).
EXIT_SPOOLED = 3


def run_job(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None,
            prog: str = "job") -> int:
    """Run a job's main; a PipelineError becomes one line on stderr and exit status 2."""
    try:
        return main(argv)
    except PipelineError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr, flush=True)
        return EXIT_USAGE_OR_INPUT
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr, flush=True)
        return 130
