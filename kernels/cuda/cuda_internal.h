/* cuda_internal.h — shared by the .cu files of the CUDA backend (C++ under nvcc only). */
#ifndef LQ_CUDA_INTERNAL_H
#define LQ_CUDA_INTERNAL_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>

#include "lq_cuda.h"

#define LQ_CUDA_THREADS 128 /* threads per block of the one-item-per-thread kernels */

struct lq_cuda_ctx {
    int device;
    cudaStream_t compute, copy;
    cublasHandle_t blas;
    cusolverDnHandle_t solver;
    /* staging: two pinned buffers, each with an event recorded when its DMA was queued */
    void *staging[2];
    cudaEvent_t staging_done[2];
    size_t staging_bytes;
    int next_staging;
    cudaEvent_t compute_mark; /* recorded on compute, waited on by copy */
    /* scratch reused by the host-pointer conveniences and the GEMM panels */
    lq_cuda_buf scratch[4];
    void *solver_work;
    size_t solver_work_bytes;
    lq_error sticky; /* first failure; code LQ_OK while healthy */
};

/* Records and returns an error (sticky in the context when ctx != NULL). */
lq_status lq_cuda_fail(lq_cuda_ctx *ctx, lq_error *err, lq_status code, const char *fmt, ...)
    LQ_PRINTF(4, 5);

/* Maps a CUDA runtime error to an lq_status with "<what>: <cuda message>". */
lq_status lq_cuda_check(lq_cuda_ctx *ctx, cudaError_t e, const char *what, lq_error *err);
lq_status lq_cublas_check(lq_cuda_ctx *ctx, cublasStatus_t s, const char *what, lq_error *err);
lq_status lq_cusolver_check(lq_cuda_ctx *ctx, cusolverStatus_t s, const char *what,
                            lq_error *err);

/* Blocks of LQ_CUDA_THREADS covering n items (n > 0). */
static inline unsigned lq_cuda_grid(int64_t n) {
    return (unsigned)((n + LQ_CUDA_THREADS - 1) / LQ_CUDA_THREADS);
}

/* Bytes of one row of a type the device kernels handle (codec types, F32, F16, BF16), 0 when
 * the type or width does not fit. */
size_t lq_cuda_row_bytes(lq_type type, int64_t n_per_row);

#endif
