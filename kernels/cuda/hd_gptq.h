/* hd_gptq.h — GPTQ's per-row column sweep inside one lazy batch, for host and device.
 *
 * The same steps as libquant/gptq.c's sweep_row, in the same float operations: at the first
 * column of each block fit the grid on the error-updated values (importance NULL when its
 * block sum is 0), round the column on that grid, take the decoder's value q, propagate
 * (w − q)/U_jj along the batch, record the scaled error for the lazy update, encode the block
 * at its last column. The CUDA kernel (gptq.cu) runs one row per thread through this function;
 * tests/cuda runs it on the host against lq_gptq_quantize. */
#ifndef LQ_CUDA_HD_GPTQ_H
#define LQ_CUDA_HD_GPTQ_H

#include "hd_codec.h"

/* What one row's sweep needs besides its own state. */
typedef struct lq_hd_gptq_args {
    int type;             /* lq_type with a codec */
    int block;            /* its block size */
    int block_bytes;
    int64_t n_in;
    const float *u;       /* n_in × n_in upper factor of H⁻¹ (row-major) */
    const float *imp;     /* n_in importance values (0 for dead columns) */
} lq_hd_gptq_args;

enum { LQ_HD_GPTQ_OK = 0, LQ_HD_GPTQ_NONFINITE = 1, LQ_HD_GPTQ_OVERFLOW = 2 };

/* Fits the grid of the block at column b0 (x = its block_size values). */
static LQ_HD inline int lq_hd_gptq_fit(const lq_hd_gptq_args *a, int64_t b0, const float *x,
                                       float sigma2, lq_grid *g, int64_t *fail_col) {
    for (int e = 0; e < a->block; e++)
        if (!(x[e] == x[e]) || x[e] == INFINITY || x[e] == -INFINITY) {
            *fail_col = b0 + e;
            return LQ_HD_GPTQ_NONFINITE;
        }
    const float *imp = a->imp + b0;
    double imp_sum = 0.0;
    for (int e = 0; e < a->block; e++) imp_sum += imp[e];
    if (!lq_hd_fit(a->type, x, imp_sum > 0.0 ? imp : NULL, sigma2, g)) {
        *fail_col = b0;
        return LQ_HD_GPTQ_OVERFLOW;
    }
    return LQ_HD_GPTQ_OK;
}

/* Sweeps columns [i1, i2) of one row. wr: the row's n_in values (updated in place: swept
 * columns end as their quantized values); g, codes: the row's grid and block_size codes, kept
 * between batches; er: i2 − i1 scaled errors out; loss += Σ (w − q)² / (2·U_jj²); out_row: the
 * row's encoded blocks; deq_row (or NULL): the values used. Returns an LQ_HD_GPTQ_* status and
 * the failing column. */
static LQ_HD inline int lq_hd_gptq_sweep_row(const lq_hd_gptq_args *a, float *wr, float sigma2,
                                             lq_grid *g, int32_t *codes, int64_t i1, int64_t i2,
                                             float *er, double *loss, uint8_t *out_row,
                                             float *deq_row, int64_t *fail_col) {
    int64_t n = a->n_in;
    for (int64_t j = i1; j < i2; j++) {
        int e = (int)(j % a->block);
        int64_t b0 = j - e;
        if (e == 0) {
            int st = lq_hd_gptq_fit(a, b0, wr + b0, sigma2, g, fail_col);
            if (st != LQ_HD_GPTQ_OK) return st;
        }
        lq_hd_round(g, wr + b0, e, 1, codes);
        float q = lq_hd_value(g, e, codes[e]);
        if (deq_row) deq_row[j] = q;
        const float *uj = a->u + j * n;
        float diff = wr[j] - q, d = uj[j], scaled = diff / d;
        *loss += (double)diff * diff / ((double)d * d) / 2.0;
        for (int64_t jj = j + 1; jj < i2; jj++) wr[jj] -= scaled * uj[jj];
        wr[j] = q;
        er[j - i1] = scaled;
        if (e == a->block - 1)
            lq_hd_encode(g, codes, out_row + (size_t)(j / a->block) * (size_t)a->block_bytes);
    }
    return LQ_HD_GPTQ_OK;
}

/* Row mean square with dead columns zeroed first (gptq.c's load_rows): the legacy imatrix
 * weighting's row statistic, accumulated in column order. */
static LQ_HD inline float lq_hd_gptq_load_row(float *wr, const uint8_t *dead, int64_t n) {
    float sum_x2 = 0.0f;
    for (int64_t j = 0; j < n; j++) {
        if (dead[j]) wr[j] = 0.0f;
        sum_x2 += wr[j] * wr[j];
    }
    return sum_x2 / (float)n;
}

#endif
