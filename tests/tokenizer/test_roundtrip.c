/* test_roundtrip.c — one vocabulary through different sources must tokenize alike:
 *  - the TinyStories-656K tokenizer.json written as GGUF keys (lq_tokenizer_write_gguf) and
 *    read back gives the same ids as the tokenizer.json on the whole validation text (the
 *    GGUF path uses llama.cpp's score-ordered merging, the JSON path HF's rank order);
 *  - the GPT-2 GGUF vocabulary written as a byte-level tokenizer.json (ByteLevel
 *    pre-tokenizer, merges, <|endoftext|> as a special added token) reproduces llama.cpp's
 *    expected ids for every gpt-2 test string, as does its GGUF re-export;
 *  - parse_special: control tokens are cut out only when asked, user-defined ones always. */
#include "test.h"

#include "vocab_json.h"

static char *read_text(const char *rel, size_t *len) {
    return test_read_file(test_shared_path(rel), len);
}

static lq_tokenizer *reload_through_gguf(const lq_tokenizer *t, const char *path, lq_gguf **g) {
    lq_error err;
    lq_gguf_writer *w = NULL;
    lq_tokenizer *back = NULL;
    CHECK_OK(lq_gguf_writer_open(path, &w, &err), &err);
    if (!w) return NULL;
    lq_status st = lq_tokenizer_write_gguf(t, w, &err);
    CHECK_OK(st, &err);
    if (st) {
        lq_gguf_writer_abort(w);
        return NULL;
    }
    CHECK_OK(lq_gguf_writer_finish(w, &err), &err);
    CHECK_OK(lq_gguf_open(path, g, &err), &err);
    if (*g) CHECK_OK(lq_tokenizer_from_gguf(*g, &back, &err), &err);
    return back;
}

static bool same_ids(const lq_tokenizer *a, const lq_tokenizer *b, const char *text, size_t len,
                     bool add_special, bool parse_special, int64_t *n_out) {
    lq_error err;
    int32_t *x = NULL, *y = NULL;
    int64_t nx = 0, ny = 0;
    CHECK_OK(lq_tokenize(a, text, len, add_special, parse_special, &x, &nx, &err), &err);
    CHECK_OK(lq_tokenize(b, text, len, add_special, parse_special, &y, &ny, &err), &err);
    bool same = x && y && nx == ny && memcmp(x, y, (size_t)nx * sizeof *x) == 0;
    if (n_out) *n_out = nx;
    free(x);
    free(y);
    return same;
}

static void check_656k_gguf(const char *tmp) {
    lq_error err;
    lq_tokenizer *json = NULL;
    CHECK_OK(lq_tokenizer_from_json(test_shared_path("models/tinystories-656k/tokenizer.json"),
                                     &json, &err), &err);
    if (!json) return;
    char path[4200];
    snprintf(path, sizeof path, "%s/656k-vocab.gguf", tmp);
    lq_gguf *g = NULL;
    lq_tokenizer *gguf = reload_through_gguf(json, path, &g);
    size_t len = 0;
    char *text = read_text("text/tinystories-valid.txt", &len);
    if (gguf && text) {
        CHECK(lq_tokenizer_n_vocab(gguf) == 2048 && lq_tokenizer_bos(gguf) == 1 &&
              lq_tokenizer_eos(gguf) == 2 && lq_tokenizer_add_bos(gguf));
        int64_t n = 0;
        bool same = same_ids(json, gguf, text, len, true, false, &n);
        fprintf(stderr, "656K: tokenizer.json vs its GGUF export: %s over %lld tokens\n",
                same ? "identical" : "DIFFERENT", (long long)n);
        CHECK(same && n == 200347);
        for (int32_t id = 0; id < 2048; id++) {
            lq_str a = lq_token_piece(json, id), b = lq_token_piece(gguf, id);
            CHECKF(a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0, "piece %d", id);
        }
    }
    free(text);
    lq_tokenizer_free(gguf);
    lq_gguf_close(g);
    lq_tokenizer_free(json);
}

/* Runs the gpt-2 test strings through t; returns the number matching llama.cpp's ids. */
static int gpt2_cases(const lq_tokenizer *t, int *n_cases) {
    size_t inp_len = 0, out_len = 0;
    char *inp = read_text("testvectors/vocab/ggml-vocab-gpt-2.gguf.inp", &inp_len);
    char *outs = read_text("testvectors/vocab/ggml-vocab-gpt-2.gguf.out", &out_len);
    static const char sep[] = "\n__ggml_vocab_test__\n";
    int passed = 0;
    *n_cases = 0;
    const char *p = inp, *line = outs;
    while (inp && outs) {
        const char *s = memmem(p, (size_t)(inp + inp_len - p), sep, sizeof sep - 1);
        const char *eol = memchr(line, '\n', (size_t)(outs + out_len - line));
        if (!s || !eol) break;
        int32_t expect[1024];
        int64_t n_expect = 0;
        for (const char *q = line; q < eol;) {
            while (q < eol && *q == ' ') q++;
            if (q < eol && n_expect < 1024) expect[n_expect++] = (int32_t)strtol(q, (char **)&q, 10);
        }
        lq_error err;
        int32_t *ids = NULL;
        int64_t n = 0;
        (*n_cases)++;
        if (lq_tokenize(t, p, (size_t)(s - p), false, false, &ids, &n, &err) == LQ_OK &&
            n == n_expect && memcmp(ids, expect, (size_t)n * sizeof *ids) == 0)
            passed++;
        free(ids);
        p = s + sizeof sep - 1;
        line = eol + 1;
    }
    free(inp);
    free(outs);
    return passed;
}

static void check_gpt2_json(const char *tmp) {
    lq_error err;
    lq_gguf *g = NULL;
    CHECK_OK(lq_gguf_open(test_shared_path("testvectors/vocab/ggml-vocab-gpt-2.gguf"), &g, &err),
             &err);
    if (!g) return;
    char *json_text = vj_tokenizer_json(g, "gpt2");
    char path[4200];
    const char *written = vj_write(tmp, "tokenizer.json", json_text);
    CHECK(json_text && written);
    free(json_text);
    snprintf(path, sizeof path, "%s/tokenizer.json", tmp);

    lq_tokenizer *from_json = NULL, *from_gguf = NULL, *again = NULL;
    CHECK_OK(lq_tokenizer_from_json(path, &from_json, &err), &err);
    CHECK_OK(lq_tokenizer_from_gguf(g, &from_gguf, &err), &err);
    if (from_json && from_gguf) {
        int n_cases = 0, passed = gpt2_cases(from_json, &n_cases);
        fprintf(stderr, "gpt-2 as tokenizer.json: %d/%d cases match llama.cpp\n", passed,
                n_cases);
        CHECK(n_cases == 46 && passed == n_cases);

        /* parse_special: <|endoftext|> (control) is cut out only when asked. */
        const char *s = "a<|endoftext|>b";
        int32_t *ids = NULL;
        int64_t n = 0;
        CHECK_OK(lq_tokenize(from_json, s, strlen(s), false, true, &ids, &n, &err), &err);
        CHECK(n == 3 && ids[1] == 50256);
        free(ids);
        CHECK_OK(lq_tokenize(from_json, s, strlen(s), false, false, &ids, &n, &err), &err);
        CHECK(n > 3);
        for (int64_t i = 0; i < n; i++) CHECK(ids[i] != 50256);
        free(ids);
        CHECK(same_ids(from_json, from_gguf, s, strlen(s), false, true, NULL));

        /* Re-export of the GGUF vocabulary (gpt2 model, merges, pre name) reads back alike. */
        snprintf(path, sizeof path, "%s/gpt2-vocab.gguf", tmp);
        lq_gguf *g2 = NULL;
        again = reload_through_gguf(from_gguf, path, &g2);
        if (again) {
            int passed2 = gpt2_cases(again, &n_cases);
            CHECK(n_cases == 46 && passed2 == n_cases);
        }
        lq_tokenizer_free(again);
        lq_gguf_close(g2);
    }
    lq_tokenizer_free(from_json);
    lq_tokenizer_free(from_gguf);
    lq_gguf_close(g);
}

/* mpt's whitespace runs are user-defined tokens: cut out even with parse_special off. */
static void check_user_defined(void) {
    lq_error err;
    lq_gguf *g = NULL;
    lq_tokenizer *t = NULL;
    CHECK_OK(lq_gguf_open(test_shared_path("testvectors/vocab/ggml-vocab-mpt.gguf"), &g, &err),
             &err);
    if (g) CHECK_OK(lq_tokenizer_from_gguf(g, &t, &err), &err);
    if (t) {
        const char *s = "a    b"; /* 4 spaces: token 50274 */
        int32_t *ids = NULL;
        int64_t n = 0;
        CHECK_OK(lq_tokenize(t, s, strlen(s), false, false, &ids, &n, &err), &err);
        CHECK(n == 3 && ids[1] == 50274);
        free(ids);
    }
    lq_tokenizer_free(t);
    lq_gguf_close(g);
}

int main(void) {
    const char *tmp = test_tmpdir("tokenizer");
    check_656k_gguf(tmp);
    check_gpt2_json(tmp);
    check_user_defined();
    TEST_DONE();
}
