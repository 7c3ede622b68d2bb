"""Security rules checked over the project's own sources and the compose file: no shell
commands built from strings, no unrestricted unpickling or YAML loading, published ports on
loopback, and secrets only from the environment."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT

SOURCES = sorted(p for folder in ("pipeline", "jobs", "scripts", "bench")
                 for p in (ROOT / folder).rglob("*.py"))
# The one place allowed to unpickle: a checksum-verified file, through an unpickler that
# resolves nothing but numpy's array globals.
UNPICKLER = ROOT / "pipeline" / "data" / "pickles.py"  # the one restricted unpickler


def _calls(path: Path) -> list[tuple[str, ast.Call]]:
    """Every call in ``path`` as ('module.attr' or 'name', node)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            out.append((ast.unparse(node.func), node))
    return out


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(ROOT)}:{node.lineno}"


def test_the_scan_sees_the_sources():
    names = {p.relative_to(ROOT).as_posix() for p in SOURCES}
    assert {"pipeline/data/sources.py", "jobs/train_sweep.py", "scripts/local_cluster.py",
            "bench/run.py"} <= names


def test_no_shell_commands():
    found = []
    for path in SOURCES:
        for name, node in _calls(path):
            if name in ("os.system", "os.popen", "subprocess.getoutput",
                        "subprocess.getstatusoutput"):
                found.append(f"{_where(path, node)} {name}")
            shell = [k for k in node.keywords if k.arg == "shell"]
            if shell and not (isinstance(shell[0].value, ast.Constant)
                              and shell[0].value.value is False):
                found.append(f"{_where(path, node)} shell=")
    assert found == []


def test_pickle_is_loaded_only_by_the_restricted_unpickler():
    found = []
    for path in SOURCES:
        for name, node in _calls(path):
            if re.fullmatch(r"(c?[pP]ickle|_?pickle)\.(loads?|Unpickler)", name) and \
                    path != UNPICKLER:
                found.append(f"{_where(path, node)} {name}")
    assert found == []
    unpickler = UNPICKLER.read_text()
    assert "def find_class" in unpickler and "pickle.load(" not in unpickler


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_yaml_is_loaded_only_safely(path):
    unsafe = [_where(path, node) for name, node in _calls(path)
              if name in ("yaml.load", "yaml.load_all", "yaml.unsafe_load", "yaml.full_load")]
    assert unsafe == []


def test_compose_publishes_on_loopback_and_takes_secrets_from_the_environment():
    text = (ROOT / "docker-compose.yml").read_text()
    compose = yaml.safe_load(text)
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("${BIND_ADDRESS:-127.0.0.1}:"), (name, port)
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET|TOKEN", key):
                assert re.fullmatch(r"\$\{[A-Z_]+(:[-?][^}]*)?\}", value), (name, key, value)
    assert "127.0.0.1" in (ROOT / ".env.example").read_text().split("BIND_ADDRESS=")[1]
