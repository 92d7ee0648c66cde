#!/usr/bin/env bash
# The whole throughput table on one CUDA GPU, in a few minutes: kzoo's engine vs the native PyTorch loop,
# every benchmark model on every backend, plus the CPU start-up check. Needs the CUDA builds of torch,
# tensorflow and jax (pip install -e ".[torch,tensorflow,jax]"). Results: one JSON line per run in
# ${OUT:-.}/gpu-throughput.jsonl; paste them into docs/benchmarks.md.
#   bash benchmarks/gpu_check.sh            # batch 256, 200 timed steps per loop
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-.}
RESULTS="$OUT/gpu-throughput.jsonl"
BATCH=${BATCH:-256}
STEPS=${STEPS:-200}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu-machine.txt"
python -c "import keras, torch; print('keras', keras.__version__, 'torch', torch.__version__)" | tee -a "$OUT/gpu-machine.txt"
for backend in torch jax tensorflow; do
  for model in lenet5 convnet2 resnet18 lstm; do
    steps=$STEPS; [ "$model" = resnet18 ] && steps=$((STEPS / 2))
    timeout 150 python benchmarks/train_throughput.py --model "$model" --backend "$backend" --device cuda \
      --batch-size "$BATCH" --steps "$steps" --rounds 4 --warmup 10 --json 2>/dev/null | grep '^{' >> "$RESULTS" \
      || echo "{\"model\": \"$model\", \"backend\": \"$backend\", \"error\": \"failed or timed out\"}" >> "$RESULTS"
    tail -1 "$RESULTS"
  done
done
python benchmarks/cli_startup.py --runs 5 --json | tail -1 >> "$RESULTS"
