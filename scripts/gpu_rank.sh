#!/usr/bin/env bash
# GPU ranking run (issue 21; under 8 minutes on one modern GPU): the NAS-Bench-Macro supernet of the shipped
# config (configs/cifar10-nas-bench-macro.yaml) trained on all 50,000 CIFAR-10 training images (less the
# 2,000-image validation split) for a paper-scale budget in bf16 and channels-last, then ranked against the
# benchmark on 100 stratified archs (`supernet rank --benchmark`). Compared with the CPU study (6 epochs on
# 28,000 images, docs/analysis.md) it tells whether the gap to the benchmark is the budget or the method.
# The decoded images stay in (pinned) host memory; each batch is copied to the device asynchronously.
#
#   bash scripts/gpu_rank.sh [OUT_DIR]
#   GPU_RANK_DATA=path/to/cifar10-jpg      (default ../shared/data/cifar10-jpg)
#   GPU_RANK_BENCH=path/to/nas-bench-macro_cifar10.json (default ../shared/data/nas-bench-macro/...)
#   GPU_RANK_EPOCHS=100  GPU_RANK_DEVICE=auto  GPU_RANK_SEED=0
#   GPU_RANK_SMOKE=1     tiny sizes on a CPU in about a minute (tests the script, its numbers are noise)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
PY=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
export PYTHONPATH="$root/src${PYTHONPATH:+:$PYTHONPATH}"
data=${GPU_RANK_DATA:-../shared/data/cifar10-jpg}
bench=${GPU_RANK_BENCH:-../shared/data/nas-bench-macro/nas-bench-macro_cifar10.json}
device=${GPU_RANK_DEVICE:-auto}
epochs=${GPU_RANK_EPOCHS:-100}
seed=${GPU_RANK_SEED:-0}
out=${1:-runs/gpu-rank-$(date +%Y%m%d-%H%M%S)}
[ -d "$data/train" ] || { echo "gpu_rank: no image folder at $data/train (set GPU_RANK_DATA)" >&2; exit 2; }
[ -f "$bench" ] || { echo "gpu_rank: no benchmark file at $bench (set GPU_RANK_BENCH)" >&2; exit 2; }
[ -e "$out" ] && { echo "gpu_rank: $out exists; give another OUT_DIR" >&2; exit 2; }
mkdir -p "$out"
sets=(--set "data.root=$data" --set data.max_per_class=null --set train.amp=bf16 --set train.channels_last=true
      --set train.progress=false --set "train.epochs=$epochs" --set "train.seed=$seed" --set train.checkpoint_every_steps=0)
sample=100
if [ "${GPU_RANK_SMOKE:-0}" = 1 ]; then
  sets+=(--set data.max_per_class=60 --set data.val_size=100 --set train.batch_size=32 --set train.epochs=1
         --set 'space.options={width: 0.125}' --set eval.recal_batches=1 --set eval.recal_batch_size=32
         --set eval.val_limit=100 --set train.amp=off)
  sample=6
fi
"$PY" -c 'import torch; print("torch", torch.__version__, "| cuda", torch.cuda.is_available(),
  torch.cuda.get_device_name() if torch.cuda.is_available() else "")'
seconds() { "$PY" -c 'import time; print(time.time())'; }
echo "== 1/2 train ($epochs epochs) -> $out/supernet"
t0=$(seconds)
"$PY" -m supernet.cli train --device "$device" --config configs/cifar10-nas-bench-macro.yaml "${sets[@]}" \
  --run-dir "$out/supernet"
t1=$(seconds)
echo "== 2/2 rank $sample stratified benchmark archs"
"$PY" -m supernet.cli rank --device "$device" --supernet "$out/supernet" --benchmark nas-bench-macro \
  --benchmark-file "$bench" --sample "$sample" --run-dir "$out/rank" "${sets[@]}"
t2=$(seconds)
"$PY" - "$t0" "$t1" "$t2" <<'PYEOF'
import sys
t0, t1, t2 = map(float, sys.argv[1:])
print(f"gpu_rank: training {t1 - t0:.0f}s, ranking {t2 - t1:.0f}s, total {t2 - t0:.0f}s")
PYEOF
