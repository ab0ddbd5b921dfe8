#!/usr/bin/env bash
# Create (or update) the course's Python environment.
#
#   bash scripts/setup_env.sh                  # .venv (or $BANDGAP_VENV), runtime + test packages
#   bash scripts/setup_env.sh --python python  # complete an EXISTING environment in place
#                                              # (conda after `conda env create`, Binder); no venv
#   bash scripts/setup_env.sh --python python --test   # ... and add the test-only packages
#   bash scripts/setup_env.sh --print-commands # print the pip commands it would run, run nothing
#
# BANDGAP_TORCH=cpu (default) installs torch 2.13.0+cpu from the PyTorch CPU wheel index.
# BANDGAP_TORCH=cuda installs PyPI's torch==2.13.0 instead (the CUDA build, several GB) for
# students with an NVIDIA GPU; everything else stays as locked.
#
# Works offline except for the package registry. Order matters:
#   1. torch first, explicitly the CPU build `torch==2.13.0+cpu` (PyPI has no +cpu wheels, so
#      this pin can never resolve to the CUDA build). It is taken from wheels pip already knows
#      through its own configuration (find-links; course machines keep the build on local disk),
#      checked offline with --no-index, and otherwise from https://download.pytorch.org/whl/cpu.
#      (Passing that index as an *extra* index on a machine that cannot reach it costs ~10 s of
#      retries and five warnings per pip call; this way it is contacted only when needed.)
#   2. requirements.txt (+ requirements-test.txt) with requirements.lock as constraints: every
#      package at the locked version.
#   3. crabnet==2.0.8 with --no-deps --ignore-requires-python: its metadata says
#      Requires-Python <3.11, so pip on 3.11 would silently pick the old 1.0.x.
#      2.0.8 is pure Python and tested here on 3.11 (tests/test_environment.py);
#      its runtime dependencies are listed in requirements.txt.
#   4. the course's own packages (helpers, coursetools, exercises), editable.
#   5. scripts/verify_install.py verifies the result.
# A stamp file makes a second run instant when nothing changed (venv mode); in place, a
# complete environment is detected by verify_install.py and left untouched.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
TARGET_PY=""
TEST=""
PRINT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --python) TARGET_PY=$2; shift 2 ;;
    --test) TEST=1; shift ;;
    --print-commands) PRINT=1; shift ;;
    *) echo "setup_env.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
TORCH=${BANDGAP_TORCH:-cpu}
case "$TORCH" in cpu|cuda) ;; *) echo "BANDGAP_TORCH must be cpu or cuda, not $TORCH" >&2; exit 2 ;; esac

if [ -z "$TARGET_PY" ]; then
  MODE=venv
  VENV=${BANDGAP_VENV:-.venv}
  TEST=1   # the developers' / CI environment always has the test packages
  PY_BASE=${PYTHON:-python3.11}
  command -v "$PY_BASE" >/dev/null 2>&1 || PY_BASE=python3
  TARGET_PY="$VENV/bin/python"
else
  MODE=inplace
fi
REQS=requirements.txt
[ -n "$TEST" ] && REQS=requirements-test.txt
CONSTRAINTS=requirements.lock
if [ "$TORCH" = cuda ]; then
  TORCH_SPEC=torch==2.13.0
else
  TORCH_SPEC=torch==2.13.0+cpu
fi

pip_cmds() {  # the pip commands of steps 1-4, one per line ("||" = fallback)
  if [ "$TORCH" = cuda ]; then
    echo "$TARGET_PY -m pip install --quiet --no-deps $TORCH_SPEC"
  else
    echo "$TARGET_PY -m pip install --quiet --no-deps --no-index $TORCH_SPEC || $TARGET_PY -m pip install --quiet --no-deps --index-url $TORCH_CPU_INDEX $TORCH_SPEC"
  fi
  if [ "$TORCH" = cuda ]; then
    echo "$TARGET_PY -m pip install --quiet -r $REQS -c <requirements.lock without its torch line>"
  else
    echo "$TARGET_PY -m pip install --quiet -r $REQS -c $CONSTRAINTS"
  fi
  echo "$TARGET_PY -m pip install --quiet --no-deps --ignore-requires-python crabnet==2.0.8"
  echo "$TARGET_PY -m pip install --quiet --no-deps -e ."
}

if [ -n "$PRINT" ]; then
  echo "# mode: $MODE, torch: $TORCH"
  [ "$MODE" = venv ] && echo "$PY_BASE -m venv $VENV"
  pip_cmds
  exit 0
fi

if [ "$MODE" = venv ]; then
  STAMP="$VENV/.bandgap-env-stamp"
  want=$( (cat requirements.txt requirements-test.txt requirements.lock pyproject.toml scripts/setup_env.sh; echo "$TORCH") | sha256sum | cut -d' ' -f1)
  if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    exit 0
  fi
  "$PY_BASE" -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 required, found {sys.version}"'
  [ -x "$VENV/bin/python" ] || "$PY_BASE" -m venv "$VENV"
else
  check_args=()
  [ -n "$TEST" ] && check_args+=(--test)
  if "$TARGET_PY" scripts/verify_install.py --quiet "${check_args[@]}"; then
    exit 0   # already complete (Binder, a finished conda env): nothing to install
  fi
  "$TARGET_PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 required, found {sys.version}"'
fi

if [ "$TORCH" = cuda ]; then
  # the lock pins the CPU build; the CUDA variant keeps every other pin
  LOCKED=$(mktemp)
  trap 'rm -f "$LOCKED"' EXIT
  grep -v '^torch==' requirements.lock > "$LOCKED"
  CONSTRAINTS=$LOCKED
fi
PIP="$TARGET_PY -m pip"
if [ "$TORCH" = cuda ]; then
  $PIP install --quiet --no-deps "$TORCH_SPEC"
elif ! $PIP install --quiet --no-deps --no-index "$TORCH_SPEC" 2>/dev/null; then
  $PIP install --quiet --no-deps --index-url "$TORCH_CPU_INDEX" "$TORCH_SPEC"
fi
$PIP install --quiet -r "$REQS" -c "$CONSTRAINTS"
$PIP install --quiet --no-deps --ignore-requires-python crabnet==2.0.8
$PIP install --quiet --no-deps -e .
check_args=()
[ -n "$TEST" ] && check_args+=(--test)
"$TARGET_PY" scripts/verify_install.py "${check_args[@]}"
[ "$MODE" = venv ] && echo "$want" > "$STAMP"
exit 0
