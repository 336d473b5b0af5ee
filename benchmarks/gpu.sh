#!/usr/bin/env bash
# The GPU checks of docs/performance.md ("GPU"), as one command: the operator benchmark (the
# portable core, which lax.platform_dependent picks on GPU, against torch CUDA and Flax's
# reduce_window pools) and the model training steps, on the first GPU.  It installs nothing:
# it needs jax with CUDA, torch with CUDA, flax and optax already there (the device machine's
# image has them).  Run from the repository root:
#
#   bash benchmarks/gpu.sh [OUT_DIR]        # tables and JSON go to OUT_DIR (default: $OUT or gpu-results)
#
# Each step has a time limit so that the whole check fits a 10-minute device call; a step that
# fails or runs out of time is reported and the next one still runs.
set -uo pipefail
out=${1:-${OUT:-gpu-results}}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
status=0
step() {  # step SECONDS NAME COMMAND...
  local seconds=$1 name=$2; shift 2
  echo "== $name: $*"
  timeout "$seconds" "$@" 2>&1 | tee "$out/$name.txt"
  local rc=${PIPESTATUS[0]}
  [ "$rc" -eq 0 ] || { echo "== $name: exit status $rc"; status=1; }
}
step 30 devices python3 -c "import jax, torch; print(jax.devices(), torch.cuda.get_device_name(0))"
step 240 bench python3 benchmarks/bench.py --device gpu --json "$out/bench_gpu.json"
step 300 models python3 benchmarks/models.py --device gpu --no-torch-compile --json "$out/models_gpu.json"
exit $status
