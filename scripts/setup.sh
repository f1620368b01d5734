#!/usr/bin/env bash
# Idempotent set-up: a virtual environment in .venv with supernet installed, and Fashion-MNIST.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.supernet-installed
want=$(cat pyproject.toml | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  # torch==2.13.0 is the CPU build that these machines carry; pip takes it from the local wheel.
  .venv/bin/python -m pip install --quiet torch==2.13.0
  # the extras too (onnx, plots, tensorboard): the suite tests them
  .venv/bin/python -m pip install --quiet -e ".[test,all]"
  echo "$want" > "$stamp"
fi

FMNIST=/usr/share/datasets/fashion-mnist
if [ ! -f "$FMNIST/train-images-idx3-ubyte.gz" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Fashion-MNIST (Debian package dataset-fashion-mnist)..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    echo "Fashion-MNIST is missing from $FMNIST: install the Debian package dataset-fashion-mnist (as root)" >&2
    exit 1
  fi
fi
