/* test_codec_cli.c — `lq codec quantize|dequantize` ($LQ_BIN) on the test vectors, and its
 * errors: one line on stderr, the documented exit code, no output file left behind. */
#include "test.h"

#include <dirent.h>
#include <sys/wait.h>

#define ROWS 32
#define COLS 4096

static const char *lq_bin;
static const char *tmp;

/* Runs `$LQ_BIN args` with stdout/stderr captured in tmp; returns the exit code. */
static int run_lq(const char *args) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s >'%s/out.txt' 2>'%s/err.txt'", lq_bin, args, tmp, tmp);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp_text(const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    size_t n = 0;
    char *p = (char *)test_read_file(path, &n);
    if (!p) return calloc(1, 1);
    char *s = (char *)realloc(p, n + 1);
    s[n] = '\0';
    return s;
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static bool file_exists(const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    return access(path, F_OK) == 0;
}

static bool same_file(const char *a, const void *want, size_t n) {
    size_t size = 0;
    void *got = test_read_file(a, &size);
    bool same = got && size == n && memcmp(got, want, n) == 0;
    free(got);
    return same;
}

static void write_file(const char *name, const void *data, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
}

/* No temporary files left in tmp. */
static bool no_temp_files(void) {
    DIR *d = opendir(tmp);
    bool clean = true;
    for (struct dirent *e; d && (e = readdir(d));)
        if (strstr(e->d_name, ".tmp.")) clean = false;
    if (d) closedir(d);
    return clean;
}

/* An error: expected exit code, exactly one line on stderr containing `needle`, no output. */
static void expect_error(const char *args, int code, const char *needle, const char *out_name) {
    int rc = run_lq(args);
    char *err = slurp_text("err.txt");
    CHECKF(rc == code, "'lq %s': exit %d, expected %d (stderr: %s)", args, rc, code, err);
    CHECKF(count_lines(err) == 1, "'lq %s': stderr has %d lines: %s", args, count_lines(err), err);
    CHECKF(strstr(err, needle) != NULL, "'lq %s': stderr lacks '%s': %s", args, needle, err);
    if (out_name) CHECKF(!file_exists(out_name), "'lq %s' left %s behind", args, out_name);
    free(err);
}

static void check_type(const char *type, const char *input, const char *imatrix) {
    char args[8192], path[4096], rel[256];
    for (int with_imp = 0; with_imp < 2; with_imp++) {
        const char *variant = with_imp ? "imatrix" : "ref";
        snprintf(rel, sizeof rel, "testvectors/quants/%s.%s.bin", type, variant);
        size_t n_bin = 0;
        void *want = test_read_file(test_shared_path(rel), &n_bin);
        snprintf(args, sizeof args, "codec quantize --type %s --cols %d %s%s%s '%s' '%s/q.bin'", type,
                 COLS, with_imp ? "--imatrix '" : "", with_imp ? imatrix : "", with_imp ? "'" : "",
                 input, tmp);
        int rc = run_lq(args);
        CHECKF(rc == 0, "'lq %s' exited %d", args, rc);
        snprintf(path, sizeof path, "%s/q.bin", tmp);
        CHECKF(same_file(path, want, n_bin), "%s %s: lq codec quantize output differs from llama.cpp",
               type, variant);

        /* decode: the library's decoder (itself checked in test_legacy) on the same blocks */
        snprintf(args, sizeof args, "codec dequantize --type %s --cols %d '%s/q.bin' '%s/q.f32'", type,
                 COLS, tmp, tmp);
        rc = run_lq(args);
        CHECKF(rc == 0, "'lq %s' exited %d", args, rc);
        float *deq = (float *)calloc(ROWS * COLS, sizeof(float));
        lq_error err;
        CHECK_OK(lq_dequantize_rows((lq_type)lq_type_from_name(type), want, deq, ROWS, COLS, &err), &err);
        snprintf(path, sizeof path, "%s/q.f32", tmp);
        CHECKF(same_file(path, deq, sizeof(float) * ROWS * COLS), "%s %s: lq codec dequantize differs",
               type, variant);
        free(deq);
        free(want);
    }
}

int main(void) {
    lq_bin = getenv("LQ_BIN");
    if (!lq_bin || access(lq_bin, X_OK) != 0) TEST_SKIP("LQ_BIN is not set or not executable");
    /* test_shared_path's buffers are reused: keep copies */
    char *input = strdup(test_shared_path("testvectors/quants/input.f32"));
    char *imatrix = strdup(test_shared_path("testvectors/quants/imatrix.f32"));
    tmp = test_tmpdir("codec-cli");

    const char *types[] = {"q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "iq4_nl", "iq4_xs"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) check_type(types[i], input, imatrix);

    /* --help */
    CHECK(run_lq("codec --help") == 0);
    char *out = slurp_text("out.txt");
    CHECK(strstr(out, "usage: lq codec quantize") != NULL && strstr(out, "Exit codes") != NULL);
    free(out);

    /* errors */
    float row[COLS + 1];
    for (int i = 0; i <= COLS; i++) row[i] = 0.001f * (float)(i % 97);
    write_file("short.f32", row, sizeof(float) * (COLS + 1)); /* one row plus one float */
    char args[8192];
    snprintf(args, sizeof args, "codec quantize --type q4_0 --cols %d '%s/short.f32' '%s/e.bin'", COLS, tmp, tmp);
    expect_error(args, 3, "not a multiple of the row size", "e.bin");
    snprintf(args, sizeof args, "codec quantize --type q9_9 --cols %d '%s' '%s/e.bin'", COLS, input, tmp);
    expect_error(args, 2, "unknown type 'q9_9'", "e.bin");
    snprintf(args, sizeof args, "codec quantize --type iq4_xs --cols 4000 '%s' '%s/e.bin'", input, tmp);
    expect_error(args, 2, "not a multiple of the iq4_xs block size 256", "e.bin");
    snprintf(args, sizeof args, "codec quantize --type q4_0 --cols %d '%s/missing.f32' '%s/e.bin'", COLS, tmp, tmp);
    expect_error(args, 5, "missing.f32", "e.bin");
    snprintf(args, sizeof args, "codec dequantize --type q8_0 --cols %d '%s/short.f32' '%s/e.f32'", COLS, tmp, tmp);
    expect_error(args, 3, "not a multiple of the q8_0 row size", "e.f32");
    snprintf(args, sizeof args, "codec quantize --type q4_0 --cols %d --imatrix '%s/short.f32' '%s' '%s/e.bin'",
             COLS, tmp, input, tmp);
    expect_error(args, 3, "short.f32", "e.bin");
    snprintf(args, sizeof args, "codec quantize --type iq2_xxs --cols 256 '%s' '%s/e.bin'", input, tmp);
    expect_error(args, 4, "iq2_xxs", "e.bin");
    expect_error("codec quantize --type q4_0", 2, "expected quantize|dequantize", NULL);
    expect_error("codec frobnicate --type q4_0 --cols 32 a b", 2, "unknown mode", NULL);
    row[1000] = NAN;
    write_file("nan.f32", row, sizeof(float) * COLS);
    snprintf(args, sizeof args, "codec quantize --type q5_1 --cols %d '%s/nan.f32' '%s/e.bin'", COLS, tmp, tmp);
    expect_error(args, 7, "row 0, column 1000", "e.bin");
    row[1000] = 2e7f; /* Q8_0 scale 2e7/127 > 65504 */
    write_file("huge.f32", row, sizeof(float) * COLS);
    snprintf(args, sizeof args, "codec quantize --type q8_0 --cols %d '%s/huge.f32' '%s/e.bin'", COLS, tmp, tmp);
    expect_error(args, 7, "row 0, block 31 (columns 992..1023): the block scale overflows fp16", "e.bin");
    row[1000] = 1e30f; /* beyond any fp16-scaled format */
    write_file("huge.f32", row, sizeof(float) * COLS);
    snprintf(args, sizeof args, "codec quantize --type iq4_xs --cols %d '%s/huge.f32' '%s/e.bin'", COLS, tmp, tmp);
    expect_error(args, 7, "row 0, column 1000: 1e+30 is too large", "e.bin");
    CHECK(no_temp_files());
    free(input);
    free(imatrix);
    TEST_DONE();
}
