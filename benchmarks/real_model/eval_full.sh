#!/usr/bin/env bash
# Full test sets of the real model with `remit eval` (one task per run, so each finishes on its own), then the
# comparison table. Run from the repo root: bash benchmarks/real_model/eval_full.sh [task ...]
# Results: runs/real_model/eval-<task>/results.json; table: benchmarks/results/real_model/eval.md
set -euo pipefail
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
PY=${PY:-.venv/bin/python}
DATA=${DATA:-../shared/data}
GGUF=$($PY benchmarks/real_model/fetch.py)
for task in "${@:-arc_challenge arc_easy piqa}"; do
  for t in $task; do
    echo "[$(date +%T)] remit eval $t" >&2
    $PY -m remit.cli eval model="$GGUF" tasks="[$t]" data_dir="$DATA" out_dir="runs/real_model/eval-$t"
  done
done
$PY benchmarks/real_model/eval_table.py
