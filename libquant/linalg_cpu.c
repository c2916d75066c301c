/* linalg_cpu.c — CPU backend of linalg.h: OpenBLAS + LAPACKE when the build found them, plain C
 * loops otherwise (same interface and semantics; slower, but the library builds and the passes
 * run without BLAS). */
#include "linalg.h"

#include "lq_config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

const char *lq_passes_blas_core(void) {
#if LQ_HAVE_BLAS
    const char *core = openblas_get_corename();
    return core ? core : "openblas";
#else
    return "builtin";
#endif
}

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

/* L⁻¹ in place (lower), column by column by forward substitution; the diagonal is nonzero. */
static void trtri_plain(int64_t n, double *a, int64_t lda) {
    for (int64_t j = 0; j < n; j++) { /* column j of L⁻¹ by forward substitution */
        a[j * lda + j] = 1.0 / a[j * lda + j];
        for (int64_t i = j + 1; i < n; i++) {
            double v = 0.0;
            for (int64_t p = j; p < i; p++) v -= a[i * lda + p] * a[p * lda + j];
            a[i * lda + j] = v / a[i * lda + i];
        }
    }
}

/* A⁻¹ = L⁻ᵀ·L⁻¹: invert L in place (lower), then form the product into the full matrix. */
static int64_t potri_plain(int64_t n, double *a, int64_t lda) {
    for (int64_t j = 0; j < n; j++)
        if (a[j * lda + j] == 0.0) return j + 1;
    trtri_plain(n, a, lda);
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

/* ---- double GEMM, rate probe ---------------------------------------------------------------- */

void lq_la_dgemm(bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double *a,
                 int64_t lda, const double *b, int64_t ldb, double beta, double *c, int64_t ldc) {
    if (m <= 0 || n <= 0) return;
#if LQ_HAVE_BLAS
    lq_la_init();
    if (k > 0) {
        cblas_dgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, (blasint)m,
                    (blasint)n, (blasint)k, alpha, a, (blasint)lda, b, (blasint)ldb, beta, c,
                    (blasint)ldc);
        return;
    }
#endif
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double v = 0.0;
            for (int64_t p = 0; p < k; p++) v += a[i * lda + p] * (trans_b ? b[j * ldb + p] : b[p * ldb + j]);
            c[i * ldc + j] = alpha * v + (beta == 0.0 ? 0.0 : beta * c[i * ldc + j]);
        }
}

#define PROBE_ROWS 64

typedef struct probe_job {
    bool fp64;
    int64_t size;
    const void *a, *b;
    void *c;
} probe_job;

static void probe_worker(void *ctx, int64_t begin, int64_t end, int thread_index) {
    const probe_job *j = (const probe_job *)ctx;
    int64_t n = j->size;
    for (int64_t ch = begin; ch < end; ch++) {
        int64_t r0 = ch * PROBE_ROWS, nr = n - r0 < PROBE_ROWS ? n - r0 : PROBE_ROWS;
        if (j->fp64)
            lq_la_dgemm(false, nr, n, n, 1.0, (const double *)j->a + r0 * n, n, (const double *)j->b, n,
                        0.0, (double *)j->c + r0 * n, n);
        else
            lq_la_sgemm(false, false, nr, n, n, 1.0f, (const float *)j->a + r0 * n, n,
                        (const float *)j->b, n, 0.0f, (float *)j->c + r0 * n, n);
    }
}

static double wall_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double lq_la_gemm_rate(bool fp64, int64_t size, int n_threads) {
    if (size <= 0) return 0.0;
    if (n_threads <= 0) n_threads = lq_n_cpus();
    size_t n2 = (size_t)size * (size_t)size, es = fp64 ? sizeof(double) : sizeof(float);
    void *a = malloc(n2 * es), *b = malloc(n2 * es), *c = malloc(n2 * es);
    double rate = 0.0;
    if (a && b && c) {
        for (size_t i = 0; i < n2; i++) { /* any finite values: the time does not depend on them */
            double v = (double)(i % 17) / 17.0 - 0.5;
            if (fp64) ((double *)a)[i] = ((double *)b)[i] = v;
            else ((float *)a)[i] = ((float *)b)[i] = (float)v;
        }
        probe_job job = {fp64, size, a, b, c};
        int64_t chunks = (size + PROBE_ROWS - 1) / PROBE_ROWS;
        lq_parallel_for(chunks, n_threads, probe_worker, &job); /* warm-up (pages, caches) */
        double best = INFINITY;
        for (int rep = 0; rep < 2; rep++) { /* best of two: the machine may be shared */
            double t0 = wall_seconds();
            lq_parallel_for(chunks, n_threads, probe_worker, &job);
            double dt = wall_seconds() - t0;
            if (dt < best) best = dt;
        }
        rate = best > 0.0 ? 2.0 * (double)size * (double)size * (double)size / best / 1e9 : 0.0;
    }
    free(a);
    free(b);
    free(c);
    return rate;
}

/* ---- blocked, threaded Cholesky and triangular inverse ------------------------------------ */

#if LQ_HAVE_BLAS
#define LA_TILE 256 /* tile edge: fixed, so results do not depend on the thread count */

typedef struct tile_job {
    double *a;
    int64_t n, lda, k0, kb, r0, n_tiles;
    double *tmp;   /* trtri: panel copy, (n - r0) × kb */
    int64_t bad;   /* trtri: a zero diagonal (set by the serial part only) */
} tile_job;

static int64_t tile_rows(const tile_job *j, int64_t t, int64_t *r) {
    *r = j->r0 + t * LA_TILE;
    return j->n - *r < LA_TILE ? j->n - *r : LA_TILE;
}

/* potrf: panel rows below the diagonal block: A[r, k] ← A[r, k]·L_kk⁻ᵀ */
static void potrf_trsm_worker(void *ctx, int64_t begin, int64_t end, int thread_index) {
    const tile_job *j = (const tile_job *)ctx;
    for (int64_t t = begin; t < end; t++) {
        int64_t r, nr = tile_rows(j, t, &r);
        cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, (blasint)nr,
                    (blasint)j->kb, 1.0, j->a + j->k0 * j->lda + j->k0, (blasint)j->lda,
                    j->a + r * j->lda + j->k0, (blasint)j->lda);
    }
}

/* potrf: trailing update of the lower tiles (I, J ≤ I): A[I, J] -= A[I, k]·A[J, k]ᵀ */
static void potrf_update_worker(void *ctx, int64_t begin, int64_t end, int thread_index) {
    const tile_job *j = (const tile_job *)ctx;
    int64_t ti = 0, tj = 0, p = 0;
    while (p + ti + 1 <= begin) { /* tile pair number begin → (ti, tj), row by row */
        p += ti + 1;
        ti++;
    }
    tj = begin - p;
    for (int64_t q = begin; q < end; q++) {
        int64_t ri, rj, ni = tile_rows(j, ti, &ri), nj = tile_rows(j, tj, &rj);
        const double *ai = j->a + ri * j->lda + j->k0, *aj = j->a + rj * j->lda + j->k0;
        double *c = j->a + ri * j->lda + rj;
        if (ti == tj)
            cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, (blasint)ni, (blasint)j->kb, -1.0, ai,
                        (blasint)j->lda, 1.0, c, (blasint)j->lda);
        else
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)ni, (blasint)nj, (blasint)j->kb,
                        -1.0, ai, (blasint)j->lda, aj, (blasint)j->lda, 1.0, c, (blasint)j->lda);
        if (++tj > ti) {
            ti++;
            tj = 0;
        }
    }
}
#endif

int64_t lq_la_potrf_lower_mt(int64_t n, double *a, int64_t lda, int n_threads) {
    if (n <= 0) return 0;
#if LQ_HAVE_BLAS
    lq_la_init();
    if (n_threads <= 0) n_threads = lq_n_cpus();
    for (int64_t k0 = 0; k0 < n; k0 += LA_TILE) {
        int64_t kb = n - k0 < LA_TILE ? n - k0 : LA_TILE;
        lapack_int info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', (lapack_int)kb, a + k0 * lda + k0, (lapack_int)lda);
        if (info != 0) return info < 0 ? k0 + 1 : k0 + (int64_t)info;
        tile_job job = {a, n, lda, k0, kb, k0 + kb, 0, NULL, 0};
        if (job.r0 >= n) break;
        job.n_tiles = (n - job.r0 + LA_TILE - 1) / LA_TILE;
        lq_parallel_for(job.n_tiles, n_threads, potrf_trsm_worker, &job);
        lq_parallel_for(job.n_tiles * (job.n_tiles + 1) / 2, n_threads, potrf_update_worker, &job);
    }
    return 0;
#else
    return lq_la_potrf_lower(n, a, lda);
#endif
}

#if LQ_HAVE_BLAS
/* trtri, block column k (rows below it, r0 = k0 + kb): with X = the already inverted trailing
 * part, tmp[I] = Σ_{K ≤ I} X[I, K]·A[K, k] (old panel), then tmp[I] ← −tmp[I]·L_kk⁻¹. The panel
 * is read only, tmp written per row tile: tiles are independent. */
static void trtri_panel_worker(void *ctx, int64_t begin, int64_t end, int thread_index) {
    const tile_job *j = (const tile_job *)ctx;
    for (int64_t t = begin; t < end; t++) {
        int64_t ri, ni = tile_rows(j, t, &ri);
        double *out = j->tmp + (ri - j->r0) * j->kb;
        for (int64_t r = 0; r < ni; r++)
            memcpy(out + r * j->kb, j->a + (ri + r) * j->lda + j->k0, (size_t)j->kb * sizeof(double));
        cblas_dtrmm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, (blasint)ni,
                    (blasint)j->kb, 1.0, j->a + ri * j->lda + ri, (blasint)j->lda, out, (blasint)j->kb);
        if (ri > j->r0)
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)ni, (blasint)j->kb,
                        (blasint)(ri - j->r0), 1.0, j->a + ri * j->lda + j->r0, (blasint)j->lda,
                        j->a + j->r0 * j->lda + j->k0, (blasint)j->lda, 1.0, out, (blasint)j->kb);
        cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit, (blasint)ni,
                    (blasint)j->kb, -1.0, j->a + j->k0 * j->lda + j->k0, (blasint)j->lda, out,
                    (blasint)j->kb);
    }
}
#endif

int64_t lq_la_trtri_lower(int64_t n, double *a, int64_t lda, int n_threads) {
    if (n <= 0) return 0;
    for (int64_t i = 0; i < n; i++)
        if (a[i * lda + i] == 0.0) return i + 1;
#if LQ_HAVE_BLAS
    lq_la_init();
    if (n_threads <= 0) n_threads = lq_n_cpus();
    int64_t n_blocks = (n + LA_TILE - 1) / LA_TILE;
    double *tmp = (double *)malloc((size_t)n * LA_TILE * sizeof(double));
    if (!tmp) return -1;
    /* last block column first: each panel needs the inverse of everything below-right of it */
    for (int64_t b = n_blocks - 1; b >= 0; b--) {
        int64_t k0 = b * LA_TILE, kb = n - k0 < LA_TILE ? n - k0 : LA_TILE;
        tile_job job = {a, n, lda, k0, kb, k0 + kb, 0, tmp, 0};
        if (job.r0 < n) {
            job.n_tiles = (n - job.r0 + LA_TILE - 1) / LA_TILE;
            lq_parallel_for(job.n_tiles, n_threads, trtri_panel_worker, &job);
            for (int64_t r = job.r0; r < n; r++)
                memcpy(a + r * lda + k0, tmp + (r - job.r0) * kb, (size_t)kb * sizeof(double));
        }
        lapack_int info = LAPACKE_dtrtri(LAPACK_ROW_MAJOR, 'L', 'N', (lapack_int)kb, a + k0 * lda + k0,
                                         (lapack_int)lda);
        if (info != 0) {
            free(tmp);
            return info < 0 ? k0 + 1 : k0 + (int64_t)info;
        }
    }
    free(tmp);
    return 0;
#else
    trtri_plain(n, a, lda);
    (void)n_threads;
    return 0;
#endif
}
