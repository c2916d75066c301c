/* test_robust.c — bad input gives errors, never crashes:
 *  - malformed tokenizer.json files (syntax, shapes, ids, unsupported models/normalizers);
 *  - GGUF files with missing or mistyped tokenizer keys, NaN scores, unknown models and
 *    pre-tokenizers (written with the GGUF writer);
 *  - random byte strings (invalid UTF-8, NULs, control characters) through every vocabulary:
 *    every id in range; byte-level and byte-fallback vocabularies give the text back. */
#include "test.h"

static const char *tmp_dir;

static const char *write_tmp(const char *name, const char *text) {
    static char path[4200];
    snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    return path;
}

typedef struct bad_json {
    const char *text;
    lq_status want;
} bad_json;

#define VOCAB "\"vocab\":{\"a\":0,\"b\":1,\"ab\":2,\"\\u2581\":3}"
#define NORM \
    "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":" \
    "\"\\u2581\"},{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\\u2581\"}]}"

static const bad_json k_bad_json[] = {
    {"", LQ_ERR_FORMAT},
    {"{\"model\": ", LQ_ERR_FORMAT},
    {"[1, 2]", LQ_ERR_FORMAT},
    {"{}", LQ_ERR_FORMAT},
    {"{\"model\":{\"type\":\"Unigram\",\"vocab\":[]}}", LQ_ERR_UNSUPPORTED},
    {"{\"model\":{\"type\":\"BPE\",\"vocab\":[1],\"merges\":[]}," NORM "}", LQ_ERR_FORMAT},
    {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-1},\"merges\":[]}," NORM "}", LQ_ERR_FORMAT},
    {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":\"x\"},\"merges\":[]}," NORM "}", LQ_ERR_FORMAT},
    {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":0},\"merges\":[]}," NORM "}",
     LQ_ERR_FORMAT},
    {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":4294967296},\"merges\":[]}," NORM "}",
     LQ_ERR_FORMAT},
    /* A lone huge id must not make the loader allocate gigabytes (found by the fuzzer). */
    {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":2147483646},\"merges\":[]}," NORM
     "}", LQ_ERR_FORMAT},
    {"{\"model\":{\"type\":\"BPE\"," VOCAB ",\"merges\":[]},\"added_tokens\":[{\"id\":300000000,"
     "\"content\":\"x\"}]," NORM "}", LQ_ERR_FORMAT},
    {"{\"model\":{\"type\":\"BPE\"," VOCAB ",\"merges\":7}," NORM "}", LQ_ERR_FORMAT},
    {"{\"model\":{\"type\":\"BPE\"," VOCAB ",\"merges\":[3]}," NORM "}", LQ_ERR_FORMAT},
    {"{\"model\":{\"type\":\"BPE\"," VOCAB ",\"merges\":[[\"a\"]]}," NORM "}", LQ_ERR_FORMAT},
    {"{\"model\":{\"type\":\"BPE\"," VOCAB ",\"merges\":[]},\"added_tokens\":[{\"id\":9}]," NORM
     "}", LQ_ERR_FORMAT},
    {"{\"model\":{\"type\":\"BPE\"," VOCAB ",\"merges\":[]}}", LQ_ERR_UNSUPPORTED},
    {"{\"model\":{\"type\":\"BPE\"," VOCAB ",\"merges\":[]},\"normalizer\":{\"type\":"
     "\"Lowercase\"}}", LQ_ERR_UNSUPPORTED},
    {"{\"model\":{\"type\":\"BPE\"," VOCAB ",\"merges\":[]},\"pre_tokenizer\":{\"type\":"
     "\"Whitespace\"}}", LQ_ERR_UNSUPPORTED},
    {"{\"model\":{\"type\":\"BPE\"," VOCAB ",\"merges\":[]},\"pre_tokenizer\":{\"type\":"
     "\"Split\",\"pattern\":{\"Regex\":\"(\"},\"behavior\":\"Isolated\"}}", LQ_ERR_UNSUPPORTED},
};

static void check_bad_json(void) {
    lq_error err;
    lq_tokenizer *t = (lq_tokenizer *)1;
    CHECK(lq_tokenizer_from_json("/nonexistent/tokenizer.json", &t, &err) == LQ_ERR_IO &&
          t == NULL && strstr(err.msg, "/nonexistent/tokenizer.json"));
    for (size_t k = 0; k < sizeof k_bad_json / sizeof k_bad_json[0]; k++) {
        const char *path = write_tmp("bad.json", k_bad_json[k].text);
        t = NULL;
        lq_status st = lq_tokenizer_from_json(path, &t, &err);
        CHECKF(st == k_bad_json[k].want && t == NULL && strstr(err.msg, "bad.json") &&
                   !strchr(err.msg, '\n'),
               "case %zu: status %d (%s)", k, (int)st, st ? err.msg : "ok");
        lq_tokenizer_free(t);
    }
    /* The smallest valid file: merges apply, unknown characters become nothing but errors. */
    const char *ok = "{\"model\":{\"type\":\"BPE\"," VOCAB ",\"merges\":[\"a b\"]}," NORM "}";
    t = NULL;
    CHECK_OK(lq_tokenizer_from_json(write_tmp("ok.json", ok), &t, &err), &err);
    if (t) {
        int32_t *ids = NULL;
        int64_t n = 0;
        CHECK_OK(lq_tokenize(t, "ab a", 4, false, false, &ids, &n, &err), &err);
        CHECK(n == 4 && ids[0] == 3 && ids[1] == 2 && ids[2] == 3 && ids[3] == 0);
        free(ids);
        /* 'c' has no token, no byte token and there is no <unk>: an error naming the file. */
        ids = NULL;
        CHECK(lq_tokenize(t, "c", 1, false, false, &ids, &n, &err) == LQ_ERR_INVALID &&
              ids == NULL && strstr(err.msg, "ok.json"));
    }
    lq_tokenizer_free(t);
}

/* A vocabulary-only GGUF with the keys a callback sets. */
typedef void (*set_keys_fn)(lq_gguf_writer *w, lq_error *err);

static lq_status gguf_case(set_keys_fn fn, lq_error *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/bad-vocab.gguf", tmp_dir);
    lq_gguf_writer *w = NULL;
    lq_status st = lq_gguf_writer_open(path, &w, err);
    if (st) return st;
    fn(w, err);
    if ((st = lq_gguf_writer_finish(w, err))) return st;
    lq_gguf *g = NULL;
    if ((st = lq_gguf_open(path, &g, err))) return st;
    lq_tokenizer *t = NULL;
    st = lq_tokenizer_from_gguf(g, &t, err);
    if (st == LQ_OK) {
        int32_t *ids = NULL;
        int64_t n = 0;
        st = lq_tokenize(t, "hello world", 11, true, true, &ids, &n, err);
        free(ids);
    }
    lq_tokenizer_free(t);
    lq_gguf_close(g);
    return st;
}

static const lq_str k_tokens[4] = {{"<unk>", 5}, {"<s>", 3}, {"</s>", 4}, {"\xe2\x96\x81", 3}};
static const float k_scores[4] = {0, 0, 0, -1};
static const int32_t k_types[4] = {2, 3, 3, 1};

static void base_spm(lq_gguf_writer *w, lq_error *err) {
    lq_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama", 5, err);
    lq_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", k_tokens, 4, err);
}
static void keys_ok(lq_gguf_writer *w, lq_error *err) {
    base_spm(w, err);
    lq_gguf_writer_set_arr(w, "tokenizer.ggml.scores", LQ_GGUF_FLOAT32, k_scores, 4, err);
    lq_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", LQ_GGUF_INT32, k_types, 4, err);
}
static void keys_no_model(lq_gguf_writer *w, lq_error *err) {
    lq_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", k_tokens, 4, err);
}
static void keys_bad_model(lq_gguf_writer *w, lq_error *err) {
    lq_gguf_writer_set_str(w, "tokenizer.ggml.model", "t5", 2, err);
    lq_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", k_tokens, 4, err);
}
static void keys_model_not_string(lq_gguf_writer *w, lq_error *err) {
    lq_gguf_writer_set_u32(w, "tokenizer.ggml.model", 1, err);
}
static void keys_no_tokens(lq_gguf_writer *w, lq_error *err) {
    lq_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama", 5, err);
}
static void keys_tokens_not_strings(lq_gguf_writer *w, lq_error *err) {
    lq_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama", 5, err);
    lq_gguf_writer_set_arr(w, "tokenizer.ggml.tokens", LQ_GGUF_INT32, k_types, 4, err);
}
static void keys_scores_short(lq_gguf_writer *w, lq_error *err) {
    base_spm(w, err);
    lq_gguf_writer_set_arr(w, "tokenizer.ggml.scores", LQ_GGUF_FLOAT32, k_scores, 3, err);
}
static void keys_scores_nan(lq_gguf_writer *w, lq_error *err) {
    base_spm(w, err);
    float s[4] = {0, 0, 0, NAN};
    lq_gguf_writer_set_arr(w, "tokenizer.ggml.scores", LQ_GGUF_FLOAT32, s, 4, err);
}
static void keys_types_f32(lq_gguf_writer *w, lq_error *err) {
    base_spm(w, err);
    lq_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", LQ_GGUF_FLOAT32, k_scores, 4, err);
}
static void keys_bos_string(lq_gguf_writer *w, lq_error *err) {
    base_spm(w, err);
    lq_gguf_writer_set_str(w, "tokenizer.ggml.bos_token_id", "1", 1, err);
}
static void keys_gpt2_no_merges(lq_gguf_writer *w, lq_error *err) {
    lq_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2", 4, err);
    lq_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", k_tokens, 4, err);
}
static void keys_gpt2_bad_pre(lq_gguf_writer *w, lq_error *err) {
    keys_gpt2_no_merges(w, err);
    lq_gguf_writer_set_str(w, "tokenizer.ggml.pre", "no-such-pre", 11, err);
    lq_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", k_tokens, 4, err);
}
static void keys_add_bos_without_bos(lq_gguf_writer *w, lq_error *err) {
    keys_gpt2_no_merges(w, err);
    lq_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", k_tokens, 1, err);
    lq_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true, err);
}

static void check_bad_gguf(void) {
    static const struct {
        set_keys_fn fn;
        lq_status want;
        const char *name;
    } cases[] = {
        {keys_ok, LQ_OK, "ok"},
        {keys_no_model, LQ_ERR_FORMAT, "no model"},
        {keys_bad_model, LQ_ERR_UNSUPPORTED, "model t5"},
        {keys_model_not_string, LQ_ERR_FORMAT, "model u32"},
        {keys_no_tokens, LQ_ERR_FORMAT, "no tokens"},
        {keys_tokens_not_strings, LQ_ERR_FORMAT, "tokens i32"},
        {keys_scores_short, LQ_ERR_FORMAT, "3 scores"},
        {keys_scores_nan, LQ_ERR_NUMERIC, "NaN score"},
        {keys_types_f32, LQ_ERR_FORMAT, "token_type f32"},
        {keys_bos_string, LQ_ERR_FORMAT, "bos string"},
        {keys_gpt2_no_merges, LQ_ERR_FORMAT, "gpt2 without merges"},
        {keys_gpt2_bad_pre, LQ_ERR_UNSUPPORTED, "unknown pre"},
        {keys_add_bos_without_bos, LQ_ERR_FORMAT, "add_bos, bos 11 out of range"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        lq_error err;
        lq_error_clear(&err);
        lq_status st = gguf_case(cases[k].fn, &err);
        CHECKF(st == cases[k].want && (st == LQ_OK || strstr(err.msg, "bad-vocab.gguf")),
               "%s: status %d (%s)", cases[k].name, (int)st, err.msg);
    }
}

static void check_random_text(void) {
    static const char *const vocabs[] = {"llama-spm", "gpt-2", "falcon", "deepseek-llm",
                                         "starcoder"};
    uint64_t seed = 0x1234567;
    char text[96];
    for (size_t v = 0; v < sizeof vocabs / sizeof vocabs[0]; v++) {
        char rel[128];
        snprintf(rel, sizeof rel, "testvectors/vocab/ggml-vocab-%s.gguf", vocabs[v]);
        lq_error err;
        lq_gguf *g = NULL;
        lq_tokenizer *t = NULL;
        CHECK_OK(lq_gguf_open(test_shared_path(rel), &g, &err), &err);
        if (g) CHECK_OK(lq_tokenizer_from_gguf(g, &t, &err), &err);
        if (!t) continue;
        bool spm = !strcmp(vocabs[v], "llama-spm");
        int bad_range = 0, bad_back = 0;
        for (int it = 0; it < 300; it++) {
            /* half: any bytes; half: valid UTF-8 from a few pieces (spaces, digits, letters,
             * 2-, 3- and 4-byte characters) */
            static const char *const pieces[] = {" ", "  ", "\t", "\n", "a", "B", "1", "'",
                                                 ".", "\xc3\xa9", "\xe6\x97\xa5",
                                                 "\xf0\x9f\x99\x82"};
            bool ascii_ish = it % 2;
            size_t len = 0, want = test_rand_u64(&seed) % 80;
            while (len < want) {
                uint64_t r = test_rand_u64(&seed);
                if (!ascii_ish) {
                    text[len++] = (char)(r & 0xFF);
                    continue;
                }
                const char *p = pieces[r % (sizeof pieces / sizeof pieces[0])];
                memcpy(text + len, p, strlen(p));
                len += strlen(p);
            }
            int32_t *ids = NULL;
            int64_t n = 0;
            lq_status st = lq_tokenize(t, text, len, true, true, &ids, &n, &err);
            CHECKF(st == LQ_OK, "%s: %s", vocabs[v], err.msg);
            for (int64_t i = 0; st == LQ_OK && i < n; i++)
                if (ids[i] < 0 || ids[i] >= lq_tokenizer_n_vocab(t)) bad_range++;
            /* Pieces of valid UTF-8 give the text back (SPM: after BOS and the added space).
             * (Invalid UTF-8 may not: a bad lead byte swallows the escaped space after it.) */
            if (st == LQ_OK && ascii_ish) {
                char back[1024];
                size_t k = 0;
                for (int64_t i = (lq_tokenizer_add_bos(t) ? 1 : 0); i < n; i++) {
                    lq_str p = lq_token_piece(t, ids[i]);
                    if (k + p.len < sizeof back) memcpy(back + k, p.ptr, p.len);
                    k += p.len;
                }
                size_t skip = spm && len ? 1 : 0;
                if (k != len + skip || memcmp(back + skip, text, len) != 0) {
                    if (bad_back++ < 3) {
                        fprintf(stderr, "  %s: text of %zu bytes came back as %zu:", vocabs[v],
                                len, k);
                        for (size_t i = 0; i < len && i < 40; i++)
                            fprintf(stderr, " %02x", (uint8_t)text[i]);
                        fprintf(stderr, "\n");
                    }
                }
            }
            free(ids);
        }
        CHECKF(bad_range == 0 && bad_back == 0, "%s: %d ids out of range, %d texts not given "
               "back", vocabs[v], bad_range, bad_back);
        lq_tokenizer_free(t);
        lq_gguf_close(g);
    }
}

int main(void) {
    tmp_dir = test_tmpdir("tokenizer-robust");
    check_bad_json();
    check_bad_gguf();
    check_random_text();
    TEST_DONE();
}
