#!/usr/bin/env bash
# bench_memory.sh — peak memory of `lq inspect` and `lq quantize` on a Llama-70B-shaped sharded
# BF16 checkpoint (hidden 8192, 80 layers, ffn 28672, 64/8 heads, vocab 128256: 70.6e9 weights,
# 141 GB in 30 shards + index + config.json) written by tests/reliability/gen_ckpt as SPARSE files:
# real safetensors headers and offsets, the weights read as zeros and take no disk.
#
# inspect runs on the full 80-layer checkpoint. Quantizing 141 GB of weights takes hours on a
# small machine, so quantize runs on the same width with fewer layers (LAYERS, default 2: the
# 70B embedding and output head, 2.1 GB each, plus 2 full 70B layers = 3.8e9 weights, 7.6 GB);
# the output GGUF is real data on disk (Q4_0: ~2.4 GB for 2 layers; free space is checked).
# Prints one line per run (peak RSS from /usr/bin/time -v, wall time, sizes) and fails when a
# peak RSS exceeds BOUND_MB (default 1024).
#
#   scripts/bench_memory.sh [BUILD_DIR] [LAYERS] [TYPE]     env: BENCH_DIR (scratch), BOUND_MB
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
layers=${2:-2}
type=${3:-Q4_0}
bound_mb=${BOUND_MB:-1024}
lq=$build/tools/lq
gen=$build/tests/reliability/gen_ckpt
[ -x "$lq" ] && [ -x "$gen" ] || { echo "build $build first (needs tools/lq and tests/reliability/gen_ckpt)"; exit 1; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (GNU time)"; exit 1; }
work=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/lq-bench-memory.XXXXXX")}
mkdir -p "$work"
trap 'rm -rf "$work/full" "$work/few" "$work/out.gguf"' EXIT

peak_kb() { sed -n 's/.*Maximum resident set size (kbytes): //p' "$1"; }
wall() { sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$1"; }
apparent() { du -sb --apparent-size "$1" | cut -f1; }
ondisk() { du -s --block-size=1 "$1" | cut -f1; }
status=0
report() { # NAME LOG MODEL_BYTES
    local kb; kb=$(peak_kb "$2")
    printf '%-34s peak RSS %7.1f MiB   wall %9s   model %7.2f GB (%.1fx the peak RSS)\n' "$1" \
        "$(echo "$kb / 1024" | bc -l)" "$(wall "$2")" "$(echo "$3 / 1000000000" | bc -l)" "$(echo "$3 / ($kb * 1024)" | bc -l)"
    if [ "$kb" -gt $((bound_mb * 1024)) ]; then
        echo "  FAIL: peak RSS above the bound of $bound_mb MiB"
        status=1
    fi
}

"$gen" "$work/full" --shape 70b
echo "  apparent size $(apparent "$work/full") bytes, on disk $(ondisk "$work/full") bytes"
/usr/bin/time -v "$lq" inspect "$work/full" >/dev/null 2>"$work/inspect.log" || { cat "$work/inspect.log"; exit 1; }
report "lq inspect (80 layers)" "$work/inspect.log" "$(apparent "$work/full")"
/usr/bin/time -v "$lq" inspect "$work/full" --json >/dev/null 2>"$work/inspect-json.log"
report "lq inspect --json (80 layers)" "$work/inspect-json.log" "$(apparent "$work/full")"
rm -rf "$work/full"

"$gen" "$work/few" --shape 70b --layers "$layers"
size=$(apparent "$work/few")
need=$((size / 3))
free=$(df -B1 --output=avail "$work" | tail -1)
if [ "$free" -lt $((need + (2 << 30))) ]; then
    echo "only $free bytes free in $work; quantizing needs about $need: use fewer layers"
    exit 1
fi
/usr/bin/time -v "$lq" quantize "$work/few" -o "$work/out.gguf" --type "$type" --no-error -q \
    2>"$work/quantize.log" || { cat "$work/quantize.log"; exit 1; }
report "lq quantize $type ($layers layers)" "$work/quantize.log" "$size"
echo "  output $(stat -c %s "$work/out.gguf") bytes"
exit $status
