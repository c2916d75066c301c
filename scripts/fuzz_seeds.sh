#!/usr/bin/env bash
# Copies a seed corpus for harness $1 into directory $2 (from ../shared when present).
set -u
name=$1 dir=$2
shared=../shared
[ -d "$shared" ] || exit 0
case "$name" in
  fuzz_gguf) for f in "$shared"/testvectors/vocab/ggml-vocab-{llama-spm,gpt-2}.gguf; do
      head -c 60000 "$f" > "$dir/$(basename "$f").head"; done ;;
  fuzz_safetensors) for m in tinystories-656k; do
      head -c 60000 "$shared/models/$m/model.safetensors" > "$dir/$m.head"; done ;;
  fuzz_config) for m in tinystories-656k tinystories-4m; do
      cp "$shared/models/$m/config.json" "$dir/$m.json"; done ;;
  fuzz_tokenizer*) cp "$shared/models/tinystories-656k/tokenizer.json" "$dir/" 2>/dev/null ;;
esac
exit 0
