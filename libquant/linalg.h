/* linalg.h — the small linear-algebra backend of the calibrated passes (GPTQ, AWQ,
 * SmoothQuant): GEMM, X·Xᵀ accumulation (syrk), Cholesky, Cholesky inverse.
 *
 * CPU implementation: linalg_cpu.c (OpenBLAS + LAPACKE when LQ_HAVE_BLAS, plain C loops
 * otherwise). A CUDA backend (cuBLAS/cuSOLVER) implements the same calls later.
 *
 * All matrices are row-major with explicit leading dimensions. Every call is single-threaded
 * and its result depends only on its arguments: callers parallelise by splitting work into
 * fixed chunks, so results never depend on the thread count (OpenBLAS's own threading is
 * switched off by lq_la_init for that reason). */
#ifndef LQ_LINALG_H
#define LQ_LINALG_H

#include "internal.h"

/* Pins the BLAS library to one thread per call (idempotent, thread-safe to call repeatedly). */
void lq_la_init(void);
/* "openblas" or "builtin". */
const char *lq_la_backend(void);

/* C = alpha · op(A) · op(B) + beta · C, op(A) m × k, op(B) k × n, C m × n (float). */
void lq_la_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                 const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                 int64_t ldc);

/* H (n × n, double, full symmetric, leading dimension n) += Xᵀ·X for X of k rows × n columns
 * (float, leading dimension ldx): the Hessian accumulation of one batch of tokens. The batch's
 * products are formed in fp32 (BLAS speed) and added to the fp64 running sum, so long
 * calibration runs do not lose small contributions. Split over n_threads in fixed column
 * panels (deterministic). scratch: n × n floats. */
void lq_la_syrk_acc(int64_t n, int64_t k, const float *x, int64_t ldx, double *h, float *scratch,
                    int n_threads);

/* C = alpha · A · op(B) + beta · C in double (A m × k, op(B) k × n); single-threaded. */
void lq_la_dgemm(bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double *a,
                 int64_t lda, const double *b, int64_t ldb, double beta, double *c, int64_t ldc);

/* GEMM rate in GFLOP/s (wall clock) of an (m × k)·(k × n) product with m = k = n = size split
 * into fixed row chunks over n_threads, as the passes split their work: the yardstick the
 * per-phase rates are compared with. fp64: dgemm, else sgemm. 0 when out of memory. */
double lq_la_gemm_rate(bool fp64, int64_t size, int n_threads);

/* Blocked, threaded versions of the two factorisation steps GPTQ needs: tiles of a fixed size
 * are each computed by one single-threaded BLAS call, so n_threads changes only which thread
 * computes a tile, never the result.
 * lq_la_potrf_lower_mt: as lq_la_potrf_lower (same return value).
 * lq_la_trtri_lower: L (lower, non-unit) in A ← L⁻¹ in place (the strict upper triangle is not
 * touched). Returns 0, or nonzero when a diagonal entry is 0. */
int64_t lq_la_potrf_lower_mt(int64_t n, double *a, int64_t lda, int n_threads);
int64_t lq_la_trtri_lower(int64_t n, double *a, int64_t lda, int n_threads);

/* In-place lower Cholesky factor of a symmetric positive-definite A (n × n, double): A = L·Lᵀ,
 * L in the lower triangle (the strict upper triangle is left unspecified). Returns 0, or the
 * 1-based order of the leading minor that is not positive definite. */
int64_t lq_la_potrf_lower(int64_t n, double *a, int64_t lda);
/* From the lower Cholesky factor L in A, A ← (L·Lᵀ)⁻¹, full symmetric. Returns 0 or nonzero
 * when L is singular. */
int64_t lq_la_potri_lower(int64_t n, double *a, int64_t lda);

#endif
