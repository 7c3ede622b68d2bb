"""Shared plumbing for the jobs: one-line errors and exit codes."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence

from pipeline.errors import PipelineError
from pipeline.storage import disk_problem

EXIT_OK, EXIT_USAGE_OR_INPUT, EXIT_FAILED = 0, 2, 1
# Everything trained, but some records wait in the spool for MLflow (see pipeline.spool).
EXIT_SPOOLED = 3


def run_job(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None,
            prog: str = "job") -> int:
    """Run a job's main; a PipelineError, or a full or unwritable disk, becomes one line on
    stderr and exit status 2."""
    try:
        return main(argv)
    except PipelineError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr, flush=True)
        return EXIT_USAGE_OR_INPUT
    except OSError as exc:
        reason = disk_problem(exc)
        if reason is None:
            raise  # a bug or an unexpected condition: keep the traceback
        # A failed write() names no file; open() and mkdir() do.
        where = f"{exc.filename}: {reason}" if exc.filename else f"{reason} while writing"
        print(f"{prog}: error: {where}", file=sys.stderr, flush=True)
        return EXIT_USAGE_OR_INPUT
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr, flush=True)
        return 130


def console_logging(level: int = logging.INFO) -> None:
    """The project's log records as plain lines on stdout, the console a user watches.

    Only the ``pipeline`` logger is set up: other libraries keep their own settings.
    """
    logger = logging.getLogger("pipeline")
    if not any(isinstance(h, _Stdout) for h in logger.handlers):
        handler = _Stdout()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


class _Stdout(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is at the time (a test may have replaced it)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value: object) -> None:
        pass
