#!/usr/bin/env bash
# test_faults.sh — failures of the environment, end to end through `lq`:
#  - SIGINT/SIGTERM during `lq quantize` (sparse 70B-wide checkpoint, so it runs long enough) and
#    `lq calibrate` (tinystories-4m): exit 130, one line saying "interrupted", no output file and
#    no temporary file left;
#  - a full disk (1 MiB tmpfs when mount works; a file-size rlimit in any case, with and without
#    SIGXFSZ ignored by the caller), a read-only output directory, a missing output directory,
#    missing/unreadable/malformed inputs: documented exit codes, one line naming the file, no
#    output left;
#  - usage errors exit 2, and every --help documents the exit codes.
source "$(dirname "$0")/lib.sh"
S656="$SHARED/models/tinystories-656k"
S4M="$SHARED/models/tinystories-4m"
TEXT="$SHARED/text/wikitext-2-raw-test.txt"
[ -f "$S656/model.safetensors" ] && [ -f "$S4M/model.safetensors" ] && [ -f "$TEXT" ] ||
    { echo "SKIP: ../shared models/text absent"; exit 77; }

# ---- exit codes in every --help -------------------------------------------------------------
for cmd in inspect tokenize ppl bench synth quantize calibrate codec; do
    run "help-$cmd" 0 "$cmd" --help
    check
    grep -q "Exit codes: 0 success" "$TMP/help-$cmd.out" && grep -q "130 interrupted" "$TMP/help-$cmd.out" ||
        fail "lq $cmd --help does not document the exit codes"
done
run help-main 0 --help
check
grep -q "130 interrupted" "$TMP/help-main.out" || fail "lq --help does not document the exit codes"

# ---- usage errors ---------------------------------------------------------------------------
run usage-nocmd 2 frobnicate
run usage-q-notype 2 quantize "$S656" -o "$TMP/x.gguf"
one_line_error usage-q-notype quantize "--type"
run usage-q-badtype 2 quantize "$S656" -o "$TMP/x.gguf" --type Q9_9
run usage-q-threads 2 quantize "$S656" -o "$TMP/x.gguf" --type Q4_0 -t 0
run usage-c-noout 2 calibrate "$S656" -f "$TEXT"
run usage-c-ctx 2 calibrate "$S656" -f "$TEXT" -o "$TMP/x.imatrix" -c 1
no_output "$TMP/x.gguf"

# ---- missing, unreadable and malformed inputs -----------------------------------------------
run missing-model 5 quantize "$TMP/nonexistent" -o "$TMP/o.gguf" --type Q4_0
one_line_error missing-model quantize "$TMP/nonexistent"
no_output "$TMP/o.gguf"
run missing-imatrix 5 quantize "$S656" -o "$TMP/o.gguf" --type Q4_0 --imatrix "$TMP/none.imatrix"
one_line_error missing-imatrix quantize "$TMP/none.imatrix"
no_output "$TMP/o.gguf"
run missing-text 5 calibrate "$S656" -f "$TMP/none.txt" -o "$TMP/o.imatrix"
one_line_error missing-text calibrate "$TMP/none.txt"
no_output "$TMP/o.imatrix"
mkdir -p "$TMP/adir"
run text-is-dir 5 calibrate "$S656" -f "$TMP/adir" -o "$TMP/o.imatrix"
one_line_error text-is-dir calibrate "$TMP/adir"
no_output "$TMP/o.imatrix"
if [ "$(id -u)" -ne 0 ]; then # root reads any file
    cp "$S656/model.safetensors" "$TMP/secret.safetensors" && chmod 000 "$TMP/secret.safetensors"
    run unreadable 5 inspect "$TMP/secret.safetensors"
    one_line_error unreadable inspect "$TMP/secret.safetensors"
fi
# a truncated shard: malformed input (3), named
mkdir -p "$TMP/trunc"
cp "$S656/config.json" "$TMP/trunc/"
head -c 100000 "$S656/model.safetensors" >"$TMP/trunc/model.safetensors"
run truncated 3 quantize "$TMP/trunc" -o "$TMP/o.gguf" --type Q4_0
one_line_error truncated quantize "$TMP/trunc/model.safetensors"
no_output "$TMP/o.gguf"
# a text file given as imatrix: malformed (3)
run bad-imatrix 3 quantize "$S656" -o "$TMP/o.gguf" --type Q4_0 --imatrix "$S656/config.json"
one_line_error bad-imatrix quantize "$S656/config.json"
no_output "$TMP/o.gguf"

# ---- output directory missing / not writable ------------------------------------------------
run outdir-missing 5 quantize "$S656" -o "$TMP/no/such/dir/o.gguf" --type Q4_0
one_line_error outdir-missing quantize "$TMP/no/such/dir/o.gguf"
run outdir-missing-c 5 calibrate "$S656" -f "$TEXT" --chunks 1 -c 64 -o "$TMP/no/dir/o.imatrix"
one_line_error outdir-missing-c calibrate "$TMP/no/dir/o.imatrix"
mounted=()
try_mount() { # try_mount DIR OPTIONS: a small tmpfs (needs root and a mount namespace that allows it)
    mkdir -p "$1"
    mount -t tmpfs -o "$2" lqrel "$1" 2>/dev/null || return 1
    mounted+=("$1")
    cleanup_hooks+=("umount '$1' 2>/dev/null")
}
if try_mount "$TMP/ro" ro,size=1m; then
    run outdir-readonly 5 quantize "$S656" -o "$TMP/ro/o.gguf" --type Q4_0
    one_line_error outdir-readonly quantize "$TMP/ro/o.gguf"
    no_output "$TMP/ro/o.gguf"
    run outdir-readonly-c 5 calibrate "$S656" -f "$TEXT" --chunks 1 -c 64 -o "$TMP/ro/o.imatrix"
    one_line_error outdir-readonly-c calibrate "$TMP/ro/o.imatrix"
elif [ "$(id -u)" -ne 0 ]; then
    mkdir -p "$TMP/ro" && chmod 555 "$TMP/ro"
    run outdir-readonly 5 quantize "$S656" -o "$TMP/ro/o.gguf" --type Q4_0
    one_line_error outdir-readonly quantize "$TMP/ro/o.gguf"
    no_output "$TMP/ro/o.gguf"
else
    echo "note: no read-only directory available (root without mount): check skipped" >&2
fi

# ---- full disk ------------------------------------------------------------------------------
# A 1 MiB tmpfs: the F32 output of the 2.6 MB model cannot fit (ENOSPC).
if try_mount "$TMP/full" size=1m; then
    run disk-full 5 quantize "$S656" -o "$TMP/full/o.gguf" --type F32 -q
    one_line_error disk-full quantize "$TMP/full/o.gguf"
    no_output "$TMP/full/o.gguf"
    check
    [ -z "$(ls -A "$TMP/full")" ] || fail "disk-full: files left on the full file system: $(ls -A "$TMP/full")"
fi
# A file-size limit of 64 KiB (EFBIG): once with SIGXFSZ ignored by the caller, once with the
# default action (lq must ignore the signal itself and report the error instead of dying).
for mode in ignored default; do
    trap_cmd=""
    [ $mode = ignored ] && trap_cmd="trap '' XFSZ;"
    (eval "$trap_cmd"; ulimit -f 64; exec "$LQ" quantize "$S656" -o "$TMP/big-$mode.gguf" --type F16 -q) \
        >"$TMP/fsize-q-$mode.out" 2>"$TMP/fsize-q-$mode.err"
    got=$?
    check
    [ $got -eq 5 ] || fail "fsize-q-$mode: exit $got, want 5: $(cat "$TMP/fsize-q-$mode.err")"
    one_line_error "fsize-q-$mode" quantize "$TMP/big-$mode.gguf"
    no_output "$TMP/big-$mode.gguf"
    (eval "$trap_cmd"; ulimit -f 4; exec "$LQ" calibrate "$S656" -f "$TEXT" --chunks 1 -c 64 \
        -o "$TMP/big-$mode.imatrix") >"$TMP/fsize-c-$mode.out" 2>"$TMP/fsize-c-$mode.err"
    got=$?
    check
    [ $got -eq 5 ] || fail "fsize-c-$mode: exit $got, want 5: $(cat "$TMP/fsize-c-$mode.err")"
    one_line_error "fsize-c-$mode" calibrate "$TMP/big-$mode.imatrix"
    no_output "$TMP/big-$mode.imatrix"
done

# ---- interruption ---------------------------------------------------------------------------
# wait_for_tmp OUT SECONDS: until the writer's temporary file beside OUT exists.
wait_for_tmp() {
    local i
    for ((i = 0; i < $2 * 20; i++)); do
        compgen -G "$1.tmp*" >/dev/null && return 0
        sleep 0.05
    done
    return 1
}
# A 70B-wide, 1-layer sparse checkpoint (3.0e9 weights, 6 GB apparent, a few KB on disk):
# quantizing it takes minutes, so the signal always arrives in the middle of the tensor loop.
"$GEN" "$TMP/wide" --shape 70b --layers 1 >/dev/null || fail "gen_ckpt failed"
for sig in INT TERM; do
    out="$TMP/int-$sig.gguf"
    "$LQ" quantize "$TMP/wide" -o "$out" --type Q4_0 --no-error -t 2 --json "$out.json" >"$TMP/int-q-$sig.out" \
        2>"$TMP/int-q-$sig.err" &
    pid=$!
    check
    wait_for_tmp "$out" 60 || fail "int-q-$sig: no temporary output appeared"
    sleep 0.3
    kill -s $sig $pid
    wait $pid
    got=$?
    check
    [ $got -eq 130 ] || fail "int-q-$sig: exit $got, want 130: $(cat "$TMP/int-q-$sig.err")"
    one_line_error "int-q-$sig" quantize interrupted
    no_output "$out"
    no_output "$out.json"
done
for sig in INT TERM; do
    out="$TMP/int-$sig.imatrix"
    "$LQ" calibrate "$S4M" -f "$TEXT" -c 128 --chunks 2000 -t 2 -o "$out" --json "$out.json" \
        >"$TMP/int-c-$sig.out" 2>"$TMP/int-c-$sig.err" &
    pid=$!
    sleep 1
    kill -s $sig $pid
    wait $pid
    got=$?
    check
    [ $got -eq 130 ] || fail "int-c-$sig: exit $got, want 130: $(cat "$TMP/int-c-$sig.err")"
    one_line_error "int-c-$sig" calibrate interrupted
    no_output "$out"
    no_output "$out.json"
done

finish
