#!/usr/bin/env bash
# bench_gptq.sh — GPTQ's work at the layer shapes of a synthetic Llama 1.1B (TinyLlama: hidden
# 2048, 4 KV heads of 64, ffn 5632) with T = 32 x 512 calibration tokens: Hessian accumulation,
# fp64 factorisation and the column sweep, each as GFLOP/s per core of CPU time next to the
# OpenBLAS sgemm rate measured in the same run (the machine is shared: CPU-time rates stay
# meaningful under time slicing; wall seconds are printed too).
#
#   scripts/bench_gptq.sh [BUILD_DIR] [TOKENS=16384] [THREADS=0] [TYPE=q4_K]
#
# The whole-layer time of the driver (which adds 5 runtime forward passes per layer over the
# calibration tokens) is printed by `lq quantize --method gptq` per layer; for a 1.1B model on
# this 2-core machine that is dominated by the runtime's fp32 products. To time it:
#   lq synth --shape 1.1b /tmp/synth-1.1b && lq quantize /tmp/synth-1.1b -o /tmp/q.gguf \
#     --type Q4_K_M --method gptq --calib ../shared/text/tinystories-train-sample.txt --calib-chunks 32
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
tokens=${2:-16384}
threads=${3:-0}
type=${4:-q4_K}
bin=$build/tests/passes/bench_gptq
[ -x "$bin" ] || { echo "build first: ninja -C $build tests/passes/bench_gptq" >&2; exit 2; }
"$bin" "$tokens" "$threads" "$type" 2048 5632 256 | tee "$build/bench_gptq.log"
