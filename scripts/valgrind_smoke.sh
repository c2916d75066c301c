#!/usr/bin/env bash
# valgrind_smoke.sh — every `lq` subcommand once under valgrind (memcheck) on tiny inputs from
# ../shared: any invalid read/write, use of uninitialised memory, bad free or definite leak makes
# valgrind exit 99 and the script fail. Valgrind's CPU has no AVX-512, so the AVX2 kernels run.
# Meant for CI (about a minute on 2 cores).
#   scripts/valgrind_smoke.sh [BUILD_DIR]       (default: build; a plain, non-sanitized build)
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
lq=$build/tools/lq
shared=../shared
command -v valgrind >/dev/null || { echo "valgrind is not installed"; exit 1; }
[ -x "$lq" ] || { echo "$lq missing: build first"; exit 1; }
[ -d "$shared/models" ] || { echo "SKIP: ../shared is absent"; exit 0; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
m656=$shared/models/tinystories-656k
m260=$shared/models/stories260k/stories260K.gguf
head -c 4000 "$shared/text/tinystories-valid.txt" >"$tmp/text.txt"
python3 -c 'import struct,sys; sys.stdout.buffer.write(struct.pack("<512f", *[((i*37)%101-50)/40.0 for i in range(512)]))' \
    >"$tmp/rows.f32"

# lq re-executes itself to pick OpenBLAS's kernels when this variable is unset (tools/lq.c);
# the re-executed process would run outside valgrind, so set it here.
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell}
pass=0 failed=0
vg() { # NAME ARGS...: lq ARGS under memcheck; exit 0 and a clean report required
    local name=$1
    shift
    local t0=$SECONDS
    valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
        --show-leak-kinds=definite "$lq" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
    local rc=$?
    if [ $rc -eq 0 ]; then
        pass=$((pass + 1))
        printf '  %-22s ok   (%d s)\n' "$name" $((SECONDS - t0))
    else
        failed=$((failed + 1))
        printf '  %-22s FAIL (exit %d)\n' "$name" $rc
        head -n 40 "$tmp/$name.err"
    fi
}

echo "valgrind smoke on $lq"
vg help --help
vg version --version
vg inspect-hf inspect "$m656"
vg inspect-gguf inspect "$m260" --json
vg tokenize tokenize "$m656" --text "Once upon a time, there was a tiny model." --pieces
vg synth synth --out "$tmp/synth.gguf" --shape tiny --type q4_0 -t 2
vg codec-quantize codec quantize --type q4_K --cols 256 --threads 2 "$tmp/rows.f32" "$tmp/rows.q4k"
vg codec-dequantize codec dequantize --type q4_K --cols 256 "$tmp/rows.q4k" "$tmp/rows.back.f32"
vg calibrate-gguf calibrate "$m260" -f "$tmp/text.txt" -c 32 --chunks 2 -t 2 -o "$tmp/s260.imatrix" --json "$tmp/c.json"
vg calibrate-hf calibrate "$m656" -f "$tmp/text.txt" -c 32 --chunks 2 -t 2 -o "$tmp/s.imatrix"
vg quantize quantize "$m656" -o "$tmp/q.gguf" --type Q4_K_M --imatrix "$tmp/s.imatrix" -t 2 -q --json "$tmp/q.json"
vg ppl ppl "$tmp/q.gguf" -f "$tmp/text.txt" -c 64 --chunks 1 -t 2
vg bench bench "$m260" -p 8 -n 2 -r 1 -t 2
vg bench-codecs bench codecs --types q4_0,q4_K --weights-mib 1 --passes 1 -t 2
echo "valgrind smoke: $pass passed, $failed failed"
[ $failed -eq 0 ]
