#!/usr/bin/env bash
# The main job on Fashion-MNIST: train a supernet, search under a MACs budget, export, retrain, report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
run_dir=${1:-runs/demo-$(date +%Y%m%d-%H%M%S)}
exec .venv/bin/supernet pipeline --config configs/fashion-mnist-demo.yaml --run-dir "$run_dir"
