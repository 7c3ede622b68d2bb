#!/usr/bin/env bash
# Create $VENV (.venv) with the pinned stack and a Horovod built against its TensorFlow.
# Idempotent: each step is skipped when what it would install is already there.
#
#   GPU=1      TensorFlow's GPU build (tensorflow[and-cuda]: CUDA 12.2 and cuDNN 8.9 as pip
#              wheels) instead of tensorflow-cpu, and Horovod built with NCCL
#              (HOROVOD_GPU_OPERATIONS=NCCL) against the nvidia-nccl-cu12 wheel TensorFlow
#              brings. Needs nvcc from a CUDA 12 toolkit (NVCC, PATH, CUDA_HOME or /usr/local/cuda).
#   RUNTIME=1  runtime only: TensorFlow, Horovod and the dependencies pyproject.toml declares,
#              none of the development tools, not the project (the Docker images' first layer).
#   WHEEL=f    RUNTIME=1 plus the project's wheel f (what scripts/pack.sh packs).
#   DRY_RUN=1  print the checks and the commands, change nothing (`make setup-plan`).
set -euo pipefail

cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
GPU="${GPU:-}"
WHEEL="${WHEEL:-}"
RUNTIME="${RUNTIME:-$WHEEL}"
DRY_RUN="${DRY_RUN:-}"
TF_VERSION=2.15.1
CUDA_MAJOR=12   # TensorFlow 2.15's CUDA (12.2); Horovod's NCCL build must use the same major
PIP="$VENV/bin/python -m pip --disable-pip-version-check"
# Where pip puts the nvidia-nccl-cu12 wheel's headers and library in the venv.
NCCL_HOME="$VENV/lib/python3.11/site-packages/nvidia/nccl"

die() { echo "setup: $*" >&2; exit 1; }
say() { echo "setup: $*"; }
# A requirement that is not met: fatal, except in a dry run, which reports it and goes on.
need() { if [ -n "$DRY_RUN" ]; then say "MISSING: $*"; else die "$*"; fi; }
# Run a step with its output kept in a log, shown only when the step fails; a dry run prints it.
run() {
  if [ -n "$DRY_RUN" ]; then echo "+ $*"; return 0; fi
  local log; log="$(mktemp)"
  if ! "$@" >"$log" 2>&1; then cat "$log" >&2; rm -f "$log"; return 1; fi
  rm -f "$log"
}
installed() { [ -x "$VENV/bin/python" ] && $PIP show "$1" >/dev/null 2>&1; }

[ -n "$DRY_RUN" ] && say "dry run: nothing is changed (GPU=${GPU:-0}, VENV=$VENV${RUNTIME:+, runtime only}${WHEEL:+, WHEEL=$WHEEL})"

"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null \
  || need "Python 3.11 is required (found $("$PYTHON" --version 2>&1)); set PYTHON=/path/to/python3.11"
# Java runs Spark; an environment built to run elsewhere (RUNTIME) does not need it here.
[ -n "$RUNTIME" ] || command -v java >/dev/null \
  || need "Java 17 is required by Spark (Debian: apt-get install openjdk-17-jre-headless)"
command -v g++ >/dev/null || need "a C++ compiler is required to build Horovod (Debian: apt-get install g++)"

if [ -n "$GPU" ]; then
  TF_REQ="tensorflow[and-cuda]==$TF_VERSION"
  OTHER_TF=tensorflow-cpu
  NVCC="${NVCC:-$(command -v nvcc || true)}"
  for candidate in "${CUDA_HOME:-}/bin/nvcc" /usr/local/cuda/bin/nvcc; do
    [ -z "$NVCC" ] && [ -x "$candidate" ] && NVCC="$candidate"
  done
  if [ -z "$NVCC" ] || [ ! -x "$NVCC" ]; then
    need "GPU=1 needs nvcc from a CUDA $CUDA_MAJOR toolkit to build Horovod with NCCL (none found on PATH, in \$CUDA_HOME or /usr/local/cuda; NVCC=/path/to/nvcc names one)"
    NVCC=""
  else
    release="$("$NVCC" --version | sed -n 's/.*release \([0-9]*\)\..*/\1/p')"
    [ "$release" = "$CUDA_MAJOR" ] \
      || need "GPU=1: $NVCC is CUDA ${release:-?}; TensorFlow $TF_VERSION needs CUDA $CUDA_MAJOR"
    say "CUDA toolkit: $NVCC (CUDA ${release:-?})"
  fi
else
  TF_REQ="tensorflow-cpu==$TF_VERSION"
  OTHER_TF=tensorflow
fi

if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  run "$PYTHON" -m venv "$VENV"
  run $PIP install --upgrade pip wheel
fi

# Both builds install the module `tensorflow`: the other one must go first, and a Horovod
# compiled against it with it.
rebuild=()
if installed "$OTHER_TF"; then
  say "replacing $OTHER_TF with $TF_REQ"
  run $PIP uninstall -y "$OTHER_TF"
  rebuild=(--force-reinstall --no-deps --no-cache-dir)
fi

if [ -z "$RUNTIME" ]; then
  say "installing the pinned stack (requirements.txt, constraints.txt) with $TF_REQ"
  requirements="$(mktemp)"
  trap 'rm -f "$requirements"' EXIT
  grep -v '^tensorflow-cpu\b' requirements.txt >"$requirements"
  run $PIP install -r "$requirements" "$TF_REQ" -c constraints.txt || die "installing the pinned stack failed"
else
  say "installing $TF_REQ (runtime only)"
  run $PIP install "$TF_REQ" -c constraints.txt || die "installing TensorFlow failed"
fi

horovod_env=(HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1
             HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1 CMAKE_POLICY_VERSION_MINIMUM=3.5)
wanted_ops="TensorFlow Gloo"
if [ -n "$GPU" ]; then
  # NCCL from the wheel: shared (the wheel has no static library), found through HOROVOD_NCCL_HOME.
  horovod_env+=(HOROVOD_GPU_OPERATIONS=NCCL HOROVOD_NCCL_LINK=SHARED "HOROVOD_NCCL_HOME=$NCCL_HOME"
                "HOROVOD_CUDA_HOME=$(dirname "$(dirname "${NVCC:-/usr/local/cuda/bin/nvcc}")")")
  wanted_ops="TensorFlow Gloo NCCL"
  # pip's wheel cache keys on the version, not on HOROVOD_*: a cached CPU build would be reused.
  [ ${#rebuild[@]} -eq 0 ] && rebuild=(--no-cache-dir)
fi

# Horovod's NCCL build links libnccl.so.2, which lives in the wheel's folder, outside the
# loader's path (at run time the ranks load it first: pipeline/train/rank/distributed.py).
loader_env=()
[ -n "$GPU" ] && loader_env=("LD_LIBRARY_PATH=$NCCL_HOME/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
in_venv() { env "${loader_env[@]}" "$@"; }

horovod_ok() {
  [ -x "$VENV/bin/horovodrun" ] && in_venv "$VENV/bin/python" -c 'import horovod.tensorflow' 2>/dev/null || return 1
  local checks; checks="$(in_venv "$VENV/bin/horovodrun" --check-build 2>&1)"
  for op in $wanted_ops; do grep -q "\[X\] $op" <<<"$checks" || return 1; done
}

if [ ${#rebuild[@]} -gt 0 ] && [ "${rebuild[0]}" = --force-reinstall ] || ! horovod_ok; then
  say "building Horovod with $wanted_ops (several minutes on a fresh machine)"
  if ! command -v cmake >/dev/null; then
    run $PIP install 'cmake<4'   # Horovod's bundled Gloo does not build with CMake 4
  fi
  # A Horovod that is installed but does not import (or lacks an operation) was built
  # against another TensorFlow or without NCCL.
  if installed horovod && [ "${rebuild[0]:-}" != --force-reinstall ]; then
    rebuild=(--force-reinstall --no-deps --no-cache-dir)
  fi
  if [ -n "$GPU" ]; then
    [ -n "$DRY_RUN" ] || [ -f "$NCCL_HOME/include/nccl.h" ] \
      || die "GPU=1: no NCCL headers in $NCCL_HOME (the nvidia-nccl-cu12 wheel TensorFlow brings)"
    # CMake's find_library looks for libnccl.so; the wheel has only the versioned name.
    run ln -sf libnccl.so.2 "$NCCL_HOME/lib/libnccl.so"
  fi
  # --no-build-isolation: the build must see the TensorFlow installed above.
  run env "${horovod_env[@]}" PATH="$VENV/bin:$PATH" $PIP install --no-build-isolation \
    "${rebuild[@]}" 'horovod[spark]' -c constraints.txt || die "building Horovod failed (see the log above)"
fi

if [ -z "$RUNTIME" ]; then
  run $PIP install --no-deps --no-build-isolation -e . || die "installing the project failed"
  # Loopback by default for every Spark JVM this environment starts (scripts/spark-env.sh).
  # Not in RUNTIME environments: a cluster's workers must listen beyond their host.
  spark_conf="$VENV/lib/python3.11/site-packages/pyspark/conf"
  run mkdir -p "$spark_conf"
  run install -m 0644 scripts/spark-env.sh "$spark_conf/spark-env.sh" \
    || die "installing scripts/spark-env.sh failed"
elif [ -z "$WHEEL" ]; then
  mapfile -t deps < <("$PYTHON" -c 'import tomllib
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))')
  say "installing the project's declared dependencies (pyproject.toml), not the project"
  run $PIP install "${deps[@]}" -c constraints.txt || die "installing the dependencies failed"
else
  extra="$([ -n "$GPU" ] && echo gpu || echo cpu)"
  # The same version number as an earlier pack: force the new build in, then its dependencies.
  run $PIP install --force-reinstall --no-deps "$WHEEL" || die "installing $WHEEL failed"
  run $PIP install "$WHEEL[$extra]" -c constraints.txt || die "installing the dependencies of $WHEEL failed"
fi

# Spark puts PySpark's zipped sources first on the path of every Python process it starts;
# bytecode beside them spares each process compiling them (scripts/bytecode_zip.py).
run "$VENV/bin/python" scripts/bytecode_zip.py "$VENV"/lib/python3.11/site-packages/pyspark/python/lib/*.zip \
  || die "compiling PySpark's zipped sources failed"

if [ -n "$DRY_RUN" ]; then
  echo "+ horovodrun --check-build: $wanted_ops ticked"
  exit 0
fi
say "verifying the Horovod build"
checks="$(in_venv "$VENV/bin/horovodrun" --check-build 2>&1)"
for op in $wanted_ops; do
  grep -q "\[X\] $op" <<<"$checks" || die "Horovod was built without $op support"
done
in_venv "$VENV/bin/python" - <<'PY' || die "the installed stack does not import cleanly"
import horovod.spark, horovod.tensorflow.keras, mlflow, pyspark, tensorflow as tf
assert tf.__version__.startswith("2.15"), tf.__version__
assert pyspark.__version__.startswith("3.5"), pyspark.__version__
PY
say "ok ($VENV${GPU:+, GPU build})"
