/* test_ppl.c — perplexity and KL divergence against llama.cpp's own results for stories260K:
 * the figures in testvectors/runtime/reference.json and its --kl-divergence-base file (llama.cpp's
 * log-probabilities and tokenization of the text). */
#include "test.h"

#include <jansson.h>
#include <sys/wait.h>

static const char *lq_bin(void) {
    const char *b = getenv("LQ_BIN");
    if (!b) TEST_SKIP("LQ_BIN is not set (run through meson test)");
    return b;
}

static int run(const char *cmd) {
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* The llama.cpp base file, whole. */
typedef struct kld_base {
    uint8_t *bytes;
    uint32_t n_ctx;
    int32_t n_vocab, n_chunk;
    const int32_t *tokens;
    const uint16_t *rows;
} kld_base;

static kld_base read_base(const char *path) {
    kld_base k;
    memset(&k, 0, sizeof k);
    size_t size = 0;
    k.bytes = test_read_file(path, &size);
    CHECK(k.bytes && size > 20 && memcmp(k.bytes, "_logits_", 8) == 0);
    if (!k.bytes) return k;
    memcpy(&k.n_ctx, k.bytes + 8, 4);
    memcpy(&k.n_vocab, k.bytes + 12, 4);
    memcpy(&k.n_chunk, k.bytes + 16, 4);
    k.tokens = (const int32_t *)(k.bytes + 20);
    k.rows = (const uint16_t *)(k.bytes + 20 + 4 * (size_t)k.n_ctx * k.n_chunk);
    size_t want = 20 + 4 * (size_t)k.n_ctx * k.n_chunk +
                  (size_t)k.n_chunk * (k.n_ctx - 1 - k.n_ctx / 2) * lq_kld_row_u16(k.n_vocab) * 2;
    CHECK(size == want);
    return k;
}

/* Library level: our logits over llama.cpp's tokens against llama.cpp's log-probs; our
 * encoding of the same rows against llama.cpp's bytes. */
static void test_against_base(const kld_base *k, const char *model_path, int n_chunks) {
    lq_error err;
    lq_model *m = NULL;
    CHECK_OK(lq_model_open(model_path, &m, &err), &err);
    if (!m || !k->bytes) return;
    lq_runtime *rt = NULL;
    lq_runtime_opts o = {2, (int)k->n_ctx, (int)k->n_ctx, false, LQ_ACT_INT8_NONE};
    CHECK_OK(lq_runtime_create(m, &o, &rt, &err), &err);
    if (!rt) return;
    int64_t nv = lq_runtime_n_vocab(rt);
    CHECK(nv == k->n_vocab);
    int n_ctx = (int)k->n_ctx, first = n_ctx / 2, per_chunk = n_ctx - 1 - first;
    size_t row_u16 = lq_kld_row_u16(nv);
    float *logits = malloc((size_t)n_ctx * nv * sizeof(float));
    uint16_t *row = malloc(row_u16 * 2);
    int32_t *chunk = malloc((size_t)n_ctx * sizeof(int32_t));
    double sum_kld = 0, sum_nll = 0, sum_nll_base = 0, max_dmin = 0;
    int64_t count = 0, same_top = 0;
    double sum_du = 0, n_du = 0;
    for (int c = 0; c < n_chunks; c++) {
        memcpy(chunk, k->tokens + (size_t)c * n_ctx, (size_t)n_ctx * sizeof(int32_t));
        chunk[0] = 1; /* BOS, as llama-perplexity does */
        lq_runtime_reset(rt);
        CHECK_OK(lq_runtime_eval(rt, chunk, n_ctx, logits, &err), &err);
        for (int j = first; j < n_ctx - 1; j++) {
            const uint16_t *base = k->rows + ((size_t)c * per_chunk + (j - first)) * row_u16;
            int32_t target = chunk[j + 1];
            lq_kld_token t = lq_kld_score_row(logits + (size_t)j * nv, nv, target, base);
            sum_kld += t.kld;
            sum_nll += t.nll;
            sum_nll_base += t.nll_base;
            same_top += t.same_top;
            count++;
            /* our row for the same logits: same scale, nearly the same offset and codes */
            double nll = lq_kld_encode_row(logits + (size_t)j * nv, nv, target, row);
            CHECK(fabs(nll - t.nll) < 1e-9);
            float s_ours, s_base, m_ours, m_base;
            memcpy(&s_ours, row, 4), memcpy(&s_base, base, 4);
            memcpy(&m_ours, row + 2, 4), memcpy(&m_base, base + 2, 4);
            CHECK(s_ours == s_base);
            if (fabs(m_ours - m_base) > max_dmin) max_dmin = fabs(m_ours - m_base);
            for (int64_t i = 0; i < nv; i++) {
                sum_du += llabs((long long)row[4 + i] - (long long)base[4 + i]);
                n_du++;
            }
        }
    }
    double mean_kld = sum_kld / count;
    fprintf(stderr, "%d chunks: mean KLD %.3g, same top %.4f, our PPL %.4f, base PPL %.4f, "
            "max |d min_log_prob| %.2g, mean |d code| %.2f\n", n_chunks, mean_kld,
            (double)same_top / count, exp(sum_nll / count), exp(sum_nll_base / count), max_dmin,
            sum_du / n_du);
    /* the base stores log-probs with 16/65535 resolution: KLD from that alone is ~1e-6..1e-5 */
    CHECKF(fabs(mean_kld) < 2e-5, "mean KLD %.3g", mean_kld);
    CHECKF((double)same_top / count > 0.995, "same top %.4f", (double)same_top / count);
    /* llama.cpp keeps K/V in f16, so its logits differ from ours by ~1e-3: same format, codes
     * within a few steps of 2.4e-4 nats on average */
    CHECK(max_dmin < 0.05);
    CHECKF(sum_du / n_du < 8, "mean code difference %.2f", sum_du / n_du);
    free(logits), free(row), free(chunk);
    lq_runtime_free(rt);
    lq_model_close(m);
}

static json_t *load_json(const char *path) {
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    CHECKF(j != NULL, "%s: %s", path, je.text);
    return j;
}

static double jnum(json_t *obj, const char *a, const char *b) {
    json_t *v = json_object_get(obj, a);
    if (b && v) v = json_object_get(v, b);
    return v ? json_number_value(v) : NAN;
}

/* `lq ppl` on the text reproduces llama.cpp's figure for the 64-chunk case to 0.1 %. */
static void test_cli_ppl(const char *model, const char *tmp) {
    json_t *ref = load_json(test_shared_path("testvectors/runtime/reference.json"));
    if (!ref) return;
    json_t *cases = json_object_get(ref, "cases");
    const char *text = test_shared_path("text/tinystories-valid.txt");
    size_t i;
    json_t *c;
    int tested = 0;
    json_array_foreach(cases, i, c) {
        json_t *chunks = json_object_get(c, "chunks");
        if (!json_is_integer(chunks) || json_integer_value(chunks) != 64) continue;
        if (!strstr(json_string_value(json_object_get(c, "text")), "tinystories-valid")) continue;
        int ctx = (int)json_integer_value(json_object_get(c, "ctx"));
        char out[4300], cmd[16384];
        snprintf(out, sizeof out, "%s/ppl.json", tmp);
        snprintf(cmd, sizeof cmd, "'%s' ppl '%s' -f '%s' -c %d --chunks 64 -t 2 --json '%s' > /dev/null",
                 lq_bin(), model, text, ctx, out);
        CHECK(run(cmd) == 0);
        json_t *res = load_json(out);
        if (!res) continue;
        double ppl = jnum(res, "ppl", NULL), want = json_number_value(json_object_get(c, "ppl"));
        double se = jnum(res, "ppl_stderr", NULL), want_se = json_number_value(json_object_get(c, "ppl_stderr"));
        fprintf(stderr, "lq ppl ctx %d, 64 chunks: %.4f +/- %.5f (llama.cpp %.4f +/- %.5f)\n", ctx, ppl, se, want, want_se);
        CHECKF(fabs(ppl / want - 1) < 1e-3, "PPL %.4f vs llama.cpp %.4f", ppl, want);
        CHECKF(fabs(se / want_se - 1) < 1e-2, "stderr %.5f vs %.5f", se, want_se);
        CHECK(jnum(res, "n_scored", NULL) == 64 * (ctx - 1 - ctx / 2));
        json_decref(res);
        tested++;
    }
    CHECK(tested == 1);
    json_decref(ref);
}

/* --kld against llama.cpp's file, and our own --kld-base round trip. */
static void test_cli_kld(const char *model, const char *base, const char *tmp) {
    char out[4300], own[4300], cmd[16384];
    snprintf(out, sizeof out, "%s/kld.json", tmp);
    snprintf(cmd, sizeof cmd, "'%s' ppl '%s' --kld '%s' --chunks 8 -t 2 --json '%s' > /dev/null", lq_bin(),
             model, base, out);
    CHECK(run(cmd) == 0);
    json_t *res = load_json(out);
    if (res) {
        json_t *k = json_object_get(res, "kl_divergence");
        double kld = jnum(k, "kld", "mean"), top = jnum(k, "same_top_p", "mean");
        fprintf(stderr, "lq ppl --kld (llama.cpp base, 8 chunks): KLD %.3g, same top %.4f\n", kld, top);
        CHECK(fabs(kld) < 2e-5);
        CHECK(top > 0.995);
        CHECK(jnum(res, "n_scored", NULL) == 8 * 127);
        json_decref(res);
    }
    /* our own base file, then compare the same model with it */
    snprintf(own, sizeof own, "%s/own.kld", tmp);
    snprintf(cmd, sizeof cmd, "'%s' ppl '%s' -f '%s' -c 128 --chunks 4 -t 2 --kld-base '%s' > /dev/null", lq_bin(),
             model, test_shared_path("text/tinystories-valid.txt"), own);
    CHECK(run(cmd) == 0);
    kld_base k = read_base(own);
    CHECK(k.n_ctx == 128 && k.n_chunk == 4 && k.n_vocab == 512);
    free(k.bytes);
    snprintf(cmd, sizeof cmd, "'%s' ppl '%s' --kld '%s' -t 1 --json '%s' > /dev/null", lq_bin(), model, own, out);
    CHECK(run(cmd) == 0);
    res = load_json(out);
    if (res) {
        json_t *kj = json_object_get(res, "kl_divergence");
        CHECK(fabs(jnum(kj, "kld", "mean")) < 2e-6);
        CHECK(jnum(kj, "same_top_p", "mean") == 1.0);
        json_decref(res);
    }
    /* malformed base files are refused with a message, not a crash */
    char bad[4300];
    snprintf(bad, sizeof bad, "%s/bad.kld", tmp);
    snprintf(cmd, sizeof cmd, "head -c 5000 '%s' > '%s'", own, bad);
    CHECK(run(cmd) == 0);
    snprintf(cmd, sizeof cmd, "'%s' ppl '%s' --kld '%s' 2> /dev/null > /dev/null", lq_bin(), model, bad);
    CHECK(run(cmd) == 3);
    snprintf(cmd, sizeof cmd, "'%s' ppl '%s' --kld '%s/missing.kld' 2> /dev/null > /dev/null", lq_bin(), model, tmp);
    CHECK(run(cmd) == 5);
    snprintf(cmd, sizeof cmd, "'%s' ppl '%s' 2> /dev/null > /dev/null", lq_bin(), model);
    CHECK(run(cmd) == 2);
}

int main(void) {
    const char *model = test_shared_path("models/stories260k/stories260K.gguf");
    const char *base_path = test_shared_path("testvectors/runtime/stories260k-f32-c256-64chunks.kld");
    const char *tmp = test_tmpdir("runtime-ppl");
    kld_base k = read_base(base_path);
    test_against_base(&k, model, 16);
    free(k.bytes);
    test_cli_kld(model, base_path, tmp);
    test_cli_ppl(model, tmp);
    TEST_DONE();
}
