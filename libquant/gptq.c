/* gptq.c — GPTQ (Frantar et al., IST-DASLab/gptq's fasterquant) with the GGUF block formats as
 * the quantization grid.
 *
 * Precision: H is accumulated in fp64 from fp32 batch products (lq_hessian), dampened and
 * factorised in fp64 (Cholesky → inverse → Cholesky of the inverse: ill-conditioned down_proj
 * Hessians are the classic failure, fp64 halves the number of retries for a few seconds of
 * O(n³) work); the sweep itself runs in fp32 like the reference (U as fp32, BLAS sgemm).
 *
 * Grid: GGUF blocks run along ne[0] (the input dimension), which is the dimension GPTQ sweeps.
 * At the first column of a block (32 elements; 256 for K-quants and IQ4_XS) the block's scales
 * / mins / sub-block scales are fitted with lq_grid_fit on that row's error-updated weights
 * (the lazy batch width is a multiple of the block, so every column of the block already holds
 * all earlier errors), then each column is rounded on that fixed grid (lq_grid_round), its
 * decoded value (lq_grid_value) taken as q, and (w − q)/U_jj propagated. No act-order: the
 * per-tensor permutation cannot be stored in GGUF (no g_idx); the natural order keeps the
 * block grids exact.
 *
 * Threads: rows are independent given U. Rows are processed in fixed chunks of CHUNK_ROWS rows
 * (each chunk does its own column sweep and lazy sgemms, see sweep_chunk), so the result does not
 * depend on the number of threads. */
#include "device_adapters.h"
#include "passes_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_ROWS 64 /* rows per task (fixed: the result does not depend on the threads) */
#define SUB 32        /* sub-batch width; divides every grid block (32 or 256) */

/* ---- Hessian ------------------------------------------------------------------------------ */

lq_status lq_hessian_init(lq_hessian *hs, int64_t n_in, lq_error *err) {
    memset(hs, 0, sizeof *hs);
    uint64_t n2;
    if (n_in <= 0 || !lq_mul_u64((uint64_t)n_in, (uint64_t)n_in, &n2) || n2 > SIZE_MAX / 8)
        return lq_fail(err, LQ_ERR_INVALID, "hessian: bad width %" PRId64, n_in);
    hs->n_in = n_in;
    hs->h = (double *)lq_calloc((size_t)n2, sizeof(double), err, "hessian");
    hs->scratch = (float *)lq_malloc((size_t)n2 * sizeof(float), err, "hessian scratch");
    if (!hs->h || !hs->scratch) {
        lq_hessian_free(hs);
        return LQ_ERR_NOMEM;
    }
    return LQ_OK;
}

void lq_hessian_add(lq_hessian *hs, const float *x, int64_t n_tokens, int n_threads) {
    if (n_tokens <= 0) return;
    lq_la_syrk_acc(hs->n_in, n_tokens, x, hs->n_in, hs->h, hs->scratch, n_threads);
    hs->n_tokens += n_tokens;
}

void lq_hessian_finish(lq_hessian *hs) {
    if (hs->n_tokens <= 0) return;
    double scale = 2.0 / (double)hs->n_tokens;
    size_t n2 = (size_t)hs->n_in * (size_t)hs->n_in;
    for (size_t i = 0; i < n2; i++) hs->h[i] *= scale;
}

void lq_hessian_free(lq_hessian *hs) {
    free(hs->h);
    free(hs->scratch);
    hs->h = NULL;
    hs->scratch = NULL;
}

/* ---- H⁻¹ factor with retries -------------------------------------------------------------- */

/* U (upper, fp32, n × n) with A⁻¹ = Uᵀ·U for A = H + damp·I (+ floor·I), or false when a
 * factorisation fails or the result is not finite (ExLlamaV2's NaN check). a: n² scratch.
 *
 * Without forming A⁻¹: with J the order-reversing permutation, J·A·J = L·Lᵀ (Cholesky) gives
 * A⁻¹ = (J·L⁻ᵀ·J)·(J·L⁻¹·J), a lower triangular matrix with positive diagonal times its
 * transpose, i.e. the Cholesky factor of A⁻¹; so U = J·L⁻¹·J: U[i][j] = L⁻¹[n-1-i][n-1-j].
 * 2/3·n³ flops (Cholesky + triangular inverse) instead of the reference's 4/3·n³ (Cholesky,
 * inverse, Cholesky of the inverse), and no explicit inverse whose rounding the second Cholesky
 * would see. fp64: ill-conditioned down_proj Hessians are GPTQ's classic failure; the O(n³) work
 * is a small part of a layer (see README), and fp32 here costs retries at larger dampening. */
static bool try_inverse_factor(const double *h, int64_t n, double add, double *a, float *u,
                               int n_threads) {
    for (int64_t i = 0; i < n; i++) {
        const double *hr = h + (n - 1 - i) * n;
        for (int64_t j = 0; j <= i; j++) a[i * n + j] = hr[n - 1 - j]; /* lower of J·H·J */
        a[i * n + i] += add;
    }
    if (lq_la_potrf_lower_mt(n, a, n, n_threads) != 0) return false;
    if (lq_la_trtri_lower(n, a, n, n_threads) != 0) return false;
    for (int64_t i = 0; i < n; i++) {
        const double *lr = a + (n - 1 - i) * n; /* row n-1-i of L⁻¹ */
        for (int64_t j = 0; j < i; j++) u[i * n + j] = 0.0f;
        for (int64_t j = i; j < n; j++) {
            double v = lr[n - 1 - j];
            if (!isfinite(v)) return false;
            u[i * n + j] = (float)v;
        }
        if (!(u[i * n + i] > 0.0f)) return false; /* underflow to 0 would divide by zero */
    }
    return true;
}

static const double k_damp_steps[] = {0.01, 0.03, 0.1, 0.3, 1.0};
static const double k_floor_steps[] = {0.0, 1e-6, 1e-4, 1e-2};

/* Dampening schedule: percdamp, then the larger steps; each floor (relative to max diag) with
 * the whole schedule. Returns false when everything failed. */
static bool inverse_factor(const double *h, int64_t n, double percdamp, double *a, float *u,
                           int n_threads, lq_gptq_report *rep) {
    double mean_diag = 0.0, max_diag = 0.0;
    for (int64_t i = 0; i < n; i++) {
        mean_diag += h[i * n + i];
        if (fabs(h[i * n + i]) > max_diag) max_diag = fabs(h[i * n + i]);
    }
    mean_diag /= (double)n;
    if (!(mean_diag > 0.0) || !isfinite(mean_diag)) mean_diag = 1.0;
    for (size_t f = 0; f < sizeof k_floor_steps / sizeof k_floor_steps[0]; f++) {
        double floor_add = k_floor_steps[f] * max_diag;
        for (int s = -1; s < (int)(sizeof k_damp_steps / sizeof k_damp_steps[0]); s++) {
            double pd = s < 0 ? percdamp : k_damp_steps[s];
            if (s >= 0 && pd <= percdamp) continue;
            if (try_inverse_factor(h, n, pd * mean_diag + floor_add, a, u, n_threads)) {
                rep->percdamp = pd;
                rep->diag_floor = f > 0;
                return true;
            }
            rep->n_retries++;
        }
    }
    return false;
}

/* ---- the sweep ----------------------------------------------------------------------------- */

typedef struct sweep_job {
    lq_type type;
    const char *name;
    const float *w;
    int64_t n_out, n_in;
    const float *u;        /* n_in × n_in, upper */
    const float *imp;      /* n_in */
    const uint8_t *dead;   /* n_in flags */
    int block;             /* elements per grid (block / super-block) */
    size_t block_bytes, row_bytes;
    int64_t lazy;          /* lazy batch width, a multiple of block */
    uint8_t *dst;
    float *deq;            /* optional */
    lq_status *status;     /* per chunk */
    lq_error *errs;        /* per chunk */
    double *loss;          /* per chunk */
} sweep_job;

/* Copies a chunk's rows with dead columns zeroed; sigma2 = mean square of each row (the legacy
 * imatrix weighting's row statistic, as the row quantizers compute it). */
static void load_rows(const sweep_job *job, int64_t r0, int64_t nr, float *wc, float *sigma2) {
    int64_t n = job->n_in;
    for (int64_t r = 0; r < nr; r++) {
        float *wr = wc + r * n;
        memcpy(wr, job->w + (r0 + r) * n, (size_t)n * sizeof(float));
        float sum_x2 = 0.0f;
        for (int64_t j = 0; j < n; j++) {
            if (job->dead[j]) wr[j] = 0.0f;
            sum_x2 += wr[j] * wr[j];
        }
        sigma2[r] = sum_x2 / (float)n;
    }
}

/* Fits the grid of the block starting at column b0 of row r (values already error-updated). */
static lq_status fit_block(const sweep_job *job, int64_t row, int64_t b0, const float *x,
                           float sigma2, lq_grid *g, lq_error *err) {
    for (int e = 0; e < job->block; e++)
        if (!isfinite(x[e]))
            return lq_fail(err, LQ_ERR_NUMERIC, "%s: row %" PRId64 ", column %" PRId64
                           ": error propagation produced %s", job->name, row, b0 + e,
                           isnan(x[e]) ? "NaN" : "Inf");
    const float *imp = job->imp + b0;
    double imp_sum = 0.0;
    for (int e = 0; e < job->block; e++) imp_sum += imp[e];
    if (lq_grid_fit(job->type, x, imp_sum > 0.0 ? imp : NULL, sigma2, g) != LQ_OK)
        return lq_fail(err, LQ_ERR_NUMERIC, "%s: row %" PRId64 ", block at column %" PRId64
                       ": the block scale overflows fp16", job->name, row, b0);
    return LQ_OK;
}

/* Column sweep of one row over the columns [i1, i2) of one sub-batch: fit at block starts,
 * round, propagate inside [i1, i2) (vectorised axpy), record the scaled errors (er[j - i1]) for
 * the sgemm updates of the later columns. */
static lq_status sweep_row(const sweep_job *job, int64_t row, float *wr, float sigma2, lq_grid *g,
                           int32_t *codes, int64_t i1, int64_t i2, float *er, double *loss,
                           lq_error *err) {
    int64_t n = job->n_in;
    uint8_t *out = job->dst + (size_t)row * job->row_bytes;
    for (int64_t j = i1; j < i2; j++) {
        int e = (int)(j % job->block);
        int64_t b0 = j - e;
        if (e == 0) {
            lq_status st = fit_block(job, row, b0, wr + b0, sigma2, g, err);
            if (st != LQ_OK) return st;
        }
        lq_grid_round(g, wr + b0, e, 1, codes);
        float q = lq_grid_value(g, e, codes[e]);
        if (job->deq) job->deq[row * n + j] = q;
        const float *uj = job->u + j * n;
        float diff = wr[j] - q, d = uj[j], scaled = diff / d;
        *loss += (double)diff * diff / ((double)d * d) / 2.0;
        for (int64_t jj = j + 1; jj < i2; jj++) wr[jj] -= scaled * uj[jj];
        wr[j] = q;
        er[j - i1] = scaled;
        if (e == job->block - 1)
            lq_grid_encode(g, codes, out + (size_t)(j / job->block) * job->block_bytes);
    }
    return LQ_OK;
}

/* Two levels of lazy updates: the lazy batch [i1, i2) (a multiple of the grid block) is swept in
 * sub-batches of SUB columns; each row's per-column work stays inside its sub-batch (≤ SUB-1
 * long axpys, U's sub-block in L1), the rest of the batch gets the sub-batch's errors by one
 * sgemm, the rest of the matrix the batch's errors by one sgemm over the remaining columns.
 * Every block start (32 or 256 columns) is a sub-batch start, so a block's grid is always
 * fitted on weights that hold all earlier errors. */
static lq_status sweep_chunk(const sweep_job *job, int64_t chunk, double *loss, lq_error *err) {
    int64_t n = job->n_in, r0 = chunk * CHUNK_ROWS;
    int64_t nr = job->n_out - r0 < CHUNK_ROWS ? job->n_out - r0 : CHUNK_ROWS;
    float *wc = (float *)lq_malloc((size_t)nr * (size_t)n * sizeof(float), err, "gptq rows");
    float *e = (float *)lq_malloc((size_t)nr * (size_t)job->lazy * sizeof(float), err, "gptq errors");
    lq_grid *grids = (lq_grid *)lq_malloc((size_t)nr * sizeof(lq_grid), err, "gptq grids");
    int32_t *codes = (int32_t *)lq_malloc((size_t)nr * (size_t)job->block * sizeof(int32_t), err, "gptq codes");
    float sigma2[CHUNK_ROWS];
    lq_status st = LQ_OK;
    if (!wc || !e || !grids || !codes) {
        st = LQ_ERR_NOMEM;
        goto done;
    }
    load_rows(job, r0, nr, wc, sigma2);
    for (int64_t i1 = 0; i1 < n && st == LQ_OK; i1 += job->lazy) {
        int64_t i2 = i1 + job->lazy < n ? i1 + job->lazy : n;
        for (int64_t s0 = i1; s0 < i2 && st == LQ_OK; s0 += SUB) {
            int64_t s1 = s0 + SUB < i2 ? s0 + SUB : i2;
            for (int64_t r = 0; r < nr && st == LQ_OK; r++)
                st = sweep_row(job, r0 + r, wc + r * n, sigma2[r], &grids[r], codes + r * job->block,
                               s0, s1, e + r * job->lazy + (s0 - i1), loss, err);
            if (st == LQ_OK && s1 < i2) /* sub-batch: W[:, s1:i2] -= E[:, s0:s1] · U[s0:s1, s1:i2] */
                lq_la_sgemm(false, false, nr, i2 - s1, s1 - s0, -1.0f, e + (s0 - i1), job->lazy,
                            job->u + s0 * n + s1, n, 1.0f, wc + s1, n);
        }
        if (st == LQ_OK && i2 < n) /* lazy batch: W[:, i2:] -= E · U[i1:i2, i2:] */
            lq_la_sgemm(false, false, nr, n - i2, i2 - i1, -1.0f, e, job->lazy,
                        job->u + i1 * n + i2, n, 1.0f, wc + i2, n);
    }
done:
    free(wc);
    free(e);
    free(grids);
    free(codes);
    return st;
}

static void sweep_worker(void *ctx, int64_t begin, int64_t end, int thread_index) {
    sweep_job *job = (sweep_job *)ctx;
    for (int64_t c = begin; c < end; c++) {
        if (lq_interrupted) {
            job->status[c] = lq_fail(&job->errs[c], LQ_ERR_INTERRUPTED, "%s: interrupted", job->name);
            return;
        }
        job->loss[c] = 0.0;
        job->status[c] = sweep_chunk(job, c, &job->loss[c], &job->errs[c]);
        if (job->status[c] != LQ_OK) return;
    }
}

/* Runs the sweep; on failure err holds the first failing chunk's error. */
static lq_status run_sweep(sweep_job *job, int n_threads, double *loss, lq_error *err) {
    int64_t n_chunks = (job->n_out + CHUNK_ROWS - 1) / CHUNK_ROWS;
    job->status = (lq_status *)lq_calloc((size_t)n_chunks, sizeof(lq_status), err, "gptq");
    job->errs = (lq_error *)lq_calloc((size_t)n_chunks, sizeof(lq_error), err, "gptq");
    job->loss = (double *)lq_calloc((size_t)n_chunks, sizeof(double), err, "gptq");
    lq_status st = LQ_OK;
    if (!job->status || !job->errs || !job->loss) {
        st = LQ_ERR_NOMEM;
    } else {
        for (int64_t c = 0; c < n_chunks; c++) job->status[c] = LQ_ERR_INTERRUPTED; /* not run */
        lq_parallel_for(n_chunks, n_threads, sweep_worker, job);
        *loss = 0.0;
        for (int64_t c = 0; c < n_chunks; c++) {
            if (job->status[c] != LQ_OK) {
                st = job->status[c];
                if (err) *err = job->errs[c];
                if (st == LQ_ERR_INTERRUPTED && !job->errs[c].msg[0])
                    lq_fail(err, st, "%s: interrupted", job->name);
                break;
            }
            *loss += job->loss[c];
        }
    }
    free(job->status);
    free(job->errs);
    free(job->loss);
    return st;
}

/* ---- entry point --------------------------------------------------------------------------- */

static lq_status check_inputs(lq_type type, const char *name, const float *w, int64_t n_out,
                              int64_t n_in, void *dst, lq_error *err) {
    const lq_type_traits *t = lq_type_get(type);
    if (!t || !t->is_quantized || !t->has_codec || t->activation_only)
        return lq_fail(err, LQ_ERR_UNSUPPORTED, "%s: gptq: type %s has no block codec", name,
                       t ? t->name : "(unknown)");
    if (n_out <= 0 || n_in <= 0 || n_in % t->block_size != 0)
        return lq_fail(err, LQ_ERR_INVALID, "%s: gptq: shape %" PRId64 " x %" PRId64
                       " does not fit %s blocks of %d", name, n_out, n_in, t->name, t->block_size);
    uint64_t n2, nw;
    if (!lq_mul_u64((uint64_t)n_in, (uint64_t)n_in, &n2) || n2 > SIZE_MAX / 8 ||
        !lq_mul_u64((uint64_t)n_in, (uint64_t)n_out, &nw) || nw > SIZE_MAX / 4)
        return lq_fail(err, LQ_ERR_INVALID, "%s: gptq: shape too large", name);
    if (!w || !dst) return lq_fail(err, LQ_ERR_INVALID, "%s: gptq: NULL argument", name);
    for (uint64_t i = 0; i < nw; i++)
        if (!isfinite(w[i]))
            return lq_fail(err, LQ_ERR_NUMERIC, "%s: row %" PRIu64 ", column %" PRIu64 ": weight is %s",
                           name, i / (uint64_t)n_in, i % (uint64_t)n_in, isnan(w[i]) ? "NaN" : "Inf");
    return LQ_OK;
}

/* Importance for the grid fits: the caller's, else diag(H) normalised to mean 1 (dead columns 0). */
static void fill_importance(const double *h, int64_t n, const uint8_t *dead, const float *given,
                            float *imp) {
    if (given) {
        memcpy(imp, given, (size_t)n * sizeof(float));
        return;
    }
    double mean = 0.0;
    for (int64_t i = 0; i < n; i++) mean += dead[i] ? 0.0 : fabs(h[i * n + i]);
    mean /= (double)n;
    for (int64_t i = 0; i < n; i++)
        imp[i] = dead[i] || !(mean > 0.0) ? 0.0f : (float)(fabs(h[i * n + i]) / mean);
}

static lq_status rtn_fallback(lq_type type, const char *name, const float *w, int64_t n_out,
                              int64_t n_in, const float *imp, int n_threads, void *dst,
                              float *deq, lq_error *err) {
    double imp_sum = 0.0;
    for (int64_t i = 0; i < n_in; i++) imp_sum += imp[i];
    lq_status st = lq_quantize_rows_mt(type, w, dst, n_out, n_in, imp_sum > 0.0 ? imp : NULL,
                                       n_threads, err);
    if (st != LQ_OK) return lq_fail_wrap(err, "%s: gptq RTN fallback", name);
    if (deq && (st = lq_dequantize_rows(type, dst, deq, n_out, n_in, err)) != LQ_OK) return st;
    return LQ_OK;
}

/* The factorisation of one Hessian, shared by every weight that reads the same input. */
struct lq_gptq_prep {
    int64_t n_in;
    float *u;          /* upper factor of H⁻¹ (n_in²), NULL when the Hessian was unusable */
    float *diag_imp;   /* diag(H) / mean, dead columns 0 */
    uint8_t *dead;
    lq_gptq_report base; /* n_dead, percdamp, n_retries, diag_floor, rtn_fallback, note */
};

void lq_gptq_prep_free(lq_gptq_prep *p) {
    if (!p) return;
    free(p->u);
    free(p->diag_imp);
    free(p->dead);
    free(p);
}

int lq_gptq_prep_attempts(const lq_gptq_prep *p) {
    if (!p) return 0;
    return p->base.n_retries + (p->base.rtn_fallback ? 0 : 1);
}

lq_status lq_gptq_prepare(const char *name, int64_t n_in, const double *h, double percdamp,
                          int n_threads, lq_gptq_prep **out, lq_error *err) {
    *out = NULL;
    if (!name) name = "(tensor)";
    uint64_t n2;
    if (n_in <= 0 || !lq_mul_u64((uint64_t)n_in, (uint64_t)n_in, &n2) || n2 > SIZE_MAX / 8 || !h)
        return lq_fail(err, LQ_ERR_INVALID, "%s: gptq: bad hessian (width %" PRId64 ")", name, n_in);
    for (uint64_t i = 0; i < n2; i++)
        if (!isfinite(h[i]))
            return lq_fail(err, LQ_ERR_NUMERIC, "%s: hessian entry (%" PRIu64 ", %" PRIu64 ") is not finite",
                           name, i / (uint64_t)n_in, i % (uint64_t)n_in);
    if (!(percdamp > 0.0)) percdamp = 0.01;
    lq_la_init();
    size_t n = (size_t)n_in;
    lq_gptq_prep *p = (lq_gptq_prep *)lq_calloc(1, sizeof *p, err, "gptq");
    double *hw = (double *)lq_malloc(n * n * sizeof(double), err, "gptq hessian");
    double *a = (double *)lq_malloc(n * n * sizeof(double), err, "gptq factor");
    if (p) {
        p->n_in = n_in;
        p->u = (float *)lq_malloc(n * n * sizeof(float), err, "gptq factor");
        p->diag_imp = (float *)lq_malloc(n * sizeof(float), err, "gptq importance");
        p->dead = (uint8_t *)lq_calloc(n, 1, err, "gptq");
    }
    if (!p || !hw || !a || !p->u || !p->diag_imp || !p->dead) {
        free(hw);
        free(a);
        lq_gptq_prep_free(p);
        return LQ_ERR_NOMEM;
    }
    memcpy(hw, h, n * n * sizeof(double));
    for (size_t i = 0; i < n; i++) /* dead input channels: never active in calibration */
        if (hw[i * n + i] == 0.0) {
            p->dead[i] = 1;
            hw[i * n + i] = 1.0;
            p->base.n_dead++;
        }
    fill_importance(h, n_in, p->dead, NULL, p->diag_imp);
    if (n_threads <= 0) n_threads = lq_n_cpus();
    if (!inverse_factor(hw, n_in, percdamp, a, p->u, n_threads, &p->base)) {
        p->base.rtn_fallback = true;
        snprintf(p->base.note, sizeof p->base.note,
                 "hessian not positive definite after %d dampening attempts: RTN", p->base.n_retries);
        free(p->u);
        p->u = NULL;
    } else if (p->base.n_retries > 0) {
        snprintf(p->base.note, sizeof p->base.note, "cholesky needed dampening %.2g%s after %d failures",
                 p->base.percdamp, p->base.diag_floor ? " and a diagonal floor" : "", p->base.n_retries);
    }
    free(hw);
    free(a);
    *out = p;
    return LQ_OK;
}

lq_status lq_gptq_quantize_prepared(lq_type type, const char *name, const float *w, int64_t n_out,
                                    const lq_gptq_prep *p, const lq_gptq_opts *opts, void *dst,
                                    float *deq, lq_gptq_report *rep, lq_error *err) {
    lq_gptq_report local_rep;
    if (!rep) rep = &local_rep;
    if (!name) name = "(tensor)";
    if (!p) return lq_fail(err, LQ_ERR_INVALID, "%s: gptq: no prepared hessian", name);
    *rep = p->base;
    int64_t n_in = p->n_in;
    lq_status st = check_inputs(type, name, w, n_out, n_in, dst, err);
    if (st != LQ_OK) return st;
    lq_gptq_opts o = {0};
    if (opts) o = *opts;
    if (o.block_size <= 0) o.block_size = 128;
    if (o.n_threads <= 0) o.n_threads = lq_n_cpus();
    const float *imp = o.importance ? o.importance : p->diag_imp;
    if (!p->u) return rtn_fallback(type, name, w, n_out, n_in, imp, o.n_threads, dst, deq, err);

    const lq_type_traits *t = lq_type_get(type);
    int64_t lazy = ((int64_t)o.block_size + t->block_size - 1) / t->block_size * t->block_size;
    sweep_job job = {type, name, w, n_out, n_in, p->u, imp, p->dead, t->block_size, t->block_bytes,
                     lq_row_size(type, n_in), lazy, (uint8_t *)dst, deq, NULL, NULL, NULL};
    st = o.device ? lq_device_gptq_sweep(o.device, type, name, w, n_out, n_in, p->u, imp, p->dead, lazy,
                                         dst, deq, &rep->loss, err)
                  : run_sweep(&job, o.n_threads, &rep->loss, err);
    if (st == LQ_ERR_NUMERIC) { /* blown-up propagation (or overflowing block): plain RTN */
        rep->rtn_fallback = true;
        snprintf(rep->note, sizeof rep->note, "sweep failed (%.100s): RTN", err ? err->msg : "");
        rep->loss = 0.0;
        st = rtn_fallback(type, name, w, n_out, n_in, imp, o.n_threads, dst, deq, err);
    }
    return st;
}

lq_status lq_gptq_quantize(lq_type type, const char *name, const float *w, int64_t n_out,
                           int64_t n_in, const double *h, const lq_gptq_opts *opts, void *dst,
                           float *deq, lq_gptq_report *rep, lq_error *err) {
    if (rep) memset(rep, 0, sizeof *rep);
    if (!name) name = "(tensor)";
    /* shape and type errors before the O(n³) factorisation */
    lq_status st = check_inputs(type, name, w, n_out, n_in, dst, err);
    if (st != LQ_OK) return st;
    lq_gptq_prep *p = NULL;
    st = lq_gptq_prepare(name, n_in, h, opts ? opts->percdamp : 0.0, opts ? opts->n_threads : 0, &p, err);
    if (st == LQ_OK) st = lq_gptq_quantize_prepared(type, name, w, n_out, p, opts, dst, deq, rep, err);
    lq_gptq_prep_free(p);
    return st;
}
