/* test_accumulate.c — a calibration pass on stories260K against an independent computation:
 * the input of blk.0's Q/K/V is RMSNorm(embedding) · attn_norm, computed here from the model's
 * tensors in double; blk.1's is the same norm of the hook-free layer API's output of layer 0.
 * Counts are every token of every chunk. The statistics file is byte-identical at 1, 2 and 3
 * threads. */
#include "test.h"

enum { CHUNK = 64, N_CHUNKS = 2, ROWS = CHUNK * N_CHUNKS };

static lq_model *model;
static lq_calib_chunks chunks;

/* Per-channel Σh², Σ|h|, max|h| of h = RMSNorm(x) · w over rows of x, in double. */
static void norm_stats(const float *x, const float *w, int64_t rows, int64_t n, float eps, double *s2,
                       double *sa, double *mx) {
    for (int64_t j = 0; j < n; j++) s2[j] = sa[j] = mx[j] = 0;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        double ss = 0;
        for (int64_t j = 0; j < n; j++) ss += (double)xr[j] * xr[j];
        double scale = 1.0 / sqrt(ss / (double)n + eps);
        for (int64_t j = 0; j < n; j++) {
            double h = xr[j] * scale * w[j];
            s2[j] += h * h;
            sa[j] += fabs(h);
            mx[j] = fmax(mx[j], fabs(h));
        }
    }
}

static void compare(const lq_stats *s, const char *name, const double *s2, const double *sa, const double *mx,
                    int64_t n, double tol) {
    const lq_stats_entry *e = lq_stats_find(s, name);
    CHECKF(e && e->n_in == n && e->n_experts == 1 && e->counts[0] == (float)ROWS, "%s", name);
    if (!e || e->n_in != n) return;
    double worst = 0;
    for (int64_t j = 0; j < n; j++) {
        worst = fmax(worst, fabs(e->sum_x2[j] - s2[j]) / s2[j]);
        worst = fmax(worst, fabs(e->sum_abs[j] - sa[j]) / sa[j]);
        worst = fmax(worst, fabs(e->max_abs[j] - mx[j]) / mx[j]);
    }
    CHECKF(worst < tol, "%s: relative difference %.3g (tolerance %.1g)", name, worst, tol);
    fprintf(stderr, "%s: worst relative difference to the independent computation %.3g\n", name, worst);
    float imp[256];
    lq_error err;
    CHECK_OK(lq_stats_importance(e, imp, &err), &err);
    for (int64_t j = 0; j < n && j < 256; j++) CHECK(imp[j] == e->sum_x2[j] / (float)ROWS);
}

static lq_stats *calibrate(int n_threads, bool with_output) {
    lq_error err;
    lq_runtime *rt = NULL;
    lq_stats_acc *acc = NULL;
    lq_stats *s = NULL;
    lq_runtime_opts o = {n_threads, CHUNK, CHUNK, false, LQ_ACT_INT8_NONE};
    CHECK_OK(lq_runtime_create(model, &o, &rt, &err), &err);
    CHECK_OK(lq_stats_acc_new(n_threads, with_output, &acc, &err), &err);
    if (rt && acc) CHECK_OK(lq_calib_accumulate(rt, &chunks, acc, NULL, NULL, &err), &err);
    const char *ds[1] = {"stories"};
    lq_stats_meta meta = {1, ds, N_CHUNKS, CHUNK};
    if (acc) CHECK_OK(lq_stats_from_acc(acc, &meta, &s, &err), &err);
    lq_stats_acc_free(acc);
    lq_runtime_free(rt);
    return s;
}

static const float *f32_tensor(const char *name) {
    const lq_tensor *t = lq_model_find(model, name);
    if (!t || t->type != LQ_TYPE_F32) TEST_SKIP("%s is not an F32 tensor", name);
    return (const float *)t->data;
}

static void test_against_independent(const lq_stats *s) {
    lq_error err;
    const lq_hparams *hp = lq_model_hparams(model);
    int64_t n = hp->n_embd;
    lq_runtime *rt = NULL;
    lq_runtime_opts o = {1, CHUNK, CHUNK, false, LQ_ACT_INT8_NONE};
    CHECK_OK(lq_runtime_create(model, &o, &rt, &err), &err);
    if (!rt) return;
    float *hidden = (float *)malloc((size_t)(ROWS * n) * sizeof(float));
    double *s2 = (double *)malloc((size_t)n * 3 * sizeof(double)), *sa = s2 + n, *mx = s2 + 2 * n;
    CHECK_OK(lq_runtime_embed(rt, chunks.tokens, ROWS, hidden, &err), &err);
    norm_stats(hidden, f32_tensor("blk.0.attn_norm.weight"), ROWS, n, hp->rms_eps, s2, sa, mx);
    compare(s, "blk.0.attn_q.weight", s2, sa, mx, n, 1e-5);
    /* Q, K and V see the same input */
    const lq_stats_entry *q = lq_stats_find(s, "blk.0.attn_q.weight"), *k = lq_stats_find(s, "blk.0.attn_k.weight"),
                         *v = lq_stats_find(s, "blk.0.attn_v.weight");
    CHECK(q && k && v && !memcmp(q->sum_x2, k->sum_x2, (size_t)n * 4) && !memcmp(q->sum_x2, v->sum_x2, (size_t)n * 4));
    /* layer 1's input through the layer API (no KV cache, both chunks as two sequences) */
    CHECK_OK(lq_runtime_layer(rt, 0, hidden, N_CHUNKS, CHUNK, &err), &err);
    norm_stats(hidden, f32_tensor("blk.1.attn_norm.weight"), ROWS, n, hp->rms_eps, s2, sa, mx);
    compare(s, "blk.1.attn_k.weight", s2, sa, mx, n, 1e-4);
    free(hidden);
    free(s2);
    lq_runtime_free(rt);
}

static void test_entries(const lq_stats *s) {
    const lq_hparams *hp = lq_model_hparams(model);
    const char *what[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
    CHECK(lq_stats_n_entries(s) == 7 * hp->n_layer);
    for (int64_t l = 0; l < hp->n_layer; l++)
        for (int i = 0; i < 7; i++) {
            char name[LQ_MAX_NAME];
            snprintf(name, sizeof name, "blk.%lld.%s.weight", (long long)l, what[i]);
            const lq_stats_entry *e = lq_stats_find(s, name);
            int64_t n_in = i == 6 ? hp->n_ff : i == 3 ? hp->n_head * hp->head_dim : hp->n_embd;
            CHECKF(e && e->n_in == n_in && e->counts[0] == (float)ROWS && e->sum_abs && e->max_abs, "%s", name);
        }
    CHECK(lq_stats_find(s, "output.weight") == NULL); /* only with --process-output */
}

static void test_threads(const char *dir, const lq_stats *s1) {
    lq_error err;
    char p1[4200], p2[4200];
    snprintf(p1, sizeof p1, "%s/t1.gguf", dir);
    CHECK_OK(lq_stats_write(s1, p1, &err), &err);
    size_t n1 = 0;
    void *b1 = test_read_file(p1, &n1);
    for (int t = 2; t <= 3; t++) {
        lq_stats *s = calibrate(t, false);
        snprintf(p2, sizeof p2, "%s/t%d.gguf", dir, t);
        if (s) CHECK_OK(lq_stats_write(s, p2, &err), &err);
        size_t n2 = 0;
        void *b2 = test_read_file(p2, &n2);
        CHECKF(b1 && b2 && n1 == n2 && !memcmp(b1, b2, n1), "statistics differ between 1 and %d threads", t);
        free(b2);
        lq_stats_free(s);
    }
    free(b1);
}

static void test_output(void) {
    lq_stats *s = calibrate(2, true);
    const lq_stats_entry *e = s ? lq_stats_find(s, "output.weight") : NULL;
    CHECK(e && e->n_in == lq_model_hparams(model)->n_embd && e->counts[0] == (float)ROWS);
    CHECK(s && lq_stats_n_entries(s) == 7 * lq_model_hparams(model)->n_layer + 1);
    lq_stats_free(s);
}

int main(void) {
    const char *model_path = test_shared_path("models/stories260k/stories260K.gguf");
    const char *text_path = test_shared_path("text/tinystories-train-sample.txt");
    lq_error err;
    lq_tokenizer *tok = NULL;
    char *text = NULL;
    size_t len = 0;
    CHECK_OK(lq_model_open(model_path, &model, &err), &err);
    if (!model) TEST_DONE();
    CHECK_OK(lq_calib_tokenizer(model, &tok, &err), &err);
    CHECK_OK(lq_calib_read_text(text_path, "text", &text, &len, &err), &err);
    lq_calib_sample_opts o = {CHUNK, N_CHUNKS, false, 0, false};
    CHECK_OK(lq_calib_sample(tok, text, len < 20000 ? len : 20000, &o, &chunks, &err), &err);
    free(text);
    lq_tokenizer_free(tok);
    if (chunks.n_chunks != N_CHUNKS) TEST_DONE();
    const char *dir = test_tmpdir("calib-accumulate");
    lq_stats *s = calibrate(1, false);
    if (s) {
        test_entries(s);
        test_against_independent(s);
        test_threads(dir, s);
    }
    test_output();
    lq_stats_free(s);
    lq_calib_chunks_free(&chunks);
    lq_model_close(model);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (!test_failures && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    TEST_DONE();
}
