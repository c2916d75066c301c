// gptq.cu — GPTQ's column sweep on the device: one row per thread through hd_gptq.h (the
// same steps and float operations as gptq.c's sweep_row), lazy batch updates with cuBLAS.
#include "cuda_internal.h"
#include "hd_gptq.h"

#include <inttypes.h>
#include <stdlib.h>

/* Device copy of one row's state between batches. */
typedef struct row_state {
    lq_grid grid;
    int32_t codes[LQ_QK_K];
    double loss;
    int64_t fail_col;
    int status; /* LQ_HD_GPTQ_* */
    float sigma2;
} row_state;

__global__ void k_gptq_load(float *w, int64_t n_out, int64_t n_in, const uint8_t *dead,
                            row_state *rs) {
    int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= n_out) return;
    rs[r].sigma2 = lq_hd_gptq_load_row(w + r * n_in, dead, n_in);
    rs[r].loss = 0.0;
    rs[r].status = LQ_HD_GPTQ_OK;
    rs[r].fail_col = -1;
}

__global__ void k_gptq_batch(lq_hd_gptq_args a, float *w, int64_t n_out, int64_t i1, int64_t i2,
                             float *e, int64_t lazy, uint8_t *dst, size_t row_bytes, float *deq,
                             row_state *rs) {
    int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= n_out || rs[r].status != LQ_HD_GPTQ_OK) return;
    float *er = e + r * lazy;
    double loss = 0.0;
    int64_t fail_col = -1;
    int st = lq_hd_gptq_sweep_row(&a, w + r * a.n_in, rs[r].sigma2, &rs[r].grid, rs[r].codes, i1,
                                  i2, er, &loss, dst + (size_t)r * row_bytes,
                                  deq ? deq + r * a.n_in : NULL, &fail_col);
    rs[r].loss += loss;
    if (st != LQ_HD_GPTQ_OK) {
        rs[r].status = st;
        rs[r].fail_col = fail_col;
        for (int64_t j = 0; j < i2 - i1; j++) er[j] = 0.0f; /* keep the lazy update finite */
    }
}

/* Device buffers of one sweep, carved from one allocation. */
typedef struct sweep_bufs {
    float *w, *u, *imp, *e, *deq;
    uint8_t *dead, *dst;
    row_state *rs;
} sweep_bufs;

static size_t align256(size_t x) { return (x + 255) / 256 * 256; }

static lq_status sweep_alloc(lq_cuda_ctx *ctx, const lq_cuda_gptq_in *in, size_t row_bytes,
                             bool want_deq, sweep_bufs *b, lq_error *err) {
    size_t n = (size_t)in->n_in, m = (size_t)in->n_out;
    size_t sz[8] = {m * n * 4, n * n * 4, n * 4, m * (size_t)in->lazy * 4, want_deq ? m * n * 4 : 0,
                    n, m * row_bytes, m * sizeof(row_state)};
    size_t total = 0;
    for (int i = 0; i < 8; i++) total += align256(sz[i]);
    lq_status st = lq_cuda_buf_reserve(ctx, &ctx->scratch[0], total, err);
    if (st != LQ_OK) return st;
    char *p = (char *)ctx->scratch[0].ptr;
    void *ptr[8];
    for (int i = 0; i < 8; i++) {
        ptr[i] = sz[i] ? (void *)p : NULL;
        p += align256(sz[i]);
    }
    b->w = (float *)ptr[0];
    b->u = (float *)ptr[1];
    b->imp = (float *)ptr[2];
    b->e = (float *)ptr[3];
    b->deq = (float *)ptr[4];
    b->dead = (uint8_t *)ptr[5];
    b->dst = (uint8_t *)ptr[6];
    b->rs = (row_state *)ptr[7];
    return LQ_OK;
}

static lq_status check_in(const lq_cuda_gptq_in *in, lq_error *err) {
    const char *name = in->name ? in->name : "(tensor)";
    int bs = lq_hd_block_size(in->type);
    if (!bs) return lq_fail(err, LQ_ERR_UNSUPPORTED, "%s: cuda gptq: type %d has no device codec", name, (int)in->type);
    if (in->n_out <= 0 || in->n_in <= 0 || in->n_in % bs != 0 || in->lazy <= 0 || in->lazy % bs != 0)
        return lq_fail(err, LQ_ERR_INVALID, "%s: cuda gptq: shape %" PRId64 " x %" PRId64
                       " with lazy batch %" PRId64 " does not fit blocks of %d", name, in->n_out,
                       in->n_in, in->lazy, bs);
    if (!in->w || !in->u || !in->imp || !in->dead)
        return lq_fail(err, LQ_ERR_INVALID, "%s: cuda gptq: NULL argument", name);
    return LQ_OK;
}

/* The first failing row's error, in gptq.c's words. */
static lq_status report_failure(const lq_cuda_gptq_in *in, const row_state *rs_host,
                                lq_error *err) {
    const char *name = in->name ? in->name : "(tensor)";
    for (int64_t r = 0; r < in->n_out; r++) {
        if (rs_host[r].status == LQ_HD_GPTQ_NONFINITE)
            return lq_fail(err, LQ_ERR_NUMERIC, "%s: row %" PRId64 ", column %" PRId64
                           ": error propagation produced a non-finite value", name, r,
                           rs_host[r].fail_col);
        if (rs_host[r].status == LQ_HD_GPTQ_OVERFLOW)
            return lq_fail(err, LQ_ERR_NUMERIC, "%s: row %" PRId64 ", block at column %" PRId64
                           ": the block scale overflows fp16", name, r, rs_host[r].fail_col);
    }
    return LQ_OK;
}

extern "C" lq_status lq_cuda_gptq_sweep(lq_cuda_ctx *ctx, const lq_cuda_gptq_in *in, void *dst,
                                        float *deq, double *loss, lq_error *err) {
    lq_status st = check_in(in, err);
    if (st != LQ_OK) return st;
    if (ctx->sticky.code != LQ_OK) return lq_cuda_status(ctx, err);
    int64_t n = in->n_in, m = in->n_out;
    size_t row_bytes = lq_row_size(in->type, n);
    sweep_bufs b;
    if ((st = sweep_alloc(ctx, in, row_bytes, deq != NULL, &b, err)) != LQ_OK) return st;
    /* the sweep updates its copy of W in place: a staged W is copied, never used directly */
    if ((st = in->w_dev ? lq_cuda_check(ctx, cudaMemcpyAsync(b.w, in->w_dev, (size_t)m * n * 4,
                                                             cudaMemcpyDeviceToDevice, ctx->compute),
                                        "copy staged weights", err)
                        : lq_cuda_upload(ctx, b.w, in->w, (size_t)m * n * 4, err)) != LQ_OK ||
        (st = lq_cuda_upload(ctx, b.u, in->u, (size_t)n * n * 4, err)) != LQ_OK ||
        (st = lq_cuda_upload(ctx, b.imp, in->imp, (size_t)n * 4, err)) != LQ_OK ||
        (st = lq_cuda_upload(ctx, b.dead, in->dead, (size_t)n, err)) != LQ_OK)
        return st;
    k_gptq_load<<<lq_cuda_grid(m), LQ_CUDA_THREADS, 0, ctx->compute>>>(b.w, m, n, b.dead, b.rs);
    lq_hd_gptq_args a;
    a.type = (int)in->type;
    a.block = lq_hd_block_size(in->type);
    a.block_bytes = lq_hd_block_bytes(in->type);
    a.n_in = n;
    a.u = b.u;
    a.imp = b.imp;
    for (int64_t i1 = 0; i1 < n && st == LQ_OK; i1 += in->lazy) {
        int64_t i2 = i1 + in->lazy < n ? i1 + in->lazy : n;
        k_gptq_batch<<<lq_cuda_grid(m), LQ_CUDA_THREADS, 0, ctx->compute>>>(
            a, b.w, m, i1, i2, b.e, in->lazy, b.dst, row_bytes, b.deq, b.rs);
        st = lq_cuda_check(ctx, cudaGetLastError(), "gptq batch kernel", err);
        if (st == LQ_OK && i2 < n) /* W[:, i2:] -= E · U[i1:i2, i2:] */
            st = lq_cuda_sgemm_dev(ctx, false, false, m, n - i2, i2 - i1, -1.0f, b.e, in->lazy,
                                   b.u + i1 * n + i2, n, 1.0f, b.w + i2, n, err);
    }
    row_state *rs = (row_state *)lq_malloc((size_t)m * sizeof(row_state), err, "cuda gptq");
    if (!rs) return LQ_ERR_NOMEM;
    if (st == LQ_OK) st = lq_cuda_download(ctx, rs, b.rs, (size_t)m * sizeof(row_state), err);
    if (st == LQ_OK) st = report_failure(in, rs, err);
    if (st == LQ_OK) st = lq_cuda_download(ctx, dst, b.dst, (size_t)m * row_bytes, err);
    if (st == LQ_OK && deq) st = lq_cuda_download(ctx, deq, b.deq, (size_t)m * n * 4, err);
    if (st == LQ_OK && loss) {
        *loss = 0.0;
        for (int64_t r = 0; r < m; r++) *loss += rs[r].loss;
    }
    free(rs);
    return st;
}
