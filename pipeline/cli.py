"""Shared plumbing for the jobs: one-line errors and exit codes."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence

from pipeline.errors import PipelineError
from pipeline.storage import disk_problem

EXIT_OK, EXIT_USAGE_OR_INPUT, EXIT_FAILED = 0, 2, 1
# Everything trained, but some records wait in the spool for MLflow (see pipeline.spool).
EXIT_SPOOLED = 3


def run_job(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None,
            prog: str = "job") -> int:
    """Run a job's main; a PipelineError, or a full or unwritable disk, becomes one line on
    stderr and exit status 2. Anything else keeps its traceback (exit 1). Whatever is printed
    has the tracking URI's password masked: these lines end up in CI logs."""
    try:
        return main(argv)
    except PipelineError as exc:
        _error(f"{prog}: error: {exc}")
        return EXIT_USAGE_OR_INPUT
    except OSError as exc:
        reason = disk_problem(exc)
        if reason is None:
            return _unexpected()
        # A failed write() names no file; open() and mkdir() do.
        where = f"{exc.filename}: {reason}" if exc.filename else f"{reason} while writing"
        _error(f"{prog}: error: {where}")
        return EXIT_USAGE_OR_INPUT
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr, flush=True)
        return 130
    except Exception:
        return _unexpected()


def _unexpected() -> int:
    """A bug or an unexpected condition: its traceback, masked, and exit status 1."""
    _error(traceback.format_exc().rstrip())
    return EXIT_FAILED


def _error(text: str) -> None:
    print(masked(text), file=sys.stderr, flush=True)


def masked(text: str) -> str:
    """``text`` with the password of $MLFLOW_TRACKING_URI (plain or URL-encoded) as ``***``."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if not uri:
        return text
    from pipeline.tracking.store import scrub  # MLflow is imported only when there is a URI

    return scrub(text, uri)


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
