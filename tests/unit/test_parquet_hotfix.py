"""CVE-2023-47248: pyarrow 10.0.1 (pinned by horovod[spark]) unpickles an
``arrow.py_extension_type`` column's metadata when it reads a Parquet file. A crafted shard in a
dataset folder must run nothing in the driver or a rank: ``pyarrow_hotfix`` is in effect
wherever the project reads Parquet, and the driver refuses the shard in one line."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

# Writes a shard whose image column's type, once unpickled, opens (creates) the marker file:
# harmless, and proof that the reader ran code from the file.
CRAFT = """
import builtins, sys
import pyarrow as pa, pyarrow.parquet as pq

class Crafted(pa.PyExtensionType):
    def __init__(self):
        super().__init__(pa.binary())
    def __reduce__(self):
        return builtins.open, (sys.argv[2], "w")

image = pa.ExtensionArray.from_storage(Crafted(), pa.array([b"\\0" * 4] * 2, pa.binary()))
pq.write_table(pa.table({"label": pa.array([0, 1], pa.int32()), "image": image}), sys.argv[1])
"""


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    """A fresh interpreter: nothing imported beforehand installs or hides the hotfix."""
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, check=False)


@pytest.fixture
def crafted(tmp_path) -> tuple[Path, Path]:
    shard, marker = tmp_path / "part-00000.parquet", tmp_path / "code-ran"
    assert _python(CRAFT, str(shard), str(marker)).returncode == 0
    assert not marker.exists()
    return shard, marker


def test_a_rank_reading_a_crafted_shard_runs_nothing(crafted):
    shard, marker = crafted
    proc = _python("import sys; from pipeline.data import feed; "
                   "feed.read_shards([__import__('pathlib').Path(sys.argv[1])], [2, 2, 1])",
                   str(shard))
    assert not marker.exists(), "reading the shard ran code from it"
    assert "Disallowed deserialization of 'arrow.py_extension_type'" in proc.stderr


def test_a_rank_streaming_a_crafted_shard_runs_nothing(crafted):
    shard, marker = crafted
    proc = _python("import sys, pathlib; from pipeline.data import feed; "
                   "next(feed._chunks([pathlib.Path(sys.argv[1])], [2, 2, 1]))", str(shard))
    assert not marker.exists(), "reading the shard ran code from it"
    assert proc.returncode != 0


def test_the_driver_refuses_a_crafted_shard_in_one_line(crafted):
    shard, marker = crafted
    proc = _python(
        "import sys, pathlib\n"
        "from pipeline.data import integrity\n"
        "from pipeline.data.layout import layout_for\n"
        "from pipeline.data.manifest import Shard\n"
        "from pipeline.errors import DataError\n"
        "p = pathlib.Path(sys.argv[1])\n"
        "try:\n"
        "    integrity._check_shard(p.parent / 'manifest.json', p, 'train/' + p.name,\n"
        "                           Shard(p.name, 2), layout_for('multiclass', 'image',"
        " [2, 2, 1], 10))\n"
        "except DataError as exc:\n"
        "    print(exc)\n", str(shard))
    assert not marker.exists(), "checking the shard ran code from it"
    [line] = proc.stdout.splitlines()
    assert "CVE-2023-47248" in line and "train/part-00000.parquet" in line


def _imports_pyarrow(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        found += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names
                  if n.split(".")[0] == "pyarrow"]
    return found


def test_the_project_imports_pyarrow_only_through_the_hotfixed_module():
    sources = [p for folder in ("pipeline", "jobs", "bench", "scripts")
               for p in (ROOT / folder).rglob("*.py") if p != ROOT / "pipeline/data/arrow.py"]
    assert [hit for p in sources for hit in _imports_pyarrow(p)] == []
    pins = (ROOT / "constraints.txt").read_text().splitlines()
    assert any(line.startswith("pyarrow-hotfix==") for line in pins)
    assert "pyarrow-hotfix" in (ROOT / "requirements.txt").read_text()
