/* test_text.c — whole-text tokenization against independent references:
 *  - stories260K.gguf (SentencePiece with byte fallback) on tinystories-valid.txt must give the
 *    ids llama.cpp's llama-perplexity stored in its KL-divergence base file (all positions but
 *    each chunk's first, which llama-perplexity replaces by BOS);
 *  - the TinyStories-656K tokenizer.json (HF BPE with byte_fallback, no byte tokens) must give
 *    Hugging Face tokenizers' ids (0.23.3: count and FNV-1a hash of the id sequence of the whole
 *    text, and a few short strings including unknown characters fused into one <unk>);
 *  - pieces of the ids give the text back; tokenizing the 807 KB text takes well under 1 s. */
#include "test.h"

#include <time.h>

/* CPU time of this thread: the machine is shared, wall time would measure the neighbours. */
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* "Well under a second" for the 807 KB text; sanitizer builds run several times slower. */
#if defined(__SANITIZE_ADDRESS__)
#define TIME_LIMIT_S 10.0
#else
#define TIME_LIMIT_S 1.0
#endif

static uint64_t fnv1a_ids(const int32_t *ids, int64_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (int64_t i = 0; i < n; i++) {
        uint32_t v = (uint32_t)ids[i];
        for (int b = 0; b < 4; b++) {
            h ^= (v >> (8 * b)) & 0xFF;
            h *= 0x100000001b3ull;
        }
    }
    return h;
}

/* Concatenated pieces of ids[first..n). */
static char *detokenize(const lq_tokenizer *t, const int32_t *ids, int64_t first, int64_t n,
                        size_t *len) {
    size_t cap = 1024, k = 0;
    char *s = malloc(cap);
    for (int64_t i = first; s && i < n; i++) {
        lq_str p = lq_token_piece(t, ids[i]);
        while (k + p.len + 1 > cap) s = realloc(s, cap *= 2);
        if (!s) break;
        memcpy(s + k, p.ptr, p.len);
        k += p.len;
    }
    *len = k;
    return s;
}

static void check_stories260k(const char *text, size_t len) {
    const char *kld_path = test_shared_path("testvectors/runtime/stories260k-f32-c256-64chunks.kld");
    const char *gguf_path = test_shared_path("models/stories260k/stories260K.gguf");
    size_t kld_len = 0;
    uint8_t *kld = test_read_file(kld_path, &kld_len);
    CHECK(kld && kld_len >= 20 && memcmp(kld, "_logits_", 8) == 0);
    if (!kld || kld_len < 20) return;
    uint32_t n_ctx;
    int32_t n_vocab, n_chunk;
    memcpy(&n_ctx, kld + 8, 4);
    memcpy(&n_vocab, kld + 12, 4);
    memcpy(&n_chunk, kld + 16, 4);
    CHECK(n_ctx == 256 && n_vocab == 512 && n_chunk == 64);
    CHECK(kld_len >= 20 + (size_t)n_chunk * n_ctx * 4);

    lq_error err;
    lq_gguf *g = NULL;
    lq_tokenizer *t = NULL;
    CHECK_OK(lq_gguf_open(gguf_path, &g, &err), &err);
    if (g) CHECK_OK(lq_tokenizer_from_gguf(g, &t, &err), &err);
    if (!t) goto done;
    CHECK(lq_tokenizer_n_vocab(t) == 512 && lq_tokenizer_bos(t) == 1 && lq_tokenizer_add_bos(t));

    int32_t *ids = NULL;
    int64_t n = 0;
    double t0 = now_s();
    CHECK_OK(lq_tokenize(t, text, len, true, false, &ids, &n, &err), &err);
    double dt = now_s() - t0;
    fprintf(stderr, "stories260K: %lld tokens from %zu bytes in %.3f s (CPU)\n", (long long)n, len, dt);
    CHECKF(dt < TIME_LIMIT_S, "tokenizing took %.3f s", dt);
    CHECK(n >= (int64_t)n_chunk * n_ctx && ids[0] == 1);
    int64_t compared = 0, differ = 0;
    for (int64_t c = 0; c < n_chunk && n >= (int64_t)n_chunk * n_ctx; c++) {
        for (uint32_t j = 1; j < n_ctx; j++) {
            int32_t want;
            memcpy(&want, kld + 20 + 4 * ((size_t)c * n_ctx + j), 4);
            int32_t got = ids[c * n_ctx + j];
            compared++;
            if (got != want && differ++ < 5)
                fprintf(stderr, "  chunk %lld pos %u: llama.cpp %d, ours %d\n", (long long)c, j,
                        want, got);
        }
    }
    fprintf(stderr, "stories260K: %lld of %lld positions match llama.cpp\n",
            (long long)(compared - differ), (long long)compared);
    CHECK(compared == (int64_t)n_chunk * (n_ctx - 1) && differ == 0);

    /* Byte fallback makes the vocabulary lossless: pieces give " " + text back. */
    size_t back_len = 0;
    char *back = detokenize(t, ids, 1, n, &back_len);
    CHECK(back && back_len == len + 1 && back[0] == ' ' && memcmp(back + 1, text, len) == 0);
    free(back);
    free(ids);
done:
    lq_tokenizer_free(t);
    lq_gguf_close(g);
    free(kld);
}

typedef struct hf_case {
    const char *text;
    int n;
    int32_t ids[16];
} hf_case;

/* From Hugging Face tokenizers 0.23.3, Tokenizer.from_file(tokenizer.json).encode(text).ids */
static const hf_case k_hf_cases[] = {
    {"Once upon a time, there was a little girl named Lily.", 10,
     {1, 80, 147, 201, 282, 215, 286, 598, 629, 10}},
    {"", 1, {1}},
    {" ", 3, {1, 80, 80}},
    {"  hello\n\nworld  ", 12, {1, 80, 80, 80, 109, 113, 67, 3, 3, 410, 180, 80}},
    {"\xc3\xa2\xe2\x82\xac\xc5\x93Hi\xc3\xa2\xe2\x82\xac\xc2\x9d", 5, {1, 80, 0, 1158, 0}},
    {"a<unk>b", 7, {1, 85, 23, 148, 63, 24, 54}},
};

static void check_tinystories_json(const char *text, size_t len) {
    const char *path = test_shared_path("models/tinystories-656k/tokenizer.json");
    lq_error err;
    lq_tokenizer *t = NULL;
    CHECK_OK(lq_tokenizer_from_json(path, &t, &err), &err);
    if (!t) return;
    CHECK(lq_tokenizer_n_vocab(t) == 2048 && lq_tokenizer_bos(t) == 1 &&
          lq_tokenizer_eos(t) == 2 && lq_tokenizer_add_bos(t));
    for (size_t k = 0; k < sizeof k_hf_cases / sizeof k_hf_cases[0]; k++) {
        const hf_case *c = &k_hf_cases[k];
        int32_t *ids = NULL;
        int64_t n = 0;
        CHECK_OK(lq_tokenize(t, c->text, strlen(c->text), true, false, &ids, &n, &err), &err);
        CHECKF(n == c->n && memcmp(ids, c->ids, (size_t)n * sizeof *ids) == 0,
               "656K case %zu ('%s'): %lld ids", k, c->text, (long long)n);
        free(ids);
    }
    int32_t *ids = NULL;
    int64_t n = 0;
    double t0 = now_s();
    CHECK_OK(lq_tokenize(t, text, len, true, false, &ids, &n, &err), &err);
    double dt = now_s() - t0;
    uint64_t h = fnv1a_ids(ids, n);
    fprintf(stderr, "656K tokenizer.json: %lld tokens in %.3f s (CPU), hash %016llx\n", (long long)n,
            dt, (unsigned long long)h);
    CHECK(n == 200347 && h == 0x28e550bdf4c1f1b4ull);
    CHECKF(dt < TIME_LIMIT_S, "tokenizing took %.3f s", dt);
    free(ids);
    lq_tokenizer_free(t);
}

int main(void) {
    const char *text_path = test_shared_path("text/tinystories-valid.txt");
    size_t len = 0;
    char *text = test_read_file(text_path, &len);
    CHECK(text && len > 800000);
    if (text) {
        check_stories260k(text, len);
        check_tinystories_json(text, len);
    }
    free(text);
    TEST_DONE();
}
