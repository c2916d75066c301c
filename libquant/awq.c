/* awq.c — activation-aware weight scaling (llm-awq's scale search and clip search) with the
 * GGUF quantizer of the tensor's type in the loop instead of INT4 g128.
 *
 * Scale search: per input channel mean |x|; s = mean|x|^alpha for alpha = k/20, k = 0..19,
 * normalised as llm-awq does (s / sqrt(max s · min s)), each linear fake-quantized as
 * Q(W·s)/s through the codecs, loss = mean squared output error of the block the scales affect
 * (concatenated q/k/v outputs; the MLP output for gate/up; the linear itself for o and down).
 * alpha = 0 is s = 1, plain RTN, so the chosen loss never exceeds RTN's on the sample.
 * Deviation from llm-awq: the attention group's loss is measured on the q/k/v outputs, not on
 * the attention output (which would need the RoPE/softmax path of the runtime per candidate).
 *
 * Clip search: per GGUF block of each row (32 elements, 256 for K-quants/IQ4_XS) try
 * max_val = absmax·(1 − k/20), k = 0..9, clamp, quantize the block with its own fitted grid,
 * keep the clamp with the smallest Σ_t (x·(q − w))² (llm-awq's error). Not for q/k (the caller
 * skips them, as llm-awq does: QKᵀ is hard to clip precisely). */
#include "passes_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MATMUL_CHUNK 64

/* ---- shared helpers ----------------------------------------------------------------------- */

typedef struct matmul_job {
    const float *x, *w;
    float *y;
    int64_t t, n_out, n_in;
} matmul_job;

static void matmul_worker(void *ctx, int64_t begin, int64_t end, int thread_index) {
    const matmul_job *j = (const matmul_job *)ctx;
    for (int64_t c = begin; c < end; c++) {
        int64_t r0 = c * MATMUL_CHUNK, nr = j->t - r0 < MATMUL_CHUNK ? j->t - r0 : MATMUL_CHUNK;
        lq_la_sgemm(false, true, nr, j->n_out, j->n_in, 1.0f, j->x + r0 * j->n_in, j->n_in, j->w,
                    j->n_in, 0.0f, j->y + r0 * j->n_out, j->n_out);
    }
}

void lq_pass_matmul(const float *x, int64_t t, const float *w, int64_t n_out, int64_t n_in,
                    float *y, int n_threads) {
    matmul_job job = {x, w, y, t, n_out, n_in};
    lq_parallel_for((t + MATMUL_CHUNK - 1) / MATMUL_CHUNK, n_threads, matmul_worker, &job);
}

lq_status lq_pass_fakequant(lq_type type, const float *w, float *out, int64_t n_out, int64_t n_in,
                            const float *imp, int n_threads, lq_error *err) {
    size_t bytes = lq_row_size(type, n_in) * (size_t)n_out;
    void *q = lq_malloc(bytes ? bytes : 1, err, "fake quantization");
    if (!q) return LQ_ERR_NOMEM;
    lq_status st = lq_quantize_rows_mt(type, w, q, n_out, n_in, imp, n_threads, err);
    if (st == LQ_OK) st = lq_dequantize_rows(type, q, out, n_out, n_in, err);
    free(q);
    return st;
}

static double sum_sq_diff(const float *a, const float *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        s += d * d;
    }
    return s;
}

/* ---- scale search ------------------------------------------------------------------------- */

/* Sizes of a group's buffers: width of its block output (the linears' outputs side by side, or
 * the MLP's output), the widest linear, and the weights of all its linears together. */
static void group_dims(const awq_group *g, int64_t n_in, int64_t *width, int64_t *max_out, int64_t *total_w) {
    *width = *max_out = *total_w = 0;
    for (int l = 0; l < g->n_lin; l++) {
        *width += g->n_out[l];
        if (g->n_out[l] > *max_out) *max_out = g->n_out[l];
        *total_w += g->n_out[l] * n_in;
    }
    if (g->down) *width = g->n_down_out;
}

/* Block output of the group for inputs x (t × n_in) and weights w[]: concatenated linear outputs,
 * or the MLP output. out: t × (Σ n_out) or t × n_down_out floats; tmp: scratch. */
static void group_forward(const awq_group *g, const float *const *w, const float *x, int64_t t,
                          int64_t n_in, float *out, float *tmp, int n_threads) {
    if (!g->down) {
        int64_t total = 0;
        for (int l = 0; l < g->n_lin; l++) total += g->n_out[l];
        int64_t col = 0;
        for (int l = 0; l < g->n_lin; l++) {
            lq_pass_matmul(x, t, w[l], g->n_out[l], n_in, tmp, n_threads);
            for (int64_t r = 0; r < t; r++)
                memcpy(out + r * total + col, tmp + r * g->n_out[l], (size_t)g->n_out[l] * sizeof(float));
            col += g->n_out[l];
        }
        return;
    }
    int64_t n_ff = g->n_out[0];
    float *gate = tmp, *up = tmp + (size_t)t * (size_t)n_ff;
    lq_pass_matmul(x, t, w[0], n_ff, n_in, gate, n_threads);
    lq_pass_matmul(x, t, w[1], n_ff, n_in, up, n_threads);
    for (size_t i = 0; i < (size_t)t * (size_t)n_ff; i++) gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
    lq_pass_matmul(gate, t, g->down, g->n_down_out, n_ff, out, n_threads);
}

/* w (n_out × n_in, already W·s) ← GPTQ(W·s) with H' = diag(1/s)·H·diag(1/s). hs: n_in² scratch. */
static lq_status gptq_fakequant(const awq_group *g, const double *h, int l, float *w, int64_t n_in,
                                const float *s, double *hs, int n_threads, lq_error *err) {
    for (int64_t i = 0; i < n_in; i++)
        for (int64_t j = 0; j < n_in; j++) hs[i * n_in + j] = h[i * n_in + j] / ((double)s[i] * s[j]);
    size_t bytes = lq_row_size(g->type[l], n_in) * (size_t)g->n_out[l];
    void *q = lq_malloc(bytes, err, "awq+gptq");
    if (!q) return LQ_ERR_NOMEM;
    lq_gptq_opts o = g->gptq;
    o.n_threads = n_threads;
    lq_status st = lq_gptq_quantize(g->type[l], "awq+gptq candidate", w, g->n_out[l], n_in, hs, &o, q,
                                    w, NULL, err);
    free(q);
    return st;
}

void lq_awq_scales(const float *x_mean, int64_t n, double alpha, float *s) {
    float lo = INFINITY, hi = 0.0f;
    for (int64_t j = 0; j < n; j++) {
        float v = (float)pow((double)x_mean[j], alpha);
        if (!(v >= 1e-4f)) v = 1e-4f; /* also catches NaN */
        if (!isfinite(v)) v = 1.0f;
        s[j] = v;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
    }
    float norm = sqrtf(hi * lo);
    for (int64_t j = 0; j < n; j++) s[j] /= norm;
}

/* AWQ+GPTQ judges candidates on tokens GPTQ did not fit: GPTQ minimises exactly the output
 * error on its Hessian's tokens, so an in-sample loss flatters every candidate and let scales
 * through that lost on new text (4m Q3_K: KLD 0.0457 vs GPTQ's 0.0453). The odd sample rows are
 * held out: they go to *xb (t_b rows), and *h_fit becomes the Hessian of the other tokens,
 * (N/2 · H − Σ_held x·xᵀ) · 2/(N − t_b). Leaves *h_fit NULL (judge in-sample, as before) when
 * too few tokens would remain. */
static lq_status held_out_split(const awq_group *g, int64_t n_in, const float *x, int64_t t,
                                int n_threads, float **xb, int64_t *t_b, double **h_fit,
                                lq_error *err) {
    *xb = NULL;
    *h_fit = NULL;
    *t_b = t / 2;
    int64_t n_rest = g->h_tokens - *t_b;
    if (*t_b < 16 || n_rest < n_in) return LQ_OK;
    size_t n2 = (size_t)n_in * (size_t)n_in;
    *xb = lq_malloc((size_t)*t_b * (size_t)n_in * sizeof(float), err, "awq held-out rows");
    *h_fit = lq_calloc(n2, sizeof(double), err, "awq held-out Hessian");
    float *scratch = lq_malloc(n2 * sizeof(float), err, "awq held-out Hessian");
    if (!*xb || !*h_fit || !scratch) {
        free(*xb), free(*h_fit), free(scratch);
        *xb = NULL, *h_fit = NULL;
        return LQ_ERR_NOMEM;
    }
    for (int64_t r = 0; r < *t_b; r++)
        memcpy(*xb + r * n_in, x + (2 * r + 1) * n_in, (size_t)n_in * sizeof(float));
    lq_la_syrk_acc(n_in, *t_b, *xb, n_in, *h_fit, scratch, n_threads);
    free(scratch);
    double keep = 0.5 * (double)g->h_tokens, scale = 2.0 / (double)n_rest;
    for (size_t i = 0; i < n2; i++) (*h_fit)[i] = (keep * g->h[i] - (*h_fit)[i]) * scale;
    return LQ_OK;
}

lq_status lq_awq_search_scale(const awq_group *g, int64_t n_in, const float *x, int64_t t,
                              const float *x_mean, int n_grid, int n_threads, float *s,
                              double *alpha, double *loss_plain, double *loss_best,
                              lq_error *err) {
    float *x_held = NULL;
    double *h_fit = NULL;
    if (g->h) {
        int64_t t_held = 0;
        lq_status st = held_out_split(g, n_in, x, t, n_threads, &x_held, &t_held, &h_fit, err);
        if (st != LQ_OK) return st;
        if (h_fit) x = x_held, t = t_held;
    }
    int64_t width, max_out, total_w;
    group_dims(g, n_in, &width, &max_out, &total_w);
    size_t out_n = (size_t)t * (size_t)width;
    size_t tmp_n = (size_t)t * (size_t)max_out * 2;
    float *ref = lq_malloc(out_n * sizeof(float), err, "awq");
    float *out = lq_malloc(out_n * sizeof(float), err, "awq");
    float *tmp = lq_malloc(tmp_n * sizeof(float), err, "awq");
    float *wbuf = lq_malloc((size_t)total_w * sizeof(float), err, "awq");
    float *cand = lq_malloc((size_t)n_in * sizeof(float), err, "awq");
    double *hs = g->h ? lq_malloc((size_t)n_in * (size_t)n_in * sizeof(double), err, "awq") : NULL;
    lq_status st = LQ_OK;
    if (!ref || !out || !tmp || !wbuf || !cand || (g->h && !hs)) {
        st = LQ_ERR_NOMEM;
        goto done;
    }
    group_forward(g, g->w, x, t, n_in, ref, tmp, n_threads);
    *loss_best = INFINITY;
    *loss_plain = NAN;
    *alpha = 0.0;
    for (int k = 0; k < n_grid; k++) {
        double a = (double)k / n_grid;
        lq_awq_scales(x_mean, n_in, a, cand);
        /* Q(W·s)/s, then the block on the original inputs */
        const float *wq[3];
        float *wp = wbuf;
        for (int l = 0; l < g->n_lin && st == LQ_OK; l++) {
            for (int64_t r = 0; r < g->n_out[l]; r++)
                for (int64_t j = 0; j < n_in; j++) wp[r * n_in + j] = g->w[l][r * n_in + j] * cand[j];
            st = g->h ? gptq_fakequant(g, h_fit ? h_fit : g->h, l, wp, n_in, cand, hs, n_threads, err)
                      : lq_pass_fakequant(g->type[l], wp, wp, g->n_out[l], n_in, NULL, n_threads, err);
            for (int64_t r = 0; r < g->n_out[l]; r++)
                for (int64_t j = 0; j < n_in; j++) wp[r * n_in + j] /= cand[j];
            wq[l] = wp;
            wp += g->n_out[l] * n_in;
        }
        if (st != LQ_OK) {
            if (st != LQ_ERR_NUMERIC) goto done;
            st = LQ_OK; /* a scale that overflows the format: not a candidate */
            continue;
        }
        group_forward(g, wq, x, t, n_in, out, tmp, n_threads);
        double loss = sum_sq_diff(ref, out, out_n) / (double)(out_n ? out_n : 1);
        if (k == 0) *loss_plain = loss;
        if (isfinite(loss) && loss < *loss_best) {
            *loss_best = loss;
            *alpha = a;
            memcpy(s, cand, (size_t)n_in * sizeof(float));
        }
    }
    if (!isfinite(*loss_best)) /* nothing usable: no scaling */
        st = lq_fail(err, LQ_ERR_NUMERIC, "awq: no finite loss over %d scale candidates", n_grid);
    else if (g->min_gain > 0.0 && isfinite(*loss_plain) && *loss_best > (1.0 - g->min_gain) * *loss_plain) {
        lq_awq_scales(x_mean, n_in, 0.0, s); /* alpha 0: s = 1 */
        *alpha = 0.0;
        *loss_best = *loss_plain;
    }
done:
    free(ref), free(out), free(tmp), free(wbuf), free(cand), free(hs), free(x_held), free(h_fit);
    return st;
}

/* Mean squared block output error of the group with every linear l fake-quantized from wc[l]
 * (its type's codec), against the float group g->w. x: t × n_in sampled inputs. */
lq_status lq_awq_group_loss(const awq_group *g, const float *const *wc, int64_t n_in, const float *x,
                            int64_t t, int n_threads, double *loss, lq_error *err) {
    int64_t width, max_out, total_w;
    group_dims(g, n_in, &width, &max_out, &total_w);
    size_t out_n = (size_t)t * (size_t)width;
    float *ref = lq_malloc(out_n * sizeof(float), err, "awq");
    float *out = lq_malloc(out_n * sizeof(float), err, "awq");
    float *tmp = lq_malloc((size_t)t * (size_t)max_out * 2 * sizeof(float), err, "awq");
    float *wq = lq_malloc((size_t)total_w * sizeof(float), err, "awq");
    lq_status st = ref && out && tmp && wq ? LQ_OK : LQ_ERR_NOMEM;
    const float *wl[3];
    float *wp = wq;
    for (int l = 0; l < g->n_lin && st == LQ_OK; l++) {
        st = lq_pass_fakequant(g->type[l], wc[l], wp, g->n_out[l], n_in, NULL, n_threads, err);
        wl[l] = wp;
        wp += g->n_out[l] * n_in;
    }
    if (st == LQ_OK) {
        group_forward(g, g->w, x, t, n_in, ref, tmp, n_threads);
        group_forward(g, wl, x, t, n_in, out, tmp, n_threads);
        *loss = sum_sq_diff(ref, out, out_n) / (double)(out_n ? out_n : 1);
    }
    free(ref), free(out), free(tmp), free(wq);
    return st;
}

/* ---- clip search -------------------------------------------------------------------------- */

typedef struct clip_job {
    lq_type type;
    float *w;
    int64_t n_out, n_in, t;
    const float *x;
    const double *h; /* or the Hessian of the input (n_in × n_in): then x is unused */
    int block;
    double *ratio_sum; /* per row */
} clip_job;

/* Σ_t (x_t·(q − w))² for one block: q, w block values, x columns [b0, b0+n); with the Hessian
 * H = Σ x·xᵀ the same sum over every calibration token is dᵀ·H_bb·d, H_bb the block's diagonal
 * sub-block. */
static double clip_error(const clip_job *j, int64_t b0, const float *q, const float *w) {
    double err = 0.0;
    if (j->h) {
        double d[256];
        for (int e = 0; e < j->block; e++) d[e] = (double)q[e] - w[e];
        for (int e = 0; e < j->block; e++) {
            const double *hr = j->h + (b0 + e) * j->n_in + b0;
            double acc = 0.0;
            for (int f = 0; f < j->block; f++) acc += hr[f] * d[f];
            err += d[e] * acc;
        }
        return err;
    }
    for (int64_t tt = 0; tt < j->t; tt++) {
        const float *xt = j->x + tt * j->n_in + b0;
        float d = 0.0f;
        for (int e = 0; e < j->block; e++) d += xt[e] * (q[e] - w[e]);
        err += (double)d * d;
    }
    return err;
}

static void clip_row(const clip_job *j, int64_t r) {
    float *w = j->w + r * j->n_in;
    float sigma2 = 0.0f;
    for (int64_t c = 0; c < j->n_in; c++) sigma2 += w[c] * w[c];
    sigma2 /= (float)j->n_in;
    float wc[256], q[256];
    int32_t codes[256];
    lq_grid g;
    double ratios = 0.0;
    for (int64_t b0 = 0; b0 < j->n_in; b0 += j->block) {
        float *wb = w + b0, absmax = 0.0f;
        for (int e = 0; e < j->block; e++) absmax = fmaxf(absmax, fabsf(wb[e]));
        double best = INFINITY, best_ratio = 1.0;
        for (int k = 0; k < 10 && absmax > 0.0f; k++) {
            float m = absmax * (1.0f - (float)k / 20.0f);
            for (int e = 0; e < j->block; e++) wc[e] = fminf(fmaxf(wb[e], -m), m);
            if (lq_grid_fit(j->type, wc, NULL, sigma2, &g) != LQ_OK) continue;
            lq_grid_round(&g, wc, 0, j->block, codes);
            for (int e = 0; e < j->block; e++) q[e] = lq_grid_value(&g, e, codes[e]);
            double err = clip_error(j, b0, q, wb);
            if (err < best) {
                best = err;
                best_ratio = 1.0 - k / 20.0;
            }
        }
        if (best_ratio < 1.0) {
            float m = absmax * (float)best_ratio;
            for (int e = 0; e < j->block; e++) wb[e] = fminf(fmaxf(wb[e], -m), m);
        }
        ratios += best_ratio;
    }
    j->ratio_sum[r] = ratios / (double)(j->n_in / j->block);
}

static void clip_worker(void *ctx, int64_t begin, int64_t end, int thread_index) {
    for (int64_t r = begin; r < end; r++) clip_row((const clip_job *)ctx, r);
}

static lq_status awq_clip(lq_type type, float *w, int64_t n_out, int64_t n_in, const float *x,
                         int64_t t, const double *h, int n_threads, double *mean_ratio, lq_error *err) {
    const lq_type_traits *tr = lq_type_get(type);
    if (!tr || !tr->is_quantized || !tr->has_codec || n_in % tr->block_size != 0 || tr->block_size > 256)
        return lq_fail(err, LQ_ERR_UNSUPPORTED, "awq clip: type %d does not fit rows of %lld",
                       (int)type, (long long)n_in);
    double *ratio = (double *)lq_calloc((size_t)n_out, sizeof(double), err, "awq clip");
    if (!ratio) return LQ_ERR_NOMEM;
    clip_job job = {type, w, n_out, n_in, t, x, h, tr->block_size, ratio};
    lq_parallel_for(n_out, n_threads, clip_worker, &job);
    double sum = 0.0;
    for (int64_t r = 0; r < n_out; r++) sum += ratio[r];
    if (mean_ratio) *mean_ratio = n_out ? sum / (double)n_out : 1.0;
    free(ratio);
    return LQ_OK;
}

lq_status lq_awq_clip(lq_type type, float *w, int64_t n_out, int64_t n_in, const float *x,
                      int64_t t, int n_threads, double *mean_ratio, lq_error *err) {
    return awq_clip(type, w, n_out, n_in, x, t, NULL, n_threads, mean_ratio, err);
}

lq_status lq_awq_clip_h(lq_type type, float *w, int64_t n_out, int64_t n_in, const double *h,
                        int n_threads, double *mean_ratio, lq_error *err) {
    return awq_clip(type, w, n_out, n_in, NULL, 0, h, n_threads, mean_ratio, err);
}
