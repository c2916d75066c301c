/* test_hf_pre.c — byte-level pre-tokenizers against Hugging Face tokenizers (0.23.3).
 *
 * The GPT-2 vocabulary is written as a tokenizer.json with the pre-tokenizers of Llama-3
 * (Split regex + ByteLevel, ignore_merges), Qwen2 (its Split regex, NFC) and SmolLM
 * (Digits + ByteLevel). For each, ids must equal HF's on llama.cpp's 46 test strings
 * (tests/tokenizer/hf/gpt2-vocab-VARIANT.out, made with HF's Tokenizer.encode) and on the
 * first 100233 bytes of WikiText-2 (count and FNV-1a hash of HF's ids). Then each is written
 * as GGUF keys (pre "llama-bpe", "qwen2", "smollm": llama.cpp's regex sets) and read back:
 * same ids again. */
#include "vocab_json.h"

typedef struct variant {
    const char *name, *pre;
    int64_t wiki_n;
    uint64_t wiki_hash;
} variant;

static const variant k_variants[] = {
    {"llama3", "llama-bpe", 23796, 0x4d2851f06a2d9a8bull},
    {"qwen2", "qwen2", 25012, 0x9fc5615017a42e24ull},
    {"smollm", "smollm", 25012, 0x9fc5615017a42e24ull},
};

static const char k_sep[] = "\n__ggml_vocab_test__\n";

static uint64_t fnv1a_ids(const int32_t *ids, int64_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (int64_t i = 0; i < n; i++)
        for (int b = 0; b < 4; b++) {
            h ^= ((uint32_t)ids[i] >> (8 * b)) & 0xFF;
            h *= 0x100000001b3ull;
        }
    return h;
}

/* Number of the 46 cases where t gives the ids of the .out file. */
static int run_cases(const lq_tokenizer *t, const char *inp, size_t inp_len, const char *outs,
                     size_t out_len, int *n_cases) {
    int passed = 0;
    *n_cases = 0;
    const char *p = inp, *line = outs;
    for (;;) {
        const char *s = memmem(p, (size_t)(inp + inp_len - p), k_sep, sizeof k_sep - 1);
        const char *eol = memchr(line, '\n', (size_t)(outs + out_len - line));
        if (!s || !eol) break;
        int32_t expect[1024];
        int64_t n_expect = 0;
        for (const char *q = line; q < eol;) {
            char *end;
            long v = strtol(q, &end, 10);
            if (end == q) break;
            if (n_expect < 1024) expect[n_expect++] = (int32_t)v;
            q = end;
        }
        lq_error err;
        int32_t *ids = NULL;
        int64_t n = 0;
        (*n_cases)++;
        if (lq_tokenize(t, p, (size_t)(s - p), false, false, &ids, &n, &err) == LQ_OK &&
            n == n_expect && memcmp(ids, expect, (size_t)n * sizeof *ids) == 0)
            passed++;
        else
            fprintf(stderr, "  case %d differs: '%.*s'\n", *n_cases - 1,
                    (int)(s - p > 40 ? 40 : s - p), p);
        free(ids);
        p = s + sizeof k_sep - 1;
        line = eol + 1;
    }
    return passed;
}

static void check_tokenizer(const lq_tokenizer *t, const variant *v, const char *what,
                            const char *inp, size_t inp_len, const char *outs, size_t out_len,
                            const char *wiki) {
    int n_cases = 0, passed = run_cases(t, inp, inp_len, outs, out_len, &n_cases);
    lq_error err;
    int32_t *ids = NULL;
    int64_t n = 0;
    CHECK_OK(lq_tokenize(t, wiki, 100233, false, false, &ids, &n, &err), &err);
    uint64_t h = fnv1a_ids(ids, n);
    fprintf(stderr, "%-7s %-15s %d/%d cases, WikiText %lld ids %s HF\n", v->name, what, passed,
            n_cases, (long long)n, n == v->wiki_n && h == v->wiki_hash ? "=" : "!=");
    CHECK(n_cases == 46 && passed == n_cases);
    CHECK(n == v->wiki_n && h == v->wiki_hash);
    free(ids);
}

int main(int argc, char **argv) {
    CHECK(argc == 2);
    if (argc != 2) TEST_DONE();
    const char *tmp = test_tmpdir("tokenizer-hf");
    size_t inp_len = 0, wiki_len = 0;
    char *inp = test_read_file(test_shared_path("testvectors/vocab/ggml-vocab-gpt-2.gguf.inp"),
                               &inp_len);
    char *wiki = test_read_file(test_shared_path("text/wikitext-2-raw-test.txt"), &wiki_len);
    lq_error err;
    lq_gguf *g = NULL;
    CHECK_OK(lq_gguf_open(test_shared_path("testvectors/vocab/ggml-vocab-gpt-2.gguf"), &g, &err),
             &err);
    CHECK(inp && wiki && wiki_len >= 100233);
    for (size_t k = 0; g && inp && wiki && wiki_len >= 100233 && k < 3; k++) {
        const variant *v = &k_variants[k];
        char out_path[4200];
        snprintf(out_path, sizeof out_path, "%s/gpt2-vocab-%s.out", argv[1], v->name);
        size_t out_len = 0;
        char *outs = test_read_file(out_path, &out_len);
        CHECKF(outs != NULL, "%s missing", out_path);
        char *json = vj_tokenizer_json(g, v->name);
        const char *path = vj_write(tmp, "tokenizer.json", json);
        free(json);
        lq_tokenizer *t = NULL, *back = NULL;
        if (path) CHECK_OK(lq_tokenizer_from_json(path, &t, &err), &err);
        if (t && outs) {
            check_tokenizer(t, v, "tokenizer.json", inp, inp_len, outs, out_len, wiki);
            /* As GGUF keys: llama.cpp's regex set for the pre name, read back. */
            char gguf_path[4200];
            snprintf(gguf_path, sizeof gguf_path, "%s/%s.gguf", tmp, v->name);
            lq_gguf_writer *w = NULL;
            lq_gguf *g2 = NULL;
            CHECK_OK(lq_gguf_writer_open(gguf_path, &w, &err), &err);
            if (w) {
                CHECK_OK(lq_tokenizer_write_gguf(t, w, &err), &err);
                CHECK_OK(lq_gguf_writer_finish(w, &err), &err);
            }
            CHECK_OK(lq_gguf_open(gguf_path, &g2, &err), &err);
            if (g2) {
                int64_t pi = lq_gguf_find_key(g2, "tokenizer.ggml.pre");
                lq_str pre = pi >= 0 ? lq_gguf_get_str(g2, pi) : (lq_str){"", 0};
                CHECKF(pre.len == strlen(v->pre) && !memcmp(pre.ptr, v->pre, pre.len),
                       "%s: pre '%.*s'", v->name, (int)pre.len, pre.ptr);
                CHECK_OK(lq_tokenizer_from_gguf(g2, &back, &err), &err);
            }
            if (back) check_tokenizer(back, v, "as GGUF", inp, inp_len, outs, out_len, wiki);
            lq_tokenizer_free(back);
            lq_gguf_close(g2);
        }
        lq_tokenizer_free(t);
        free(outs);
    }
    lq_gguf_close(g);
    free(inp);
    free(wiki);
    TEST_DONE();
}
