#!/usr/bin/env bash
# The one command a session with a GPU runs: builds libquant with CUDA (-Dcuda=enabled,
# warnings as errors) into build-gpu/ (lq plus the on-demand module build-gpu/liblq_cuda.so),
# runs the 'cuda' and 'cli' test suites (test_cuda_gpu compares every kernel and every device
# adapter with the CPU library; test_device / device_cli the loader and --device), then the GPU
# benchmarks, and prints a summary.
#
#   bash scripts/gpu_check.sh            # everything
#   LQ_GPU_BENCH=0 bash scripts/gpu_check.sh   # build + tests only
#   LQ_GPU_FULL=1 bash scripts/gpu_check.sh    # the whole test suite instead of cuda + cli
#
# Benchmarks (skipped, with the reason, when a tool does not take --device yet):
#   - GPTQ wall time on the synthetic TinyLlama-1.1B-shaped model (lq synth --shape 1.1b), Q4_K_M,
#     --device cuda against --device cpu, when `lq quantize` accepts --device and --method gptq;
#   - runtime prompt processing pp512 and generation tg128 of that model as Q4_K_M
#     (`lq bench -p 512 -n 128`, with --device cuda when `lq bench` accepts it).
# Memory: resident set of `lq inspect` (no module mapped) and of a codec run with --device cuda
# (module, cudart and cuBLAS mapped), from /usr/bin/time -v.
# Scratch files go to ${LQ_GPU_SCRATCH:-/tmp/lq-gpu-check}; the summary also lands in
# build-gpu/gpu_check_summary.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
summary=()
note() { summary+=("$1"); echo ">> $1"; }

if ! command -v nvcc >/dev/null; then
  echo "gpu_check: nvcc not found (install the CUDA toolkit)" >&2
  exit 1
fi
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi

echo "== build (CUDA on, -Werror)"
if [ ! -f build-gpu/build.ninja ]; then
  meson setup build-gpu -Dwerror=true -Dcuda=enabled >/dev/null || { echo "meson setup failed" >&2; exit 1; }
fi
if ninja -C build-gpu -j"$(nproc)" >build-gpu-ninja.log 2>&1; then
  note "build: ok (CUDA enabled, -Werror)"
else
  tail -40 build-gpu-ninja.log
  note "build: FAILED (see build-gpu-ninja.log)"
  printf '%s\n' "${summary[@]}"
  exit 1
fi
lq=build-gpu/tools/lq
"$lq" --version | sed 's/^/   /'
[ -f build-gpu/liblq_cuda.so ] && note "module: build-gpu/liblq_cuda.so" || note "module: MISSING"
if ldd "$lq" | grep -qE 'libcudart|libcublas|libcusolver'; then
  note "lq links CUDA libraries (it should load the module on demand): FAILED"
fi

suites=(--suite cuda --suite cli)
[ "${LQ_GPU_FULL:-0}" = 1 ] && suites=()
echo "== tests ${suites[*]:-(all)}"
if meson test -C build-gpu "${suites[@]}" --print-errorlogs; then
  note "tests (${suites[*]:-all}): passed"
else
  note "tests (${suites[*]:-all}): FAILED"
fi
grep -h -E '^(device 0|gpu |  )' build-gpu/meson-logs/testlog.txt 2>/dev/null | head -40
# device_none skips by design where a device is present; cuda_gpu must not
if python3 - build-gpu/meson-logs/testlog.json <<'EOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
sys.exit(0 if any(r["name"].endswith("cuda_gpu") and r["result"] == "SKIP" for r in rows) else 1)
EOF
then
  note "tests: cuda_gpu was SKIPPED (no device visible?)"
fi

if [ "${LQ_GPU_BENCH:-1}" != 0 ]; then
  scratch=${LQ_GPU_SCRATCH:-/tmp/lq-gpu-check}
  mkdir -p "$scratch"
  shared=${LQ_SHARED_DIR:-../shared}
  calib_text="$shared/text/tinystories-train-sample.txt"

  echo "== resident memory"
  small="$shared/models/stories260k/stories260K.gguf"
  if [ -f "$small" ] && [ -x /usr/bin/time ]; then
    /usr/bin/time -v "$lq" inspect "$small" >/dev/null 2>"$scratch/rss-inspect.txt"
    note "RSS lq inspect: $(grep 'Maximum resident' "$scratch/rss-inspect.txt" | awk '{print $NF}') kB"
    python3 -c "import struct,random;open('$scratch/rows.f32','wb').write(struct.pack('<16384f',*[random.gauss(0,1) for _ in range(16384)]))"
    /usr/bin/time -v "$lq" codec quantize --type q4_K --cols 512 --device cuda "$scratch/rows.f32" \
      "$scratch/rows.bin" >/dev/null 2>"$scratch/rss-codec.txt"
    note "RSS lq codec --device cuda (module loaded): $(grep 'Maximum resident' "$scratch/rss-codec.txt" | awk '{print $NF}') kB"
  fi
  model="$scratch/synth-1.1b"
  echo "== synthetic 1.1B model"
  if [ ! -f "$model/config.json" ]; then
    "$lq" synth --shape 1.1b --out "$model" --type f16 || note "synth: FAILED"
  fi

  echo "== GPTQ time (Q4_K_M)"
  qhelp=$("$lq" quantize --help 2>&1 || true)
  gdevs=(cpu)
  grep -q -- '--device' <<<"$qhelp" && gdevs=(cuda cpu)
  [ "${#gdevs[@]}" = 1 ] && note "gptq: lq quantize has no --device yet (CPU time only)"
  if grep -q -- 'gptq' <<<"$qhelp" && [ -f "$calib_text" ]; then
    for dev in "${gdevs[@]}"; do
      dargs=()
      [ "${#gdevs[@]}" = 2 ] && dargs=(--device "$dev")
      start=$(date +%s.%N)
      if "$lq" quantize "$model" -o "$scratch/gptq-$dev.gguf" --type Q4_K_M --method gptq \
           --calib "$calib_text" --calib-chunks 32 "${dargs[@]}" >"$scratch/gptq-$dev.log" 2>&1; then
        secs=$(python3 -c "import sys; print(round(float(sys.argv[1]) - float(sys.argv[2]), 1))" "$(date +%s.%N)" "$start")
        note "gptq 1.1b Q4_K_M --device $dev: ${secs}s"
      else
        note "gptq --device $dev: FAILED ($(tail -1 "$scratch/gptq-$dev.log"))"
      fi
    done
  else
    note "gptq benchmark: skipped (no --method gptq, or $calib_text absent)"
  fi

  echo "== runtime pp512 / tg128 (Q4_K_M)"
  if [ ! -f "$scratch/q4km.gguf" ]; then
    "$lq" quantize "$model" -o "$scratch/q4km.gguf" --type Q4_K_M >/dev/null 2>&1 ||
      note "quantize Q4_K_M: FAILED"
  fi
  bhelp=$("$lq" bench --help 2>&1 || true)
  devs=(cpu)
  grep -q -- '--device' <<<"$bhelp" && devs=(cuda cpu)
  [ "${#devs[@]}" = 1 ] && note "runtime benchmark: lq bench has no --device yet (CPU figures only)"
  for dev in "${devs[@]}"; do
    args=(-p 512 -n 128 -r 2)
    [ "${#devs[@]}" = 2 ] && args+=(--device "$dev")
    if out=$("$lq" bench "$scratch/q4km.gguf" "${args[@]}" 2>&1); then
      echo "$out"
      note "runtime Q4_K_M $dev: $(grep -E 'pp512|tg128' <<<"$out" | tr -s ' ' | paste -sd ';' -)"
    else
      note "runtime bench $dev: FAILED ($(tail -1 <<<"$out"))"
    fi
  done
fi

echo
echo "== summary"
printf '%s\n' "${summary[@]}" | tee build-gpu/gpu_check_summary.txt
