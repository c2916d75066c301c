/* test_vocab.c — llama.cpp's tokenizer conformance vectors (testvectors/vocab): every test
 * string of every vocabulary must give exactly llama.cpp's ids (no BOS, parse_special off). */
#include "test.h"

static const char *const k_vocabs[] = {
    "llama-spm", "phi-3", "gpt-2", "falcon", "mpt", "starcoder", "refact", "deepseek-llm",
    "deepseek-coder",
};

static const char k_sep[] = "\n__ggml_vocab_test__\n";

/* Parses one line of ids; returns the count (-1 on a malformed line). */
static int64_t parse_ids(const char *line, size_t len, int32_t *ids, int64_t cap) {
    int64_t n = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && line[i] == ' ') i++;
        if (i == len) break;
        long v = 0;
        size_t start = i;
        while (i < len && line[i] >= '0' && line[i] <= '9') v = v * 10 + (line[i++] - '0');
        if (i == start || n >= cap) return -1;
        ids[n++] = (int32_t)v;
    }
    return n;
}

static void show_ids(const char *what, const int32_t *ids, int64_t n) {
    fprintf(stderr, "    %s:", what);
    for (int64_t i = 0; i < n && i < 40; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "%s\n", n > 40 ? " ..." : "");
}

/* Runs one vocabulary; returns the number of cases that matched, *n_cases the total. */
static int run_vocab(const char *name, int *n_cases) {
    char rel[256];
    snprintf(rel, sizeof rel, "testvectors/vocab/ggml-vocab-%s.gguf", name);
    const char *gguf_path = test_shared_path(rel);
    char inp_path[4200], out_path[4200];
    snprintf(inp_path, sizeof inp_path, "%s.inp", gguf_path);
    snprintf(out_path, sizeof out_path, "%s.out", gguf_path);
    size_t inp_len = 0, out_len = 0;
    char *inp = test_read_file(inp_path, &inp_len);
    char *outs = test_read_file(out_path, &out_len);
    CHECKF(inp && outs, "%s: cannot read the .inp/.out files", name);
    *n_cases = 0;
    if (!inp || !outs) return 0;

    lq_error err;
    lq_gguf *g = NULL;
    lq_tokenizer *t = NULL;
    CHECK_OK(lq_gguf_open(gguf_path, &g, &err), &err);
    if (g) CHECK_OK(lq_tokenizer_from_gguf(g, &t, &err), &err);
    int passed = 0;
    const char *p = inp, *end = inp + inp_len, *line = outs, *out_end = outs + out_len;
    int32_t expect[4096];
    for (;;) {
        const char *sep = memmem(p, (size_t)(end - p), k_sep, sizeof k_sep - 1);
        if (!sep) break; /* the piece after the last separator is not a test */
        const char *eol = memchr(line, '\n', (size_t)(out_end - line));
        if (!eol) eol = out_end;
        int64_t n_expect = parse_ids(line, (size_t)(eol - line), expect, 4096);
        CHECKF(n_expect >= 0, "%s: case %d: malformed expected ids", name, *n_cases);
        (*n_cases)++;
        if (t && n_expect >= 0) {
            int32_t *ids = NULL;
            int64_t n = 0;
            lq_status st = lq_tokenize(t, p, (size_t)(sep - p), false, false, &ids, &n, &err);
            bool same = st == LQ_OK && n == n_expect &&
                        (n == 0 || memcmp(ids, expect, (size_t)n * sizeof *ids) == 0);
            if (same) {
                passed++;
            } else {
                fprintf(stderr, "  %s case %d mismatch: '%.*s'%s\n", name, *n_cases - 1,
                        (int)(sep - p > 60 ? 60 : sep - p), p, st ? err.msg : "");
                show_ids("expected", expect, n_expect);
                show_ids("got     ", ids, st ? 0 : n);
            }
            free(ids);
        }
        p = sep + sizeof k_sep - 1;
        line = eol < out_end ? eol + 1 : out_end;
    }
    lq_tokenizer_free(t);
    lq_gguf_close(g);
    free(inp);
    free(outs);
    return passed;
}

int main(void) {
    for (size_t v = 0; v < sizeof k_vocabs / sizeof k_vocabs[0]; v++) {
        int n_cases = 0;
        int passed = run_vocab(k_vocabs[v], &n_cases);
        fprintf(stderr, "%-15s %d/%d cases match llama.cpp\n", k_vocabs[v], passed, n_cases);
        CHECKF(n_cases > 0 && passed == n_cases, "%s: %d of %d cases differ", k_vocabs[v],
               n_cases - passed, n_cases);
    }
    TEST_DONE();
}
