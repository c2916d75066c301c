/* test_awq: AWQ's scale and clip searches and SmoothQuant's scales on a synthetic linear layer
 * whose inputs have a few outlier channels (the situation both methods target). */
#include "test.h"

#include "passes_internal.h"

enum { N_IN = 256, N_OUT = 128, T = 1024 };

static void make_layer(float *x, float *w, float *x_mean, float *x_max) {
    uint64_t s = 42;
    for (int j = 0; j < N_IN; j++) x_mean[j] = x_max[j] = 0;
    for (int t = 0; t < T; t++)
        for (int j = 0; j < N_IN; j++) {
            float v = test_rand_normal(&s) * (j % 37 == 5 ? 30.0f : 1.0f); /* 7 outlier channels */
            x[t * N_IN + j] = v;
            x_mean[j] += fabsf(v) / T;
            x_max[j] = fmaxf(x_max[j], fabsf(v));
        }
    for (int i = 0; i < N_OUT * N_IN; i++) w[i] = 0.05f * test_rand_normal(&s);
}

static double output_mse(const float *x, const float *w, const float *wq) {
    float *y = malloc(sizeof(float) * T * N_OUT), *yq = malloc(sizeof(float) * T * N_OUT);
    lq_pass_matmul(x, T, w, N_OUT, N_IN, y, 2);
    lq_pass_matmul(x, T, wq, N_OUT, N_IN, yq, 2);
    double e = 0;
    for (int i = 0; i < T * N_OUT; i++) e += ((double)y[i] - yq[i]) * ((double)y[i] - yq[i]);
    free(y), free(yq);
    return e / (T * N_OUT);
}

static void test_scale_search(lq_type type, const float *x, const float *w, const float *x_mean) {
    awq_group g;
    memset(&g, 0, sizeof g);
    g.n_lin = 1;
    g.w[0] = w;
    g.n_out[0] = N_OUT;
    g.type[0] = type;
    float s[N_IN];
    double alpha, loss0, loss;
    lq_error err;
    CHECK_OK(lq_awq_search_scale(&g, N_IN, x, T, x_mean, 20, 2, s, &alpha, &loss0, &loss, &err), &err);
    /* independent check of both losses: RTN, and Q(W·s)/s with the chosen s */
    float *wq = malloc(sizeof(float) * N_OUT * N_IN);
    CHECK_OK(lq_pass_fakequant(type, w, wq, N_OUT, N_IN, NULL, 2, &err), &err);
    double rtn = output_mse(x, w, wq);
    for (int r = 0; r < N_OUT; r++)
        for (int j = 0; j < N_IN; j++) wq[r * N_IN + j] = w[r * N_IN + j] * s[j];
    CHECK_OK(lq_pass_fakequant(type, wq, wq, N_OUT, N_IN, NULL, 2, &err), &err);
    for (int r = 0; r < N_OUT; r++)
        for (int j = 0; j < N_IN; j++) wq[r * N_IN + j] /= s[j];
    double scaled = output_mse(x, w, wq);
    fprintf(stderr, "%-5s AWQ: alpha %.2f, output MSE %.4g -> %.4g (%.2fx)\n", lq_type_get(type)->name, alpha, rtn,
            scaled, rtn / scaled);
    CHECKF(fabs(loss0 - rtn) <= 1e-3 * rtn, "reported RTN loss %g vs %g", loss0, rtn);
    CHECKF(fabs(loss - scaled) <= 1e-3 * scaled, "reported loss %g vs %g", loss, scaled);
    CHECK(alpha > 0);
    CHECKF(scaled < 0.8 * rtn, "%s: AWQ %g vs RTN %g", lq_type_get(type)->name, scaled, rtn);
    free(wq);
}

static double clip_error(const float *x, const float *w, const float *wc, lq_type type) {
    float *q = malloc(sizeof(float) * N_OUT * N_IN);
    lq_error err;
    CHECK_OK(lq_pass_fakequant(type, wc, q, N_OUT, N_IN, NULL, 1, &err), &err);
    double e = output_mse(x, w, q);
    free(q);
    return e;
}

static void test_clip(lq_type type, const float *x, const float *w) {
    float *wc = malloc(sizeof(float) * N_OUT * N_IN);
    memcpy(wc, w, sizeof(float) * N_OUT * N_IN);
    double ratio;
    lq_error err;
    CHECK_OK(lq_awq_clip(type, wc, N_OUT, N_IN, x, 256, 2, &ratio, &err), &err);
    /* the Hessian form sums the same errors: with H = XᵀX of those 256 tokens, same clamps */
    double *h = calloc((size_t)N_IN * N_IN, sizeof(double));
    for (int t = 0; t < 256; t++)
        for (int i = 0; i < N_IN; i++)
            for (int j = 0; j < N_IN; j++) h[i * N_IN + j] += (double)x[t * N_IN + i] * x[t * N_IN + j];
    float *wh = malloc(sizeof(float) * N_OUT * N_IN);
    memcpy(wh, w, sizeof(float) * N_OUT * N_IN);
    double ratio_h;
    CHECK_OK(lq_awq_clip_h(type, wh, N_OUT, N_IN, h, 2, &ratio_h, &err), &err);
    int differ = 0;
    for (int i = 0; i < N_OUT * N_IN; i++) differ += wh[i] != wc[i];
    /* fp32 vs fp64 sums can flip a near-tie between two clamps: allow a few blocks' worth */
    CHECKF(differ <= N_OUT * N_IN / 50 && fabs(ratio_h - ratio) < 0.01, "%d weights differ, ratio %g vs %g", differ,
           ratio_h, ratio);
    free(h), free(wh);
    double before = clip_error(x, w, w, type), after = clip_error(x, w, wc, type);
    fprintf(stderr, "%-5s clip: mean ratio %.3f, output MSE %.4g -> %.4g\n", lq_type_get(type)->name, ratio, before, after);
    CHECK(ratio < 1.0 && ratio >= 0.55);
    CHECK(after < before);
    /* clamps never grow a weight */
    bool ok = true;
    for (int i = 0; i < N_OUT * N_IN; i++) ok &= fabsf(wc[i]) <= fabsf(w[i]);
    CHECK(ok);
    free(wc);
}

static void test_smoothquant(const float *x, const float *w, const float *x_max) {
    float s[N_IN];
    const float *ws[1] = {w};
    int64_t outs[1] = {N_OUT};
    lq_sq_scales(x_max, ws, outs, 1, N_IN, 0.5, s);
    double plain, smooth;
    lq_error err;
    CHECK_OK(lq_sq_w8a8_error(x, T, ws, outs, 1, N_IN, NULL, 2, &plain, &err), &err);
    CHECK_OK(lq_sq_w8a8_error(x, T, ws, outs, 1, N_IN, s, 2, &smooth, &err), &err);
    fprintf(stderr, "W8A8 output MSE: plain %.4g, smoothed (alpha 0.5) %.4g\n", plain, smooth);
    CHECK(smooth < 0.5 * plain);
    /* s_j = sqrt(max|x_j| / max|W_j|) at alpha 0.5 */
    float wmax = 0;
    for (int r = 0; r < N_OUT; r++) wmax = fmaxf(wmax, fabsf(w[r * N_IN + 5]));
    CHECK(fabsf(s[5] - sqrtf(x_max[5] / wmax)) <= 1e-4f * s[5]);
}

int main(void) {
    float *x = malloc(sizeof(float) * T * N_IN), *w = malloc(sizeof(float) * N_OUT * N_IN);
    float x_mean[N_IN], x_max[N_IN];
    make_layer(x, w, x_mean, x_max);
    test_scale_search(LQ_TYPE_Q4_0, x, w, x_mean);
    test_scale_search(LQ_TYPE_Q4_K, x, w, x_mean);
    test_scale_search(LQ_TYPE_Q3_K, x, w, x_mean);
    test_clip(LQ_TYPE_Q4_0, x, w);
    test_clip(LQ_TYPE_Q4_K, x, w);
    test_smoothquant(x, w, x_max);
    free(x), free(w);
    TEST_DONE();
}
