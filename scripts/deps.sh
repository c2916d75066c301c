#!/usr/bin/env bash
# Installs the Debian packages libquant needs to build and test (only the missing ones).
# Run as root on Debian 12. CUDA is optional: when nvcc is present it is used.
set -euo pipefail
pkgs=(build-essential pkg-config meson ninja-build clang libclang-rt-dev
      libjansson-dev libpcre2-dev zlib1g-dev libopenblas-dev liblapacke-dev
      python3 python3-venv gnuplot-nox)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
