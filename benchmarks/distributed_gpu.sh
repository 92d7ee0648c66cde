#!/usr/bin/env bash
# Data-parallel scaling of kzoo's torch engine (DDP, nccl) on every GPU of this machine: samples/s and the
# scaling efficiency (samples/s on N GPUs / (N x samples/s on 1)) of `kzoo train --devices N` for 1, 2, 4, ...
# up to all GPUs, 256 samples per GPU per step (weak scaling), and the per-step all-reduce time. Needs the CUDA
# build of torch (pip install -e ".[torch]"). Results: ${OUT:-.}/distributed-gpu.json and a markdown table on
# stdout; paste it into docs/benchmarks.md ("Data-parallel training").
#   bash benchmarks/distributed_gpu.sh                   # lenet5 and resnet18
#   MODELS=resnet18 PER_GPU=128 bash benchmarks/distributed_gpu.sh
set -eu
cd "$(dirname "$0")/.."
OUT=${OUT:-.}
GPUS=$(nvidia-smi --list-gpus | wc -l)
configs=""
for n in 1 2 4 8 16 32 64; do
  [ "$n" -le "$GPUS" ] && configs="$configs${configs:+,}${n}x0"
done
[ "$GPUS" -gt 1 ] && [[ ",$configs," != *",${GPUS}x0,"* ]] && configs="$configs,${GPUS}x0"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/distributed-gpu-machine.txt"
python benchmarks/distributed.py --models "${MODELS:-lenet5,resnet18}" --configs "$configs" \
  --per-device-batch "${PER_GPU:-256}" --limit "${LIMIT:-0}" --epochs "${EPOCHS:-3}" --json "$OUT/distributed-gpu.json"
