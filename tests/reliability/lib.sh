# lib.sh — shared by the reliability tests: counters, running lq with its exit code and
# stderr kept, and the one-line error check. Env: LQ_BIN, LQ_GEN_CKPT, LQ_CHECK_FINITE,
# LQ_SHARED_DIR, LQ_TEST_TMPDIR.
set -u
LQ="${LQ_BIN:?LQ_BIN must point at the lq binary}"
GEN="${LQ_GEN_CKPT:?LQ_GEN_CKPT must point at gen_ckpt}"
SHARED="${LQ_SHARED_DIR:-}"
TMP="${LQ_TEST_TMPDIR:-/tmp}/lq-test-rel-$(basename "$0" .sh)-$$"
rm -rf "$TMP"
mkdir -p "$TMP"
cleanup_hooks=()
cleanup() {
    for h in "${cleanup_hooks[@]}"; do eval "$h"; done
    rm -rf "$TMP"
}
trap cleanup EXIT

checks=0
failures=0
fail() { failures=$((failures + 1)); echo "FAIL: $*" >&2; }
check() { checks=$((checks + 1)); }
# expect COND_DESCRIPTION COMMAND...: one check that a command succeeds.
expect() {
    local what=$1
    shift
    check
    "$@" || fail "$what"
}

# run NAME EXPECTED_CODE ARGS...: runs lq; stdout/stderr in $TMP/NAME.{out,err}.
run() {
    local name=$1 want=$2
    shift 2
    "$LQ" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
    local got=$?
    check
    [ "$got" -eq "$want" ] || fail "$name: exit $got, want $want: $(head -c 400 "$TMP/$name.err")"
}

# one_line_error NAME CMD WORD...: stderr of NAME is one line "lq CMD: ..." holding every WORD.
one_line_error() {
    local name=$1 cmd=$2
    shift 2
    check
    [ "$(grep -c . "$TMP/$name.err")" -eq 1 ] || fail "$name: stderr is not one line: $(cat "$TMP/$name.err")"
    check
    grep -q "^lq $cmd: " "$TMP/$name.err" || fail "$name: stderr does not start with 'lq $cmd: ': $(cat "$TMP/$name.err")"
    for w in "$@"; do
        check
        grep -qiF -- "$w" "$TMP/$name.err" || fail "$name: stderr does not mention '$w': $(cat "$TMP/$name.err")"
    done
}

# no_output PATH: neither PATH nor a temporary file beside it (PATH.tmp.*) exists.
no_output() {
    check
    [ ! -e "$1" ] || fail "$1 exists after a failed run"
    check
    ! compgen -G "$1.tmp*" >/dev/null || fail "temporary files left beside $1: $(ls "$1".tmp* 2>/dev/null)"
}

finish() {
    echo "$checks checks, $failures failed" >&2
    [ "$checks" -gt 0 ] && [ "$failures" -eq 0 ]
    exit $?
}
