/* test_text.c — calibration text readers: plain text and JSON Lines, each plain and
 * gzip-compressed (recognised by content: a gzip file named .txt and a plain file named .gz
 * both read right), documents joined with a blank line, errors naming the file and line. */
#include "test.h"

#include <zlib.h>

static char dir[4096];

static const char *path_of(const char *name) {
    static char buf[4][4096];
    static int slot;
    char *p = buf[slot++ & 3];
    snprintf(p, 4096, "%s/%s", dir, name);
    return p;
}

static void write_plain(const char *name, const char *s, size_t n) {
    FILE *f = fopen(path_of(name), "wb");
    fwrite(s, 1, n, f);
    fclose(f);
}

static void write_gzip(const char *name, const char *s, size_t n) {
    gzFile f = gzopen(path_of(name), "wb9");
    gzwrite(f, s, (unsigned)n);
    gzclose(f);
}

/* Reads name with the given format and checks the text equals want[0..want_len). */
static void expect_text(const char *name, const char *format, const char *want, size_t want_len) {
    lq_error err;
    char *text = NULL;
    size_t len = 0;
    lq_status st = lq_calib_read_text(path_of(name), format, &text, &len, &err);
    CHECKF(st == LQ_OK, "%s: %s", name, err.msg);
    CHECKF(st || (len == want_len && !memcmp(text, want, len) && text[len] == '\0'), "%s: got %zu bytes '%.60s'",
           name, len, text ? text : "");
    free(text);
}

static void expect_error(const char *name, const char *format, lq_status want, const char *needle) {
    lq_error err;
    lq_error_clear(&err);
    char *text = NULL;
    size_t len = 0;
    lq_status st = lq_calib_read_text(path_of(name), format, &text, &len, &err);
    CHECKF(st == want && !text, "%s: status %d, want %d", name, (int)st, (int)want);
    CHECKF(strstr(err.msg, path_of(name)) && strstr(err.msg, needle), "%s: message '%s' lacks '%s'", name, err.msg,
           needle);
}

/* A text longer than the reader's 64 KiB steps, with non-ASCII bytes and a NUL. */
static char *make_long_text(size_t *n) {
    size_t len = 300000;
    char *s = (char *)malloc(len);
    uint64_t seed = 3;
    const char *words[] = {"Once ", "upon ", "a ", "time ", "\xc3\xa9t\xc3\xa9 ", "\n", "\xe2\x80\x9c", "x"};
    size_t at = 0;
    while (at < len) {
        const char *w = words[test_rand_u64(&seed) % 8];
        size_t k = strlen(w);
        if (at + k > len) k = len - at;
        memcpy(s + at, w, k);
        at += k;
    }
    s[1000] = '\0';
    *n = len;
    return s;
}

static void test_plain(void) {
    size_t n;
    char *s = make_long_text(&n);
    write_plain("a.txt", s, n);
    write_gzip("a.txt.gz", s, n);
    write_gzip("gzip-named.txt", s, n); /* gzip content, misleading name */
    write_plain("plain-named.gz", s, n); /* plain content, misleading name */
    expect_text("a.txt", NULL, s, n);
    expect_text("a.txt.gz", NULL, s, n);
    expect_text("gzip-named.txt", NULL, s, n);
    expect_text("plain-named.gz", "auto", s, n);
    expect_text("a.txt", "text", s, n);
    write_plain("empty.txt", "", 0);
    expect_text("empty.txt", NULL, "", 0);
    /* a text starting with '{' is plain text when asked */
    write_plain("brace.txt", "{not json}\nmore", 15);
    expect_text("brace.txt", "text", "{not json}\nmore", 15);
    expect_error("brace.txt", NULL, LQ_ERR_FORMAT, "line 1");
    free(s);
}

static void test_jsonl(void) {
    const char *jl = "{\"text\": \"First story.\", \"id\": 1}\r\n"
                     "\n"
                     "{\"meta\": {\"a\": [1, 2]}, \"text\": \"Second\\nline \\u00e9\\u201c\"}\n"
                     "   \n"
                     "{\"text\": \"\"}\n"
                     "{\"text\": \"Last\"}"; /* no final newline */
    const char *want = "First story.\n\nSecond\nline \xc3\xa9\xe2\x80\x9c\n\n\n\nLast";
    write_plain("d.jsonl", jl, strlen(jl));
    write_gzip("d.jsonl.gz", jl, strlen(jl));
    write_plain("d.data", jl, strlen(jl)); /* detected by its leading '{' */
    write_gzip("d.gz", jl, strlen(jl));
    expect_text("d.jsonl", NULL, want, strlen(want));
    expect_text("d.jsonl.gz", NULL, want, strlen(want));
    expect_text("d.data", NULL, want, strlen(want));
    expect_text("d.gz", "jsonl", want, strlen(want));
    /* the same file read as plain text is the file itself */
    expect_text("d.jsonl", "text", jl, strlen(jl));

    const char *bad_json = "{\"text\": \"ok\"}\n{\"text\": \"ok\"}\n\n{\"text\": \"unterminated}\n";
    write_plain("bad.jsonl", bad_json, strlen(bad_json));
    expect_error("bad.jsonl", NULL, LQ_ERR_FORMAT, "line 4: bad JSON");
    write_gzip("bad.jsonl.gz", bad_json, strlen(bad_json));
    expect_error("bad.jsonl.gz", NULL, LQ_ERR_FORMAT, "line 4: bad JSON");
    const char *no_text = "{\"text\": \"ok\"}\n{\"txt\": \"typo\"}\n";
    write_plain("notext.jsonl", no_text, strlen(no_text));
    expect_error("notext.jsonl", NULL, LQ_ERR_FORMAT, "line 2: missing \"text\" field");
    const char *num_text = "{\"text\": 42}\n";
    write_plain("num.jsonl", num_text, strlen(num_text));
    expect_error("num.jsonl", NULL, LQ_ERR_FORMAT, "line 1: \"text\" is not a string");
    const char *array = "{\"text\": \"a\"}\n[\"text\"]\n";
    write_plain("array.jsonl", array, strlen(array));
    expect_error("array.jsonl", "jsonl", LQ_ERR_FORMAT, "line 2: not a JSON object");
    write_plain("blank.jsonl", "\n \n", 3);
    expect_error("blank.jsonl", NULL, LQ_ERR_FORMAT, "no JSON lines");
}

static void test_errors(void) {
    expect_error("missing.txt", NULL, LQ_ERR_IO, "cannot open");
    expect_error("a.txt", "csv", LQ_ERR_INVALID, "unknown text format");
    /* a truncated gzip stream is an error, not a short text */
    size_t n;
    char *s = make_long_text(&n);
    write_gzip("full.gz", s, n);
    size_t gz_len = 0;
    char *gz = (char *)test_read_file(path_of("full.gz"), &gz_len);
    write_plain("trunc.gz", gz, gz_len / 2);
    lq_error err;
    char *text = NULL;
    size_t len = 0;
    lq_status st = lq_calib_read_text(path_of("trunc.gz"), NULL, &text, &len, &err);
    CHECKF(st != LQ_OK && strstr(err.msg, "trunc.gz"), "truncated gzip: status %d, %zu bytes", (int)st, len);
    free(text);
    free(gz);
    free(s);
}

int main(void) {
    snprintf(dir, sizeof dir, "%s", test_tmpdir("calib-text"));
    test_plain();
    test_jsonl();
    test_errors();
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (!test_failures && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    TEST_DONE();
}
