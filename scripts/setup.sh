#!/usr/bin/env bash
# Create .venv with the pinned stack and a Horovod built against its TensorFlow.
# Idempotent: each step is skipped when what it would install is already there.
set -euo pipefail

cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
PIP="$VENV/bin/pip --disable-pip-version-check"

die() { echo "setup: $*" >&2; exit 1; }
# Run a step with its output kept in a log, shown only when the step fails.
quiet() {
  local log; log="$(mktemp)"
  if ! "$@" >"$log" 2>&1; then cat "$log" >&2; rm -f "$log"; return 1; fi
  rm -f "$log"
}

"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || die "Python 3.11 is required (found $("$PYTHON" --version 2>&1)); set PYTHON=/path/to/python3.11"
command -v java >/dev/null || die "Java 17 is required by Spark (Debian: apt-get install openjdk-17-jre-headless)"
command -v g++ >/dev/null || die "a C++ compiler is required to build Horovod (Debian: apt-get install g++)"

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  "$PYTHON" -m venv "$VENV"
  quiet $PIP install --upgrade pip wheel
fi

echo "setup: installing the pinned stack (constraints.txt)"
quiet $PIP install -r requirements.txt -c constraints.txt || die "installing the pinned stack failed"

if ! "$VENV/bin/python" -c 'import horovod.tensorflow' 2>/dev/null; then
  echo "setup: building Horovod with TensorFlow and Gloo (several minutes on a fresh machine)"
  if ! command -v cmake >/dev/null; then
    $PIP install -q 'cmake<4'   # Horovod's bundled Gloo does not build with CMake 4
  fi
  # A Horovod that is installed but does not import was built against another TensorFlow.
  rebuild=()
  if $PIP show horovod >/dev/null 2>&1; then rebuild=(--force-reinstall --no-deps --no-cache-dir); fi
  # --no-build-isolation: the build must see the TensorFlow installed above.
  HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 \
  HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1 CMAKE_POLICY_VERSION_MINIMUM=3.5 \
    PATH="$VENV/bin:$PATH" quiet $PIP install --no-build-isolation "${rebuild[@]}" 'horovod[spark]' \
      -c constraints.txt || die "building Horovod failed (see the log above)"
fi

quiet $PIP install --no-deps --no-build-isolation -e . || die "installing the project failed"

echo "setup: verifying the Horovod build"
checks="$("$VENV/bin/horovodrun" --check-build 2>&1)"
grep -q '\[X\] TensorFlow' <<<"$checks" || die "Horovod was built without TensorFlow support"
grep -q '\[X\] Gloo' <<<"$checks" || die "Horovod was built without Gloo support"
"$VENV/bin/python" - <<'PY' || die "the installed stack does not import cleanly"
import horovod.spark, horovod.tensorflow.keras, mlflow, pyspark, tensorflow as tf
assert tf.__version__.startswith("2.15"), tf.__version__
assert pyspark.__version__.startswith("3.5"), pyspark.__version__
PY
echo "setup: ok ($VENV)"
