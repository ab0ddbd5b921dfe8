#!/usr/bin/env bash
# Create (or update) the course's virtual environment in .venv.
#
# Works offline except for the package registry. Order matters:
#   1. torch==2.13.0 first: the CPU build lies on local disk on course machines;
#      any other torch pin (or a bare "torch") would pull a multi-GB CUDA build.
#   2. requirements.txt (pins torch==2.13.0 again so nothing can upgrade it).
#   3. crabnet==2.0.8 with --no-deps --ignore-requires-python: its metadata says
#      Requires-Python <3.11, so pip on 3.11 would silently pick the old 1.0.x.
#      2.0.8 is pure Python and tested here on 3.11 (tests/test_environment.py);
#      its runtime dependencies are listed in requirements.txt.
#   4. the course's own helpers package, editable.
# A stamp file makes a second run instant when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
VENV=${BANDGAP_VENV:-.venv}
STAMP="$VENV/.bandgap-env-stamp"
want=$(cat requirements.txt pyproject.toml scripts/setup_env.sh | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  exit 0
fi
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 required, found {sys.version}"'
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install --quiet torch==2.13.0
$PIP install --quiet -r requirements.txt
$PIP install --quiet --no-deps --ignore-requires-python crabnet==2.0.8
$PIP install --quiet --no-deps -e .
"$VENV/bin/python" - <<'PY'
import torch, crabnet, importlib.metadata as md
assert torch.__version__.startswith("2.13.0"), torch.__version__
assert "+cpu" in torch.__version__ or not torch.version.cuda, "a CUDA torch slipped in"
assert md.version("crabnet") == "2.0.8", md.version("crabnet")
print(f"environment ok: torch {torch.__version__}, crabnet {md.version('crabnet')}")
PY
echo "$want" > "$STAMP"
