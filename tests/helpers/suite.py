"""How the suite runs: in parallel on pytest-xdist workers, long tests first, and a time limit
per test that only a ``slow`` marker with a reason lifts.

A fixture shared by several tests (module or session scope) is timed on its own, not charged to
whichever test happens to build it: it is held to the same limit unless its function carries
``@slow_fixture(reason=...)`` (below ``@pytest.fixture``), and a test's own time is its
setup without the shared fixtures plus its call.

Loaded as a plugin by tests/conftest.py. ``make test`` runs ``pytest -n N --dist loadgroup``:
tests of a module whose module-scoped fixtures build something (a prepared dataset, a sweep, a
cluster) share one worker, so the fixture is built once; every other test goes wherever a
worker is free.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

import pytest

from tests.helpers.cpu import CpuGroup

F = TypeVar("F", bound=Callable)

# Modules whose tests take longest (measured: BENCHMARKS.md, "Test suite"), scheduled first so
# that no long module starts last and runs alone at the end.
FIRST = (
    "tests/integration/test_cluster.py",
    "tests/integration/test_bench.py",
    "tests/integration/test_concurrent_trials.py",
    "tests/integration/test_report.py",
    "tests/integration/test_tasks.py",
    "tests/integration/test_mlflow_outage.py",
    "tests/integration/test_concurrent_sweeps.py",
    "tests/integration/test_auth.py",
)
DEFAULT_LIMIT_SECONDS = 120.0


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("slow_test_seconds", f"a test's setup + call may take this long unless marked "
                  f"slow(reason=...) (default {DEFAULT_LIMIT_SECONDS:.0f})",
                  default=str(DEFAULT_LIMIT_SECONDS))
    parser.addoption("--timeline", metavar="FILE", default=None,
                     help="write each test phase's worker, start, stop and CPU seconds (TSV) "
                          "to FILE; bench/suite_timeline.py summarises it")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow(reason): a test allowed past slow_test_seconds; "
                                       "the reason says why it cannot be smaller")
    # pytest-xdist registers it too; a run with -p no:xdist must still accept the groups.
    config.addinivalue_line("markers", "xdist_group(name): tests that share one xdist worker")
    timeline = config.getoption("timeline", None)
    if timeline and not hasattr(config, "workerinput"):
        config.pluginmanager.register(_Timeline(timeline))
    runs_tests = hasattr(config, "workerinput") or not config.getoption("numprocesses", None)
    if timeline and runs_tests:
        group = CpuGroup()
        if group.join():
            config.stash[_CPU] = group


def pytest_unconfigure(config: pytest.Config) -> None:
    if _CPU in config.stash:
        config.stash[_CPU].leave()


def _module(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def _builds_module_fixture(item: pytest.Item) -> bool:
    """Whether the test uses a module-scoped fixture defined in its own module."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    module = _module(item)
    return any(d.scope == "module" and d.baseid == module
               for defs in info.name2fixturedefs.values() for d in defs)


# First: pytest-xdist's own hook turns the xdist_group markers into the groups it schedules by,
# so they must be on the items before it runs.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    grouped = {_module(i) for i in items if _builds_module_fixture(i)}
    for item in items:
        if _module(item) in grouped:
            item.add_marker(pytest.mark.xdist_group(_module(item)))
    # A stable sort: every worker must see the same order.
    rank = {name: k for k, name in enumerate(FIRST)}
    items.sort(key=lambda i: (rank.get(_module(i), len(FIRST)),
                              "tests/unit/" in i.nodeid))


def limit_seconds(config: pytest.Config) -> float:
    """slow_test_seconds of a test with a core to itself: with more xdist workers than cores
    each test gets a share of one, and its wall time stretches by workers / cores."""
    return float(config.getini("slow_test_seconds")) * contention()


def contention() -> float:
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return max(1.0, workers / len(os.sched_getaffinity(0)))


def slow_fixture(reason: str) -> Callable[[F], F]:
    """Lets a shared fixture take longer than the limit; ``reason`` says why it cannot be
    smaller. Goes below ``@pytest.fixture``, on the function itself."""
    def mark(func: F) -> F:
        func.slow_reason = reason
        return func
    return mark


def _reason(item: pytest.Item) -> str:
    marker = item.get_closest_marker("slow")
    if marker is None:
        return ""
    return marker.kwargs.get("reason") or (marker.args[0] if marker.args else "")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    _building[:] = [item]
    item.stash[_SHARED] = []
    yield
    _building.clear()


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef, request: pytest.FixtureRequest):
    started = time.perf_counter()
    yield
    if fixturedef.scope != "function" and _building:
        reason = getattr(fixturedef.func, "slow_reason", "")
        _building[0].stash[_SHARED].append(
            (fixturedef.argname, started, time.perf_counter(), reason))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    _charge_cpu(item.config, report)
    if call.when == "setup":
        item.stash[_SETUP_SECONDS] = call.duration
        return
    if call.when != "call" or not report.passed:
        return
    limit = limit_seconds(item.config)
    shared = item.stash.get(_SHARED, [])
    own_setup = item.stash.get(_SETUP_SECONDS, 0.0) - _covered_seconds(shared)
    took = max(own_setup, 0.0) + call.duration
    problems = [f"shared fixture {name!r} took {own:.0f} s to build"
                for name, own, reason in _own_seconds(shared)
                if own > limit and not reason and _first_report(name, item)]
    if took > limit and not _reason(item):
        problems.insert(0, f"{item.nodeid} took {took:.0f} s (its setup + call)")
    if problems:
        report.outcome = "failed"
        report.longrepr = (
            f"{'; '.join(problems)}, over the suite's {limit:g} s per test: make it smaller, "
            "or mark it @pytest.mark.slow(reason=...) (a shared fixture: "
            "@slow_fixture(reason=...)) saying why it cannot be")


def _charge_cpu(config: pytest.Config, report: pytest.TestReport) -> None:
    """The CPU used since the last phase ended goes to this phase (a new list: pytest hands
    every phase's report the item's own)."""
    if _CPU in config.stash:
        report.user_properties = [*report.user_properties,
                                  ("cpu_seconds", config.stash[_CPU].lap())]


class _Timeline:
    """Registered on the controller under xdist (where every worker's reports arrive), or on
    the only process: a plugin object per run, so a run inside a test (pytester) keeps its
    own."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.rows: list[tuple] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        node = getattr(report, "node", None)
        worker = node.gateway.id if node is not None else "main"
        cpu = dict(report.user_properties).get("cpu_seconds")
        self.rows.append((worker, report.nodeid, report.when, report.start, report.stop,
                          report.outcome, "" if cpu is None else f"{cpu:.3f}"))

    def pytest_sessionfinish(self) -> None:
        with open(self.path, "w", encoding="utf-8") as out:
            out.write("worker\tnodeid\twhen\tstart\tstop\toutcome\tcpu\n")
            for row in self.rows:
                out.write("\t".join(str(v) for v in row) + "\n")


def _covered_seconds(shared: list[tuple[str, float, float, str]]) -> float:
    """The time inside any shared fixture's setup: a fixture built inside another's setup (a
    dependency) lies within it, so the union of the intervals counts it once."""
    total, reach = 0.0, float("-inf")
    for _, start, end, _ in sorted(shared, key=lambda f: f[1]):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def _own_seconds(shared: list[tuple[str, float, float, str]]) -> list[tuple[str, float, str]]:
    """Each shared fixture's time without the shared fixtures built inside it."""
    out = []
    for name, start, end, reason in shared:
        inner = [f for f in shared if start <= f[1] and f[2] <= end and f[0] != name]
        out.append((name, end - start - _covered_seconds(inner), reason))
    return out


def _first_report(fixture: str, item: pytest.Item) -> bool:
    """A shared fixture over the limit fails one test, the first that reports it."""
    key = (fixture, item.nodeid.split("::", 1)[0])
    if key in _reported:
        return False
    _reported.add(key)
    return True


_reported: set[tuple[str, str]] = set()
_CPU = pytest.StashKey[CpuGroup]()  # the pytest process's own group, with --timeline
_SETUP_SECONDS = pytest.StashKey[float]()
_SHARED = pytest.StashKey[list]()
_building: list[pytest.Item] = []
