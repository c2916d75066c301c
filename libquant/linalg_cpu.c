/* linalg_cpu.c — CPU backend of linalg.h: OpenBLAS + LAPACKE when the build found them, plain C
 * loops otherwise (same interface and semantics; slower, but the library builds and the passes
 * run without BLAS). */
#include "linalg.h"

#include "lq_config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if LQ_HAVE_BLAS
#include <cblas.h>
#include <lapacke.h>
#endif

#define SYRK_PANEL 128 /* columns of H per task: fixed, so results do not depend on threads */

void lq_la_init(void) {
#if LQ_HAVE_BLAS
    /* libquant threads over fixed chunks itself; BLAS calls inside those must not fan out
     * (nested oversubscription, and OpenBLAS splits work by its thread count). */
    static int done = 0;
    if (!__atomic_load_n(&done, __ATOMIC_ACQUIRE)) {
        openblas_set_num_threads(1);
        __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
    }
#endif
}

const char *lq_la_backend(void) { return LQ_HAVE_BLAS ? "openblas" : "builtin"; }

/* ---- GEMM ------------------------------------------------------------------------------- */

#if !LQ_HAVE_BLAS
static void sgemm_plain(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                        const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                        float *c, int64_t ldc) {
    for (int64_t i = 0; i < m; i++) {
        float *ci = c + i * ldc;
        for (int64_t j = 0; j < n; j++) ci[j] = beta == 0.0f ? 0.0f : beta * ci[j];
        for (int64_t p = 0; p < k; p++) {
            float aip = alpha * (ta ? a[p * lda + i] : a[i * lda + p]);
            if (aip == 0.0f) continue;
            if (!tb) {
                const float *bp = b + p * ldb;
                for (int64_t j = 0; j < n; j++) ci[j] += aip * bp[j];
            } else {
                for (int64_t j = 0; j < n; j++) ci[j] += aip * b[j * ldb + p];
            }
        }
    }
}
#endif

void lq_la_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                 const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                 int64_t ldc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) { /* C = beta·C */
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
        return;
    }
#if LQ_HAVE_BLAS
    lq_la_init();
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (blasint)m, (blasint)n, (blasint)k, alpha, a,
                (blasint)lda, b, (blasint)ldb, beta, c, (blasint)ldc);
#else
    sgemm_plain(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
}

/* ---- Hessian accumulation ----------------------------------------------------------------- */

typedef struct syrk_job {
    int64_t n, k, ldx, n_panels;
    const float *x;
    double *h;
    float *scratch;
    int n_workers;
} syrk_job;

/* Panel p holds columns [c0, c1) of the upper triangle: rows 0 .. c1-1. Its fp32 product goes to
 * scratch, then into H and its mirror (panels write disjoint parts of H). */
static void syrk_panel(const syrk_job *job, int64_t p) {
    int64_t n = job->n, c0 = p * SYRK_PANEL, c1 = c0 + SYRK_PANEL < n ? c0 + SYRK_PANEL : n;
    float *s = job->scratch + c0;
    lq_la_sgemm(true, false, c1, c1 - c0, job->k, 1.0f, job->x, job->ldx, job->x + c0, job->ldx,
                0.0f, s, n);
    for (int64_t i = 0; i < c1; i++) {
        int64_t j0 = i > c0 ? i : c0;
        for (int64_t j = j0; j < c1; j++) {
            double v = (double)s[i * n + (j - c0)];
            job->h[i * n + j] += v;
            if (j != i) job->h[j * n + i] += v;
        }
    }
}

/* Worker w takes panels w, w + W, ... (interleaved: later panels are taller). */
static void syrk_worker(void *ctx, int64_t begin, int64_t end, int thread_index) {
    const syrk_job *job = (const syrk_job *)ctx;
    for (int64_t w = begin; w < end; w++)
        for (int64_t p = w; p < job->n_panels; p += job->n_workers) syrk_panel(job, p);
}

void lq_la_syrk_acc(int64_t n, int64_t k, const float *x, int64_t ldx, double *h, float *scratch,
                    int n_threads) {
    if (n <= 0 || k <= 0) return;
    int64_t n_panels = (n + SYRK_PANEL - 1) / SYRK_PANEL;
    if (n_threads <= 0) n_threads = lq_n_cpus();
    if (n_threads > n_panels) n_threads = (int)n_panels;
    syrk_job job = {n, k, ldx, n_panels, x, h, scratch, n_threads};
    lq_parallel_for(n_threads, n_threads, syrk_worker, &job);
}

/* ---- Cholesky ----------------------------------------------------------------------------- */

#if !LQ_HAVE_BLAS
static int64_t potrf_plain(int64_t n, double *a, int64_t lda) {
    for (int64_t j = 0; j < n; j++) {
        double d = a[j * lda + j];
        for (int64_t p = 0; p < j; p++) d -= a[j * lda + p] * a[j * lda + p];
        if (!(d > 0.0) || !isfinite(d)) return j + 1;
        d = sqrt(d);
        a[j * lda + j] = d;
        for (int64_t i = j + 1; i < n; i++) {
            double v = a[i * lda + j];
            for (int64_t p = 0; p < j; p++) v -= a[i * lda + p] * a[j * lda + p];
            a[i * lda + j] = v / d;
        }
    }
    return 0;
}

/* A⁻¹ = L⁻ᵀ·L⁻¹: invert L in place (lower), then form the product into the full matrix. */
static int64_t potri_plain(int64_t n, double *a, int64_t lda) {
    for (int64_t j = 0; j < n; j++)
        if (a[j * lda + j] == 0.0) return j + 1;
    for (int64_t j = 0; j < n; j++) { /* column j of L⁻¹ by forward substitution */
        a[j * lda + j] = 1.0 / a[j * lda + j];
        for (int64_t i = j + 1; i < n; i++) {
            double v = 0.0;
            for (int64_t p = j; p < i; p++) v -= a[i * lda + p] * a[p * lda + j];
            a[i * lda + j] = v / a[i * lda + i];
        }
    }
    /* (L⁻ᵀL⁻¹)[i][j] = Σ_{p ≥ max(i,j)} M[p][i]·M[p][j], M = L⁻¹ lower; i ≤ j in order of
     * increasing i keeps the rows p ≥ j still unmodified (we write the upper part first). */
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i; j < n; j++) {
            double v = 0.0;
            for (int64_t p = j; p < n; p++) v += a[p * lda + i] * a[p * lda + j];
            if (j == i) {
                a[i * lda + i] = v; /* only entries of rows p ≥ j > i read later: fine */
            } else {
                a[i * lda + j] = v; /* strict upper: never read as part of M */
            }
        }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < i; j++) a[i * lda + j] = a[j * lda + i];
    return 0;
}
#endif

int64_t lq_la_potrf_lower(int64_t n, double *a, int64_t lda) {
    if (n <= 0) return 0;
#if LQ_HAVE_BLAS
    lq_la_init();
    lapack_int info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', (lapack_int)n, a, (lapack_int)lda);
    return info < 0 ? 1 : (int64_t)info;
#else
    return potrf_plain(n, a, lda);
#endif
}

int64_t lq_la_potri_lower(int64_t n, double *a, int64_t lda) {
    if (n <= 0) return 0;
#if LQ_HAVE_BLAS
    lq_la_init();
    lapack_int info = LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'L', (lapack_int)n, a, (lapack_int)lda);
    if (info != 0) return info < 0 ? 1 : (int64_t)info;
    for (int64_t i = 0; i < n; i++) /* mirror the lower triangle */
        for (int64_t j = i + 1; j < n; j++) a[i * lda + j] = a[j * lda + i];
    return 0;
#else
    return potri_plain(n, a, lda);
#endif
}
