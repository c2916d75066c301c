#!/usr/bin/env bash
# test_determinism.sh — same inputs, seed and type give byte-identical output at 1, 2 and 3
# threads and across repeated runs:
#  - `lq calibrate` (tinystories-656k, seeded chunk choice), GGUF and legacy .dat output;
#  - `lq quantize` RTN (Q4_0, Q4_K_M, IQ4_XS) and with that imatrix (Q4_K_M, IQ4_XS);
#  - a different seed does change the calibration (the check above can fail);
#  - the JSON reports name the tool version and identify every input by checksum, and the
#    checksums are the files' (sha256sum for calibrate; equal files give equal lqh64 for quantize).
source "$(dirname "$0")/lib.sh"
M="$SHARED/models/tinystories-656k"
TEXT="$SHARED/text/tinystories-valid.txt"
[ -f "$M/model.safetensors" ] && [ -f "$TEXT" ] || { echo "SKIP: ../shared model/text absent"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 is needed to read the JSON reports"; exit 77; }

same() { # same A B WHAT
    check
    cmp -s "$1" "$2" || fail "$3: $(basename "$1") and $(basename "$2") differ"
}

# ---- calibrate ------------------------------------------------------------------------------
for t in 1 2 3; do
    run "cal-t$t" 0 calibrate "$M" -f "$TEXT" -c 128 --chunks 6 --seed 7 -t $t -o "$TMP/cal-t$t.imatrix" \
        --json "$TMP/cal-t$t.json"
    run "cal-dat-t$t" 0 calibrate "$M" -f "$TEXT" -c 128 --chunks 6 --seed 7 -t $t -o "$TMP/cal-t$t.dat" \
        --output-format dat
done
run cal-again 0 calibrate "$M" -f "$TEXT" -c 128 --chunks 6 --seed 7 -t 2 -o "$TMP/cal-again.imatrix"
for t in 2 3; do
    same "$TMP/cal-t1.imatrix" "$TMP/cal-t$t.imatrix" "calibrate at $t threads"
    same "$TMP/cal-t1.dat" "$TMP/cal-t$t.dat" "calibrate .dat at $t threads"
done
same "$TMP/cal-t1.imatrix" "$TMP/cal-again.imatrix" "calibrate run twice"
run cal-seed 0 calibrate "$M" -f "$TEXT" -c 128 --chunks 6 --seed 8 -t 2 -o "$TMP/cal-seed8.imatrix"
check
! cmp -s "$TMP/cal-t1.imatrix" "$TMP/cal-seed8.imatrix" || fail "another seed gave the same statistics"

# ---- quantize -------------------------------------------------------------------------------
for preset in Q4_0 Q4_K_M IQ4_XS; do
    for t in 1 2 3; do
        run "q-$preset-t$t" 0 quantize "$M" -o "$TMP/q-$preset-t$t.gguf" --type $preset -t $t -q \
            --json "$TMP/q-$preset-t$t.json"
    done
    run "q-$preset-again" 0 quantize "$M" -o "$TMP/q-$preset-again.gguf" --type $preset -t 3 -q
    for t in 2 3 again; do same "$TMP/q-$preset-t1.gguf" "$TMP/q-$preset-$([ $t = again ] && echo again || echo t$t).gguf" "quantize $preset ($t)"; done
done
for preset in Q4_K_M IQ4_XS; do
    for t in 1 2 3; do
        run "qi-$preset-t$t" 0 quantize "$M" -o "$TMP/qi-$preset-t$t.gguf" --type $preset -t $t -q \
            --imatrix "$TMP/cal-t1.imatrix" --json "$TMP/qi-$preset-t$t.json"
    done
    same "$TMP/qi-$preset-t1.gguf" "$TMP/qi-$preset-t2.gguf" "quantize $preset with imatrix (2 threads)"
    same "$TMP/qi-$preset-t1.gguf" "$TMP/qi-$preset-t3.gguf" "quantize $preset with imatrix (3 threads)"
    check
    ! cmp -s "$TMP/qi-$preset-t1.gguf" "$TMP/q-$preset-t1.gguf" || fail "$preset: the imatrix changed nothing"
done

# ---- reports --------------------------------------------------------------------------------
check
python3 - "$TMP" "$M" "$TEXT" "$("$LQ" --version | head -1 | cut -d' ' -f2)" <<'EOF' || fail "JSON reports (see above)"
import hashlib, json, os, sys
tmp, model, text, version = sys.argv[1:5]
bad = []
def sha(p):
    return hashlib.sha256(open(p, 'rb').read()).hexdigest()
c = json.load(open(f"{tmp}/cal-t1.json"))
if c.get("libquant") != version: bad.append(f"calibrate report: version {c.get('libquant')!r}, want {version}")
files = c.get("model", {}).get("files", [])
if not files: bad.append("calibrate report: no model files")
for f in files + [c.get("text", {}), c.get("output", {})]:
    p = f.get("path")
    if not p or not os.path.exists(p) or f.get("sha256") != sha(p):
        bad.append(f"calibrate report: {p}: sha256 {f.get('sha256')} is not the file's")
if c.get("chunks", {}).get("seed") != 7: bad.append("calibrate report: seed not recorded")
reports = [json.load(open(f"{tmp}/{n}.json")) for n in ("q-Q4_0-t1", "q-Q4_0-t2", "qi-Q4_K_M-t1")]
for r in reports:
    if r.get("version") != version: bad.append(f"quantize report: version {r.get('version')!r}, want {version}")
    ins = r.get("inputs", [])
    paths = {os.path.basename(i["path"]) for i in ins}
    for need in ("model.safetensors", "config.json"):
        if need not in paths: bad.append(f"quantize report: input {need} missing")
    if any(not i.get("lqh64") or i.get("bytes") != os.path.getsize(i["path"]) for i in ins):
        bad.append("quantize report: an input without checksum or with a wrong size")
    if not r.get("output", {}).get("lqh64"): bad.append("quantize report: output without checksum")
if not any(i.get("role") == "imatrix" for i in reports[2].get("inputs", [])):
    bad.append("quantize report: the imatrix is not among the inputs")
h = lambda r, name: [i["lqh64"] for i in r["inputs"] if os.path.basename(i["path"]) == name]
if h(reports[0], "model.safetensors") != h(reports[1], "model.safetensors"): bad.append("lqh64 of the same file differs")
if reports[0]["output"]["lqh64"] != reports[1]["output"]["lqh64"]: bad.append("output lqh64 differs between thread counts")
for b in bad: print(b, file=sys.stderr)
sys.exit(1 if bad else 0)
EOF

finish
