"""Horovod launches from driver threads (concurrent trials).

Horovod's Gloo launcher gives each launch a shutdown event and sets it from SIGINT and
SIGTERM handlers it registers; Python accepts signal handlers only in the main thread, so a
launch started from any other thread fails at once. Launches started outside the main
thread get a plain event instead, kept here; when the driver's main thread is interrupted it
sets them all (``stop_launches``), which stops those launches' ranks as the handlers would.
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
_events: list[threading.Event] = []
_installed = False


def allow_thread_launches() -> None:
    """Make Horovod's launcher usable from driver threads (idempotent)."""
    global _installed
    from horovod.runner import gloo_run

    with _lock:
        if _installed:
            return
        in_main_thread = gloo_run.register_shutdown_event

        def shutdown_event() -> threading.Event:
            if threading.current_thread() is threading.main_thread():
                return in_main_thread()
            event = threading.Event()
            with _lock:
                _events.append(event)
            return event

        gloo_run.register_shutdown_event = shutdown_event
        _installed = True


def stop_launches() -> None:
    """Stop every launch started from a driver thread (their ranks are terminated)."""
    with _lock:
        for event in _events:
            event.set()
        _events.clear()
