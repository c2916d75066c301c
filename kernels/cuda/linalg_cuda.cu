// linalg_cuda.cu — linalg.h on cuBLAS / cuSOLVER: row-major sgemm, X·Xᵀ accumulation into an
// fp64 Hessian, Cholesky and Cholesky inverse (fp64), plus the backend object.
//
// Row-major ↔ column-major: a row-major m × n matrix with leading dimension ld is the
// column-major n × m matrix (its transpose) with the same ld. So row-major C = op(A)·op(B) is
// column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: call sgemm with the operands swapped. A symmetric matrix is
// its own transpose: the row-major lower triangle is the column-major upper one, so the
// factorisations run with CUBLAS_FILL_MODE_UPPER and give A = UᵀU with Uᵀ = the row-major L.
#include "cuda_internal.h"

#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>

extern "C" lq_status lq_cuda_sgemm_dev(lq_cuda_ctx *ctx, bool trans_a, bool trans_b, int64_t m,
                                       int64_t n, int64_t k, float alpha, const float *a,
                                       int64_t lda, const float *b, int64_t ldb, float beta,
                                       float *c, int64_t ldc, lq_error *err) {
    if (ctx->sticky.code != LQ_OK) return lq_cuda_status(ctx, err);
    if (m <= 0 || n <= 0) return LQ_OK;
    /* k = 0: cuBLAS computes C = beta·C, as linalg_cpu.c does */
    return lq_cublas_check(ctx, cublasSgemm_64(ctx->blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                               trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k,
                                               &alpha, b, ldb, a, lda, &beta, c, ldc),
                           "sgemm", err);
}

/* H[i][j] += s[max(i,j)·n + min(i,j)]: the column-major upper triangle cublasSsyrk filled. */
__global__ void k_syrk_add(const float *s, int64_t n, double *h) {
    int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= n * n) return;
    int64_t i = idx / n, j = idx % n;
    int64_t lo = i < j ? i : j, hi = i < j ? j : i;
    h[idx] += (double)s[hi * n + lo];
}

extern "C" lq_status lq_cuda_syrk_acc_dev(lq_cuda_ctx *ctx, int64_t n, int64_t k, const float *x,
                                          int64_t ldx, double *h, float *scratch, lq_error *err) {
    if (ctx->sticky.code != LQ_OK) return lq_cuda_status(ctx, err);
    if (n <= 0 || k <= 0) return LQ_OK;
    const float one = 1.0f, zero = 0.0f;
    /* X row-major k × n is column-major Xᵀ (n × k): S = Xᵀ·(Xᵀ)ᵀ = XᵀX */
    lq_status st = lq_cublas_check(ctx, cublasSsyrk_64(ctx->blas, CUBLAS_FILL_MODE_UPPER,
                                                       CUBLAS_OP_N, n, k, &one, x, ldx, &zero,
                                                       scratch, n), "ssyrk", err);
    if (st != LQ_OK) return st;
    k_syrk_add<<<lq_cuda_grid(n * n), LQ_CUDA_THREADS, 0, ctx->compute>>>(scratch, n, h);
    return lq_cuda_check(ctx, cudaGetLastError(), "hessian add kernel", err);
}

// ---- host-pointer versions -------------------------------------------------------------------

extern "C" void lq_cuda_la_sgemm(lq_cuda_ctx *ctx, bool trans_a, bool trans_b, int64_t m,
                                 int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                                 const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    if (m <= 0 || n <= 0 || ctx->sticky.code != LQ_OK) return;
    int64_t a_rows = trans_a ? k : m, b_rows = trans_b ? n : k;
    size_t a_bytes = (size_t)(a_rows > 0 ? (a_rows - 1) * lda + (trans_a ? m : k) : 0) * 4;
    size_t b_bytes = (size_t)(b_rows > 0 ? (b_rows - 1) * ldb + (trans_b ? k : n) : 0) * 4;
    size_t c_bytes = (size_t)((m - 1) * ldc + n) * 4;
    size_t b_off = (a_bytes + 255) / 256 * 256, c_off = b_off + (b_bytes + 255) / 256 * 256;
    lq_error e;
    if (lq_cuda_buf_reserve(ctx, &ctx->scratch[0], c_off + c_bytes, &e) != LQ_OK) return;
    char *base = (char *)ctx->scratch[0].ptr;
    if (k > 0 && (lq_cuda_upload(ctx, base, a, a_bytes, &e) != LQ_OK ||
                  lq_cuda_upload(ctx, base + b_off, b, b_bytes, &e) != LQ_OK))
        return;
    if (beta != 0.0f && lq_cuda_upload(ctx, base + c_off, c, c_bytes, &e) != LQ_OK) return;
    if (beta == 0.0f && cudaMemsetAsync(base + c_off, 0, c_bytes, ctx->compute) != cudaSuccess) {
        lq_cuda_check(ctx, cudaGetLastError(), "memset", &e);
        return;
    }
    if (lq_cuda_sgemm_dev(ctx, trans_a, trans_b, m, n, k, alpha, (const float *)base, lda,
                          (const float *)(base + b_off), ldb, beta, (float *)(base + c_off), ldc,
                          &e) != LQ_OK)
        return;
    lq_cuda_download(ctx, c, base + c_off, c_bytes, &e);
}

extern "C" void lq_cuda_la_syrk_acc(lq_cuda_ctx *ctx, int64_t n, int64_t k, const float *x,
                                    int64_t ldx, double *h) {
    if (n <= 0 || k <= 0 || ctx->sticky.code != LQ_OK) return;
    size_t x_bytes = (size_t)((k - 1) * ldx + n) * 4, h_bytes = (size_t)(n * n) * 8;
    size_t s_bytes = (size_t)(n * n) * 4;
    size_t h_off = (x_bytes + 255) / 256 * 256, s_off = h_off + (h_bytes + 255) / 256 * 256;
    lq_error e;
    if (lq_cuda_buf_reserve(ctx, &ctx->scratch[0], s_off + s_bytes, &e) != LQ_OK) return;
    char *base = (char *)ctx->scratch[0].ptr;
    if (lq_cuda_upload(ctx, base, x, x_bytes, &e) != LQ_OK ||
        lq_cuda_upload(ctx, base + h_off, h, h_bytes, &e) != LQ_OK ||
        lq_cuda_syrk_acc_dev(ctx, n, k, (const float *)base, ldx, (double *)(base + h_off),
                             (float *)(base + s_off), &e) != LQ_OK)
        return;
    lq_cuda_download(ctx, h, base + h_off, h_bytes, &e);
}

/* Uploads A (n × n, lda), runs potrf or potri on the column-major upper view, downloads it.
 * Returns cuSOLVER's info (0, or the order of the failing minor / singular pivot), or 1 after a
 * device failure (sticky in ctx). */
static int64_t factor(lq_cuda_ctx *ctx, bool inverse, int64_t n, double *a, int64_t lda) {
    if (n <= 0) return 0;
    lq_error e;
    if (ctx->sticky.code != LQ_OK) return 1;
    if (n > INT_MAX / 2 || lda > INT_MAX / 2 || lda < n) {
        lq_cuda_fail(ctx, &e, LQ_ERR_INVALID, "cusolver: matrix of order %" PRId64 " is too large", n);
        return 1;
    }
    size_t a_bytes = (size_t)((n - 1) * lda + n) * 8;
    size_t info_off = (a_bytes + 255) / 256 * 256;
    if (lq_cuda_buf_reserve(ctx, &ctx->scratch[1], info_off + sizeof(int), &e) != LQ_OK) return 1;
    double *ad = (double *)ctx->scratch[1].ptr;
    int *info_d = (int *)((char *)ctx->scratch[1].ptr + info_off);
    if (lq_cuda_upload(ctx, ad, a, a_bytes, &e) != LQ_OK) return 1;
    int lwork = 0;
    cusolverStatus_t s = inverse
        ? cusolverDnDpotri_bufferSize(ctx->solver, CUBLAS_FILL_MODE_UPPER, (int)n, ad, (int)lda, &lwork)
        : cusolverDnDpotrf_bufferSize(ctx->solver, CUBLAS_FILL_MODE_UPPER, (int)n, ad, (int)lda, &lwork);
    if (lq_cusolver_check(ctx, s, "workspace size", &e) != LQ_OK) return 1;
    size_t work_bytes = (size_t)(lwork > 0 ? lwork : 1) * sizeof(double);
    if (work_bytes > ctx->solver_work_bytes) {
        if (ctx->solver_work) cudaFree(ctx->solver_work);
        ctx->solver_work = NULL;
        ctx->solver_work_bytes = 0;
        if (lq_cuda_check(ctx, cudaMalloc(&ctx->solver_work, work_bytes), "solver workspace", &e) != LQ_OK)
            return 1;
        ctx->solver_work_bytes = work_bytes;
    }
    double *work = (double *)ctx->solver_work;
    s = inverse ? cusolverDnDpotri(ctx->solver, CUBLAS_FILL_MODE_UPPER, (int)n, ad, (int)lda, work,
                                   lwork, info_d)
                : cusolverDnDpotrf(ctx->solver, CUBLAS_FILL_MODE_UPPER, (int)n, ad, (int)lda, work,
                                   lwork, info_d);
    if (lq_cusolver_check(ctx, s, inverse ? "potri" : "potrf", &e) != LQ_OK) return 1;
    int info = 0;
    if (lq_cuda_download(ctx, &info, info_d, sizeof info, &e) != LQ_OK) return 1;
    if (info < 0) {
        lq_cuda_fail(ctx, &e, LQ_ERR_INVALID, "cusolver: %s: argument %d is invalid",
                     inverse ? "potri" : "potrf", -info);
        return 1;
    }
    if (info > 0) return info; /* a not positive definite leading minor / singular factor */
    if (lq_cuda_download(ctx, a, ad, a_bytes, &e) != LQ_OK) return 1;
    return 0;
}

extern "C" int64_t lq_cuda_la_potrf_lower(lq_cuda_ctx *ctx, int64_t n, double *a, int64_t lda) {
    return factor(ctx, false, n, a, lda);
}

extern "C" int64_t lq_cuda_la_potri_lower(lq_cuda_ctx *ctx, int64_t n, double *a, int64_t lda) {
    int64_t info = factor(ctx, true, n, a, lda);
    if (info != 0) return info;
    for (int64_t i = 0; i < n; i++) /* mirror the lower triangle, as linalg_cpu.c */
        for (int64_t j = i + 1; j < n; j++) a[i * lda + j] = a[j * lda + i];
    return 0;
}

// ---- backend object --------------------------------------------------------------------------

static void be_sgemm(void *ctx, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                     const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                     int64_t ldc) {
    lq_cuda_la_sgemm((lq_cuda_ctx *)ctx, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
static void be_syrk(void *ctx, int64_t n, int64_t k, const float *x, int64_t ldx, double *h,
                    float *scratch, int n_threads) {
    (void)scratch;
    (void)n_threads;
    lq_cuda_la_syrk_acc((lq_cuda_ctx *)ctx, n, k, x, ldx, h);
}
static int64_t be_potrf(void *ctx, int64_t n, double *a, int64_t lda) {
    return lq_cuda_la_potrf_lower((lq_cuda_ctx *)ctx, n, a, lda);
}
static int64_t be_potri(void *ctx, int64_t n, double *a, int64_t lda) {
    return lq_cuda_la_potri_lower((lq_cuda_ctx *)ctx, n, a, lda);
}

extern "C" lq_status lq_la_ops_cuda(lq_cuda_ctx *ctx, lq_la_ops *out, lq_error *err) {
    if (!ctx) return lq_fail(err, LQ_ERR_INVALID, "cuda linalg: no context");
    out->name = "cuda";
    out->ctx = ctx;
    out->sgemm = be_sgemm;
    out->syrk_acc = be_syrk;
    out->potrf_lower = be_potrf;
    out->potri_lower = be_potri;
    return LQ_OK;
}
