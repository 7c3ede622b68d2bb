"""Errors a user can act on: jobs print them as one line and exit non-zero."""

from __future__ import annotations


class PipelineError(Exception):
    """A problem with the user's input, configuration or environment.

    The message is complete on its own (it names the file, key or value at
    fault), so the jobs print it as a single line without a traceback.
    """


class ConfigError(PipelineError):
    """A configuration file or value is invalid."""


class DataError(PipelineError):
    """Input data or a prepared dataset is missing, corrupt or inconsistent."""


class DeviceError(PipelineError):
    """The GPUs Spark assigned do not match the GPUs a rank can use."""


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message (its type's name when it has none), at most 200
    characters: what a warning or a log line quotes of an error."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]
