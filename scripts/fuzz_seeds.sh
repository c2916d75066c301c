#!/usr/bin/env bash
# Writes a seed corpus for harness $1 into directory $2, from ../shared when present. Seeds stay
# under fuzz.sh's -max_len (64 KiB) so libFuzzer does not cut them. Some seeds are generated with
# the build's own tools ($LQ_BUILD, default build-fuzz, else build): gen_ckpt (a small complete safetensors
# file) and lq calibrate (GGUF and legacy .dat statistics of stories260K).
set -u
name=$1 dir=$2
shared=../shared
build=${LQ_BUILD:-build-fuzz}
[ -d "$shared" ] || exit 0
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# tool REL_PATH: the first executable build output among $build and the plain build.
tool() {
    local b
    for b in "$build" build; do
        [ -x "$b/$1" ] && { echo "$b/$1"; return 0; }
    done
    return 1
}

# byte-prefixed FILE BYTE OUT: OUT = one selector byte (octal escape) + FILE (harnesses that read
# their options from the first byte).
byte_prefixed() { { printf "$2"; cat "$1"; } >"$3"; }

# A small SentencePiece-style tokenizer.json cut from tinystories-656k's (the first 300 ids and the
# merges among them), and a byte-level one (GPT-2 byte map, a Split regex, a few merges).
small_tokenizers() {
    python3 - "$shared/models/tinystories-656k/tokenizer.json" "$tmp" <<'EOF'
import json, sys
src, out = sys.argv[1:3]
t = json.load(open(src))
keep = {k: v for k, v in t["model"]["vocab"].items() if v < 300}
t["model"]["vocab"] = keep
t["model"]["merges"] = [m for m in t["model"]["merges"]
                        if all(p in keep for p in m.split(" ")) and m.replace(" ", "") in keep]
json.dump(t, open(f"{out}/spm.json", "w"), ensure_ascii=False)
bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
cs, n = bs[:], 0
for b in range(256):
    if b not in bs:
        bs.append(b); cs.append(256 + n); n += 1
chars = [chr(c) for c in cs]
vocab = {c: i for i, c in enumerate(chars)}
merges = []
for a, b in [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("Ġ", "a")]:
    merges.append(f"{a} {b}"); vocab.setdefault(a + b, len(vocab))
vocab["<|endoftext|>"] = len(vocab)
bl = {"version": "1.0", "added_tokens": [{"id": vocab["<|endoftext|>"], "content": "<|endoftext|>",
      "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}],
      "normalizer": None,
      "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
          {"type": "Split", "pattern": {"Regex": "'s|'t| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+"},
           "behavior": "Isolated", "invert": False},
          {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
      "post_processor": None, "decoder": {"type": "ByteLevel"},
      "model": {"type": "BPE", "dropout": None, "unk_token": None, "byte_fallback": False,
                "vocab": vocab, "merges": merges}}
json.dump(bl, open(f"{out}/bytelevel.json", "w"), ensure_ascii=False)
EOF
}

case "$name" in
  fuzz_gguf) for f in "$shared"/testvectors/vocab/ggml-vocab-{llama-spm,gpt-2}.gguf; do
      head -c 60000 "$f" > "$dir/$(basename "$f").head"; done ;;
  fuzz_safetensors)
      head -c 60000 "$shared/models/tinystories-656k/model.safetensors" > "$dir/tinystories-656k.head"
      # complete files: every tensor's bytes present, offsets consistent (F32, F16, BF16)
      if gen=$(tool tests/reliability/gen_ckpt); then
          for dt in f32 f16 bf16; do
              "$gen" "$tmp/st-$dt" --vocab 32 --hidden 16 --ffn 32 --heads 2 \
                  --kv-heads 1 --layers 1 --dtype $dt >/dev/null &&
                  cp "$tmp/st-$dt/model.safetensors" "$dir/complete-$dt.safetensors"
          done
      fi ;;
  fuzz_config) for m in tinystories-656k tinystories-4m; do
      cp "$shared/models/$m/config.json" "$dir/$m.json"; done ;;
  fuzz_tokenizer_json)
      # first byte: bit 0 add_special, bit 1 parse_special
      if command -v python3 >/dev/null && small_tokenizers; then
          byte_prefixed "$tmp/spm.json" '\001' "$dir/spm.json"
          byte_prefixed "$tmp/bytelevel.json" '\003' "$dir/bytelevel.json"
      fi ;;
  fuzz_imatrix)
      m=$shared/models/stories260k/stories260K.gguf
      if lq=$(tool tools/lq) && [ -f "$m" ]; then
          head -c 30000 "$shared/text/tinystories-valid.txt" > "$tmp/text.txt"
          "$lq" calibrate "$m" -f "$tmp/text.txt" -c 32 --chunks 2 -t 1 -o "$dir/stories260k.imatrix" >/dev/null 2>&1
          "$lq" calibrate "$m" -f "$tmp/text.txt" -c 32 --chunks 2 -t 1 --output-format dat \
              -o "$dir/stories260k.dat" >/dev/null 2>&1
      fi ;;
  fuzz_calib_text)
      # first byte: 0 text, 1 jsonl, 2 auto (by content), 3 auto (NULL format)
      head -c 3000 "$shared/text/tinystories-valid.txt" > "$tmp/plain.txt"
      python3 -c '
import json, sys
text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
for doc in text.split("\n\n")[:8]:
    print(json.dumps({"text": doc, "meta": {"n": len(doc)}}, ensure_ascii=False))
' "$tmp/plain.txt" > "$tmp/docs.jsonl" 2>/dev/null || printf '{"text": "a"}\n{"text": "b\\u00e9"}\n' > "$tmp/docs.jsonl"
      byte_prefixed "$tmp/plain.txt" '\000' "$dir/plain.txt"
      byte_prefixed "$tmp/docs.jsonl" '\001' "$dir/docs.jsonl"
      gzip -9 -n -c "$tmp/plain.txt" > "$tmp/plain.txt.gz" && byte_prefixed "$tmp/plain.txt.gz" '\002' "$dir/plain.gz"
      gzip -9 -n -c "$tmp/docs.jsonl" > "$tmp/docs.jsonl.gz" && byte_prefixed "$tmp/docs.jsonl.gz" '\003' "$dir/docs.gz"
      ;;
esac
exit 0
