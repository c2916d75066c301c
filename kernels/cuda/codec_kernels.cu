// codec_kernels.cu — kernels over block formats: dequantization, quantization (fit → round →
// encode), AWQ fake quantization and clip search, quantized GEMV/GEMM, activation statistics.
// Every per-block step is a call into the codecs' host+device functions (hd_codec.h), one
// block (or one row / channel) per thread: simple, and the same float operations as the CPU.
#include "cuda_internal.h"
#include "hd_awq.h"
#include "hd_codec.h"
#include "hd_stats.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LQ_MAX_QUANT_INPUT 1e15f /* codec.c: beyond it no fp16-scaled block holds a value */

// ---- argument checks ------------------------------------------------------------------------

static bool is_plain(lq_type type) {
    return type == LQ_TYPE_F32 || type == LQ_TYPE_F16 || type == LQ_TYPE_BF16;
}

/* Codec types and (when plain_ok) F32/F16/BF16, with a width that fits the blocks. */
static lq_status check_shape(lq_cuda_ctx *ctx, const char *what, lq_type type, int64_t n_rows,
                             int64_t n_per_row, bool plain_ok, lq_error *err) {
    const lq_type_traits *t = lq_type_get(type);
    if (ctx && ctx->sticky.code != LQ_OK) return lq_cuda_status(ctx, err);
    if (!t || (!lq_hd_block_size(type) && !(plain_ok && is_plain(type))))
        return lq_fail(err, LQ_ERR_UNSUPPORTED, "cuda %s: type %s is not supported on the device",
                       what, t ? t->name : "(unknown)");
    if (n_rows < 0 || n_per_row <= 0 || n_per_row % t->block_size != 0)
        return lq_fail(err, LQ_ERR_INVALID, "cuda %s: %s: shape %" PRId64 " x %" PRId64
                       " does not fit blocks of %d", what, t->name, n_rows, n_per_row, t->block_size);
    uint64_t total;
    if (!lq_mul_u64((uint64_t)n_rows, (uint64_t)n_per_row, &total) || total > ((uint64_t)1 << 40))
        return lq_fail(err, LQ_ERR_INVALID, "cuda %s: %s: %" PRId64 " x %" PRId64 " is too large",
                       what, t->name, n_rows, n_per_row);
    return LQ_OK;
}

static lq_status launched(lq_cuda_ctx *ctx, const char *what, lq_error *err) {
    return lq_cuda_check(ctx, cudaGetLastError(), what, err);
}

// ---- dequantization -------------------------------------------------------------------------

__global__ void k_dequant_blocks(int type, const uint8_t *src, size_t row_stride, float *dst,
                                 int64_t n_rows, int64_t n_per_row) {
    int bs = lq_hd_block_size(type), bb = lq_hd_block_bytes(type);
    int64_t nb = n_per_row / bs;
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n_rows * nb) return;
    int64_t r = i / nb, b = i % nb;
    lq_hd_decode(type, src + (size_t)r * row_stride + (size_t)b * (size_t)bb,
                 dst + r * n_per_row + b * bs);
}

__global__ void k_dequant_plain(int type, const uint8_t *src, size_t row_stride, float *dst,
                                int64_t n_rows, int64_t n_per_row) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n_rows * n_per_row) return;
    int64_t r = i / n_per_row, c = i % n_per_row;
    const uint8_t *row = src + (size_t)r * row_stride;
    float v;
    if (type == LQ_TYPE_F32) {
        v = ((const float *)row)[c];
    } else {
        uint16_t h = ((const uint16_t *)row)[c];
        v = type == LQ_TYPE_F16 ? lq_fp16_to_f32(h) : lq_bf16_to_f32(h);
    }
    dst[i] = v;
}

extern "C" lq_status lq_cuda_dequantize_rows_dev(lq_cuda_ctx *ctx, lq_type type, const void *src,
                                                 size_t row_stride, float *dst, int64_t n_rows,
                                                 int64_t n_per_row, lq_error *err) {
    lq_status st = check_shape(ctx, "dequantize", type, n_rows, n_per_row, true, err);
    if (st != LQ_OK || n_rows == 0) return st;
    if (row_stride < lq_row_size(type, n_per_row) || row_stride % 2 != 0)
        return lq_fail(err, LQ_ERR_INVALID, "cuda dequantize: row stride %zu does not hold a row", row_stride);
    if (is_plain(type)) {
        k_dequant_plain<<<lq_cuda_grid(n_rows * n_per_row), LQ_CUDA_THREADS, 0, ctx->compute>>>(
            (int)type, (const uint8_t *)src, row_stride, dst, n_rows, n_per_row);
    } else {
        int64_t n_blocks = n_rows * (n_per_row / lq_hd_block_size(type));
        k_dequant_blocks<<<lq_cuda_grid(n_blocks), LQ_CUDA_THREADS, 0, ctx->compute>>>(
            (int)type, (const uint8_t *)src, row_stride, dst, n_rows, n_per_row);
    }
    return launched(ctx, "dequantize kernel", err);
}

// ---- quantization ---------------------------------------------------------------------------

/* Row mean square (quantize_row's sigma2 with importance), accumulated in column order. */
__global__ void k_row_sigma2(const float *x, int64_t n_rows, int64_t n, float *sigma2) {
    int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (r < n_rows) sigma2[r] = lq_hd_row_sigma2(x + r * n, n);
}

/* One block per thread: fit → round → encode (→ decode into deq; out = deq / s when s). status:
 * 0 ok, 1 the scale overflows fp16, 2 non-finite or too large input. */
__global__ void k_quantize_blocks(int type, const float *src, const float *s, uint8_t *blocks,
                                  float *deq, int64_t n_rows, int64_t n_per_row, const float *imp,
                                  const float *sigma2, uint8_t *status) {
    int bs = lq_hd_block_size(type), bb = lq_hd_block_bytes(type);
    int64_t nb = n_per_row / bs;
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n_rows * nb) return;
    int64_t r = i / nb, b = i % nb, c0 = b * bs;
    float x[LQ_QK_K], y[LQ_QK_K];
    int32_t codes[LQ_QK_K];
    lq_grid g;
    uint8_t bad = 0;
    for (int e = 0; e < bs; e++) {
        float v = src[r * n_per_row + c0 + e];
        if (s) v = v * s[c0 + e];
        if (!(fabsf(v) <= LQ_MAX_QUANT_INPUT)) bad = 2; /* also NaN */
        x[e] = v;
    }
    uint8_t *block = blocks + (size_t)r * (size_t)nb * (size_t)bb + (size_t)b * (size_t)bb;
    if (!bad && !lq_hd_quantize_block(type, x, imp ? imp + c0 : NULL, sigma2 ? sigma2[r] : 0.0f,
                                      &g, codes, block, deq ? y : NULL))
        bad = 1;
    status[i] = bad;
    if (deq && !bad)
        for (int e = 0; e < bs; e++) deq[r * n_per_row + c0 + e] = s ? y[e] / s[c0 + e] : y[e];
}

static lq_status quantize_launch(lq_cuda_ctx *ctx, lq_type type, const float *src, const float *s,
                                 void *blocks, float *deq, int64_t n_rows, int64_t n_per_row,
                                 const float *imp, uint8_t *status, lq_error *err) {
    lq_status st = check_shape(ctx, "quantize", type, n_rows, n_per_row, false, err);
    if (st != LQ_OK || n_rows == 0) return st;
    float *sigma2 = NULL;
    if (imp) { /* the legacy imatrix weighting's row statistic */
        st = lq_cuda_buf_reserve(ctx, &ctx->scratch[3], (size_t)n_rows * sizeof(float), err);
        if (st != LQ_OK) return st;
        sigma2 = (float *)ctx->scratch[3].ptr;
        k_row_sigma2<<<lq_cuda_grid(n_rows), LQ_CUDA_THREADS, 0, ctx->compute>>>(src, n_rows,
                                                                                n_per_row, sigma2);
    }
    int64_t n_blocks = n_rows * (n_per_row / lq_hd_block_size(type));
    k_quantize_blocks<<<lq_cuda_grid(n_blocks), LQ_CUDA_THREADS, 0, ctx->compute>>>(
        (int)type, src, s, (uint8_t *)blocks, deq, n_rows, n_per_row, imp, sigma2, status);
    return launched(ctx, "quantize kernel", err);
}

extern "C" lq_status lq_cuda_quantize_rows_dev(lq_cuda_ctx *ctx, lq_type type, const float *src,
                                               void *blocks, float *deq, int64_t n_rows,
                                               int64_t n_per_row, const float *imp,
                                               uint8_t *status, lq_error *err) {
    return quantize_launch(ctx, type, src, NULL, blocks, deq, n_rows, n_per_row, imp, status, err);
}

extern "C" lq_status lq_cuda_awq_fakequant_scaled_dev(lq_cuda_ctx *ctx, lq_type type,
                                                      const float *w, const float *s, float *out,
                                                      void *blocks, int64_t n_rows, int64_t n_in,
                                                      uint8_t *status, lq_error *err) {
    if (!s) return lq_fail(err, LQ_ERR_INVALID, "cuda awq: no scales");
    return quantize_launch(ctx, type, w, s, blocks, out, n_rows, n_in, NULL, status, err);
}

// ---- elementwise helpers of the AWQ loss --------------------------------------------------

__global__ void k_silu_mul(float *gate, const float *up, int64_t n) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

extern "C" lq_status lq_cuda_silu_mul_dev(lq_cuda_ctx *ctx, float *gate, const float *up,
                                          int64_t n, lq_error *err) {
    if (ctx->sticky.code != LQ_OK) return lq_cuda_status(ctx, err);
    if (n <= 0) return LQ_OK;
    k_silu_mul<<<lq_cuda_grid(n), LQ_CUDA_THREADS, 0, ctx->compute>>>(gate, up, n);
    return launched(ctx, "silu kernel", err);
}

/* Per-thread partial sums over a grid-stride range, then one double per block. */
__global__ void k_sum_sq_diff(const float *a, const float *b, int64_t n, double *partial) {
    __shared__ double part[LQ_CUDA_THREADS];
    double s = 0.0;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        double d = (double)a[i] - b[i];
        s += d * d;
    }
    part[threadIdx.x] = s;
    __syncthreads();
    for (int step = LQ_CUDA_THREADS / 2; step > 0; step /= 2) {
        if ((int)threadIdx.x < step) part[threadIdx.x] += part[threadIdx.x + step];
        __syncthreads();
    }
    if (threadIdx.x == 0) partial[blockIdx.x] = part[0];
}

extern "C" lq_status lq_cuda_sum_sq_diff_dev(lq_cuda_ctx *ctx, const float *a, const float *b,
                                             int64_t n, double *out, lq_error *err) {
    *out = 0.0;
    if (ctx->sticky.code != LQ_OK) return lq_cuda_status(ctx, err);
    if (n <= 0) return LQ_OK;
    const int n_blocks = 256;
    lq_status st = lq_cuda_buf_reserve(ctx, &ctx->scratch[2], n_blocks * sizeof(double), err);
    if (st != LQ_OK) return st;
    k_sum_sq_diff<<<n_blocks, LQ_CUDA_THREADS, 0, ctx->compute>>>(a, b, n, (double *)ctx->scratch[2].ptr);
    if ((st = launched(ctx, "sum of squares kernel", err)) != LQ_OK) return st;
    double partial[256];
    st = lq_cuda_download(ctx, partial, ctx->scratch[2].ptr, sizeof partial, err);
    for (int i = 0; i < n_blocks && st == LQ_OK; i++) *out += partial[i];
    return st;
}

// ---- AWQ clip search --------------------------------------------------------------------------

__global__ void k_awq_clip(int type, float *w, int64_t n_out, int64_t n_in, const float *x,
                           int64_t t, const float *sigma2, double *ratio) {
    int bs = lq_hd_block_size(type);
    int64_t nb = n_in / bs;
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n_out * nb) return;
    int64_t r = i / nb, b0 = (i % nb) * bs;
    float wb[LQ_QK_K], wc[LQ_QK_K], q[LQ_QK_K];
    int32_t codes[LQ_QK_K];
    lq_grid g;
    float *src = w + r * n_in + b0;
    for (int e = 0; e < bs; e++) wb[e] = src[e];
    ratio[i] = lq_hd_clip_block(type, bs, wb, b0, x, t, n_in, sigma2[r], wc, q, codes, &g);
    for (int e = 0; e < bs; e++) src[e] = wb[e];
}

extern "C" lq_status lq_cuda_awq_clip(lq_cuda_ctx *ctx, lq_type type, float *w, int64_t n_out,
                                      int64_t n_in, const float *x, int64_t t, double *mean_ratio,
                                      lq_error *err) {
    lq_status st = check_shape(ctx, "awq clip", type, n_out, n_in, false, err);
    if (st != LQ_OK) return st;
    if (t < 0) return lq_fail(err, LQ_ERR_INVALID, "cuda awq clip: %" PRId64 " tokens", t);
    int64_t nb = n_in / lq_hd_block_size(type);
    size_t w_bytes = (size_t)n_out * (size_t)n_in * sizeof(float);
    size_t x_bytes = (size_t)t * (size_t)n_in * sizeof(float);
    size_t r_bytes = (size_t)n_out * (size_t)nb * sizeof(double);
    double *ratios = (double *)lq_malloc(r_bytes ? r_bytes : 1, err, "cuda awq clip");
    if (!ratios) return LQ_ERR_NOMEM;
    if ((st = lq_cuda_buf_reserve(ctx, &ctx->scratch[0], w_bytes + r_bytes, err)) == LQ_OK &&
        (st = lq_cuda_buf_reserve(ctx, &ctx->scratch[1], x_bytes, err)) == LQ_OK &&
        (st = lq_cuda_buf_reserve(ctx, &ctx->scratch[3], (size_t)n_out * sizeof(float), err)) == LQ_OK &&
        (st = lq_cuda_upload(ctx, ctx->scratch[0].ptr, w, w_bytes, err)) == LQ_OK &&
        (st = lq_cuda_upload(ctx, ctx->scratch[1].ptr, x, x_bytes, err)) == LQ_OK) {
        float *wd = (float *)ctx->scratch[0].ptr, *sigma2 = (float *)ctx->scratch[3].ptr;
        double *rd = (double *)((char *)ctx->scratch[0].ptr + w_bytes);
        k_row_sigma2<<<lq_cuda_grid(n_out), LQ_CUDA_THREADS, 0, ctx->compute>>>(wd, n_out, n_in, sigma2);
        k_awq_clip<<<lq_cuda_grid(n_out * nb), LQ_CUDA_THREADS, 0, ctx->compute>>>(
            (int)type, wd, n_out, n_in, (const float *)ctx->scratch[1].ptr, t, sigma2, rd);
        if ((st = launched(ctx, "awq clip kernel", err)) == LQ_OK &&
            (st = lq_cuda_download(ctx, w, wd, w_bytes, err)) == LQ_OK)
            st = lq_cuda_download(ctx, ratios, rd, r_bytes, err);
    }
    if (st == LQ_OK) { /* awq.c's order: per row in block order, then over rows */
        double sum = 0.0;
        for (int64_t r = 0; r < n_out; r++) {
            double row = 0.0;
            for (int64_t b = 0; b < nb; b++) row += ratios[r * nb + b];
            sum += row / (double)nb;
        }
        if (mean_ratio) *mean_ratio = n_out ? sum / (double)n_out : 1.0;
    }
    free(ratios);
    return st;
}

// ---- quantized GEMV / GEMM ------------------------------------------------------------------

/* One warp per row; lane l takes blocks l, l+32, ...: decode the block with the codec's decoder
 * into registers/local memory, dot it with x, then a warp reduction. */
__global__ void k_matvec_q(int type, const uint8_t *w, size_t row_stride, int64_t n_rows,
                           const float *x, int64_t n, float *y) {
    int64_t row = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    int lane = threadIdx.x % 32;
    if (row >= n_rows) return; /* whole warps leave together: rows are per warp */
    const uint8_t *wr = w + (size_t)row * row_stride;
    float sum = 0.0f;
    int bs = lq_hd_block_size(type);
    if (bs) {
        int bb = lq_hd_block_bytes(type);
        float v[LQ_QK_K];
        for (int64_t b = lane; b < n / bs; b += 32) {
            lq_hd_decode(type, wr + (size_t)b * (size_t)bb, v);
            const float *xb = x + b * bs;
            for (int e = 0; e < bs; e++) sum += v[e] * xb[e];
        }
    } else {
        for (int64_t c = lane; c < n; c += 32) {
            float v;
            if (type == LQ_TYPE_F32)
                v = ((const float *)wr)[c];
            else if (type == LQ_TYPE_F16)
                v = lq_fp16_to_f32(((const uint16_t *)wr)[c]);
            else
                v = lq_bf16_to_f32(((const uint16_t *)wr)[c]);
            sum += v * x[c];
        }
    }
    for (int off = 16; off > 0; off /= 2) sum += __shfl_down_sync(0xFFFFFFFFu, sum, off);
    if (lane == 0) y[row] = sum;
}

extern "C" lq_status lq_cuda_matvec_q_dev(lq_cuda_ctx *ctx, lq_type type, const void *w,
                                          size_t row_stride, int64_t n_rows, const float *x,
                                          int64_t n, float *y, lq_error *err) {
    lq_status st = check_shape(ctx, "matvec", type, n_rows, n, true, err);
    if (st != LQ_OK || n_rows == 0) return st;
    if (row_stride < lq_row_size(type, n) || row_stride % 2 != 0)
        return lq_fail(err, LQ_ERR_INVALID, "cuda matvec: row stride %zu does not hold a row", row_stride);
    k_matvec_q<<<lq_cuda_grid(n_rows * 32), LQ_CUDA_THREADS, 0, ctx->compute>>>(
        (int)type, (const uint8_t *)w, row_stride, n_rows, x, n, y);
    return launched(ctx, "matvec kernel", err);
}

#define LQ_GEMM_PANEL_FLOATS ((int64_t)1 << 26) /* 256 MiB of dequantized rows per panel */

extern "C" lq_status lq_cuda_gemm_q_dev(lq_cuda_ctx *ctx, lq_type type, const void *w,
                                        size_t row_stride, int64_t n_rows, int64_t n,
                                        const float *x, int64_t n_tok, float *y, lq_error *err) {
    lq_status st = check_shape(ctx, "gemm", type, n_rows, n, true, err);
    if (st != LQ_OK || n_rows == 0 || n_tok <= 0) return st;
    int64_t panel = LQ_GEMM_PANEL_FLOATS / n > 0 ? LQ_GEMM_PANEL_FLOATS / n : 1;
    if (panel > n_rows) panel = n_rows;
    st = lq_cuda_buf_reserve(ctx, &ctx->scratch[2], (size_t)panel * (size_t)n * sizeof(float), err);
    const uint8_t *wb = (const uint8_t *)w;
    for (int64_t r0 = 0; r0 < n_rows && st == LQ_OK; r0 += panel) {
        int64_t pr = n_rows - r0 < panel ? n_rows - r0 : panel;
        float *wf = (float *)ctx->scratch[2].ptr;
        st = lq_cuda_dequantize_rows_dev(ctx, type, wb + (size_t)r0 * row_stride, row_stride, wf,
                                         pr, n, err);
        /* Y[:, r0:r0+pr] = X · W_panelᵀ */
        if (st == LQ_OK)
            st = lq_cuda_sgemm_dev(ctx, false, true, n_tok, pr, n, 1.0f, x, n, wf, n, 0.0f, y + r0,
                                   n_rows, err);
    }
    return st;
}

// ---- activation statistics ------------------------------------------------------------------

__global__ void k_stats(const float *x, int64_t n_tokens, int64_t n_in, double *sum_x2,
                        double *sum_abs, float *max_abs) {
    int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= n_in) return;
    double s2 = sum_x2 ? sum_x2[j] : 0.0, sa = sum_abs ? sum_abs[j] : 0.0;
    float mx = max_abs ? max_abs[j] : 0.0f;
    lq_hd_stats_channel(x, n_tokens, n_in, j, &s2, &sa, &mx);
    if (sum_x2) sum_x2[j] = s2;
    if (sum_abs) sum_abs[j] = sa;
    if (max_abs) max_abs[j] = mx;
}

extern "C" lq_status lq_cuda_stats_accumulate_dev(lq_cuda_ctx *ctx, const float *x,
                                                  int64_t n_tokens, int64_t n_in, double *sum_x2,
                                                  double *sum_abs, float *max_abs, lq_error *err) {
    if (ctx->sticky.code != LQ_OK) return lq_cuda_status(ctx, err);
    if (n_tokens < 0 || n_in <= 0)
        return lq_fail(err, LQ_ERR_INVALID, "cuda stats: shape %" PRId64 " x %" PRId64, n_tokens, n_in);
    if (n_tokens == 0) return LQ_OK;
    k_stats<<<lq_cuda_grid(n_in), LQ_CUDA_THREADS, 0, ctx->compute>>>(x, n_tokens, n_in, sum_x2,
                                                                     sum_abs, max_abs);
    return launched(ctx, "statistics kernel", err);
}

// ---- host-pointer conveniences --------------------------------------------------------------

extern "C" lq_status lq_cuda_dequantize_rows(lq_cuda_ctx *ctx, lq_type type, const void *src,
                                             float *dst, int64_t n_rows, int64_t n_per_row,
                                             lq_error *err) {
    lq_status st = check_shape(ctx, "dequantize", type, n_rows, n_per_row, true, err);
    if (st != LQ_OK || n_rows == 0) return st;
    size_t row_bytes = lq_row_size(type, n_per_row);
    size_t in_bytes = row_bytes * (size_t)n_rows;
    size_t out_bytes = (size_t)n_rows * (size_t)n_per_row * sizeof(float);
    if ((st = lq_cuda_buf_reserve(ctx, &ctx->scratch[0], in_bytes, err)) != LQ_OK ||
        (st = lq_cuda_buf_reserve(ctx, &ctx->scratch[1], out_bytes, err)) != LQ_OK ||
        (st = lq_cuda_upload(ctx, ctx->scratch[0].ptr, src, in_bytes, err)) != LQ_OK ||
        (st = lq_cuda_dequantize_rows_dev(ctx, type, ctx->scratch[0].ptr, row_bytes,
                                          (float *)ctx->scratch[1].ptr, n_rows, n_per_row,
                                          err)) != LQ_OK ||
        (st = lq_cuda_download(ctx, dst, ctx->scratch[1].ptr, out_bytes, err)) != LQ_OK)
        return st;
    if (is_plain(type)) return LQ_OK;
    /* lq_dequantize_rows' check: a block decoding to Inf/NaN has a non-finite scale */
    const lq_type_traits *t = lq_type_get(type);
    size_t n = (size_t)n_rows * (size_t)n_per_row;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(dst[i])) {
            int64_t r = (int64_t)(i / (size_t)n_per_row), c = (int64_t)(i % (size_t)n_per_row);
            return lq_fail(err, LQ_ERR_FORMAT,
                           "%s: row %" PRId64 ", block %" PRId64 ": decoded value %s at column %" PRId64
                           " (the block's scale is not finite)", t->name, r, c / t->block_size,
                           isnan(dst[i]) ? "NaN" : "Inf", c);
        }
    return LQ_OK;
}

/* lq_quantize_rows' input checks (same messages). */
static lq_status check_quant_input(const lq_type_traits *t, const float *src, int64_t n_rows,
                                   int64_t n, const float *imp, lq_error *err) {
    for (int64_t c = 0; imp && c < n; c++) {
        if (!isfinite(imp[c]))
            return lq_fail(err, LQ_ERR_NUMERIC, "%s: importance of column %" PRId64 " is %s",
                           t->name, c, isnan(imp[c]) ? "NaN" : "Inf");
        if (imp[c] < 0)
            return lq_fail(err, LQ_ERR_INVALID, "%s: importance of column %" PRId64
                           " is negative (%g)", t->name, c, (double)imp[c]);
    }
    for (int64_t r = 0; r < n_rows; r++)
        for (int64_t c = 0; c < n; c++) {
            float v = src[r * n + c];
            if (!isfinite(v))
                return lq_fail(err, LQ_ERR_NUMERIC, "%s: row %" PRId64 ", column %" PRId64
                               ": input is %s", t->name, r, c, isnan(v) ? "NaN" : "Inf");
            if (fabsf(v) > LQ_MAX_QUANT_INPUT)
                return lq_fail(err, LQ_ERR_NUMERIC, "%s: row %" PRId64 ", column %" PRId64
                               ": %g is too large for this type", t->name, r, c, (double)v);
        }
    return LQ_OK;
}

extern "C" lq_status lq_cuda_quantize_rows(lq_cuda_ctx *ctx, lq_type type, const float *src,
                                           void *dst, int64_t n_rows, int64_t n_per_row,
                                           const float *importance, lq_error *err) {
    lq_status st = check_shape(ctx, "quantize", type, n_rows, n_per_row, false, err);
    if (st != LQ_OK || n_rows == 0) return st;
    const lq_type_traits *t = lq_type_get(type);
    if ((st = check_quant_input(t, src, n_rows, n_per_row, importance, err)) != LQ_OK) return st;
    if (type == LQ_TYPE_Q8_0) importance = NULL; /* llama.cpp ignores it; so does the codec */
    int64_t nb = n_per_row / t->block_size;
    size_t in_bytes = (size_t)n_rows * (size_t)n_per_row * sizeof(float);
    size_t out_bytes = lq_row_size(type, n_per_row) * (size_t)n_rows;
    size_t imp_bytes = importance ? (size_t)n_per_row * sizeof(float) : 0;
    size_t n_status = (size_t)n_rows * (size_t)nb;
    uint8_t *status = (uint8_t *)lq_malloc(n_status, err, "cuda quantize");
    if (!status) return LQ_ERR_NOMEM;
    if ((st = lq_cuda_buf_reserve(ctx, &ctx->scratch[0], in_bytes + imp_bytes, err)) == LQ_OK &&
        (st = lq_cuda_buf_reserve(ctx, &ctx->scratch[1], out_bytes + n_status, err)) == LQ_OK &&
        (st = lq_cuda_upload(ctx, ctx->scratch[0].ptr, src, in_bytes, err)) == LQ_OK &&
        (st = lq_cuda_upload(ctx, (char *)ctx->scratch[0].ptr + in_bytes, importance, imp_bytes,
                             err)) == LQ_OK) {
        const float *imp_dev = importance ? (const float *)((char *)ctx->scratch[0].ptr + in_bytes) : NULL;
        uint8_t *status_dev = (uint8_t *)ctx->scratch[1].ptr + out_bytes;
        if ((st = lq_cuda_quantize_rows_dev(ctx, type, (const float *)ctx->scratch[0].ptr,
                                            ctx->scratch[1].ptr, NULL, n_rows, n_per_row, imp_dev,
                                            status_dev, err)) == LQ_OK &&
            (st = lq_cuda_download(ctx, status, status_dev, n_status, err)) == LQ_OK)
            st = lq_cuda_download(ctx, dst, ctx->scratch[1].ptr, out_bytes, err);
    }
    for (size_t i = 0; st == LQ_OK && i < n_status; i++)
        if (status[i]) {
            int64_t r = (int64_t)(i / (size_t)nb), b = (int64_t)(i % (size_t)nb);
            st = lq_fail(err, LQ_ERR_NUMERIC,
                         "%s: row %" PRId64 ", block %" PRId64 " (columns %" PRId64 "..%" PRId64
                         "): the block scale overflows fp16 (values too large for this type)",
                         t->name, r, b, b * t->block_size, (b + 1) * t->block_size - 1);
        }
    free(status);
    return st;
}

/* Uploads rows of weights and the activations, runs kernel, downloads y. */
static lq_status matmul_host(lq_cuda_ctx *ctx, bool gemm, lq_type type, const void *w,
                             int64_t n_rows, int64_t n, const float *x, int64_t n_tok, float *y,
                             lq_error *err) {
    lq_status st = check_shape(ctx, gemm ? "gemm" : "matvec", type, n_rows, n, true, err);
    if (st != LQ_OK || n_rows == 0 || n_tok <= 0) return st;
    size_t row_bytes = lq_row_size(type, n);
    size_t w_bytes = row_bytes * (size_t)n_rows;
    size_t x_bytes = (size_t)n_tok * (size_t)n * sizeof(float);
    size_t y_bytes = (size_t)n_tok * (size_t)n_rows * sizeof(float);
    size_t x_off = (w_bytes + 255) / 256 * 256;
    if ((st = lq_cuda_buf_reserve(ctx, &ctx->scratch[0], x_off + x_bytes, err)) != LQ_OK ||
        (st = lq_cuda_buf_reserve(ctx, &ctx->scratch[1], y_bytes, err)) != LQ_OK ||
        (st = lq_cuda_upload(ctx, ctx->scratch[0].ptr, w, w_bytes, err)) != LQ_OK ||
        (st = lq_cuda_upload(ctx, (char *)ctx->scratch[0].ptr + x_off, x, x_bytes, err)) != LQ_OK)
        return st;
    const float *xd = (const float *)((char *)ctx->scratch[0].ptr + x_off);
    float *yd = (float *)ctx->scratch[1].ptr;
    st = gemm ? lq_cuda_gemm_q_dev(ctx, type, ctx->scratch[0].ptr, row_bytes, n_rows, n, xd, n_tok,
                                   yd, err)
              : lq_cuda_matvec_q_dev(ctx, type, ctx->scratch[0].ptr, row_bytes, n_rows, xd, n, yd, err);
    if (st == LQ_OK) st = lq_cuda_download(ctx, y, yd, y_bytes, err);
    return st;
}

extern "C" lq_status lq_cuda_matvec_q(lq_cuda_ctx *ctx, lq_type type, const void *w, int64_t n_rows,
                                      const float *x, int64_t n, float *y, lq_error *err) {
    return matmul_host(ctx, false, type, w, n_rows, n, x, 1, y, err);
}

extern "C" lq_status lq_cuda_gemm_q(lq_cuda_ctx *ctx, lq_type type, const void *w, int64_t n_rows,
                                    int64_t n, const float *x, int64_t n_tok, float *y,
                                    lq_error *err) {
    return matmul_host(ctx, true, type, w, n_rows, n, x, n_tok, y, err);
}

extern "C" lq_status lq_cuda_stats_accumulate(lq_cuda_ctx *ctx, const float *x, int64_t n_tokens,
                                              int64_t n_in, double *sum_x2, double *sum_abs,
                                              float *max_abs, lq_error *err) {
    if (ctx->sticky.code != LQ_OK) return lq_cuda_status(ctx, err);
    if (n_tokens < 0 || n_in <= 0)
        return lq_fail(err, LQ_ERR_INVALID, "cuda stats: shape %" PRId64 " x %" PRId64, n_tokens, n_in);
    if (n_tokens == 0) return LQ_OK;
    size_t x_bytes = (size_t)n_tokens * (size_t)n_in * sizeof(float);
    size_t d_bytes = (size_t)n_in * sizeof(double), f_bytes = (size_t)n_in * sizeof(float);
    lq_status st;
    if ((st = lq_cuda_buf_reserve(ctx, &ctx->scratch[0], x_bytes, err)) != LQ_OK ||
        (st = lq_cuda_buf_reserve(ctx, &ctx->scratch[1], 2 * d_bytes + f_bytes, err)) != LQ_OK ||
        (st = lq_cuda_upload(ctx, ctx->scratch[0].ptr, x, x_bytes, err)) != LQ_OK)
        return st;
    double *s2 = (double *)ctx->scratch[1].ptr, *sa = s2 + n_in;
    float *mx = (float *)(sa + n_in);
    if ((sum_x2 && (st = lq_cuda_upload(ctx, s2, sum_x2, d_bytes, err)) != LQ_OK) ||
        (sum_abs && (st = lq_cuda_upload(ctx, sa, sum_abs, d_bytes, err)) != LQ_OK) ||
        (max_abs && (st = lq_cuda_upload(ctx, mx, max_abs, f_bytes, err)) != LQ_OK))
        return st;
    st = lq_cuda_stats_accumulate_dev(ctx, (const float *)ctx->scratch[0].ptr, n_tokens, n_in,
                                      sum_x2 ? s2 : NULL, sum_abs ? sa : NULL, max_abs ? mx : NULL, err);
    if (st == LQ_OK && sum_x2) st = lq_cuda_download(ctx, sum_x2, s2, d_bytes, err);
    if (st == LQ_OK && sum_abs) st = lq_cuda_download(ctx, sum_abs, sa, d_bytes, err);
    if (st == LQ_OK && max_abs) st = lq_cuda_download(ctx, max_abs, mx, f_bytes, err);
    return st;
}
