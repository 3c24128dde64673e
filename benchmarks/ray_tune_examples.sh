#!/bin/bash
# Ray Tune's own example programs run on the tuner with only their imports changed
# (docs/migrating_from_ray_tune.md, "Compatibility, measured").
#
#   benchmarks/ray_tune_examples.sh [SCRATCH_DIR] [EXAMPLE ...]
#
# Copies each example from the installed Ray's ray/tune/examples into SCRATCH_DIR (default
# /tmp/ray_tune_examples; their code never enters this repository), rewrites only the imports
# (from ray import tune -> import tuner as tune; ray.tune.examples.X -> the sibling file X;
# ray.tune[.X] -> tuner[.X]), and runs it with --smoke-test against this checkout's tuner, a
# fresh local Ray (RAY_ADDRESS=local) and a fresh storage directory per program. Prints one
# line per program: exit status, wall time, load average. Logs: SCRATCH_DIR/log_<name>.txt.
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
scratch=${1:-/tmp/ray_tune_examples}
shift || true
examples=${*:-"async_hyperband_example custom_checkpointing_with_callback custom_func_checkpointing
  hyperband_example hyperband_function_example hyperopt_conditional_search_space_example logging_example
  optuna_example optuna_define_by_run_example optuna_multiobjective_example pb2_example pbt_example
  pbt_function tune_basic_example"}
source_dir=$(python -c "import os, ray.tune.examples as e; print(os.path.dirname(e.__file__))")
mkdir -p "$scratch"
for name in $examples; do
  sed -e 's/^from ray import tune$/import tuner as tune/' \
      -e 's/^\(\s*\)from ray\.tune\.examples\.\([a-z0-9_]*\) import/\1from \2 import/' \
      -e 's/^\(\s*\)from ray\.tune\.\([a-z0-9_.]*\) import/\1from tuner.\2 import/' \
      -e 's/^\(\s*\)from ray\.tune import/\1from tuner import/' "$source_dir/$name.py" > "$scratch/$name.py"
done
for name in $examples; do  # siblings they import (pb2_example imports pbt_function) are converted above
  store="$scratch/store_$name"
  rm -rf "$store" && mkdir -p "$store"
  start=$(date +%s)
  (cd "$scratch" && RAY_ADDRESS=local TUNER_STORAGE_PATH="$store" PYTHONPATH="$repo" \
     timeout 900 python "$name.py" --smoke-test > "log_$name.txt" 2>&1)
  echo "$name rc=$? wall=$(( $(date +%s) - start ))s load=$(cut -d' ' -f1-3 /proc/loadavg)"
done
