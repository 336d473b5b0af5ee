#!/usr/bin/env bash
# The GPU checks of docs/performance.md ("GPU"), as one command on the first GPU: jax.export
# artefacts for several platforms run through their CUDA part, a quick parity sweep with
# jaxpool on the GPU against torch, the operator benchmark (the portable core, which
# lax.platform_dependent picks on GPU, against torch CUDA and Flax's reduce_window pools) and
# the model training steps.  It installs nothing: it needs jax with CUDA, torch with CUDA,
# flax and optax already there (the device machine's image has them).  From the repository root:
#
#   python3 -m jaxpool.testing.exports save gpu-export   # optional, on the CPU machine first
#   bash benchmarks/gpu.sh [OUT_DIR]        # tables and JSON go to OUT_DIR (default: $OUT or gpu-results)
#
# With a gpu-export/ folder (artefacts and results written on another machine, carried over) the
# export step runs those; without one it writes them here on the CPU first.  Each step has a time
# limit so that the whole check fits a 10-minute device call; a step that fails or runs out of
# time is reported, the benchmarks print the rows they finished, and the next step still runs.
set -uo pipefail
out=${1:-${OUT:-gpu-results}}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
status=0
step() {  # step SECONDS NAME COMMAND...
  local seconds=$1 name=$2; shift 2
  echo "== $name: $*"
  local start=$SECONDS
  timeout -k 15 "$seconds" "$@" 2>&1 | tee "$out/$name.txt"
  local rc=${PIPESTATUS[0]}
  echo "== $name: exit status $rc after $((SECONDS - start)) s"
  [ "$rc" -eq 0 ] || status=1
}
step 40 devices python3 -c "import jax, torch, jaxpool, jax.numpy as jnp
print(jax.__version__, jax.devices(), torch.__version__, torch.cuda.get_device_name(0))
print(jaxpool.max_pool2d(jnp.arange(16.).reshape(1, 1, 4, 4), 2, return_indices=True))"
if [ ! -d gpu-export ]; then
  step 60 export-save env JAX_PLATFORMS=cpu python3 -m jaxpool.testing.exports save gpu-export
fi
step 70 export-check python3 -m jaxpool.testing.exports check gpu-export
step 90 parity env XLA_PYTHON_CLIENT_PREALLOCATE=false python3 -m jaxpool parity --level quick --jobs 8
step 220 bench python3 benchmarks/bench.py --device gpu --repeats 5 --json "$out/bench_gpu.json"
step 150 models python3 benchmarks/models.py --device gpu --repeats 5 --no-torch-compile --json "$out/models_gpu.json"
exit $status
