#!/usr/bin/env bash
# test_device.sh — `--device` of the tools that compute (lq codec, lq calibrate), end to end:
#   - lq does not link CUDA (the backend is a module loaded on demand): ldd shows no cudart,
#     cuBLAS or cuSOLVER;
#   - without a device: --device cuda exits 4 with exactly one stderr line; --device auto runs on
#     the CPU and says so on stderr; --device bogus exits 2; cpu and auto write the same bytes;
#   - LQ_CUDA_MODULE naming a missing file / a module of another ABI: the reason is printed;
#   - CUDA builds: the module is found beside the build of lq (not for a copy elsewhere);
#   - LQ_CUDA_MODULE = the emulated test device (tests/cuda/fake_module.c): --device cuda and
#     auto select it and the tools' device paths write the CPU's bytes.
# Env: LQ_BIN, LQ_SHARED_DIR, LQ_TEST_TMPDIR, LQ_FAKE_CUDA_ABI, LQ_FAKE_CUDA_EMULATED,
# LQ_FAKE_DRIVER_DIR (a stand-in libcuda.so.1).
set -u
LQ="${LQ_BIN:?LQ_BIN must point at the lq binary}"
SHARED="${LQ_SHARED_DIR:-}"
TMP="${LQ_TEST_TMPDIR:-/tmp}/lq-test-cli-device-$$"
mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
command -v python3 >/dev/null || { echo "SKIP: python3 is needed to write the test rows"; exit 77; }

checks=0
failures=0
fail() { failures=$((failures + 1)); echo "FAIL: $*" >&2; }
check() { checks=$((checks + 1)); }

# run NAME EXPECTED_CODE ARGS...: runs lq, keeps stdout/stderr in $TMP/NAME.{out,err}.
run() {
    local name=$1 want=$2
    shift 2
    "$LQ" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
    local got=$?
    check
    [ "$got" -eq "$want" ] || fail "$name: exit $got, want $want: $(head -c 400 "$TMP/$name.err")"
}
# stderr_has NAME TEXT: TEXT (fixed string) is on NAME's stderr
stderr_has() {
    check
    grep -qF -- "$2" "$TMP/$1.err" || fail "$1: stderr lacks '$2': $(cat "$TMP/$1.err")"
}
one_line() {
    check
    [ "$(wc -l <"$TMP/$1.err")" -eq 1 ] || fail "$1: stderr is not one line: $(cat "$TMP/$1.err")"
}
same() {
    check
    cmp -s "$1" "$2" || fail "$1 and $2 differ"
}

# --- lq itself maps no CUDA library ----------------------------------------------------------
check
if ldd "$LQ" | grep -E 'libcudart|libcublas|libcusolver'; then fail "lq links CUDA libraries"; fi

# --- test rows: 8 rows of 512 float32 with a few outliers -------------------------------------
python3 - "$TMP/rows.f32" <<'EOF'
import random, struct, sys
random.seed(7)
vals = [random.gauss(0, 0.05) * (10 if random.random() < 0.01 else 1) for _ in range(8 * 512)]
open(sys.argv[1], "wb").write(struct.pack("<%df" % len(vals), *vals))
EOF

CODEC=(codec quantize --type q4_K --cols 512)
unset LQ_CUDA_MODULE
run codec_cpu 0 "${CODEC[@]}" --device cpu "$TMP/rows.f32" "$TMP/cpu.bin"
stderr_has codec_cpu "lq codec: device: cpu (requested)"
run codec_auto 0 "${CODEC[@]}" --device auto "$TMP/rows.f32" "$TMP/auto.bin"
run codec_default 0 "${CODEC[@]}" "$TMP/rows.f32" "$TMP/default.bin"
if grep -qF "device: cuda:" "$TMP/codec_auto.err"; then
    echo "note: a CUDA device is present: the no-device checks are skipped"
    same "$TMP/cpu.bin" "$TMP/auto.bin"
else
    stderr_has codec_auto "lq codec: device: cpu (auto: "
    one_line codec_auto
    same "$TMP/cpu.bin" "$TMP/auto.bin"
    same "$TMP/cpu.bin" "$TMP/default.bin"
    check
    [ ! -s "$TMP/codec_default.err" ] || fail "codec_default: a CPU run without --device printed: $(cat "$TMP/codec_default.err")"
    run codec_cuda 4 "${CODEC[@]}" --device cuda "$TMP/rows.f32" "$TMP/cuda.bin"
    one_line codec_cuda
    stderr_has codec_cuda "lq codec: --device cuda: "
    check
    [ ! -e "$TMP/cuda.bin" ] || fail "codec_cuda: wrote an output"
    run codec_cuda1 4 "${CODEC[@]}" --device cuda:1 "$TMP/rows.f32" "$TMP/cuda.bin"
    one_line codec_cuda1
fi
run codec_bogus 2 "${CODEC[@]}" --device bogus "$TMP/rows.f32" "$TMP/bogus.bin"
one_line codec_bogus
stderr_has codec_bogus "'bogus'"
run codec_novalue 2 "${CODEC[@]}" "$TMP/rows.f32" "$TMP/x.bin" --device
run codec_deq_cpu 0 codec dequantize --type q4_K --cols 512 --device cpu "$TMP/cpu.bin" "$TMP/cpu.f32"
run codec_deq_auto 0 codec dequantize --type q4_K --cols 512 --device auto "$TMP/cpu.bin" "$TMP/auto.f32"
same "$TMP/cpu.f32" "$TMP/auto.f32"

# --- the module's reasons --------------------------------------------------------------------
LQ_CUDA_MODULE=/nonexistent/liblq_cuda.so run missing_auto 0 "${CODEC[@]}" --device auto "$TMP/rows.f32" "$TMP/m.bin"
stderr_has missing_auto "device: cpu (auto: CUDA backend: /nonexistent/liblq_cuda.so: cannot open shared object file"
same "$TMP/cpu.bin" "$TMP/m.bin"
LQ_CUDA_MODULE=/nonexistent/liblq_cuda.so run missing_cuda 4 "${CODEC[@]}" --device cuda "$TMP/rows.f32" "$TMP/m.bin"
one_line missing_cuda
stderr_has missing_cuda "lq codec: --device cuda: CUDA backend: /nonexistent/liblq_cuda.so"
if [ -n "${LQ_FAKE_CUDA_ABI:-}" ]; then
    LQ_CUDA_MODULE="$LQ_FAKE_CUDA_ABI" run abi_cuda 4 "${CODEC[@]}" --device cuda "$TMP/rows.f32" "$TMP/a.bin"
    one_line abi_cuda
    stderr_has abi_cuda "CUDA backend: $LQ_FAKE_CUDA_ABI: ABI 999, expected "
fi

# --- the module search (CUDA builds): with a stand-in driver reporting one device, lq finds the
# module beside its build (cudart then rejects the stand-in: "no CUDA device (cudaGetDeviceCount:
# ...)"); a copy of lq outside the build directory looks in the install path instead.
if "$LQ" --version | grep -q 'cuda=yes' && [ -n "${LQ_FAKE_DRIVER_DIR:-}" ]; then
    LD_LIBRARY_PATH="$LQ_FAKE_DRIVER_DIR" run search_build 0 "${CODEC[@]}" --device auto "$TMP/rows.f32" "$TMP/s.bin"
    stderr_has search_build "device: cpu (auto: no CUDA device (cudaGetDeviceCount: "
    outside=$(mktemp -d /tmp/lq-device-test.XXXXXX) # not under the build directory
    cp "$LQ" "$outside/lq"
    LD_LIBRARY_PATH="$LQ_FAKE_DRIVER_DIR" "$outside/lq" "${CODEC[@]}" --device auto "$TMP/rows.f32" "$TMP/s.bin" \
        2>"$TMP/search_install.err" >/dev/null
    rm -rf "$outside"
    stderr_has search_install "liblq_cuda.so not found ("
fi

# --- the emulated device: the tools' device paths --------------------------------------------
if [ -n "${LQ_FAKE_CUDA_EMULATED:-}" ]; then
    export LQ_CUDA_MODULE="$LQ_FAKE_CUDA_EMULATED"
    run emu_auto 0 "${CODEC[@]}" "$TMP/rows.f32" "$TMP/emu_auto.bin"
    stderr_has emu_auto "lq codec: device: cuda:0 (emulated device (test module); auto-selected, 1 CUDA device present)"
    run emu_cuda 0 "${CODEC[@]}" --device cuda:0 "$TMP/rows.f32" "$TMP/emu.bin"
    same "$TMP/cpu.bin" "$TMP/emu.bin"
    same "$TMP/cpu.bin" "$TMP/emu_auto.bin"
    run emu_deq 0 codec dequantize --type q4_K --cols 512 --device cuda "$TMP/cpu.bin" "$TMP/emu.f32"
    same "$TMP/cpu.f32" "$TMP/emu.f32"
    run emu_cpu 0 "${CODEC[@]}" --device cpu "$TMP/rows.f32" "$TMP/emu_cpu.bin"
    stderr_has emu_cpu "device: cpu (requested)"
    unset LQ_CUDA_MODULE
fi

# --- lq calibrate ----------------------------------------------------------------------------
MODEL="$SHARED/models/stories260k/stories260K.gguf"
TEXT="$SHARED/text/tinystories-train-sample.txt"
if [ -n "$SHARED" ] && [ -f "$MODEL" ] && [ -f "$TEXT" ]; then
    CAL=(calibrate "$MODEL" -f "$TEXT" -c 64 --chunks 2 -t 1)
    run cal_cpu 0 "${CAL[@]}" -o "$TMP/cal_cpu.gguf" --device cpu
    stderr_has cal_cpu "lq calibrate: device: cpu (requested)"
    run cal_auto 0 "${CAL[@]}" -o "$TMP/cal_auto.gguf" --device auto
    same "$TMP/cal_cpu.gguf" "$TMP/cal_auto.gguf"
    if ! grep -qF "device: cuda:" "$TMP/cal_auto.err"; then
        stderr_has cal_auto "lq calibrate: device: cpu (auto: "
        run cal_cuda 4 "${CAL[@]}" -o "$TMP/cal_cuda.gguf" --device cuda
        one_line cal_cuda
        stderr_has cal_cuda "lq calibrate: --device cuda: "
        check
        [ ! -e "$TMP/cal_cuda.gguf" ] || fail "cal_cuda: wrote an output"
    fi
    run cal_bogus 2 "${CAL[@]}" -o "$TMP/cal_bogus.gguf" --device gpu
    if [ -n "${LQ_FAKE_CUDA_EMULATED:-}" ]; then
        LQ_CUDA_MODULE="$LQ_FAKE_CUDA_EMULATED" run cal_emu 0 "${CAL[@]}" -o "$TMP/cal_emu.gguf" --device cuda
        stderr_has cal_emu "lq calibrate: device: cuda:0 (emulated device"
        same "$TMP/cal_cpu.gguf" "$TMP/cal_emu.gguf"
    fi
else
    echo "note: $MODEL or $TEXT absent: lq calibrate --device not checked"
fi

echo "$checks checks, $failures failures"
[ "$failures" -eq 0 ]
