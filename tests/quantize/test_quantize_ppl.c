/* test_quantize_ppl.c — every preset of `lq quantize` on the three shared models gives a file
 * the runtime loads, whose perplexity stays within a per-type bound of the unquantized model
 * (ctx 128, first chunks of tinystories-valid.txt).
 *
 * Bounds on |PPL_q / PPL_ref - 1|: the largest deviation measured over the three models on
 * this build (in the comments: 4m / 656k / 260k), doubled, plus 0.5-1 % for the noise of scoring
 * only 4 x 63 tokens (quantized files come out *better* than the reference by up to 4 %, so the
 * check is two-sided). The narrow models dominate: 656k (128 wide) and 260k (64 wide) cannot use
 * 256-element K-quant blocks, so Q2_K/Q3_K/IQ4_XS fall back to IQ4_NL and Q4_K to Q5_0 there.
 * A broken codec, a wrong Q/K permutation or wrong metadata moves PPL by factors (a Q/K row
 * order error alone gives PPL > 100 on tinystories-4m), far outside these bounds. */
#include "qtest.h"

typedef struct type_bound {
    const char *preset;
    double max_rel; /* max (PPL_q / PPL_ref - 1), largest over the three models */
} type_bound;

static const type_bound bounds[] = {
    {"F32", 1e-6},     /* 0 / 0 / 0: the same weights */
    {"F16", 0.002},    /* 0 / 0 / 0.0001 */
    {"BF16", 0.005},   /* 0.0000 / 0 / 0.0001 */
    {"Q8_0", 0.015},   /* 0.0018 / 0.0037 / 0.0025 */
    {"Q6_K", 0.02},    /* 0.0053 / 0.0037 / 0.0025 */
    {"Q5_1", 0.05},    /* 0.0203 / 0.0177 / 0.0083 */
    {"Q5_0", 0.075},   /* 0.0040 / 0.0320 / 0.0250 */
    {"Q5_K_M", 0.035}, /* 0.0106 / 0.0096 / 0.0068 */
    {"Q5_K_S", 0.045}, /* 0.0125 / 0.0177 / 0.0083 */
    {"Q4_1", 0.13},    /* 0.0214 / 0.0336 / 0.0598 */
    {"Q4_0", 0.35},    /* 0.0082 / 0.0461 / 0.1713 */
    {"Q4_K_M", 0.07},  /* 0.0099 / 0.0201 / 0.0297 */
    {"Q4_K_S", 0.09},  /* 0.0199 / 0.0248 / 0.0411 */
    {"IQ4_NL", 0.30},  /* 0.0017 / 0.0200 / 0.1436 */
    {"IQ4_XS", 0.30},  /* 0.0015 / 0.0200 / 0.1436 (IQ4_NL on the narrow models) */
    {"Q3_K_L", 0.20},  /* 0.0134 / 0.0237 / 0.0936 */
    {"Q3_K_M", 0.20},  /* 0.0083 / 0.0390 / 0.0926 */
    {"Q3_K_S", 0.30},  /* 0.0315 / 0.0200 / 0.1436 */
    {"Q2_K", 0.30},    /* 0.0408 / 0.0200 / 0.1436 */
};
#define N_TYPES (sizeof bounds / sizeof bounds[0])

typedef struct model_case {
    const char *rel;   /* under ../shared */
    int n_chunks;
} model_case;

static void run_model(const model_case *mc, const char *dir, bool report_only) {
    const char *src = test_shared_path(mc->rel);
    const int n_ctx = 128;
    const char *ref = qt_quantize(src, dir, "ref.gguf", "F32", NULL, 2);
    if (!ref) return;
    lq_error err;
    lq_model *m = NULL;
    CHECK_OK(lq_model_open(ref, &m, &err), &err);
    if (!m) return;
    int64_t n_tok = 0;
    int32_t *tok = qt_tokens(m, test_shared_path("text/tinystories-valid.txt"), 64 << 10, &n_tok);
    lq_tokenizer *t = NULL;
    CHECK_OK(lq_tokenizer_from_gguf(lq_model_gguf(m), &t, &err), &err);
    int32_t bos = t && lq_tokenizer_add_bos(t) ? lq_tokenizer_bos(t) : -1;
    lq_tokenizer_free(t);
    lq_model_close(m);
    double ppl_ref = qt_ppl(ref, tok, n_tok, n_ctx, mc->n_chunks, bos);
    fprintf(stderr, "%s: reference PPL %.4f (%d x %d tokens)\n", mc->rel, ppl_ref, mc->n_chunks, n_ctx);
    for (size_t i = 0; i < N_TYPES; i++) {
        const char *out = qt_quantize(src, dir, "q.gguf", bounds[i].preset, NULL, 2);
        if (!out) continue;
        double ppl = qt_ppl(out, tok, n_tok, n_ctx, mc->n_chunks, bos), rel = ppl / ppl_ref - 1;
        fprintf(stderr, "  %-7s PPL %8.4f  %+7.4f\n", bounds[i].preset, ppl, rel);
        if (!report_only) CHECKF(fabs(rel) <= bounds[i].max_rel, "%s %s: PPL %.4f vs %.4f", mc->rel, bounds[i].preset, ppl, ppl_ref);
    }
    free(tok);
}

int main(void) {
    static const model_case models[] = {
        {"models/tinystories-4m", 4},
        {"models/tinystories-656k", 4},
        {"models/stories260k/stories260K.gguf", 4},
    };
    const char *dir = test_tmpdir("quantize-ppl");
    bool report_only = getenv("LQ_QUANT_REPORT_ONLY") != NULL;
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) run_model(&models[i], dir, report_only);
    qt_rmdir(dir);
    TEST_DONE();
}
