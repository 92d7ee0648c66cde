#!/usr/bin/env bash
# The CPU throughput table of docs/benchmarks.md: kzoo's engine (what `kzoo train` picks, plus plain `fit`
# for comparison) vs the native PyTorch loop, every benchmark model on every installed backend, then the CLI
# start-up check. One JSON line per run in ${OUT:-benchmarks/results}/cpu-$(date +%F).jsonl. Run it on a
# quiet machine (it takes about 25 minutes on 2 cores); THREADS=1 pins every framework to one thread.
#   bash benchmarks/cpu_table.sh
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results}
RESULTS="$OUT/cpu-$(date +%F).jsonl"
THREADS=${THREADS:-0}
run() {  # model backend engine [extra args]
  local model=$1 backend=$2 engine=$3; shift 3
  timeout 600 python benchmarks/train_throughput.py --model "$model" --backend "$backend" --engine "$engine" \
    --threads "$THREADS" --json "$@" 2>/dev/null | grep '^{' >> "$RESULTS" \
    || echo "{\"model\": \"$model\", \"backend\": \"$backend\", \"engine\": \"$engine\", \"error\": \"failed or timed out\"}" >> "$RESULTS"
  tail -1 "$RESULTS"
}
for backend in torch tensorflow jax; do
  for engine in auto fit; do
    [ "$backend" = jax ] && [ "$engine" = fit ] && continue  # auto is fit on jax
    for model in lenet5 convnet2 mlp lstm gru; do
      run "$model" "$backend" "$engine" --steps 480 --rounds 6 --warmup 16
    done
    run resnet18 "$backend" "$engine" --steps 8 --rounds 4 --warmup 2
  done
done
python benchmarks/cli_startup.py --runs 15 --json | tail -1 >> "$RESULTS"
