#!/usr/bin/env bash
# Builds the libFuzzer harnesses (clang) and runs each for SECONDS on a seed corpus taken from
# ../shared. Writes build-fuzz/fuzz-testlog.json (one line per harness) for the test summary.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
if [ ! -f build-fuzz/build.ninja ]; then
  CC=clang meson setup build-fuzz -Dfuzz=true -Dcuda=disabled -Dbuildtype=debugoptimized \
    -Db_sanitize=address,undefined -Db_lundef=false >/dev/null || exit 1
fi
ninja -C build-fuzz >/dev/null || exit 1
log=build-fuzz/fuzz-testlog.json
: > "$log"
shopt -s nullglob
for h in build-fuzz/tests/fuzz/fuzz_*; do
  [ -f "$h" ] && [ -x "$h" ] || continue
  name=$(basename "$h")
  corpus=build-fuzz/corpus-$name
  mkdir -p "$corpus"
  bash scripts/fuzz_seeds.sh "$name" "$corpus"
  # A fixed seed keeps CI runs comparable; longer local runs (LQ_FUZZ_SEED=0) explore more.
  if "$h" -seed="${LQ_FUZZ_SEED:-1}" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 "$corpus" \
       >"build-fuzz/$name.log" 2>&1; then
    result=OK
  else
    result=FAIL
    tail -n 30 "build-fuzz/$name.log"
  fi
  echo "fuzz $name: $result ($seconds s)"
  echo "{\"name\": \"$name\", \"result\": \"$result\"}" >> "$log"
done
