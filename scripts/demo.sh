#!/usr/bin/env bash
# The main job on a small default: installs what is missing, builds, and inspects a model
# (../shared/models/tinystories-656k, or a small synthetic checkpoint when ../shared is absent).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh >/dev/null
model=../shared/models/tinystories-656k
if [ ! -d "$model" ]; then
  model=build/demo-synthetic
  ./build/tools/lq synth --shape tiny --out "$model"
fi
./build/tools/lq inspect "$model"
