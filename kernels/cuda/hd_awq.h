/* hd_awq.h — AWQ's clip search for one block, for host and device (libquant/awq.c's clip_row
 * per block, same float operations): try max_val = absmax·(1 − k/20), k = 0..9, clamp, fit and
 * round the block on its own grid, score Σ_t (x_t·(q − w))² in double over the sampled tokens,
 * keep the best clamp. Blocks are independent (the row statistic sigma2 is taken before any
 * clamping), so the CUDA kernel (awq.cu) runs one block per thread. */
#ifndef LQ_CUDA_HD_AWQ_H
#define LQ_CUDA_HD_AWQ_H

#include "hd_codec.h"

/* Σ_t (x_t·(q − w))² of one block: x is t × n_in, the block's columns start at b0. */
static LQ_HD inline double lq_hd_clip_error(const float *x, int64_t t, int64_t n_in, int64_t b0,
                                            int block, const float *q, const float *w) {
    double err = 0.0;
    for (int64_t tt = 0; tt < t; tt++) {
        const float *xt = x + tt * n_in + b0;
        float d = 0.0f;
        for (int e = 0; e < block; e++) d += xt[e] * (q[e] - w[e]);
        err += (double)d * d;
    }
    return err;
}

/* Clips the block wb (block values at column b0, in place) to its best clamp; returns the
 * chosen ratio (1 = unclipped). wc, q: scratch of block floats; codes: block ints. */
static LQ_HD inline double lq_hd_clip_block(int type, int block, float *wb, int64_t b0,
                                            const float *x, int64_t t, int64_t n_in, float sigma2,
                                            float *wc, float *q, int32_t *codes, lq_grid *g) {
    float absmax = 0.0f;
    for (int e = 0; e < block; e++) absmax = fmaxf(absmax, fabsf(wb[e]));
    double best = INFINITY, best_ratio = 1.0;
    for (int k = 0; k < 10 && absmax > 0.0f; k++) {
        float m = absmax * (1.0f - (float)k / 20.0f);
        for (int e = 0; e < block; e++) wc[e] = fminf(fmaxf(wb[e], -m), m);
        if (!lq_hd_fit(type, wc, NULL, sigma2, g)) continue;
        lq_hd_round(g, wc, 0, block, codes);
        for (int e = 0; e < block; e++) q[e] = lq_hd_value(g, e, codes[e]);
        double err = lq_hd_clip_error(x, t, n_in, b0, block, q, wb);
        if (err < best) {
            best = err;
            best_ratio = 1.0 - k / 20.0;
        }
    }
    if (best_ratio < 1.0) {
        float m = absmax * (float)best_ratio;
        for (int e = 0; e < block; e++) wb[e] = fminf(fmaxf(wb[e], -m), m);
    }
    return best_ratio;
}

/* Row mean square (awq.c's clip_row statistic), in column order. */
static LQ_HD inline float lq_hd_row_sigma2(const float *w, int64_t n) {
    float sigma2 = 0.0f;
    for (int64_t c = 0; c < n; c++) sigma2 += w[c] * w[c];
    return sigma2 / (float)n;
}

#endif
