#!/usr/bin/env bash
# Builds and runs every test: the normal build (warnings as errors, CUDA compiled when nvcc is
# present, GPU tests skip without a device), the whole suite again under ASan+UBSan, and each
# libFuzzer harness for a bounded time. Ends with one "N passed, N failed, N skipped" line.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
source scripts/env.sh

# gguf-py (llama.cpp's Python package) for the codec cross-check, pinned, in a venv of its own
# that the test build picks up. Best effort: without PyPI the cross-check skips and says so.
venv=.venv-xcheck
if ! "$venv/bin/python3" -c 'import gguf' 2>/dev/null; then
  rm -rf "$venv"
  if python3 -m venv "$venv" >/dev/null 2>&1 &&
     timeout 300 "$venv/bin/pip" install -q --disable-pip-version-check 'gguf==0.17.1' >/dev/null 2>&1; then
    echo "deps: gguf-py 0.17.1 in $venv"
  else
    rm -rf "$venv"
    echo "deps: gguf-py could not be installed (no PyPI?): its cross-check will skip"
  fi
fi
jobs=$(nproc)
logs=()

echo "== build (gcc, -Werror) and test"
bash scripts/build.sh >/dev/null
meson test -C build --num-processes "$jobs" --print-errorlogs || true
logs+=(build/meson-logs/testlog.json)

echo "== ASan+UBSan build and test"
if [ ! -f build-asan/build.ninja ]; then
  CC=clang meson setup build-asan -Dwerror=true -Dcuda=disabled -Db_sanitize=address,undefined \
    -Db_lundef=false -Dbuildtype=debugoptimized >/dev/null
fi
ninja -C build-asan >/dev/null
meson test -C build-asan --num-processes "$jobs" --print-errorlogs --timeout-multiplier 3 || true
logs+=(build-asan/meson-logs/testlog.json)

echo "== fuzzers (bounded)"
bash scripts/fuzz.sh "${LQ_FUZZ_SECONDS:-20}" || true
[ -f build-fuzz/fuzz-testlog.json ] && logs+=(build-fuzz/fuzz-testlog.json)

python3 scripts/summarize_tests.py "${logs[@]}"
