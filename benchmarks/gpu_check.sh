#!/usr/bin/env bash
# The GPU check, in under 8 minutes on one GPU (sized for an H200): `kzoo bench` of LeNet-5, ResNet-18 and the
# LSTM on every installed backend (tensorflow skipped when absent), every engine, float32 and mixed precision,
# beside the native PyTorch twin; then `kzoo train` accuracy runs, several at once on the one GPU, after the
# timing (nothing is timed while they run). Every step is time-boxed and the whole script keeps to a deadline.
#
#   OUT=/some/dir bash benchmarks/gpu_check.sh
#   GPU_CHECK_DEVICE=cpu STEPS=2 EPOCHS=1 LIMIT=512 OUT=/tmp/x bash benchmarks/gpu_check.sh   # smoke run on a CPU
#
# Needs python3 with keras and kzoo importable (installed, or PYTHONPATH=<checkout>:<site>); the CLI is run as
# `python3 -m kzoo_cli.main` from this checkout's cli/ (no console script needed). Fashion-MNIST is read from
# $KZOO_DATA_DIR (the folder with the four IDX .gz files, or a folder holding fashion-mnist/), else from
# shared/datasets/fashion-mnist, ../shared/datasets/fashion-mnist, datasets/fashion-mnist or fashion-mnist
# (relative to the checkout's root); without it the
# accuracy runs use the embedded MNIST digits. Files written to $OUT: gpu-throughput.jsonl (one `kzoo bench`
# row per line), gpu-accuracy.jsonl (one line per training run), gpu-log.txt (machine, versions, every step's
# output).
set -u
cd "$(dirname "$0")/.."
REPO=$PWD
OUT=${OUT:-.}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
THROUGHPUT="$OUT/gpu-throughput.jsonl"
ACCURACY="$OUT/gpu-accuracy.jsonl"
LOG="$OUT/gpu-log.txt"
DEVICE=${GPU_CHECK_DEVICE:-cuda}
BATCH=${BATCH:-256}
STEPS=${STEPS:-100}
EPOCHS=${EPOCHS:-3}
LIMIT=${LIMIT:-0}
BUDGET=${BUDGET:-465}           # seconds for the whole script (the lead's limit is 8 minutes)
ACCURACY_BUDGET=${ACCURACY_BUDGET:-130}
START=$SECONDS
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kzoo-gpu-check.XXXXXX")
pids=()
trap 'exit 143' TERM INT
trap 'rm -rf "$WORK"' EXIT

# the checkout's CLI as the package kzoo_cli, whatever an installed wheel holds
mkdir -p "$WORK/shim" && ln -s "$REPO/cli" "$WORK/shim/kzoo_cli"
export PYTHONPATH="$REPO:$WORK/shim${PYTHONPATH:+:$PYTHONPATH}"
export TF_CPP_MIN_LOG_LEVEL=2 XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
if [ "$DEVICE" = cpu ]; then export CUDA_VISIBLE_DEVICES="" JAX_PLATFORMS=cpu; fi
KZOO="python3 -m kzoo_cli.main"

log() { echo "[$(date -u +%H:%M:%S) +$((SECONDS - START))s] $*" | tee -a "$LOG"; }
left() { echo $((BUDGET - (SECONDS - START))); }
# run CAP_SECONDS COMMAND...: at most CAP seconds, and never past the script's deadline minus what the accuracy
# phase keeps for itself (RESERVE)
boxed() {
  local cap=$1; shift
  local t=$(( $(left) - RESERVE )); [ "$t" -gt "$cap" ] && t=$cap
  if [ "$t" -lt 10 ]; then log "skipped (no time left): $*"; return 124; fi
  timeout -k 5 "$t" "$@"
}

: > "$LOG"; : > "$THROUGHPUT"; : > "$ACCURACY"
log "gpu_check: device=$DEVICE batch=$BATCH steps=$STEPS epochs=$EPOCHS budget=${BUDGET}s out=$OUT"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 || echo "no nvidia-smi"
  timeout 60 python3 - <<'EOF'
import importlib.metadata as m, importlib.util as u, sys
print("python", sys.version.split()[0])
for p in ("kzoo", "keras", "torch", "jax", "jaxlib", "tensorflow", "numpy", "onnxruntime"):
    try:
        print(p, m.version(p))
    except m.PackageNotFoundError:
        print(p, "not installed" if u.find_spec(p) is None else "importable, no metadata")
EOF
} 2>&1 | tee -a "$LOG"
# GPU_CHECK_BACKENDS / GPU_CHECK_MODELS narrow the check (a quick smoke run); the default is everything installed
BACKENDS=$(python3 -c "import os; from kzoo.backend import installed_backends as i
asked = [b for b in os.environ.get('GPU_CHECK_BACKENDS', '').split(',') if b]
print(','.join(b for b in i() if not asked or b in asked))")
MODELS=${GPU_CHECK_MODELS:-lenet5 resnet18 lstm}
log "backends installed: ${BACKENDS:-none}"
if [ -z "$BACKENDS" ] || ! $KZOO --version >> "$LOG" 2>&1; then
  log "kzoo or every backend is missing: nothing to run"; exit 1
fi

# ---- 1. throughput: kzoo bench, one invocation per model and backend (a failure loses one group only) ----
RESERVE=$ACCURACY_BUDGET
bench() {  # bench MODEL BACKENDS CAP [kzoo bench options...]: its JSON lines (each row as it is measured) appended
  local model=$1 backend=$2 cap=$3; shift 3
  log "kzoo bench $model --backends $backend $*"
  local before; before=$(wc -l < "$THROUGHPUT")
  boxed "$cap" $KZOO bench "$model" --backends "$backend" --device "$DEVICE" --batch-size "$BATCH" \
    --steps "$STEPS" --timeout "$cap" --json "$@" >> "$THROUGHPUT" 2>> "$LOG"
  local rc=$?
  python3 - "$THROUGHPUT" "$before" "$model" "$backend" "$rc" <<'EOF' 2>&1 | tee -a "$LOG"
import json, sys
path, before, model, backend, rc = sys.argv[1:]
rows = [json.loads(line) for line in open(path).read().splitlines()[int(before):] if line.startswith("{")]
if rc != "0":
    error = {"model": model, "backend": backend, "error": f"kzoo bench exit status {rc}"
             + (" (timed out: rows above are what it measured)" if rc in ("124", "137") else " (see gpu-log.txt)")}
    with open(path, "a") as f:
        f.write(json.dumps(error) + "\n")
    rows.append(error)
for row in rows:
    ratio, frac = row.get("ratio_to_native"), row.get("flop_fraction")
    print("  %-9s %-12s %-6s %-6s %-7s %10s  x%-6s mem %-8s peak %s%%" % (
        row.get("mode"), row.get("runner"), row.get("backend") or "torch", row.get("engine_used") or row.get("engine"),
        row.get("precision"), row.get("samples_per_s", row.get("error")), ratio, row.get("peak_memory_mb"),
        None if frac is None else round(100 * frac, 2)))
EOF
}
installed() { case ",$BACKENDS," in *",$1,"*) return 0 ;; esac; return 1; }
for backend in torch jax tensorflow; do
  installed "$backend" || log "skip $backend: not installed (or not asked for)"
done
# one invocation per model over every backend: the native twin runs once per model and precision
for spec in "lenet5 130" "resnet18 170 --steps $(( (STEPS + 1) / 2 ))" "lstm 90 --precision float32 --no-inference"; do
  read -r model cap rest <<< "$spec"
  case " $MODELS " in *" $model "*) ;; *) continue ;; esac
  # shellcheck disable=SC2086
  bench "$model" "$BACKENDS" "$cap" $rest
done

# ---- 2. accuracy: kzoo train runs, several at once on the GPU, nothing timed meanwhile ----
RESERVE=0
DATA=mnist_embedded DATA_DIR=""
for dir in "${KZOO_DATA_DIR:-}" "${KZOO_DATA_DIR:-/nonexistent}/fashion-mnist" shared/datasets/fashion-mnist \
           ../shared/datasets/fashion-mnist datasets/fashion-mnist fashion-mnist; do
  if [ -n "$dir" ] && [ -f "$dir/train-images-idx3-ubyte.gz" ]; then DATA=fashion_mnist DATA_DIR=$dir; break; fi
done
log "accuracy runs on $DATA${DATA_DIR:+ from $DATA_DIR}, $EPOCHS epochs, $(left)s left"
EXTRA=(); [ "$LIMIT" -gt 0 ] && EXTRA+=(--limit "$LIMIT")
[ -n "$DATA_DIR" ] && EXTRA+=(--data-dir "$DATA_DIR")
RUNS=(
  "lenet5 torch"
  "convnet2 torch"
  "resnet18 torch -o small_stem=true"
  "resnet18 torch --mixed-precision -o small_stem=true"
  "lenet5 jax"
  "resnet18 jax -o small_stem=true"
  "lenet5 tensorflow"
)
ACCURACY_START=$SECONDS
CAP=$(( $(left) - 15 )); [ "$CAP" -gt "$ACCURACY_BUDGET" ] && CAP=$ACCURACY_BUDGET
pids=() names=()
# each run is its own `timeout` process group: the trap ends them all if the script itself is stopped
trap 'for p in "${pids[@]}"; do kill -- -"$p" 2>/dev/null; done; rm -rf "$WORK"' EXIT
for i in "${!RUNS[@]}"; do
  read -r model backend rest <<< "${RUNS[$i]}"
  case " $MODELS convnet2 " in *" $model "*) ;; *) continue ;; esac
  installed "$backend" || continue
  if [ "$CAP" -lt 20 ]; then log "skip accuracy run ${RUNS[$i]}: no time left"; continue; fi
  name="acc$i-$model-$backend"
  # shellcheck disable=SC2086
  timeout -k 5 "$CAP" $KZOO train "$model" --backend "$backend" --data "$DATA" --epochs "$EPOCHS" \
    --batch-size 256 --seed 0 --quiet --json --output "$WORK/$name" ${EXTRA[@]+"${EXTRA[@]}"} $rest \
    > "$WORK/$name.json" 2> "$WORK/$name.err" &
  pids+=($!) names+=("$name|${RUNS[$i]}")
done
log "started ${#pids[@]} training runs in parallel (at most ${CAP}s each)"
for i in "${!pids[@]}"; do
  wait "${pids[$i]}"; echo "$? $((SECONDS - ACCURACY_START))" > "$WORK/${names[$i]%%|*}.rc"
done
for entry in "${names[@]}"; do
  name=${entry%%|*} what=${entry#*|}
  python3 - "$WORK" "$name" "$what" "$DATA" "$EPOCHS" "$ACCURACY" <<'EOF' 2>&1 | tee -a "$LOG"
import csv, json, os, sys
work, name, what, data, epochs, out = sys.argv[1:]
parts = what.split()
row = {"model": parts[0], "backend": parts[1], "mixed_precision": "--mixed-precision" in parts, "data": data,
       "epochs": int(epochs), "args": " ".join(parts[2:])}
try:
    rc, wall = open(os.path.join(work, name + ".rc")).read().split()
    row.update(exit_status=int(rc), wall_s_at_most=int(wall))  # the runs are waited for in order
except (OSError, ValueError):
    row.update(exit_status=None)
run = os.path.join(work, name)
try:
    metrics = json.load(open(os.path.join(run, "metrics.json")))
    row.update({k: metrics[k] for k in ("accuracy", "loss", "best_epoch", "epochs_done") if k in metrics})
except (OSError, ValueError):
    err = [l for l in open(os.path.join(work, name + ".err")).read().splitlines() if l.strip()] if \
        os.path.exists(os.path.join(work, name + ".err")) else []
    row["error"] = ("timed out" if row.get("exit_status") in (124, 137) else (err[-1] if err else "no metrics"))
try:
    import yaml
    config = yaml.safe_load(open(os.path.join(run, "config.yaml")))
    row["engine_used"] = config.get("engine_used")
    row["accelerator"] = (config.get("machine") or {}).get("accelerator")
except Exception:
    pass
try:
    rows = list(csv.DictReader(open(os.path.join(run, "metrics.csv"))))
    speed = [float(r["samples_per_s"]) for r in rows if r.get("samples_per_s")]
    if speed:
        row["samples_per_s_last_epoch"] = round(speed[-1], 1)
    row["train_s"] = round(sum(float(r["epoch_time"]) for r in rows if r.get("epoch_time")), 1)
except (OSError, KeyError, ValueError):
    pass
with open(out, "a") as f:
    f.write(json.dumps(row) + "\n")
print("  accuracy", json.dumps(row))
EOF
  { echo "--- $name ($what) stderr, last lines:"; tail -n 5 "$WORK/$name.err" 2>/dev/null; } >> "$LOG"
done
log "done in $((SECONDS - START))s"
