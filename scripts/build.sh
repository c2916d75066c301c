#!/usr/bin/env bash
# Configures (once) and builds libquant into build/ (warnings are errors).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
if [ ! -f build/build.ninja ]; then
  meson setup build -Dwerror=true >/dev/null
fi
ninja -C build
