/* test_passes: the sequential driver on the small real models.
 *  - SmoothQuant folding (fixed alpha and auto) leaves the float model's logits unchanged
 *    (stories260K, written through lq_quantize_model as F32 and read back);
 *  - GPTQ, AWQ and AWQ+GPTQ on tinystories-656k at Q4_0: KL divergence against the float model
 *    on held-out text lower than RTN's; GPTQ identical at 1 and 2 threads; the report is filled.
 * Calibration is kept small (8 × 128 tokens) so the test runs in seconds. */
#include "test.h"

#include <sys/wait.h>

static int32_t *tokens_of(const lq_model *m, const char *text_path, size_t max_bytes, int64_t *n) {
    lq_error err;
    lq_tokenizer *tok = NULL;
    if (lq_model_gguf(m)) CHECK_OK(lq_tokenizer_from_gguf(lq_model_gguf(m), &tok, &err), &err);
    else CHECK_OK(lq_tokenizer_from_json(lq_model_tokenizer_json(m), &tok, &err), &err);
    size_t len = 0;
    char *text = test_read_file(text_path, &len);
    CHECK(text != NULL);
    if (!tok || !text) exit(1);
    if (len > max_bytes) len = max_bytes;
    int32_t *ids = NULL;
    CHECK_OK(lq_tokenize(tok, text, len, true, false, &ids, n, &err), &err);
    free(text);
    lq_tokenizer_free(tok);
    return ids;
}

static float *logits_of(const char *path, const int32_t *tokens, int64_t n, int64_t *n_vocab) {
    lq_error err;
    lq_model *m = NULL;
    lq_runtime *rt = NULL;
    CHECK_OK(lq_model_open(path, &m, &err), &err);
    lq_runtime_opts ro = {2, (int)n, (int)n, true, LQ_ACT_INT8_NONE};
    CHECK_OK(lq_runtime_create(m, &ro, &rt, &err), &err);
    if (!rt) exit(1);
    *n_vocab = lq_runtime_n_vocab(rt);
    float *logits = malloc(sizeof(float) * (size_t)(n * *n_vocab));
    CHECK_OK(lq_runtime_eval(rt, tokens, n, logits, &err), &err);
    lq_runtime_free(rt);
    lq_model_close(m);
    return logits;
}

/* mean KL(p_ref || p) over rows */
static double mean_kld(const float *ref, const float *q, int64_t n, int64_t v) {
    double total = 0;
    for (int64_t r = 0; r < n; r++) {
        const float *a = ref + r * v, *b = q + r * v;
        double ma = a[0], mb = b[0], sa = 0, sb = 0;
        for (int64_t i = 1; i < v; i++) ma = a[i] > ma ? a[i] : ma, mb = b[i] > mb ? b[i] : mb;
        for (int64_t i = 0; i < v; i++) sa += exp(a[i] - ma), sb += exp(b[i] - mb);
        double la = ma + log(sa), lb = mb + log(sb), kl = 0;
        for (int64_t i = 0; i < v; i++) kl += exp(a[i] - la) * ((a[i] - la) - (b[i] - lb));
        total += kl;
    }
    return total / n;
}

/* Writes model + replacements with preset to out; returns LQ_OK. */
static lq_status write_model(const char *model_path, const char *preset, const lq_tensor_set *set,
                             const char *out) {
    lq_quantize_opts qo;
    memset(&qo, 0, sizeof qo);
    qo.model_path = model_path;
    qo.out_path = out;
    qo.plan.preset = preset;
    qo.plan.output_type = qo.plan.token_embd_type = -1;
    qo.replacements = set;
    qo.n_threads = 2;
    lq_error err;
    lq_status st = lq_quantize_model(&qo, NULL, &err);
    CHECK_OK(st, &err);
    return st;
}

static lq_tensor_set *run_passes(lq_model *m, const char *preset, const int32_t *calib, int64_t n_seq,
                                 int64_t n_tok, const lq_passes_opts *po, lq_passes_report *rep) {
    lq_error err;
    lq_plan plan;
    lq_plan_opts pl;
    memset(&pl, 0, sizeof pl);
    pl.preset = preset;
    pl.output_type = pl.token_embd_type = -1;
    CHECK_OK(lq_plan_build(m, &pl, &plan, &err), &err);
    lq_tensor_set *set = lq_tensor_set_new();
    CHECK_OK(lq_passes_run(m, &plan, calib, n_seq, n_tok, po, set, rep, &err), &err);
    lq_plan_free(&plan);
    return set;
}

static void test_smoothquant_fold(void) {
    const char *path = test_shared_path("models/stories260k/stories260K.gguf");
    const char *text = test_shared_path("text/tinystories-valid.txt");
    lq_model *m = NULL;
    lq_error err;
    CHECK_OK(lq_model_open(path, &m, &err), &err);
    if (!m) return;
    int64_t n_all;
    int32_t *ids = tokens_of(m, text, 20000, &n_all);
    const int64_t n_seq = 4, n_tok = 64, n_eval = 128;
    CHECK(n_all > n_seq * n_tok + n_eval);
    int64_t v;
    float *ref = logits_of(path, ids + n_seq * n_tok, n_eval, &v);
    for (int mode = 0; mode < 2; mode++) {
        lq_passes_opts po;
        lq_passes_opts_default(&po);
        po.method = LQ_PASS_NONE;
        if (mode == 0) po.smoothquant_alpha = 0.5;
        else po.smoothquant_auto = true;
        lq_passes_report rep;
        lq_tensor_set *set = run_passes(m, "F32", ids, n_seq, n_tok, &po, &rep);
        /* 5 layers × (q,k,v,gate,up + 2 norms) */
        CHECKF(lq_tensor_set_count(set) == 35, "%lld tensors", (long long)lq_tensor_set_count(set));
        const lq_tensor *norm = lq_tensor_set_find(set, "blk.2.attn_norm.weight");
        const lq_tensor *orig = lq_model_find(m, "blk.2.attn_norm.weight");
        double moved = 0;
        for (int j = 0; norm && j < 64; j++)
            moved = fmax(moved, fabs(((const float *)norm->data)[j] - ((const float *)orig->data)[j]));
        CHECKF(moved > 1e-3, "the norm did not change (%g)", moved);
        double alpha = rep.tensors[0].sq_alpha;
        CHECK(alpha >= 0 && alpha <= 1);
        char out[4096];
        snprintf(out, sizeof out, "%s/sq%d.gguf", test_tmpdir("passes"), mode);
        if (write_model(path, "F32", set, out) == LQ_OK) {
            int64_t v2;
            float *got = logits_of(out, ids + n_seq * n_tok, n_eval, &v2);
            double max_diff = 0, max_abs = 0;
            for (int64_t i = 0; i < n_eval * v; i++) {
                max_diff = fmax(max_diff, fabs(got[i] - ref[i]));
                max_abs = fmax(max_abs, fabs(ref[i]));
            }
            fprintf(stderr, "smoothquant %s (alpha of blk.0 qkv %.2f): max |Δlogit| %.3g (max |logit| %.3g)\n",
                    mode ? "auto" : "0.5", alpha, max_diff, max_abs);
            CHECKF(max_diff <= 1e-5 * fmax(1.0, max_abs), "folding changed the logits by %g", max_diff);
            free(got);
            remove(out);
        }
        lq_tensor_set_free(set);
        lq_passes_report_free(&rep);
    }
    free(ref);
    free(ids);
    lq_model_close(m);
}

static bool sets_equal(const lq_tensor_set *a, const lq_tensor_set *b, const lq_model *m) {
    if (lq_tensor_set_count(a) != lq_tensor_set_count(b)) return false;
    for (int64_t i = 0; i < lq_model_n_tensors(m); i++) {
        const char *name = lq_model_tensor(m, i)->name;
        const lq_tensor *x = lq_tensor_set_find(a, name), *y = lq_tensor_set_find(b, name);
        if (!x != !y) return false;
        if (x && (x->nbytes != y->nbytes || memcmp(x->data, y->data, x->nbytes))) return false;
    }
    return true;
}

static void test_methods_656k(void) {
    const char *path = test_shared_path("models/tinystories-656k");
    const char *train = test_shared_path("text/tinystories-train-sample.txt");
    const char *valid = test_shared_path("text/tinystories-valid.txt");
    lq_model *m = NULL;
    lq_error err;
    CHECK_OK(lq_model_open(path, &m, &err), &err);
    if (!m) return;
    int64_t n_calib, n_valid;
    int32_t *calib = tokens_of(m, train, 40000, &n_calib);
    int32_t *eval = tokens_of(m, valid, 20000, &n_valid);
    const int64_t n_seq = 8, n_tok = 128, n_eval = 512;
    CHECK(n_calib >= n_seq * n_tok && n_valid >= n_eval);
    int64_t v;
    float *ref = logits_of(path, eval, n_eval, &v);
    const lq_pass_method methods[] = {LQ_PASS_RTN, LQ_PASS_GPTQ, LQ_PASS_AWQ, LQ_PASS_AWQ_GPTQ};
    const char *names[] = {"rtn", "gptq", "awq", "awq+gptq"};
    double kld[4] = {0};
    lq_tensor_set *gptq_set = NULL;
    for (int k = 0; k < 4; k++) {
        lq_passes_opts po;
        lq_passes_opts_default(&po);
        po.method = methods[k];
        po.n_threads = 1;
        lq_passes_report rep;
        lq_tensor_set *set = run_passes(m, "Q4_0", calib, n_seq, n_tok, &po, &rep);
        CHECK(rep.n_layer == 2 && rep.n_tensors >= 14 && rep.n_rtn_fallback == 0);
        char out[4096];
        snprintf(out, sizeof out, "%s/%s.gguf", test_tmpdir("passes"), names[k] + (k == 3 ? 4 : 0));
        if (write_model(path, "Q4_0", set, out) == LQ_OK) {
            int64_t v2;
            float *got = logits_of(out, eval, n_eval, &v2);
            kld[k] = mean_kld(ref, got, n_eval, v);
            free(got);
            remove(out);
        }
        fprintf(stderr, "656k Q4_0 %-8s KLD %.5f  (%.2fs; layer 0 %.2fs)\n", names[k], kld[k], rep.seconds,
                rep.layer_seconds ? rep.layer_seconds[0] : 0);
        if (k == 2) {
            CHECK(rep.tensors[0].awq_alpha >= 0 && rep.tensors[0].awq_loss <= rep.tensors[0].awq_loss_rtn);
            CHECK(rep.tensors[3].awq_alpha < 0); /* v → o skipped: GQA */
        }
        if (k == 1) gptq_set = set;
        else lq_tensor_set_free(set);
        lq_passes_report_free(&rep);
    }
    CHECKF(kld[1] < 0.9 * kld[0], "GPTQ %g vs RTN %g", kld[1], kld[0]);
    CHECKF(kld[2] < kld[0], "AWQ %g vs RTN %g", kld[2], kld[0]);
    CHECKF(kld[3] < kld[0], "AWQ+GPTQ %g vs RTN %g", kld[3], kld[0]);
    /* thread-count independence */
    lq_passes_opts po;
    lq_passes_opts_default(&po);
    po.n_threads = 2;
    lq_tensor_set *set2 = run_passes(m, "Q4_0", calib, n_seq, n_tok, &po, NULL);
    CHECK(sets_equal(gptq_set, set2, m));
    lq_tensor_set_free(set2);
    lq_tensor_set_free(gptq_set);
    free(ref);
    free(calib);
    free(eval);
    lq_model_close(m);
}

static void test_bad_args(void) {
    lq_error err;
    lq_passes_opts po;
    lq_passes_opts_default(&po);
    lq_plan plan = {0, NULL, 0};
    int32_t tok[4] = {1, 2, 3, 4};
    CHECK(lq_passes_run(NULL, &plan, tok, 1, 4, &po, NULL, NULL, &err) == LQ_ERR_INVALID);
    CHECK(lq_pass_method_from_name("awq+gptq") == LQ_PASS_AWQ_GPTQ);
    CHECK(lq_pass_method_from_name("gptq2") == -1);
}

/* lq quantize --method gptq --calib: the tool path end to end (tiny calibration). */
static void test_cli(void) {
    const char *model = test_shared_path("models/tinystories-656k");
    const char *train = test_shared_path("text/tinystories-train-sample.txt");
    const char *lq = getenv("LQ_BIN");
    if (!lq) {
        fprintf(stderr, "LQ_BIN unset: CLI check skipped\n");
        return;
    }
    char out[4096], cmd[16384];
    snprintf(out, sizeof out, "%s/cli.gguf", test_tmpdir("passes"));
    snprintf(cmd, sizeof cmd, "'%s' quantize '%s' -o '%s' --type Q4_K_M --method gptq --calib '%s' "
             "--calib-chunks 2 --chunk-size 128 -q -t 2", lq, model, out, train);
    CHECK(system(cmd) == 0);
    lq_model *m = NULL;
    lq_error err;
    CHECK_OK(lq_model_open(out, &m, &err), &err);
    if (m) {
        const lq_tensor *t = lq_model_find(m, "blk.1.ffn_gate.weight");
        CHECK(t && lq_type_get(t->type)->is_quantized);
        lq_model_close(m);
    }
    remove(out);
    snprintf(cmd, sizeof cmd, "'%s' quantize '%s' -o '%s' --type Q4_0 --method gptq 2>/dev/null", lq, model, out);
    int rc = system(cmd);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 2); /* --calib missing: usage error */
    snprintf(cmd, sizeof cmd, "'%s' quantize '%s' -o '%s' --type Q4_0 --method sparse --calib x 2>/dev/null", lq,
             model, out);
    rc = system(cmd);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 2);
}

int main(void) {
    test_bad_args();
    test_cli();
    test_smoothquant_fold();
    test_methods_656k();
    TEST_DONE();
}
