#!/usr/bin/env bash
# bench_gptq.sh — GPTQ's work at the layer shapes of the synthetic Llama 1.1B (`lq synth --shape
# 1.1b`: hidden 2048, 8 KV heads of 64, ffn 8192) with T = 32 x 512 calibration tokens: Hessian
# accumulation (fp32 products), factorisation (fp64) and the column sweep (fp32), each as GFLOP/s
# per core of CPU time and as a fraction of the OpenBLAS GEMM rate of the same precision (sgemm
# for fp32 work, dgemm for fp64) measured in the same run at the same thread count (the machine
# is shared: CPU-time rates stay meaningful under time slicing; wall seconds are printed too).
#
#   scripts/bench_gptq.sh [BUILD_DIR] [TOKENS=16384] [THREADS=0] [TYPE=q4_K]
#
# The whole-layer time of the driver (which adds 5 runtime forward passes per layer over the
# calibration tokens) is printed by `lq quantize --method gptq` per layer, with the same per-phase
# rates against a GEMM probe of the same run; for a 1.1B model on this 2-core machine the layer
# time is dominated by the runtime's forward passes. To time it:
#   lq synth --shape 1.1b --type f16 --out /tmp/s.gguf && lq quantize /tmp/s.gguf -o /tmp/q.gguf \
#     --type Q4_K_M --method gptq --calib ../shared/text/tinystories-train-sample.txt \
#     --calib-chunks 32 --chunk-size 512 -t 2 --json /tmp/q.json
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
tokens=${2:-16384}
threads=${3:-0}
type=${4:-q4_K}
bin=$build/tests/passes/bench_gptq
# OpenBLAS 0.3.21 does not know this machine's CPU (family 6 model 207) and falls back to its
# SSE3 "Prescott" kernels (~3x slower GEMM); name the kernel set unless the caller did.
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
    if grep -qw avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX
    elif grep -qw avx2 /proc/cpuinfo; then export OPENBLAS_CORETYPE=Haswell; fi
fi
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}"
[ -x "$bin" ] || { echo "build first: ninja -C $build tests/passes/bench_gptq" >&2; exit 2; }
"$bin" "$tokens" "$threads" "$type" 2048 8192 512 | tee "$build/bench_gptq.log"
