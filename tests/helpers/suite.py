"""How the suite runs: in parallel on pytest-xdist workers, long tests first, and a time limit
per test that only a ``slow`` marker with a reason lifts.

Loaded as a plugin by tests/conftest.py. ``make test`` runs ``pytest -n N --dist loadgroup``:
tests of a module whose module-scoped fixtures build something (a prepared dataset, a sweep, a
cluster) share one worker, so the fixture is built once; every other test goes wherever a
worker is free.
"""

from __future__ import annotations

import pytest

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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow(reason): a test allowed past slow_test_seconds; "
                                       "the reason says why it cannot be smaller")
    # pytest-xdist registers it too; a run with -p no:xdist must still accept the groups.
    config.addinivalue_line("markers", "xdist_group(name): tests that share one xdist worker")


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
    return float(config.getini("slow_test_seconds"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if call.when == "setup":
        item.stash[_SETUP_SECONDS] = call.duration
        return
    if call.when != "call" or not report.passed:
        return
    took = item.stash.get(_SETUP_SECONDS, 0.0) + call.duration
    limit = limit_seconds(item.config)
    marker = item.get_closest_marker("slow")
    reason = marker and (marker.kwargs.get("reason") or (marker.args[0] if marker.args else ""))
    if took > limit and not reason:
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} took {took:.0f} s (setup + call), over the suite's {limit:g} s "
            "per test: make it smaller, or mark it @pytest.mark.slow(reason=...) saying why "
            "it cannot be")


_SETUP_SECONDS = pytest.StashKey[float]()
