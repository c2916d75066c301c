#!/usr/bin/env bash
# test_calibrate.sh — `lq calibrate` end to end on stories260K: output file and JSON report
# (checksums recomputed here by python3, counts = chunks × chunk size), byte-identical output at
# 1 and 2 threads, --seed choosing other chunks reproducibly, JSONL.gz input, legacy .dat
# output (layout read here), and failures: exit codes, one stderr line naming the file, nothing
# left behind. Env: LQ_BIN, LQ_SHARED_DIR, LQ_TEST_TMPDIR.
set -u
LQ="${LQ_BIN:?LQ_BIN must point at the lq binary}"
SHARED="${LQ_SHARED_DIR:-}"
MODEL="$SHARED/models/stories260k/stories260K.gguf"
TEXT="$SHARED/text/tinystories-train-sample.txt"
[ -f "$MODEL" ] && [ -f "$TEXT" ] || { echo "SKIP: $MODEL or $TEXT is missing"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 is needed to check the output"; exit 77; }
TMP="${LQ_TEST_TMPDIR:-/tmp}/lq-test-calibrate-$$"
mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT

checks=0
failures=0
fail() { failures=$((failures + 1)); echo "FAIL: $*" >&2; }
check() { checks=$((checks + 1)); }

# run NAME EXPECTED_CODE ARGS...: runs lq calibrate, keeps stdout/stderr in $TMP/NAME.{out,err}.
run() {
    local name=$1 want=$2
    shift 2
    "$LQ" calibrate "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
    local got=$?
    check
    [ "$got" -eq "$want" ] || fail "$name: exit $got, want $want: $(head -c 300 "$TMP/$name.err")"
}

# expect_error NAME CODE NEEDLE ARGS...: exit CODE, one stderr line containing NEEDLE.
expect_error() {
    local name=$1 want=$2 needle=$3
    shift 3
    run "$name" "$want" "$@"
    check
    [ "$(wc -l <"$TMP/$name.err")" -eq 1 ] || fail "$name: stderr is not one line: $(cat "$TMP/$name.err")"
    check
    grep -qF -- "$needle" "$TMP/$name.err" || fail "$name: stderr lacks '$needle': $(cat "$TMP/$name.err")"
}

same() { # same NAME A B: files are byte-identical
    check
    cmp -s "$2" "$3" || fail "$1: $2 and $3 differ"
}

run help 0 --help
check
grep -q "Exit codes" "$TMP/help.out" && grep -q -- "--seed" "$TMP/help.out" || fail "help text incomplete"

# --- a run with a report: 3 chunks of 128 tokens --------------------------------------------
run base 0 "$MODEL" -f "$TEXT" -o "$TMP/s1.gguf" -c 128 --chunks 3 -t 1 --json "$TMP/s1.json"
python3 - "$TMP/s1.json" "$MODEL" "$TEXT" "$TMP/s1.gguf" <<'EOF' || fail "report check failed"
import hashlib, json, sys
rep, model, text, out = sys.argv[1:]
r = json.load(open(rep))
sha = lambda p: hashlib.sha256(open(p, 'rb').read()).hexdigest()
errors = []
def want(cond, what):
    if not cond: errors.append(what)
want(r['model']['files'][0]['path'] == model and r['model']['files'][0]['sha256'] == sha(model), 'model checksum')
want(r['text']['sha256'] == sha(text) and r['text']['bytes'] == len(open(text, 'rb').read()), 'text checksum')
want(r['text']['gzip'] is False, 'text is not gzip')
want(r['output']['sha256'] == sha(out), 'output checksum')
c = r['chunks']
want(c['chunk_size'] == 128 and c['n_chunks'] == 3 and c['tokens_evaluated'] == 384, 'chunk counts')
want(c['indices'] == [0, 1, 2] and c['seed'] is None, 'first chunks without a seed')
want(c['text_chunks'] == c['text_tokens'] // 128 and c['text_tokens'] > 500000, 'text token count')
want(len(c['seconds']) == 3 and all(s > 0 for s in c['seconds']), 'per-chunk times')
e = r['output']['entries']
# stories260K: 5 layers x 7 linear weights, every one saw every token
want(r['output']['n_entries'] == 35 and len(e) == 35, 'entry count')
want(all(x['count'] == 384 for x in e), 'counts')
want({x['n_in'] for x in e} == {64, 172}, 'input widths')
for msg in errors: print('report:', msg)
sys.exit(1 if errors else 0)
EOF
check
check
grep -q "35 entries from 3 chunks of 128 tokens" "$TMP/base.out" || fail "summary line: $(cat "$TMP/base.out")"
check
[ -z "$(ls "$TMP" | grep '\.tmp\.')" ] || fail "temporary files left: $(ls "$TMP")"

# --- the same at 2 threads: the same bytes ---------------------------------------------------
run threads 0 "$MODEL" -f "$TEXT" -o "$TMP/s2.gguf" -c 128 --chunks 3 -t 2
same threads "$TMP/s1.gguf" "$TMP/s2.gguf"

# --- a seed picks other chunks, the same ones every time -------------------------------------
run seed_a 0 "$MODEL" -f "$TEXT" -o "$TMP/seed_a.gguf" -c 128 --chunks 3 --seed 11 --json "$TMP/seed_a.json"
run seed_b 0 "$MODEL" -f "$TEXT" -o "$TMP/seed_b.gguf" -c 128 --chunks 3 --seed 11 -t 2
same seed "$TMP/seed_a.gguf" "$TMP/seed_b.gguf"
check
cmp -s "$TMP/s1.gguf" "$TMP/seed_a.gguf" && fail "seed 11 gave the same statistics as the first chunks"
python3 - "$TMP/seed_a.json" <<'EOF' || fail "seeded indices"
import json, sys
c = json.load(open(sys.argv[1]))['chunks']
idx = c['indices']
ok = c['seed'] == 11 and len(idx) == 3 and idx == sorted(set(idx)) and idx != [0, 1, 2] and idx[-1] < c['text_chunks']
sys.exit(0 if ok else 1)
EOF
check

# --- JSONL, gzip-compressed, named without an extension --------------------------------------
python3 - "$TEXT" "$TMP/docs" <<'EOF'
import gzip, json, sys
text = open(sys.argv[1], encoding='utf-8', errors='replace').read(60000)
docs = [d.strip() for d in text.split('\n\n') if d.strip()]
with gzip.open(sys.argv[2], 'wt', encoding='utf-8') as f:
    for d in docs:
        f.write(json.dumps({'id': len(d), 'text': d}) + '\n')
EOF
run jsonl 0 "$MODEL" -f "$TMP/docs" -o "$TMP/jsonl.gguf" -c 128 --chunks 2 --json "$TMP/jsonl.json"
check
[ -s "$TMP/jsonl.gguf" ] || fail "jsonl: no output"
check
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r["text"]["gzip"] and r["chunks"]["n_chunks"] == 2 else 1)' \
    "$TMP/jsonl.json" || fail "jsonl report: gzip not detected"

# --- an HF directory: tokenizer.json, and every input file named in the report ---------------
HF="$SHARED/models/tinystories-656k"
if [ -f "$HF/model.safetensors" ]; then
    run hf 0 "$HF" -f "$TEXT" -o "$TMP/hf.gguf" -c 128 --chunks 1 --json "$TMP/hf.json"
    python3 - "$TMP/hf.json" <<'EOF' || fail "HF report"
import json, os, sys
r = json.load(open(sys.argv[1]))
paths = {os.path.basename(f['path']) for f in r['model']['files']}
ok = {'model.safetensors', 'tokenizer.json'} <= paths and r['output']['n_entries'] == 14
ok = ok and all(e['count'] == 128 for e in r['output']['entries'])
sys.exit(0 if ok else 1)
EOF
    check
fi

# --- legacy .dat output ------------------------------------------------------------------------
run dat 0 "$MODEL" -f "$TEXT" -o "$TMP/s1.dat" -c 128 --chunks 3 --output-format dat
python3 - "$TMP/s1.dat" "$TEXT" <<'EOF' || fail "legacy .dat layout"
import struct, sys
b = open(sys.argv[1], 'rb').read()
n, = struct.unpack_from('<i', b, 0)
at, names = 4, []
for _ in range(n):
    ln, = struct.unpack_from('<i', b, at); at += 4
    names.append(b[at:at + ln].decode()); at += ln
    ncall, nval = struct.unpack_from('<ii', b, at); at += 8
    vals = struct.unpack_from('<%df' % nval, b, at); at += 4 * nval
    assert ncall == 3, ncall              # ceil(384 tokens / 128)
    assert nval in (64, 172) and all(v >= 0 for v in vals)
last, dl = struct.unpack_from('<ii', b, at); at += 8
assert n == 35 and last == 3 and b[at:at + dl].decode() == sys.argv[2] and at + dl == len(b)
assert 'blk.0.attn_q.weight' in names
EOF
check

# --- failures ----------------------------------------------------------------------------------
expect_error no_text 2 "need MODEL" "$MODEL" -o "$TMP/x.gguf"
expect_error bad_ctx 2 "-c needs" "$MODEL" -f "$TEXT" -o "$TMP/x.gguf" -c 1
expect_error bad_format 2 "--output-format" "$MODEL" -f "$TEXT" -o "$TMP/x.gguf" --output-format csv
expect_error missing_text 5 "$TMP/nope.txt" "$MODEL" -f "$TMP/nope.txt" -o "$TMP/x.gguf"
expect_error missing_model 5 "$TMP/nope.gguf" "$TMP/nope.gguf" -f "$TEXT" -o "$TMP/x.gguf"
printf '{"text": "Once upon a time."}\n{"text": "ok"}\n{"text": "broken}\n' >"$TMP/bad.jsonl"
expect_error bad_jsonl 3 "$TMP/bad.jsonl: line 3" "$MODEL" -f "$TMP/bad.jsonl" -o "$TMP/x.gguf"
printf '{"text": "Once upon a time."}\n{"body": "no text"}\n' >"$TMP/notext.jsonl"
expect_error notext_jsonl 3 "line 2: missing \"text\" field" "$MODEL" -f "$TMP/notext.jsonl" -o "$TMP/x.gguf"
printf 'Once upon a time.' >"$TMP/short.txt"
expect_error short_text 2 "fewer than one chunk" "$MODEL" -f "$TMP/short.txt" -o "$TMP/x.gguf"
expect_error no_dir 5 "$TMP/no/such/dir/x.gguf" "$MODEL" -f "$TEXT" -o "$TMP/no/such/dir/x.gguf" -c 128 --chunks 1
check
[ ! -e "$TMP/x.gguf" ] || fail "a failed run left $TMP/x.gguf"

echo "$checks checks, $failures failed"
[ "$failures" -eq 0 ]
