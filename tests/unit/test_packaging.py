"""The wheel: declared dependencies cover every import, jobs and conf travel inside it, and
a GPU environment's NCCL is loaded before Horovod's library."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib.metadata import packages_distributions
from pathlib import Path

from tests.helpers import ROOT


def _name(requirement: str) -> str:
    for stop in "[<>=!; ":
        requirement = requirement.split(stop, 1)[0]
    return requirement.strip().lower().replace("_", "-")


def _third_party_imports() -> set[str]:
    found = set()
    for path in [*ROOT.joinpath("pipeline").rglob("*.py"), *ROOT.joinpath("jobs").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"pipeline", "jobs", "__future__"}


def test_every_imported_package_is_a_declared_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_name(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():  # the TensorFlow builds
        declared |= {_name(r) for r in extra}
    providers = packages_distributions()
    for module in sorted(_third_party_imports()):
        names = {_name(d) for d in providers.get(module, [])}
        assert names & declared, f"{module} (from {sorted(names)}) is not declared"


def test_the_wheel_carries_jobs_conf_and_the_discovery_script(tmp_path):
    skipped = {".venv", ".git", "data", "build", "dist", "mlruns", "mlartifacts", "reports"}
    shutil.copytree(ROOT, tmp_path / "src", symlinks=True,  # a checkout's own files only
                    ignore=lambda d, names: [n for n in names if Path(d) == ROOT and
                                             (n in skipped or n.endswith(".egg-info"))])
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "-w", str(tmp_path / "w"), str(tmp_path / "src")],
                   check=True, capture_output=True)
    [wheel] = (tmp_path / "w").glob("actloss_pipeline-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        script = z.getinfo("pipeline/_files/gpu-discovery.sh")
        assert script.external_attr >> 16 & 0o111  # stays executable
    assert {"jobs/train_sweep.py", "jobs/prepare_data.py", "jobs/compare.py",
            "pipeline/_files/conf/spark/local.conf", "pipeline/_files/conf/spark/gpu.conf",
            "pipeline/_files/conf/sweep/default.yaml", "pipeline/files.py"} <= names
    # Every conf file of the checkout is in it.
    for path in (ROOT / "conf").rglob("*"):
        if path.is_file():
            assert f"pipeline/_files/conf/{path.relative_to(ROOT / 'conf')}" in names


LOAD = """
import sys
sys.path.insert(0, sys.argv[1])
from pipeline.train.rank.distributed import load_nccl
print(load_nccl())
print(open('/proc/self/maps').read())
"""


def test_nccl_of_the_nvidia_wheel_is_loaded_by_path(tmp_path):
    # A stand-in for site-packages/nvidia/nccl/lib/libnccl.so.2: any real shared library.
    lib = tmp_path / "site" / "nvidia" / "nccl" / "lib"
    lib.mkdir(parents=True)
    shutil.copy("/lib/x86_64-linux-gnu/libz.so.1", lib / "libnccl.so.2")
    proc = subprocess.run([sys.executable, "-c", LOAD, str(tmp_path / "site")],
                          capture_output=True, text=True, check=True,
                          env={"PYTHONPATH": str(ROOT)})
    loaded, maps = proc.stdout.split("\n", 1)
    assert loaded == str(lib / "libnccl.so.2")
    assert str(lib / "libnccl.so.2") in maps


def test_a_cpu_environment_loads_no_nccl():
    proc = subprocess.run([sys.executable, "-c", LOAD, str(Path("/nonexistent"))],
                          capture_output=True, text=True, check=True,
                          env={"PYTHONPATH": str(ROOT)})
    assert proc.stdout.split("\n", 1)[0] == "None"


def test_the_installed_files_are_found_from_the_command_line(capsys):
    from pipeline.files import main

    assert main(["jobs"]) == 0 and Path(capsys.readouterr().out.strip(), "train_sweep.py").is_file()
    assert main(["conf"]) == 0
    assert Path(capsys.readouterr().out.strip(), "sweep", "default.yaml").is_file()
    assert main(["nothing"]) == 2 and "usage:" in capsys.readouterr().err
