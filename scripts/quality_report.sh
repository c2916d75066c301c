#!/usr/bin/env bash
# quality_report.sh — quality of every `lq quantize` preset on one model: size, bits per weight,
# perplexity and KL divergence against the F16 model, with and without an importance matrix
# (from `lq calibrate` on a calibration text). Writes report.md, report.json and kld_vs_bpw.png.
#
# usage: scripts/quality_report.sh [--model DIR|GGUF] [--out DIR] [--ctx N] [--chunks N]
#                                  [--calib-chunks N] [--types "Q4_0 Q4_K_M ..."] [-t N]
# Defaults: the shared tinystories-4m, evaluation on tinystories-valid.txt (ctx 256, 40 chunks),
# calibration on tinystories-train-sample.txt (ctx 256, 100 chunks). Needs a built `lq` (LQ_BIN
# or build/tools/lq), python3 and gnuplot (the plot is skipped without it).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
shared=${LQ_SHARED_DIR:-$root/../shared}
lq=${LQ_BIN:-$root/build/tools/lq}
model=$shared/models/tinystories-4m
out=$root/build/quality-report
ctx=256
chunks=40
calib_chunks=100
threads=$(nproc)
types="Q2_K Q3_K_S Q3_K_M Q3_K_L IQ4_XS IQ4_NL Q4_0 Q4_1 Q4_K_S Q4_K_M Q5_0 Q5_1 Q5_K_S Q5_K_M Q6_K Q8_0"

while [ $# -gt 0 ]; do
  case "$1" in
    --model) model=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --ctx) ctx=$2; shift 2 ;;
    --chunks) chunks=$2; shift 2 ;;
    --calib-chunks) calib_chunks=$2; shift 2 ;;
    --types) types=$2; shift 2 ;;
    -t) threads=$2; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "quality_report.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

valid=$shared/text/tinystories-valid.txt
train=$shared/text/tinystories-train-sample.txt
[ -x "$lq" ] || { echo "quality_report.sh: no lq binary at $lq (set LQ_BIN)" >&2; exit 2; }
mkdir -p "$out/runs"
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

f16=$out/runs/F16.gguf
log "F16 reference from $model"
"$lq" quantize "$model" -o "$f16" --type F16 -q -t "$threads" --json "$out/runs/F16.quant.json"
"$lq" ppl "$f16" -f "$valid" -c "$ctx" --chunks "$chunks" -t "$threads" \
  --kld-base "$out/runs/base.kld" --json "$out/runs/F16.ppl.json" > /dev/null 2>&1

imatrix=$out/runs/imatrix.gguf
if "$lq" calibrate --help > /dev/null 2>&1; then
  log "calibrating on $(basename "$train") ($calib_chunks chunks of $ctx)"
  "$lq" calibrate "$f16" -f "$train" -o "$imatrix" -c "$ctx" --chunks "$calib_chunks" -t "$threads" \
    --json "$out/runs/calibrate.json" > /dev/null 2>&1
else
  log "no 'lq calibrate' in this build: imatrix rows are skipped"
  imatrix=
fi

run_one() { # type mode [extra quantize args]
  local type=$1 mode=$2; shift 2
  local q=$out/runs/$type.$mode.gguf
  "$lq" quantize "$f16" -o "$q" --type "$type" -q -t "$threads" --json "$out/runs/$type.$mode.quant.json" "$@"
  "$lq" ppl "$q" --kld "$out/runs/base.kld" -t "$threads" --json "$out/runs/$type.$mode.ppl.json" > /dev/null 2>&1
  rm -f "$q"
}

for type in $types; do
  log "$type"
  run_one "$type" rtn
  # Q8_0 ignores importance (as in llama.cpp): its imatrix row would repeat the RTN one
  if [ -n "$imatrix" ] && [ "$type" != Q8_0 ]; then run_one "$type" imatrix --imatrix "$imatrix"; fi
done

python3 "$root/scripts/quality_report.py" "$out" --model "$model" --ctx "$ctx" --chunks "$chunks" \
  --calib-chunks "$calib_chunks" --types "$types"
if command -v gnuplot > /dev/null; then
  gnuplot "$out/kld_vs_bpw.gp" && log "plot: $out/kld_vs_bpw.png"
fi
log "report: $out/report.md, $out/report.json"
