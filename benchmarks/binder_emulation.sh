#!/usr/bin/env bash
# Emulate Binder (repo2docker) on this machine and measure it:
#   a fresh clone of HEAD (no ../shared beside it), a fresh Python 3.11 venv with Binder's
#   preinstalled notebook 7.4.7, `pip install -r binder/requirements.txt`, `binder/postBuild`,
#   `pip check`, then every notebook (01-05) through `binder/start` in quick mode, offline
#   (BANDGAP_NOMAD_OFFLINE=1), under a 2 GiB memory limit (Binder's RAM).
# Memory limit: a cgroup-v1 memory group nested in this shell's own cgroup when it is writable
# (memory.limit_in_bytes = 2 GiB), else `systemd-run --scope -p MemoryMax=2G`; which one is recorded.
# Writes results/benchmarks/binder_emulation.json (+ the executed notebooks' course_run.json).
#   bash benchmarks/binder_emulation.sh [WORKDIR]     (~10 min on 2 idle cores; needs PyPI)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${1:-$(mktemp -d /tmp/binder-emu.XXXXXX)}
OUT="$REPO/results/benchmarks/binder_emulation.json"
mkdir -p "$WORK"
rm -rf "$WORK/repo" "$WORK/env"
git clone -q "$REPO" "$WORK/repo"
cd "$WORK/repo"
t0=$(date +%s)
python3.11 -m venv "$WORK/env"
export PATH="$WORK/env/bin:$PATH"
pip install -q notebook==7.4.7            # preinstalled in Binder's base environment
t1=$(date +%s)
# This machine cannot reach download.pytorch.org (Binder can): PIP_RETRIES=0 makes each failed
# look-up on that index immediate instead of 5 retries per package; torch 2.13.0+cpu then comes
# from this machine's local wheel (pip's find-links). pip's own output goes to pip_install.log.
PIP_RETRIES=0 pip install --no-cache-dir -r binder/requirements.txt > "$WORK/pip_install.log" 2>&1
grep -E "^ERROR|incompatible" "$WORK/pip_install.log" || true
bash binder/postBuild
t2=$(date +%s)
pip check > "$WORK/pip_check.txt" 2>&1 && pip_check=ok || pip_check=failed
cat "$WORK/pip_check.txt"
n_freeze=$(pip freeze --exclude-editable | wc -l)
has_test=$(python -c 'import importlib.util as u; print([m for m in ("pytest", "nbval", "playwright") if u.find_spec(m)])')

# memory limit for the notebook run
limit="none"
CG_SELF=$(awk -F: '$2=="memory"{print $3}' /proc/self/cgroup)
CG="/sys/fs/cgroup/memory${CG_SELF}/binder-emu-$$"
run_limited() {
  if mkdir "$CG" 2>/dev/null; then
    echo $((2 * 1024 * 1024 * 1024)) > "$CG/memory.limit_in_bytes"
    limit="cgroup v1 memory.limit_in_bytes=2GiB ($CG)"
    ( echo $BASHPID > "$CG/tasks"; exec "$@" )
    rc=$?
    peak_cg=$(cat "$CG/memory.max_usage_in_bytes")
    oom=$(grep -c "oom_kill [1-9]" "$CG/memory.oom_control" || true)
    return $rc
  elif systemd-run --scope -p MemoryMax=2G true >/dev/null 2>&1; then
    limit="systemd-run --scope -p MemoryMax=2G"
    systemd-run --scope -q -p MemoryMax=2G "$@"
  else
    echo "no way to limit memory here" >&2; return 3
  fi
}
peak_cg=""
oom=""
export BANDGAP_SHARED_DIR="$WORK/no-shared" BANDGAP_NOMAD_OFFLINE=1 BANDGAP_OUTPUT_DIR="$WORK/output"
set +e
run_limited binder/start python -m coursetools.course   # every lesson, 01-05, each in its own kernel
course_rc=$?
set -e
[ -d "$CG" ] && rmdir "$CG" 2>/dev/null || true
t3=$(date +%s)
python - "$OUT" <<PY
import json, sys
run = json.load(open("$WORK/output/course_run.json"))
result = {
    "what": "Binder emulation: fresh clone, fresh venv + notebook 7.4.7, pip install -r binder/requirements.txt, "
            "postBuild, shared data absent, BANDGAP_NOMAD_OFFLINE=1, binder/start, notebooks 01-05 quick mode",
    "command": "bash benchmarks/binder_emulation.sh",
    "pip_check": "$pip_check",
    "pip_check_output": open("$WORK/pip_check.txt").read().strip(),
    "packages_installed": int("$n_freeze"),
    "test_only_packages_installed": $has_test,
    "install_seconds": $t2 - $t1,
    "memory_limit": "$limit",
    "cgroup_peak_MB": round(int("${peak_cg:-0}") / 2**20, 1) if "${peak_cg}" else None,
    "oom_kills": "$oom",
    "course_exit_status": $course_rc,
    "notebooks": run,
    "course_seconds": $t3 - $t2,
}
json.dump(result, open(sys.argv[1], "w"), indent=1)
print(json.dumps({k: v for k, v in result.items() if k != "notebooks"}, indent=1))
PY
cat "$WORK/output/course_run.json" | python -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps(d, indent=1)[:1500])'
exit $course_rc
