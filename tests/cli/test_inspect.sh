#!/usr/bin/env bash
# test_inspect.sh — `lq inspect` end to end: the shared models and vocab GGUFs (text facts and
# --json checked against the files' own headers, read here by python3), and malformed inputs
# (exit code + exactly one stderr line naming the file). Env: LQ_BIN, LQ_SHARED_DIR, LQ_TEST_TMPDIR.
set -u
LQ="${LQ_BIN:?LQ_BIN must point at the lq binary}"
SHARED="${LQ_SHARED_DIR:-}"
TMP="${LQ_TEST_TMPDIR:-/tmp}/lq-test-cli-inspect-$$"
mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
command -v python3 >/dev/null || { echo "SKIP: python3 is needed to check the output"; exit 77; }

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
    [ "$got" -eq "$want" ] || fail "$name: exit $got, want $want: $(head -c 300 "$TMP/$name.err")"
}

# expect_error NAME CODE FILE ARGS...: exit CODE, nothing on stdout, one stderr line
# "lq inspect: ...FILE...".
expect_error() {
    local name=$1 want=$2 file=$3
    shift 3
    run "$name" "$want" "$@"
    check
    [ "$(wc -l <"$TMP/$name.err")" -eq 1 ] || fail "$name: stderr is not exactly one line: $(cat "$TMP/$name.err")"
    check
    grep -qF "lq inspect: $file" "$TMP/$name.err" || fail "$name: stderr does not name $file: $(cat "$TMP/$name.err")"
    check
    [ ! -s "$TMP/$name.out" ] || fail "$name: stdout is not empty"
}

# has NAME TEXT: the text output contains TEXT (fixed string).
has() {
    check
    grep -qF -- "$2" "$TMP/$1.out" || fail "$1: output lacks '$2'"
}

# ---- usage ----------------------------------------------------------------------------------
run help 0 inspect --help
has help "usage: lq inspect PATH"
has help "Exit codes: 0 success"
run no_path 2 inspect
run two_paths 2 inspect a b
run bad_option 2 inspect --frobnicate x
expect_error missing 5 "$TMP/does-not-exist" inspect "$TMP/does-not-exist"

# ---- malformed and unsupported inputs (generated here) ----------------------------------------
python3 - "$TMP" <<'EOF'
import json, os, struct, sys
tmp = sys.argv[1]
def st(path, header, data=b""):
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + data)
good = {"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}
st(f"{tmp}/good.safetensors", good, bytes(16))
data = open(f"{tmp}/good.safetensors", "rb").read()
open(f"{tmp}/truncated.safetensors", "wb").write(data[:-3])
open(f"{tmp}/hugeheader.safetensors", "wb").write(struct.pack("<Q", 1 << 62) + b"{}")
st(f"{tmp}/i64.safetensors", {"w": {"dtype": "I64", "shape": [2], "data_offsets": [0, 16]}}, bytes(16))
st(f"{tmp}/overlap.safetensors", {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                   "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, bytes(12))
open(f"{tmp}/notjson.safetensors", "wb").write(struct.pack("<Q", 8) + b"{\"a\": 1")
# A GGUF cut inside its key/value section.
g = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 20) + b"general.architecture"
open(f"{tmp}/truncated.gguf", "wb").write(g + struct.pack("<IQ", 8, 5) + b"lla")
# Model directories: bad JSON config, unsupported model_type, unsupported rope scaling.
for name, text in [("badjson", '{"model_type": "llama", "hidden_size": '),
                   ("gpt2", '{"model_type": "gpt2", "hidden_size": 8}'),
                   ("yarn", '{"model_type": "llama", "hidden_size": 8, "num_hidden_layers": 1, '
                            '"num_attention_heads": 2, "intermediate_size": 8, "vocab_size": 4, '
                            '"rope_scaling": {"type": "yarn", "factor": 2.0}}')]:
    os.makedirs(f"{tmp}/{name}", exist_ok=True)
    open(f"{tmp}/{name}/config.json", "w").write(text)
    st(f"{tmp}/{name}/model.safetensors", good, bytes(16))
os.makedirs(f"{tmp}/noconfig", exist_ok=True)
# A one-layer Llama in two shards with an index (hidden 8, 2 heads / 1 KV head, ffn 16, vocab 4).
os.makedirs(f"{tmp}/sharded", exist_ok=True)
shapes = {"model.embed_tokens.weight": [4, 8], "model.layers.0.input_layernorm.weight": [8],
          "model.layers.0.self_attn.q_proj.weight": [8, 8], "model.layers.0.self_attn.k_proj.weight": [4, 8],
          "model.layers.0.self_attn.v_proj.weight": [4, 8], "model.layers.0.self_attn.o_proj.weight": [8, 8],
          "model.layers.0.post_attention_layernorm.weight": [8], "model.layers.0.mlp.gate_proj.weight": [16, 8],
          "model.layers.0.mlp.up_proj.weight": [16, 8], "model.layers.0.mlp.down_proj.weight": [8, 16],
          "model.norm.weight": [8], "lm_head.weight": [4, 8]}
names = list(shapes)
weight_map = {}
for k, part in enumerate([names[:6], names[6:]]):
    shard = f"model-0000{k + 1}-of-00002.safetensors"
    header, off = {}, 0
    for n in part:
        size = 2 * eval("*".join(map(str, shapes[n])))
        header[n] = {"dtype": "F16", "shape": shapes[n], "data_offsets": [off, off + size]}
        off += size
        weight_map[n] = shard
    st(f"{tmp}/sharded/{shard}", header, bytes(off))
json.dump({"metadata": {}, "weight_map": weight_map}, open(f"{tmp}/sharded/model.safetensors.index.json", "w"))
json.dump({"model_type": "llama", "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
           "num_key_value_heads": 1, "intermediate_size": 16, "vocab_size": 4}, open(f"{tmp}/sharded/config.json", "w"))
EOF
gen_rc=$?
check
[ "$gen_rc" -eq 0 ] || fail "could not generate the malformed inputs"

expect_error truncated_st 3 "$TMP/truncated.safetensors" inspect "$TMP/truncated.safetensors"
expect_error hugeheader 3 "$TMP/hugeheader.safetensors" inspect "$TMP/hugeheader.safetensors"
expect_error overlap 3 "$TMP/overlap.safetensors" inspect --json "$TMP/overlap.safetensors"
expect_error notjson 3 "$TMP/notjson.safetensors" inspect "$TMP/notjson.safetensors"
expect_error i64 4 "$TMP/i64.safetensors" inspect "$TMP/i64.safetensors"
check; grep -qF "unsupported dtype I64 for tensor w" "$TMP/i64.err" || fail "i64: $(cat "$TMP/i64.err")"
expect_error truncated_gguf 3 "$TMP/truncated.gguf" inspect "$TMP/truncated.gguf"
expect_error badjson 3 "$TMP/badjson/config.json" inspect "$TMP/badjson"
expect_error gpt2 4 "$TMP/gpt2/config.json" inspect "$TMP/gpt2"
check; grep -qF "gpt2" "$TMP/gpt2.err" || fail "gpt2: error does not name the model_type"
expect_error yarn 4 "$TMP/yarn/config.json" inspect --json "$TMP/yarn"
check; grep -qF "yarn" "$TMP/yarn.err" || fail "yarn: error does not name the rope_scaling type"
expect_error noconfig 5 "$TMP/noconfig" inspect "$TMP/noconfig"

# A bare safetensors file without config.json next to it: inspected as stored.
run good_st 0 inspect "$TMP/good.safetensors"
has good_st "safetensors, 1 tensors"
has good_st "model view: not available"

# A sharded checkpoint: both shards listed, every tensor in the view; the index file alone is
# inspected as stored (12 tensors, HF names).
run sharded 0 inspect "$TMP/sharded"
has sharded "model-00001-of-00002.safetensors"
has sharded "model-00002-of-00002.safetensors"
has sharded "blk.0.ffn_down.weight"
has sharded "[16, 8]"
run sharded_json 0 inspect --json "$TMP/sharded"
check
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(not (len(j["tensors"]) == 12 and j["totals"]["parameters"] == 32+8+64+32+32+64+8+128+128+128+8+32))' \
    "$TMP/sharded_json.out" || fail "sharded_json: wrong tensor count or parameters"
run index 0 inspect "$TMP/sharded/model.safetensors.index.json"
has index "safetensors, 12 tensors"
has index "model.layers.0.mlp.down_proj.weight"
has index "architecture: llama"
rm "$TMP/sharded/model-00002-of-00002.safetensors"
expect_error shard_missing 5 "$TMP/sharded" inspect "$TMP/sharded"
check; grep -qF "model-00002-of-00002.safetensors" "$TMP/shard_missing.err" || fail "shard_missing: shard not named"

# ---- the shared checkpoints -------------------------------------------------------------------
if [ -z "$SHARED" ] || [ ! -d "$SHARED/models" ]; then
    echo "note: ../shared absent: shared checkpoints not inspected" >&2
else
    M656="$SHARED/models/tinystories-656k"
    M4="$SHARED/models/tinystories-4m"
    G260="$SHARED/models/stories260k/stories260K.gguf"

    run m656 0 inspect "$M656"
    has m656 "architecture: llama"
    has m656 "layers                2"
    has m656 "heads / KV heads      8 / 4"
    has m656 "feed-forward          384"
    has m656 "tied embeddings       yes"
    has m656 "token_embd.weight"
    has m656 "lm_head.weight"
    has m656 "model.embed_tokens.weight = \"lm_head.weight\""
    check; ! grep -q "^  output\.weight" "$TMP/m656.out" || fail "m656: a tied model lists output.weight"

    run m4 0 inspect "$M4"
    has m4 "layers                4"
    has m4 "embedding (hidden)    256"
    has m4 "tied embeddings       no"
    has m4 "output.weight"

    run g260 0 inspect "$G260"
    has g260 "GGUF v3, 48 tensors"
    has g260 "layers                5"
    has g260 "feed-forward          172"
    has g260 "rope layout           interleaved"
    has g260 "tokenizer.ggml.tokens"
    has g260 "[string × 512] \"<unk>\", \"<s>\", \"</s>\", ..."

    # --json: parse it and compare with the files' headers read independently here.
    for target in "$M656" "$M4" "$G260" "$M4/model.safetensors" "$SHARED"/testvectors/vocab/*.gguf; do
        [ -e "$target" ] || continue
        name="json_$(basename "$target")"
        run "$name" 0 inspect --json "$target"
        check
        python3 - "$target" "$TMP/$name.out" <<'EOF' || fail "$name: JSON output disagrees with the file (see above)"
import json, os, struct, sys
target, out = sys.argv[1], sys.argv[2]
j = json.load(open(out))
def fail(msg):
    print(f"{target}: {msg}", file=sys.stderr); sys.exit(1)
def st_header(path):
    d = open(path, "rb").read()
    n = struct.unpack_from("<Q", d)[0]
    return json.loads(d[8:8 + n])
if os.path.isdir(target):
    cfg = json.load(open(f"{target}/config.json"))
    hdr = st_header(f"{target}/model.safetensors")
    tensors = {k: v for k, v in hdr.items() if k != "__metadata__"}
    tied = cfg.get("tie_word_embeddings", False)
    # The view drops lm_head when tied and both are stored; otherwise one view tensor per entry.
    want = len(tensors) - (1 if tied and "lm_head.weight" in tensors and "model.embed_tokens.weight" in tensors else 0)
    hp = j["hparams"]
    for key, field in [("n_embd", "hidden_size"), ("n_layer", "num_hidden_layers"), ("n_head", "num_attention_heads"),
                       ("n_head_kv", "num_key_value_heads"), ("n_ff", "intermediate_size"), ("n_vocab", "vocab_size")]:
        if hp[key] != cfg[field]: fail(f"{key} {hp[key]} != config {field} {cfg[field]}")
    if hp["tie_embeddings"] != tied: fail("tie_embeddings differs from the config")
    if j["format"] != "hf" or j["model_view"] is not True or hp["rope_layout"] != "halves": fail("format/model_view/rope_layout")
    params = sum(eval("*".join(map(str, t["shape"])) or "1") for k, t in tensors.items()
                 if not (tied and k == "lm_head.weight" and "model.embed_tokens.weight" in tensors))
    if j["totals"]["parameters"] != params: fail(f"parameters {j['totals']['parameters']} != {params}")
    names = {t["name"] for t in j["tensors"]}
    if "token_embd.weight" not in names or ("output.weight" in names) == tied: fail("token_embd/output naming")
    if j["metadata"] != hdr.get("__metadata__", {}): fail("metadata differs from __metadata__")
elif target.endswith(".safetensors"):
    hdr = st_header(target)
    want = len(hdr) - ("__metadata__" in hdr)
    for t in j["tensors"]:
        if t["shape"] != hdr[t["name"]]["shape"]: fail(f"shape of {t['name']}")
        a, b = hdr[t["name"]]["data_offsets"]
        if t["bytes"] != b - a: fail(f"bytes of {t['name']}")
else:
    d = open(target, "rb").read(24)
    magic, version, want, n_kv = struct.unpack("<4sIQQ", d)
    if len(j["metadata"]) != n_kv: fail(f"{len(j['metadata'])} metadata keys, header says {n_kv}")
    if j["gguf"]["version"] != version or j["format"] != "gguf": fail("version/format")
    toks = j["metadata"].get("tokenizer.ggml.tokens")
    if toks and (toks["type"] != "array" or toks["element_type"] != "string" or len(toks["head"]) > toks["count"]):
        fail("token array summary")
if len(j["tensors"]) != want or j["totals"]["tensors"] != want:
    fail(f"{len(j['tensors'])} tensors in JSON, expected {want}")
EOF
    done
    # Vocab-only GGUFs: metadata shown although there is no model.
    V="$SHARED/testvectors/vocab/ggml-vocab-llama-spm.gguf"
    if [ -f "$V" ]; then
        run vocab 0 inspect "$V"
        has vocab "0 tensors"
        has vocab "model view: not available"
        has vocab "tokenizer.ggml.tokens"
        has vocab "[string × 32000] \"<unk>\", \"<s>\", \"</s>\", ..."
    fi
fi

echo "$checks checks, $failures failed" >&2
[ "$failures" -eq 0 ]
