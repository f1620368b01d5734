#!/usr/bin/env bash
# GPU check (under 5 minutes on one modern GPU): a SCARLET-S1 supernet trained one epoch on CIFAR-10
# JPEGs (streaming loader when this version has it) at batch 256 in bf16, searched for two generations,
# exported, the export retrained for a few steps, a run killed with SIGKILL mid-epoch and resumed, and
# images/s of supernet vs stand-alone training in fp32 and bf16. Exits non-zero when any step fails.
#
#   bash scripts/gpu_check.sh [OUT_DIR]
#   GPU_CHECK_DATA=path/to/cifar10-jpg   (default ../shared/data/cifar10-jpg, from the repo root)
#   GPU_CHECK_DEVICE=cuda:1              (default auto: CUDA when available, else CPU)
#   GPU_CHECK_SMOKE=1                    tiny sizes, runs on a CPU in a few minutes (tests the script)
#   PYTHON=python3                       (default .venv/bin/python when present, else python3)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
PY=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
export PYTHONPATH="$root/src${PYTHONPATH:+:$PYTHONPATH}"
data=${GPU_CHECK_DATA:-../shared/data/cifar10-jpg}
device=${GPU_CHECK_DEVICE:-auto}
out=${1:-runs/gpu-check-$(date +%Y%m%d-%H%M%S)}
smoke=${GPU_CHECK_SMOKE:-0}
[ -d "$data/train" ] || { echo "gpu_check: no image folder at $data/train (set GPU_CHECK_DATA)" >&2; exit 2; }
[ -e "$out" ] && { echo "gpu_check: $out exists; give another OUT_DIR" >&2; exit 2; }
mkdir -p "$out"

sets=(--set data.name=folder --set "data.root=$data" --set data.resolution=32 --set space.name=scarlet-s1
      --set space.preset=cifar --set train.amp=bf16 --set train.progress=false --set standalone.progress=false
      --set standalone.amp=bf16)
if "$PY" -c 'import sys; from supernet.config.schema import DataConfig as D; sys.exit("stream" not in D.__dataclass_fields__)'
then sets+=(--set data.stream=disk); loader="streaming (data.stream=disk)"
else loader="in-memory (this version has no data.stream)"
fi
if [ "$smoke" = 1 ]; then
  batch=32; steps_resume=10
  sets+=(--set data.train_limit=640 --set data.val_size=128 --set data.max_per_class=80 --set train.batch_size=$batch
         --set 'space.options={width: 0.25, head_channels: 32, layers_per_stage: [1,2,1,2,1,1]}'
         --set eval.recal_batches=2 --set eval.recal_batch_size=32 --set eval.val_batch_size=64 --set eval.val_limit=128
         --set standalone.batch_size=$batch)
  population=4; speed=(--batch 32 --steps 3 --warmup 1)
else
  batch=256; steps_resume=40
  sets+=(--set data.val_size=5000 --set train.batch_size=$batch --set eval.recal_batches=20
         --set eval.recal_batch_size=256 --set eval.val_batch_size=1000 --set eval.val_limit=5000
         --set standalone.batch_size=$batch)
  population=20; speed=(--batch 256 --steps 30 --warmup 5)
fi
cli() { "$PY" -m supernet.cli "$@"; }
step() { echo; echo "== $*"; }
seconds() { "$PY" -c 'import time; print(time.time())'; }

"$PY" -c 'import torch; print("torch", torch.__version__, "| cuda", torch.cuda.is_available(),
  torch.cuda.get_device_name() if torch.cuda.is_available() else "")'
echo "data $data, loader $loader, device $device, out $out, smoke $smoke"

step "1/6 train scarlet-s1 one epoch, batch $batch, bf16"
t0=$(seconds)
cli train --device "$device" "${sets[@]}" --set train.epochs=1 --run-dir "$out/supernet"
t1=$(seconds)
"$PY" - "$out/supernet" "$t0" "$t1" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(f"{sys.argv[1]}/metrics.jsonl")]
steps = [r for r in rows if r["type"] == "step"]
cfg = __import__("yaml").safe_load(open(f"{sys.argv[1]}/config.yaml"))
images = len(steps) * cfg["train"]["batch_size"]
secs = float(sys.argv[3]) - float(sys.argv[2])
print(f"supernet train (verb, end to end incl. start-up and data): {len(steps)} steps, {images} images in "
      f"{secs:.1f}s = {images / secs:.1f} images/s; last loss {steps[-1]['loss']:.3f}")
EOF

step "2/6 search two generations (population $population)"
cli search --device "$device" "${sets[@]}" --supernet "$out/supernet" --run-dir "$out/search" \
  --set "search.options={population: $population, iterations: 2, topk: 2}"

step "3/6 export the best arch"
cli export --supernet "$out/supernet" --arch "$out/search/result.json" --out "$out/export"
"$PY" - "$out/export" "$device" <<'EOF'
import sys, torch
from supernet.core.device import resolve_device
from supernet.jobs.export import load_exported
device = resolve_device(sys.argv[2])
model = load_exported(sys.argv[1]).eval().to(device)
x = model.example_input(2).to(device)
with torch.no_grad():
    y = model(x)
print(f"exported model runs on {device}: output {tuple(y.shape)}")
try:
    program = torch.export.load(f"{sys.argv[1]}/model.pt2")
    if device.type != "cpu":
        from torch.export.passes import move_to_device_pass
        program = move_to_device_pass(program, device)
    print(f"model.pt2 runs on {device}: output {tuple(program.module()(x).shape)}")
except FileNotFoundError:
    print("model.pt2 was not written (torch.export failed at export time)")
EOF

step "4/6 retrain the export for a few steps"
cli retrain --device "$device" "${sets[@]}" --supernet "$out/supernet" --arch "$out/search/result.json" \
  --run-dir "$out/retrain" --set standalone.epochs=1 --set standalone.max_steps_per_epoch=10

step "5/6 kill -9 a run mid-epoch, then --resume"
resume_sets=("${sets[@]}" --set train.epochs=2 --set train.max_steps_per_epoch=$steps_resume --set train.checkpoint_every_steps=2)
# python itself in the background (not a shell function's subshell), so that kill -9 hits the trainer
"$PY" -m supernet.cli train --device "$device" "${resume_sets[@]}" --run-dir "$out/killed" > "$out/killed.log" 2>&1 &
pid=$!
ckpt_step() { "$PY" -c 'import sys
from supernet.train.checkpoint import load_checkpoint
try: print(load_checkpoint(sys.argv[1]).meta["global_step"])
except Exception: print(0)' "$out/killed/checkpoints/last.pt"; }
for _ in $(seq 3000); do  # the first mid-epoch checkpoint (step 2) is there: kill
  [ -f "$out/killed/checkpoints/last.pt" ] && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.1
done
kill -9 $pid 2>/dev/null || { echo "gpu_check: the run ended before it could be killed" >&2; cat "$out/killed.log"; exit 1; }
wait $pid 2>/dev/null || true
killed_at=$(ckpt_step)
kill -0 $pid 2>/dev/null && { echo "gpu_check: the killed trainer is still running" >&2; exit 1; }
echo "killed at checkpoint step $killed_at (of $((2 * steps_resume)))"
[ "$killed_at" -lt $((2 * steps_resume)) ] || { echo "gpu_check: run finished before the kill" >&2; exit 1; }
cli train --device "$device" "${resume_sets[@]}" --run-dir "$out/killed" --resume
final=$(ckpt_step)
[ "$final" -eq $((2 * steps_resume)) ] || { echo "gpu_check: resumed run stopped at step $final" >&2; exit 1; }
echo "resumed from step $killed_at to step $final"

step "6/6 images/s: supernet vs stand-alone of the searched arch, fp32 vs bf16"
"$PY" benchmarks/supernet_vs_standalone.py --supernet "$out/supernet" --arch "$out/search/result.json" \
  --device "$device" "${speed[@]}"
echo; echo "gpu_check: all steps passed ($out)"
