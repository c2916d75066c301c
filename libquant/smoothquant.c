/* smoothquant.c — SmoothQuant's migration scales (mit-han-lab/smoothquant smooth.py) and the
 * W8A8 error used to choose alpha automatically.
 *
 * s_j = max|x_j|^alpha / max|W_j|^(1-alpha), max|W_j| over the rows of every linear sharing the
 * input (q,k,v; gate,up), both clamped ≥ 1e-5. The caller folds s into the preceding RMSNorm
 * (norm /= s) and the linears' columns (W[:, j] *= s_j): the float model is unchanged.
 * Only the two norm mappings (as the reference repo and llm-compressor do for Llama): no
 * smoothing of o_proj or down_proj.
 *
 * Auto alpha: the W8A8 scheme the method targets, per-token dynamic int8 activations (absmax /
 * 127, round to nearest) × Q8_0 weights (the GGUF 8-bit format: per 32-block absmax scale),
 * error = mean squared difference against the float outputs over the sampled tokens. */
#include "passes_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void lq_sq_scales(const float *x_max, const float *const *w, const int64_t *n_out, int n_lin,
                  int64_t n_in, double alpha, float *s) {
    for (int64_t j = 0; j < n_in; j++) {
        float wmax = 0.0f;
        for (int l = 0; l < n_lin; l++)
            for (int64_t r = 0; r < n_out[l]; r++) wmax = fmaxf(wmax, fabsf(w[l][r * n_in + j]));
        double xm = fmax((double)x_max[j], 1e-5), wm = fmax((double)wmax, 1e-5);
        double v = pow(xm, alpha) / pow(wm, 1.0 - alpha);
        s[j] = isfinite(v) && v > 0.0 ? (float)v : 1.0f;
    }
}

/* Per-token symmetric int8 fake quantization of t rows of n values, in place. */
static void quant_tokens_int8(float *x, int64_t t, int64_t n) {
    for (int64_t r = 0; r < t; r++) {
        float *xr = x + r * n, amax = 0.0f;
        for (int64_t j = 0; j < n; j++) amax = fmaxf(amax, fabsf(xr[j]));
        if (amax == 0.0f) continue;
        float d = amax / 127.0f, id = 1.0f / d;
        for (int64_t j = 0; j < n; j++) xr[j] = nearbyintf(xr[j] * id) * d;
    }
}

lq_status lq_sq_w8a8_error(const float *x, int64_t t, const float *const *w,
                           const int64_t *n_out, int n_lin, int64_t n_in, const float *s,
                           int n_threads, double *mse, lq_error *err) {
    int64_t max_out = 0;
    for (int l = 0; l < n_lin; l++) max_out = n_out[l] > max_out ? n_out[l] : max_out;
    float *xq = lq_malloc((size_t)t * (size_t)n_in * sizeof(float), err, "smoothquant");
    float *wq = lq_malloc((size_t)max_out * (size_t)n_in * sizeof(float), err, "smoothquant");
    float *ref = lq_malloc((size_t)t * (size_t)max_out * sizeof(float), err, "smoothquant");
    float *out = lq_malloc((size_t)t * (size_t)max_out * sizeof(float), err, "smoothquant");
    lq_status st = LQ_OK;
    if (!xq || !wq || !ref || !out) {
        st = LQ_ERR_NOMEM;
        goto done;
    }
    for (int64_t r = 0; r < t; r++)
        for (int64_t j = 0; j < n_in; j++) xq[r * n_in + j] = s ? x[r * n_in + j] / s[j] : x[r * n_in + j];
    quant_tokens_int8(xq, t, n_in);
    double sum = 0.0, count = 0.0;
    for (int l = 0; l < n_lin && st == LQ_OK; l++) {
        for (int64_t r = 0; r < n_out[l]; r++)
            for (int64_t j = 0; j < n_in; j++) wq[r * n_in + j] = s ? w[l][r * n_in + j] * s[j] : w[l][r * n_in + j];
        st = lq_pass_fakequant(LQ_TYPE_Q8_0, wq, wq, n_out[l], n_in, NULL, n_threads, err);
        if (st != LQ_OK) break;
        lq_pass_matmul(x, t, w[l], n_out[l], n_in, ref, n_threads);
        lq_pass_matmul(xq, t, wq, n_out[l], n_in, out, n_threads);
        size_t n = (size_t)t * (size_t)n_out[l];
        for (size_t i = 0; i < n; i++) {
            double d = (double)ref[i] - out[i];
            sum += d * d;
        }
        count += (double)n;
    }
    *mse = count > 0.0 ? sum / count : 0.0;
done:
    free(xq), free(wq), free(ref), free(out);
    return st;
}
