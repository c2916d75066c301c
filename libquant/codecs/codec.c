/* codec.c — the codec registry, the public lq_grid_* dispatch, and the row quantizers built from
 * fit → round → encode (the only way rows are quantized, so GPTQ and RTN share one encoder).
 *
 * Scale overflow: llama.cpp's llama-quantize validates every written row and refuses blocks whose
 * fp16 scales are not finite. We refuse them as they are produced: a block whose stored scale
 * (d_bits / dmin_bits) is Inf or NaN — values too large for the format, e.g. |x| > ~8.3e6 for
 * Q8_0 or ~5.2e5 for Q4_0 — fails with LQ_ERR_NUMERIC naming the row and block, so no Inf/NaN is
 * ever written. Every codec fills d_bits/dmin_bits (0 where a format has no such field). */
#include "codec.h"

#include <inttypes.h>
#include <stdlib.h>

const lq_codec *lq_codec_get(lq_type type) {
    switch (type) {
    case LQ_TYPE_Q4_0: return &lq_codec_q4_0;
    case LQ_TYPE_Q4_1: return &lq_codec_q4_1;
    case LQ_TYPE_Q5_0: return &lq_codec_q5_0;
    case LQ_TYPE_Q5_1: return &lq_codec_q5_1;
    case LQ_TYPE_Q8_0: return &lq_codec_q8_0;
    case LQ_TYPE_IQ4_NL: return &lq_codec_iq4_nl;
    case LQ_TYPE_IQ4_XS: return &lq_codec_iq4_xs;
    case LQ_TYPE_Q2_K: return &lq_codec_q2_K;
    case LQ_TYPE_Q3_K: return &lq_codec_q3_K;
    case LQ_TYPE_Q4_K: return &lq_codec_q4_K;
    case LQ_TYPE_Q5_K: return &lq_codec_q5_K;
    case LQ_TYPE_Q6_K: return &lq_codec_q6_K;
    case LQ_TYPE_Q8_K: return &lq_codec_q8_K;
    default: return NULL;
    }
}

static bool fp16_bits_finite(uint16_t h) { return (h & 0x7C00u) != 0x7C00u; }

/* True when the grid's stored scales can be written (finite in fp16). */
static bool grid_scales_finite(const lq_grid *g) {
    return fp16_bits_finite(g->d_bits) && fp16_bits_finite(g->dmin_bits);
}

/* ---- lq_grid_* ---------------------------------------------------------------------------- */

lq_status lq_grid_fit(lq_type type, const float *x, const float *importance, float sigma2,
                      lq_grid *grid) {
    const lq_codec *c = lq_codec_get(type);
    if (!c) return LQ_ERR_UNSUPPORTED;
    if (!x || !grid) return LQ_ERR_INVALID;
    c->fit(x, importance, sigma2, grid);
    return grid_scales_finite(grid) ? LQ_OK : LQ_ERR_NUMERIC;
}

/* The codec of a fitted grid, or NULL for a grid that no fit produced. */
static const lq_codec *grid_codec(const lq_grid *grid) {
    if (!grid) return NULL;
    const lq_codec *c = lq_codec_get((lq_type)grid->type);
    return c && grid->n == c->block_size ? c : NULL;
}

void lq_grid_round(const lq_grid *grid, const float *x, int first, int n, int32_t *codes) {
    const lq_codec *c = grid_codec(grid);
    if (!c || !x || !codes || first < 0 || n < 0 || first > grid->n - n) return;
    c->round(grid, x, first, n, codes);
}

float lq_grid_value(const lq_grid *grid, int e, int32_t code) {
    const lq_codec *c = grid_codec(grid);
    if (!c || e < 0 || e >= grid->n || code < grid->qmin || code > grid->qmax) return NAN;
    return c->value(grid, e, code);
}

void lq_grid_encode(const lq_grid *grid, const int32_t *codes, void *block) {
    const lq_codec *c = grid_codec(grid);
    if (!c || !codes || !block) return;
    c->encode(grid, codes, block);
}

/* ---- row quantizers ------------------------------------------------------------------------ */

/* Validates the arguments shared by the row functions; *row_bytes gets the size of one row. */
static lq_status check_rows(lq_type type, const void *src, const void *dst, int64_t n_rows,
                            int64_t n_per_row, size_t *row_bytes, lq_error *err) {
    const lq_type_traits *t = lq_type_get(type);
    if (!t) return lq_fail(err, LQ_ERR_INVALID, "unknown type id %d", (int)type);
    if (!t->has_codec || (t->is_quantized && !lq_codec_get(type)))
        return lq_fail(err, LQ_ERR_UNSUPPORTED, "%s: no codec for this type", t->name);
    if (n_rows < 0 || n_per_row <= 0)
        return lq_fail(err, LQ_ERR_INVALID, "%s: bad shape %" PRId64 " rows x %" PRId64 " columns",
                       t->name, n_rows, n_per_row);
    if (n_per_row % t->block_size != 0)
        return lq_fail(err, LQ_ERR_INVALID,
                       "%s: row width %" PRId64 " is not a multiple of the block size %d", t->name,
                       n_per_row, t->block_size);
    *row_bytes = lq_row_size(type, n_per_row);
    uint64_t total;
    if (!lq_mul_u64((uint64_t)n_rows, *row_bytes, &total) || total > (uint64_t)SIZE_MAX ||
        !lq_mul_u64((uint64_t)n_rows, (uint64_t)n_per_row, &total) || total > (uint64_t)SIZE_MAX / 4)
        return lq_fail(err, LQ_ERR_INVALID, "%s: %" PRId64 " x %" PRId64 " elements overflow size_t",
                       t->name, n_rows, n_per_row);
    if (n_rows > 0 && (!src || !dst))
        return lq_fail(err, LQ_ERR_INVALID, "%s: NULL source or destination", t->name);
    return LQ_OK;
}

static lq_status check_importance(const lq_type_traits *t, const float *imp, int64_t n,
                                  lq_error *err) {
    if (!imp) return LQ_OK;
    for (int64_t c = 0; c < n; c++) {
        if (!isfinite(imp[c]))
            return lq_fail(err, LQ_ERR_NUMERIC, "%s: importance of column %" PRId64 " is %s",
                           t->name, c, isnan(imp[c]) ? "NaN" : "Inf");
        if (imp[c] < 0)
            return lq_fail(err, LQ_ERR_INVALID, "%s: importance of column %" PRId64
                           " is negative (%g)", t->name, c, (double)imp[c]);
    }
    return LQ_OK;
}

/* Beyond this magnitude no fp16-scaled block can hold a value (the largest, IQ4_XS and Q6_K,
 * reach 65504·32·127 ≈ 2.7e8), and the searches' x² sums would overflow to Inf, which some
 * reference searches turn into an all-zero block instead of an Inf scale. Refusing such input
 * up front keeps that from passing silently. Q8_K (float scale) and F32 take any finite value. */
#define LQ_MAX_QUANT_INPUT 1e15f

static lq_status check_row_values(const char *name, const float *x, int64_t n, int64_t row,
                                  float limit, lq_error *err) {
    for (int64_t c = 0; c < n; c++) {
        if (!isfinite(x[c]))
            return lq_fail(err, LQ_ERR_NUMERIC, "%s: row %" PRId64 ", column %" PRId64 ": input is %s",
                           name, row, c, isnan(x[c]) ? "NaN" : "Inf");
        if (fabsf(x[c]) > limit)
            return lq_fail(err, LQ_ERR_NUMERIC,
                           "%s: row %" PRId64 ", column %" PRId64 ": %g is too large for this type",
                           name, row, c, (double)x[c]);
    }
    return LQ_OK;
}

/* Plain types: conversion; values that overflow F16 are refused rather than written as Inf. */
static lq_status convert_row(lq_type type, const float *x, void *dst, int64_t n, int64_t row,
                             lq_error *err) {
    if (type == LQ_TYPE_F32) {
        memcpy(dst, x, (size_t)n * sizeof(float));
        return LQ_OK;
    }
    uint16_t *h = (uint16_t *)dst;
    for (int64_t c = 0; c < n; c++) {
        h[c] = type == LQ_TYPE_F16 ? lq_fp16_from_f32(x[c]) : lq_bf16_from_f32(x[c]);
        bool inf = type == LQ_TYPE_F16 ? !fp16_bits_finite(h[c]) : (h[c] & 0x7F80u) == 0x7F80u;
        if (inf)
            return lq_fail(err, LQ_ERR_NUMERIC, "%s: row %" PRId64 ", column %" PRId64
                           ": %g overflows the type", lq_type_get(type)->name, row, c, (double)x[c]);
    }
    return LQ_OK;
}

/* One row through fit → round → encode, block by block. */
static lq_status quantize_row(const lq_codec *c, const char *name, const float *x, uint8_t *dst,
                              int64_t n_per_row, const float *imp, int64_t row, lq_error *err) {
    float sigma2 = 0.0f;
    if (imp) { /* mean square of the whole row, accumulated in order as llama.cpp does */
        float sum_x2 = 0.0f;
        for (int64_t j = 0; j < n_per_row; j++) sum_x2 += x[j] * x[j];
        sigma2 = sum_x2 / (float)n_per_row;
    }
    int32_t codes[LQ_QK_K];
    lq_grid g;
    int64_t n_blocks = n_per_row / c->block_size;
    for (int64_t b = 0; b < n_blocks; b++) {
        const float *xb = x + b * c->block_size;
        c->fit(xb, imp ? imp + b * c->block_size : NULL, sigma2, &g);
        if (!grid_scales_finite(&g))
            return lq_fail(err, LQ_ERR_NUMERIC,
                           "%s: row %" PRId64 ", block %" PRId64 " (columns %" PRId64 "..%" PRId64
                           "): the block scale overflows fp16 (values too large for this type)",
                           name, row, b, b * c->block_size, (b + 1) * c->block_size - 1);
        c->round(&g, xb, 0, c->block_size, codes);
        c->encode(&g, codes, dst + b * c->block_bytes);
    }
    return LQ_OK;
}

typedef struct quant_job {
    lq_type type;
    const lq_codec *codec; /* NULL for F32/F16/BF16 */
    const char *name;
    const float *src;
    uint8_t *dst;
    int64_t n_per_row;
    size_t row_bytes;
    const float *importance;
    /* per thread: the first failing row (INT64_MAX if none) and its error */
    int64_t *fail_row;
    lq_error *errs;
} quant_job;

static lq_status quantize_one(const quant_job *job, int64_t r, lq_error *err) {
    const float *x = job->src + r * job->n_per_row;
    uint8_t *out = job->dst + (size_t)r * job->row_bytes;
    if (lq_interrupted) return lq_fail(err, LQ_ERR_INTERRUPTED, "%s: interrupted at row %" PRId64, job->name, r);
    bool any_finite = job->type == LQ_TYPE_F32 || job->type == LQ_TYPE_Q8_K;
    float limit = any_finite ? INFINITY : LQ_MAX_QUANT_INPUT; /* F16/BF16: checked on conversion */
    lq_status st = check_row_values(job->name, x, job->n_per_row, r, limit, err);
    if (st != LQ_OK) return st;
    if (!job->codec) return convert_row(job->type, x, out, job->n_per_row, r, err);
    return quantize_row(job->codec, job->name, x, out, job->n_per_row, job->importance, r, err);
}

/* Rows [begin, end) in order, stopping at the first failure: with contiguous chunks the lowest
 * failing row over all threads is the one a single thread would have reported. */
static void quantize_chunk(void *ctx, int64_t begin, int64_t end, int thread_index) {
    quant_job *job = (quant_job *)ctx;
    for (int64_t r = begin; r < end; r++) {
        if (quantize_one(job, r, &job->errs[thread_index]) != LQ_OK) {
            job->fail_row[thread_index] = r;
            return;
        }
    }
}

lq_status lq_quantize_rows_mt(lq_type type, const float *src, void *dst, int64_t n_rows,
                              int64_t n_per_row, const float *importance, int n_threads,
                              lq_error *err) {
    size_t row_bytes;
    lq_status st = check_rows(type, src, dst, n_rows, n_per_row, &row_bytes, err);
    if (st != LQ_OK) return st;
    const lq_type_traits *t = lq_type_get(type);
    st = check_importance(t, importance, n_per_row, err);
    if (st != LQ_OK || n_rows == 0) return st;

    if (n_threads <= 0) n_threads = lq_n_cpus();
    if (n_threads > n_rows) n_threads = (int)n_rows;
    int64_t *fail_row = (int64_t *)lq_calloc((size_t)n_threads, sizeof *fail_row, err, "row quantizer");
    lq_error *errs = (lq_error *)lq_calloc((size_t)n_threads, sizeof *errs, err, "row quantizer");
    if (!fail_row || !errs) {
        free(fail_row);
        free(errs);
        return LQ_ERR_NOMEM;
    }
    for (int i = 0; i < n_threads; i++) fail_row[i] = INT64_MAX;
    quant_job job = {type, t->is_quantized ? lq_codec_get(type) : NULL, t->name, src,
                     (uint8_t *)dst, n_per_row, row_bytes, importance, fail_row, errs};
    lq_parallel_for(n_rows, n_threads, quantize_chunk, &job);

    int first = -1;
    for (int i = 0; i < n_threads; i++)
        if (fail_row[i] != INT64_MAX && (first < 0 || fail_row[i] < fail_row[first])) first = i;
    st = LQ_OK;
    if (first >= 0) {
        st = errs[first].code;
        if (err) *err = errs[first];
    }
    free(fail_row);
    free(errs);
    return st;
}

lq_status lq_quantize_rows(lq_type type, const float *src, void *dst, int64_t n_rows,
                           int64_t n_per_row, const float *importance, lq_error *err) {
    return lq_quantize_rows_mt(type, src, dst, n_rows, n_per_row, importance, 1, err);
}

/* ---- decoding ------------------------------------------------------------------------------ */

lq_status lq_dequantize_rows(lq_type type, const void *src, float *dst, int64_t n_rows,
                             int64_t n_per_row, lq_error *err) {
    size_t row_bytes;
    lq_status st = check_rows(type, src, dst, n_rows, n_per_row, &row_bytes, err);
    if (st != LQ_OK) return st;
    const lq_type_traits *t = lq_type_get(type);
    const uint8_t *in = (const uint8_t *)src;
    if (!t->is_quantized) {
        size_t n = (size_t)n_rows * (size_t)n_per_row;
        if (type == LQ_TYPE_F32)
            memcpy(dst, src, n * sizeof(float));
        else if (type == LQ_TYPE_F16)
            for (size_t i = 0; i < n; i++) dst[i] = lq_fp16_to_f32(((const uint16_t *)src)[i]);
        else
            for (size_t i = 0; i < n; i++) dst[i] = lq_bf16_to_f32(((const uint16_t *)src)[i]);
        return LQ_OK;
    }
    const lq_codec *c = lq_codec_get(type);
    if (!c->decode) return lq_fail(err, LQ_ERR_UNSUPPORTED, "%s: no decoder for this type", t->name);
    int64_t n_blocks = n_per_row / c->block_size;
    for (int64_t r = 0; r < n_rows; r++) {
        for (int64_t b = 0; b < n_blocks; b++) {
            float *y = dst + r * n_per_row + b * c->block_size;
            c->decode(in + (size_t)r * row_bytes + (size_t)b * c->block_bytes, y);
            /* a block with an Inf/NaN scale is malformed: llama.cpp rejects it too */
            for (int j = 0; j < c->block_size; j++)
                if (!isfinite(y[j]))
                    return lq_fail(err, LQ_ERR_FORMAT,
                                   "%s: row %" PRId64 ", block %" PRId64 ": decoded value %s at column %" PRId64
                                   " (the block's scale is not finite)",
                                   t->name, r, b, isnan(y[j]) ? "NaN" : "Inf", b * c->block_size + j);
        }
    }
    return LQ_OK;
}

/* ---- error helpers ------------------------------------------------------------------------- */

/* Weighted mean of (a−b)²: Σw(a−b)²/Σw; plain mean when weights is NULL; 0 when n ≤ 0 or Σw = 0. */
double lq_row_mse(const float *a, const float *b, int64_t n, const float *weights) {
    double sum = 0.0, sum_w = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double w = weights ? (double)weights[i] : 1.0;
        double diff = (double)a[i] - (double)b[i];
        sum += w * diff * diff;
        sum_w += w;
    }
    return sum_w > 0.0 ? sum / sum_w : 0.0;
}

double lq_row_max_err(const float *a, const float *b, int64_t n) {
    double max = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double diff = fabs((double)a[i] - (double)b[i]);
        if (diff > max || diff != diff) max = diff;
    }
    return max;
}
