#!/usr/bin/env bash
# passes_quality.sh — quality gates of the calibrated passes (GPTQ, AWQ, AWQ+GPTQ) against RTN
# and imatrix-RTN: KL divergence vs the unquantized model on held-out text.
#
#   scripts/passes_quality.sh [BUILD_DIR] [--quick]
#
# tinystories-4m at Q2_K, pure Q3_K, pure Q4_K, Q3_K_M, Q4_K_M, Q4_0 (calibration on
# tinystories-train-sample.txt, evaluation on tinystories-valid.txt), then tinystories-656k at
# Q4_0 Q4_1 Q5_0 IQ4_NL. Calibration N_SEQ x N_TOK tokens (default 32 x 512; the GPTQ reference
# uses 128 x 512 — set N_SEQ=128 for that, about 4x slower), evaluation N_EVAL chunks of 512.
# Exit status 1 when a verdict (gptq < rtn, gptq < imatrix, awq+gptq <= gptq) is lost; every
# line is also written to passes_quality.log in the build directory.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
shared=${LQ_SHARED_DIR:-$root/../shared}
n_seq=${N_SEQ:-32}
n_tok=${N_TOK:-512}
n_eval=${N_EVAL:-20}
bin=$build/tests/passes/passes_quality
# OpenBLAS's generic kernels on CPUs it does not recognise are ~3x slower (see bench_gptq.sh)
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
    if grep -qw avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX
    elif grep -qw avx2 /proc/cpuinfo; then export OPENBLAS_CORETYPE=Haswell; fi
fi
[ -x "$bin" ] || { echo "build first: ninja -C $build tests/passes/passes_quality" >&2; exit 2; }
log=$build/passes_quality.log
: > "$log"
status=0
# METHODS: which columns (awq alone is slow: its clip search; default: the gated ones)
methods=${METHODS:-rtn imatrix gptq awq+gptq}
run() {
    echo "== $* -- $methods" | tee -a "$log"
    LQ_TEST_TMPDIR=$build "$bin" "$@" -- $methods 2>&1 | tee -a "$log" || status=1
}
presets_4m="Q2_K Q3_K_S:pure Q4_K_S:pure Q3_K_M Q4_K_M Q4_0"  # :pure = every matrix Q3_K / Q4_K
presets_656k="Q4_0 Q4_1 Q5_0 IQ4_NL"
if [ "${2:-}" = "--quick" ]; then presets_4m="Q4_K_M"; n_seq=8; n_eval=4; fi
run "$shared/models/tinystories-4m" "$shared/text/tinystories-train-sample.txt" \
    "$shared/text/tinystories-valid.txt" "$n_seq" "$n_tok" "$n_eval" $presets_4m
run "$shared/models/tinystories-656k" "$shared/text/tinystories-train-sample.txt" \
    "$shared/text/tinystories-valid.txt" "$n_seq" "$n_tok" "$n_eval" $presets_656k
exit $status
