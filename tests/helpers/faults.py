"""Fault injection for tests: importable by Horovod ranks as ``tests.helpers.faults:<name>``."""

from __future__ import annotations


def explode(x: object) -> object:
    """An activation that fails when the model is built, on every rank."""
    raise RuntimeError("injected failure: activation 'explode'")
