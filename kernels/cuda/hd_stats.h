/* hd_stats.h — per-channel activation statistics for host and device: the same double sums,
 * in token order, as calib/acc.c's lq_stats_acc_add (Σx², Σ|x|, max|x|), for one channel. The
 * CUDA kernel runs one channel per thread (consecutive threads read consecutive columns of a
 * token row: coalesced). */
#ifndef LQ_CUDA_HD_STATS_H
#define LQ_CUDA_HD_STATS_H

#include "libquant/codecs/common.h"

/* Adds tokens [0, n_tokens) of column j of x (n_tokens × n_in) to the running values. */
static LQ_HD inline void lq_hd_stats_channel(const float *x, int64_t n_tokens, int64_t n_in,
                                             int64_t j, double *sum_x2, double *sum_abs,
                                             float *max_abs) {
    double s2 = *sum_x2, sa = *sum_abs;
    float mx = *max_abs;
    for (int64_t t = 0; t < n_tokens; t++) {
        double v = x[t * n_in + j];
        float m = fabsf(x[t * n_in + j]);
        s2 += v * v;
        sa += fabs(v);
        if (m > mx) mx = m;
    }
    *sum_x2 = s2;
    *sum_abs = sa;
    *max_abs = mx;
}

#endif
