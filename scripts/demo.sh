#!/usr/bin/env bash
# The main job on a small default: installs what is missing, builds, quantizes a model to a
# llama.cpp GGUF and measures it. With ../shared: tinystories-4m (HF, F16) → Q4_K_M, then
# perplexity of both on 20 chunks of the TinyStories validation text. Without ../shared: a small
# synthetic checkpoint → Q4_0, then `lq inspect` of the result.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh >/dev/null
lq=./build/tools/lq
out=build/demo
mkdir -p "$out"
model=../shared/models/tinystories-4m
text=../shared/text/tinystories-valid.txt
if [ -d "$model" ] && [ -f "$text" ]; then
  "$lq" quantize "$model" -o "$out/tinystories-4m-Q4_K_M.gguf" --type Q4_K_M --json "$out/quantize.json"
  echo "== perplexity, F16 checkpoint"
  "$lq" ppl "$model" -f "$text" -c 256 --chunks 20 | tail -n 1
  echo "== perplexity, Q4_K_M GGUF ($out/tinystories-4m-Q4_K_M.gguf)"
  "$lq" ppl "$out/tinystories-4m-Q4_K_M.gguf" -f "$text" -c 256 --chunks 20 | tail -n 1
else
  echo "../shared is absent: using a synthetic checkpoint"
  "$lq" synth --shape tiny --out "$out/synthetic"
  "$lq" quantize "$out/synthetic" -o "$out/synthetic-Q4_0.gguf" --type Q4_0
  "$lq" inspect "$out/synthetic-Q4_0.gguf"
fi
