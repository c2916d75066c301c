/* test_cuda_host: what the CUDA kernels compute, checked on the CPU (no GPU needed).
 *
 * The kernels call the switch-on-type dispatchers of kernels/cuda/hd_codec.h and the row
 * functions of hd_gptq.h, hd_awq.h, hd_stats.h. Compiled here as host C (with
 * -ffp-contract=off, as nvcc's -fmad=false), each must equal the library's CPU path bit for
 * bit: the codec tables (fit, round, value, encode, decode), lq_quantize_rows /
 * lq_dequantize_rows (also on the llama.cpp vectors in ../shared), lq_gptq_quantize,
 * lq_awq_clip and the statistics accumulator. Also: --device selection and the CPU linalg
 * backend object. */
#include "test.h"

#include "kernels/cuda/hd_awq.h"
#include "kernels/cuda/hd_codec.h"
#include "kernels/cuda/hd_gptq.h"
#include "kernels/cuda/hd_stats.h"
#include "kernels/cuda/lq_cuda.h"
#include "libquant/codecs/codec.h"
#include "libquant/linalg.h"
#include "libquant/passes_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const lq_type k_types[] = {LQ_TYPE_Q4_0, LQ_TYPE_Q4_1, LQ_TYPE_Q5_0, LQ_TYPE_Q5_1,
                                  LQ_TYPE_Q8_0, LQ_TYPE_Q2_K, LQ_TYPE_Q3_K, LQ_TYPE_Q4_K,
                                  LQ_TYPE_Q5_K, LQ_TYPE_Q6_K, LQ_TYPE_IQ4_NL, LQ_TYPE_IQ4_XS};
#define N_TYPES (int)(sizeof k_types / sizeof k_types[0])

static bool same_bits(const float *a, const float *b, size_t n) {
    return memcmp(a, b, n * sizeof(float)) == 0;
}

/* Random block values of several shapes: Gaussian, with outliers, all equal, tiny, zeros. */
static void fill_block(float *x, int n, int kind, uint64_t *rng) {
    for (int i = 0; i < n; i++) {
        float g = test_rand_normal(rng) * 0.05f;
        switch (kind % 6) {
        case 0: x[i] = g; break;
        case 1: x[i] = test_rand_uniform(rng) < 0.03f ? g * 30.0f : g; break;
        case 2: x[i] = 0.37f; break;
        case 3: x[i] = g * 1e-6f; break;
        case 4: x[i] = i % 7 == 0 ? 0.0f : fabsf(g) + 0.01f; break;
        default: x[i] = 0.0f; break;
        }
    }
    if (kind % 6 == 5 && n > 3) x[3] = -2.5f; /* zeros and one outlier */
}

/* ---- dispatchers vs codec tables on random blocks ----------------------------------------- */

static void check_type_random(lq_type type) {
    const lq_codec *c = lq_codec_get(type);
    int n = c->block_size;
    CHECK(lq_hd_block_size(type) == n);
    CHECK(lq_hd_block_bytes(type) == (int)c->block_bytes);
    uint64_t rng = 0x1234u + (uint64_t)type;
    float x[256], imp[256], y_tab[256], y_hd[256];
    int32_t codes_tab[256], codes_hd[256];
    uint8_t blk_tab[300], blk_hd[300];
    lq_grid g_tab, g_hd;
    int mismatches = 0;
    for (int it = 0; it < 240; it++) {
        fill_block(x, n, it, &rng);
        bool with_imp = it % 2 == 1;
        for (int i = 0; i < n; i++) imp[i] = i % 11 == 0 ? 0.0f : test_rand_uniform(&rng) * 3.0f;
        float sigma2 = 0.5f * test_rand_uniform(&rng) * 0.01f;
        memset(&g_tab, 0xA5, sizeof g_tab);
        memset(&g_hd, 0xA5, sizeof g_hd);
        lq_status st = lq_grid_fit(type, x, with_imp ? imp : NULL, sigma2, &g_tab);
        bool ok = lq_hd_fit(type, x, with_imp ? imp : NULL, sigma2, &g_hd);
        if ((st == LQ_OK) != ok || memcmp(&g_tab, &g_hd, sizeof g_tab) != 0) {
            mismatches++;
            continue;
        }
        if (!ok) continue;
        /* round the whole block, then piecewise (GPTQ rounds one column at a time) */
        lq_grid_round(&g_tab, x, 0, n, codes_tab);
        lq_hd_round(&g_hd, x, 0, n, codes_hd);
        if (memcmp(codes_tab, codes_hd, (size_t)n * sizeof(int32_t)) != 0) mismatches++;
        for (int e = 0; e < n; e++) lq_hd_round(&g_hd, x, e, 1, codes_hd);
        if (memcmp(codes_tab, codes_hd, (size_t)n * sizeof(int32_t)) != 0) mismatches++;
        /* every code value at a few elements, plus out-of-range arguments */
        for (int e = 0; e < n; e += n / 8) {
            for (int32_t q = g_tab.qmin - 1; q <= g_tab.qmax + 1; q++) {
                float a = lq_grid_value(&g_tab, e, q), b = lq_hd_value(&g_hd, e, q);
                if (!(isnan(a) && isnan(b)) && !same_bits(&a, &b, 1)) mismatches++;
            }
        }
        float a = lq_grid_value(&g_tab, n, g_tab.qmin), b = lq_hd_value(&g_hd, n, g_tab.qmin);
        if (!isnan(a) || !isnan(b)) mismatches++;
        memset(blk_tab, 0, sizeof blk_tab);
        memset(blk_hd, 0, sizeof blk_hd);
        lq_grid_encode(&g_tab, codes_tab, blk_tab);
        lq_hd_encode(&g_hd, codes_hd, blk_hd);
        if (memcmp(blk_tab, blk_hd, c->block_bytes) != 0) mismatches++;
        c->decode(blk_tab, y_tab);
        CHECK(lq_hd_decode(type, blk_hd, y_hd));
        if (!same_bits(y_tab, y_hd, (size_t)n)) mismatches++;
    }
    CHECKF(mismatches == 0, "%s: %d dispatcher mismatches against the codec table",
           lq_type_get(type)->name, mismatches);
    CHECK(!lq_hd_decode(LQ_TYPE_F32, blk_hd, y_hd));
    CHECK(!lq_hd_fit(LQ_TYPE_Q8_K, x, NULL, 0.0f, &g_hd));
}

/* ---- lq_hd_quantize_block over rows vs lq_quantize_rows / lq_dequantize_rows ------------- */

/* What k_quantize_blocks does for one row (sigma2 with importance as quantize_row). */
static bool hd_quantize_row(lq_type type, const float *x, int64_t n, const float *imp,
                            uint8_t *out, float *deq) {
    int bs = lq_hd_block_size(type), bb = lq_hd_block_bytes(type);
    float sigma2 = imp ? lq_hd_row_sigma2(x, n) : 0.0f;
    int32_t codes[256];
    lq_grid g;
    for (int64_t b = 0; b < n / bs; b++)
        if (!lq_hd_quantize_block(type, x + b * bs, imp ? imp + b * bs : NULL, sigma2, &g, codes,
                                  out + b * bb, deq + b * bs))
            return false;
    return true;
}

static void check_type_rows(lq_type type) {
    const int64_t rows = 6, n = 1024;
    size_t rb = lq_row_size(type, n);
    float *x = malloc(rows * n * sizeof(float)), *imp = malloc(n * sizeof(float));
    float *deq_hd = malloc(rows * n * sizeof(float)), *deq_cpu = malloc(rows * n * sizeof(float));
    uint8_t *q_cpu = malloc(rows * rb), *q_hd = malloc(rows * rb);
    uint64_t rng = 99 + (uint64_t)type;
    for (int64_t i = 0; i < rows * n; i++) x[i] = test_rand_normal(&rng) * (i % 301 == 0 ? 0.6f : 0.03f);
    for (int64_t i = 0; i < n; i++) imp[i] = test_rand_uniform(&rng) * (i % 37 == 0 ? 0.0f : 2.0f);
    lq_error err;
    for (int with_imp = 0; with_imp < 2; with_imp++) {
        const float *im = with_imp && type != LQ_TYPE_Q8_0 ? imp : NULL;
        CHECK_OK(lq_quantize_rows(type, x, q_cpu, rows, n, with_imp ? imp : NULL, &err), &err);
        bool ok = true;
        for (int64_t r = 0; r < rows; r++)
            ok = ok && hd_quantize_row(type, x + r * n, n, im, q_hd + r * rb, deq_hd + r * n);
        CHECK(ok);
        CHECKF(memcmp(q_cpu, q_hd, rows * rb) == 0, "%s (imatrix %d): device-path bytes differ",
               lq_type_get(type)->name, with_imp);
        CHECK_OK(lq_dequantize_rows(type, q_cpu, deq_cpu, rows, n, &err), &err);
        CHECKF(same_bits(deq_cpu, deq_hd, rows * n), "%s: device-path decode differs",
               lq_type_get(type)->name);
    }
    free(x), free(imp), free(deq_hd), free(deq_cpu), free(q_cpu), free(q_hd);
}

/* ---- llama.cpp's vectors: decode every .bin, re-encode the one intact input row ---------- */

static void check_shared_vectors(void) {
    const char *dir = test_shared_path("testvectors/quants");
    (void)dir;
    size_t in_size = 0, imp_size = 0;
    float *input = test_read_file(test_shared_path("testvectors/quants/input.f32"), &in_size);
    float *imatrix = test_read_file(test_shared_path("testvectors/quants/imatrix.f32"), &imp_size);
    CHECK(input && in_size == 32 * 4096 * 4 && imatrix && imp_size == 4096 * 4);
    if (!input || !imatrix) return;
    const int64_t rows = 32, n = 4096, intact_row = 31; /* rows 0-30 of input.f32 are damaged */
    float *y_cpu = malloc(rows * n * 4), *y_hd = malloc(rows * n * 4), *deq = malloc(n * 4);
    uint8_t *row_hd = malloc(lq_row_size(LQ_TYPE_Q8_0, n)), *row_cpu = malloc(lq_row_size(LQ_TYPE_Q8_0, n));
    int files = 0;
    for (int t = 0; t < N_TYPES; t++) {
        lq_type type = k_types[t];
        const char *name = lq_type_get(type)->name;
        size_t rb = lq_row_size(type, n);
        for (int variant = 0; variant < 2; variant++) {
            char rel[128];
            snprintf(rel, sizeof rel, "testvectors/quants/%s.%s.bin", name, variant ? "imatrix" : "ref");
            size_t size = 0;
            uint8_t *bin = test_read_file(test_shared_path(rel), &size);
            CHECKF(bin && size == rb * rows, "%s: missing or wrong size", rel);
            if (!bin || size != rb * rows) {
                free(bin);
                continue;
            }
            lq_error err;
            CHECK_OK(lq_dequantize_rows(type, bin, y_cpu, rows, n, &err), &err);
            int bs = lq_hd_block_size(type), bb = lq_hd_block_bytes(type);
            for (int64_t r = 0; r < rows; r++)
                for (int64_t b = 0; b < n / bs; b++)
                    lq_hd_decode(type, bin + r * rb + b * bb, y_hd + r * n + b * bs);
            CHECKF(same_bits(y_cpu, y_hd, rows * n), "%s: dispatcher decode differs", rel);
            /* the intact input row re-encoded through the dispatcher equals the CPU library;
             * agreement with llama.cpp's bytes is the codec tests' business, reported here */
            const float *imp = variant && type != LQ_TYPE_Q8_0 ? imatrix : NULL;
            CHECK(hd_quantize_row(type, input + intact_row * n, n, imp, row_hd, deq));
            CHECK_OK(lq_quantize_rows(type, input + intact_row * n, row_cpu, 1, n,
                                      variant ? imatrix : NULL, &err), &err);
            CHECKF(memcmp(row_hd, row_cpu, rb) == 0,
                   "%s: row %d re-encoded through the dispatcher differs from lq_quantize_rows",
                   rel, (int)intact_row);
            int diff_blocks = 0;
            for (int64_t b = 0; b < n / bs; b++)
                diff_blocks += memcmp(row_hd + b * bb, bin + intact_row * rb + b * bb, (size_t)bb) != 0;
            printf("%-28s decode identical; row %d: %d of %d blocks differ from the file\n", rel,
                   (int)intact_row, diff_blocks, (int)(n / bs));
            files++;
            free(bin);
        }
    }
    CHECK(files == 2 * N_TYPES);
    free(input), free(imatrix), free(y_cpu), free(y_hd), free(deq), free(row_hd), free(row_cpu);
}

/* ---- GPTQ: the kernel's row sweep + lazy sgemm on the host equals lq_gptq_quantize -------- */

/* gptq.c's inverse factor for the first dampening (percdamp · mean diag). */
static bool upper_factor(const double *h, int64_t n, double percdamp, float *u) {
    double *a = malloc((size_t)(n * n) * sizeof(double));
    double mean = 0.0;
    for (int64_t i = 0; i < n; i++) mean += h[i * n + i];
    mean /= (double)n;
    memcpy(a, h, (size_t)(n * n) * sizeof(double));
    for (int64_t i = 0; i < n; i++) a[i * n + i] += percdamp * mean;
    bool ok = lq_la_potrf_lower(n, a, n) == 0 && lq_la_potri_lower(n, a, n) == 0 &&
              lq_la_potrf_lower(n, a, n) == 0;
    for (int64_t i = 0; ok && i < n; i++) {
        for (int64_t j = 0; j < i; j++) u[i * n + j] = 0.0f;
        for (int64_t j = i; j < n; j++) u[i * n + j] = (float)a[j * n + i];
    }
    free(a);
    return ok;
}

/* gptq.c's chunking (16 rows, each with its own lazy sgemm), using the kernel's row function. */
static bool host_sweep(lq_type type, const float *w, int64_t n_out, int64_t n, const float *u,
                       const float *imp, int64_t lazy, uint8_t *dst, float *deq) {
    const int64_t chunk = 16;
    lq_hd_gptq_args a = {(int)type, lq_hd_block_size(type), lq_hd_block_bytes(type), n, u, imp};
    size_t rb = lq_row_size(type, n);
    float *wc = malloc((size_t)(chunk * n) * 4), *e = malloc((size_t)(chunk * lazy) * 4);
    uint8_t *dead = calloc((size_t)n, 1);
    lq_grid *g = malloc(chunk * sizeof(lq_grid));
    int32_t *codes = malloc(chunk * 256 * sizeof(int32_t));
    float sigma2[16];
    bool ok = true;
    for (int64_t r0 = 0; r0 < n_out && ok; r0 += chunk) {
        int64_t nr = n_out - r0 < chunk ? n_out - r0 : chunk;
        memcpy(wc, w + r0 * n, (size_t)(nr * n) * 4);
        for (int64_t r = 0; r < nr; r++) sigma2[r] = lq_hd_gptq_load_row(wc + r * n, dead, n);
        for (int64_t i1 = 0; i1 < n && ok; i1 += lazy) {
            int64_t i2 = i1 + lazy < n ? i1 + lazy : n;
            for (int64_t r = 0; r < nr && ok; r++) {
                double loss = 0.0;
                int64_t fail = -1;
                ok = lq_hd_gptq_sweep_row(&a, wc + r * n, sigma2[r], &g[r], codes + r * 256, i1, i2,
                                          e + r * lazy, &loss, dst + (r0 + r) * rb,
                                          deq + (r0 + r) * n, &fail) == LQ_HD_GPTQ_OK;
            }
            if (ok && i2 < n)
                lq_la_sgemm(false, false, nr, n - i2, i2 - i1, -1.0f, e, lazy, u + i1 * n + i2, n,
                            1.0f, wc + i2, n);
        }
    }
    free(wc), free(e), free(dead), free(g), free(codes);
    return ok;
}

/* Σ over tokens and outputs of (x·(w − q)ᵀ)², in double: the quantity GPTQ minimises. */
static double output_error(const float *x, int64_t t, int64_t n, const float *w, const float *q,
                           int64_t n_out) {
    double total = 0.0;
    for (int64_t r = 0; r < n_out; r++)
        for (int64_t i = 0; i < t; i++) {
            double y = 0.0;
            for (int64_t j = 0; j < n; j++) y += (double)x[i * n + j] * ((double)w[r * n + j] - q[r * n + j]);
            total += y * y;
        }
    return total;
}

static void check_gptq(lq_type type, int64_t lazy_cols) {
    const int64_t n_out = 40, n = 512, tokens = 700;
    uint64_t rng = 7 + (uint64_t)type;
    float *w = malloc(n_out * n * 4), *x = malloc(tokens * n * 4), *u = malloc(n * n * 4);
    float *deq_cpu = malloc(n_out * n * 4), *deq_hd = malloc(n_out * n * 4), *imp = malloc(n * 4);
    size_t rb = lq_row_size(type, n);
    uint8_t *q_cpu = malloc(n_out * rb), *q_hd = malloc(n_out * rb);
    for (int64_t i = 0; i < n_out * n; i++) w[i] = test_rand_normal(&rng) * 0.04f;
    for (int64_t i = 0; i < tokens * n; i++)
        x[i] = test_rand_normal(&rng) * (1.0f + (float)(i % n % 5)) + 0.3f * (float)(i % n % 3);
    lq_hessian hs;
    lq_error err;
    CHECK_OK(lq_hessian_init(&hs, n, &err), &err);
    lq_hessian_add(&hs, x, tokens, 1);
    lq_hessian_finish(&hs);
    double mean = 0.0;
    for (int64_t i = 0; i < n; i++) mean += fabs(hs.h[i * n + i]);
    mean /= (double)n;
    for (int64_t i = 0; i < n; i++) imp[i] = (float)(fabs(hs.h[i * n + i]) / mean);
    lq_gptq_opts o; /* by field: the options struct grows (device) */
    memset(&o, 0, sizeof o);
    o.percdamp = 0.01;
    o.block_size = (int)lazy_cols;
    o.n_threads = 1;
    lq_gptq_report rep;
    CHECK_OK(lq_gptq_quantize(type, "t", w, n_out, n, hs.h, &o, q_cpu, deq_cpu, &rep, &err), &err);
    CHECK(rep.n_retries == 0 && !rep.rtn_fallback);
    CHECK(upper_factor(hs.h, n, 0.01, u));
    int bs = lq_hd_block_size(type);
    int64_t lazy = (lazy_cols + bs - 1) / bs * bs;
    CHECK(host_sweep(type, w, n_out, n, u, imp, lazy, q_hd, deq_hd));
    /* gptq.c now updates inside a lazy batch by sub-batch sgemms (and factorises H⁻¹ its own
     * way), so the per-column device sweep agrees to float rounding, not bit for bit; GPTQ's
     * error propagation turns one flipped rounding into a different rest of the row, so the
     * comparison is GPTQ's objective: the output error on the calibration inputs, equal within
     * 3% and well below RTN's */
    const char *tn = lq_type_get(type)->name;
    float *rtn = malloc(n_out * n * 4);
    uint8_t *q_rtn = malloc(n_out * rb);
    CHECK_OK(lq_quantize_rows(type, w, q_rtn, n_out, n, imp, &err), &err);
    CHECK_OK(lq_dequantize_rows(type, q_rtn, rtn, n_out, n, &err), &err);
    double e_cpu = output_error(x, tokens, n, w, deq_cpu, n_out);
    double e_hd = output_error(x, tokens, n, w, deq_hd, n_out);
    double e_rtn = output_error(x, tokens, n, w, rtn, n_out);
    printf("gptq %s lazy %d: output error cpu %.4g, shared sweep %.4g, rtn %.4g\n", tn, (int)lazy, e_cpu,
           e_hd, e_rtn);
    CHECKF(fabs(e_hd - e_cpu) <= 0.03 * e_cpu, "%s lazy %d: output error %g vs lq_gptq_quantize %g", tn,
           (int)lazy, e_hd, e_cpu);
    CHECKF(e_hd < 0.9 * e_rtn, "%s lazy %d: output error %g not below RTN's %g", tn, (int)lazy, e_hd, e_rtn);
    free(rtn), free(q_rtn);
    float *dec = malloc(n_out * n * 4);
    CHECK_OK(lq_dequantize_rows(type, q_hd, dec, n_out, n, &err), &err);
    CHECKF(same_bits(dec, deq_hd, n_out * n), "%s: sweep blocks do not decode to the values used", tn);
    free(dec);
    lq_hessian_free(&hs);
    free(w), free(x), free(u), free(deq_cpu), free(deq_hd), free(imp), free(q_cpu), free(q_hd);
}

/* ---- AWQ clip: per-block function vs lq_awq_clip ------------------------------------------ */

static int g_clipped_blocks = 0; /* over all types: the data must exercise actual clipping */

static void check_awq_clip(lq_type type) {
    const int64_t n_out = 8, n = 512, t = 24;
    int bs = lq_hd_block_size(type);
    uint64_t rng = 31 + (uint64_t)type;
    float *w = malloc(n_out * n * 4), *w_hd = malloc(n_out * n * 4), *x = malloc(t * n * 4);
    for (int64_t i = 0; i < n_out * n; i++)
        w[i] = test_rand_normal(&rng) * (test_rand_uniform(&rng) < 0.02f ? 0.5f : 0.03f);
    for (int64_t i = 0; i < t * n; i++) x[i] = test_rand_normal(&rng);
    memcpy(w_hd, w, n_out * n * 4);
    double mean_cpu = 0.0, sum = 0.0;
    lq_error err;
    CHECK_OK(lq_awq_clip(type, w, n_out, n, x, t, 1, &mean_cpu, &err), &err);
    float wc[256], q[256];
    int32_t codes[256];
    lq_grid g;
    int clipped = 0;
    for (int64_t r = 0; r < n_out; r++) {
        float *row = w_hd + r * n;
        float sigma2 = lq_hd_row_sigma2(row, n);
        double ratios = 0.0;
        for (int64_t b0 = 0; b0 < n; b0 += bs) {
            double ratio = lq_hd_clip_block((int)type, bs, row + b0, b0, x, t, n, sigma2, wc, q,
                                            codes, &g);
            clipped += ratio < 1.0;
            ratios += ratio;
        }
        sum += ratios / (double)(n / bs);
    }
    CHECKF(same_bits(w, w_hd, n_out * n), "%s: clipped weights differ", lq_type_get(type)->name);
    CHECK(sum / (double)n_out == mean_cpu);
    g_clipped_blocks += clipped;
    free(w), free(w_hd), free(x);
}

/* ---- statistics vs the calibration accumulator -------------------------------------------- */

static void check_stats(void) {
    const int64_t t = 37, n = 96;
    uint64_t rng = 5;
    float *x = malloc(t * n * 4);
    for (int64_t i = 0; i < t * n; i++) x[i] = test_rand_normal(&rng) * (float)(1 + i % 4);
    lq_stats_acc *acc;
    lq_error err;
    CHECK_OK(lq_stats_acc_new(1, false, &acc, &err), &err);
    CHECK_OK(lq_stats_acc_add(acc, "blk.0.attn_q.weight", x, 20, n, &err), &err);
    CHECK_OK(lq_stats_acc_add(acc, "blk.0.attn_q.weight", x + 20 * n, t - 20, n, &err), &err);
    lq_stats_meta meta = {0, NULL, 1, 0};
    lq_stats *s;
    CHECK_OK(lq_stats_from_acc(acc, &meta, &s, &err), &err);
    const lq_stats_entry *e = lq_stats_find(s, "blk.0.attn_q.weight");
    CHECK(e && e->sum_abs && e->max_abs);
    int bad = 0;
    for (int64_t j = 0; e && j < n; j++) {
        double s2 = 0.0, sa = 0.0;
        float mx = 0.0f;
        lq_hd_stats_channel(x, 20, n, j, &s2, &sa, &mx); /* two batches, as the kernel sees them */
        lq_hd_stats_channel(x + 20 * n, t - 20, n, j, &s2, &sa, &mx);
        float f2 = (float)s2, fa = (float)sa;
        bad += !same_bits(&f2, &e->sum_x2[j], 1) || !same_bits(&fa, &e->sum_abs[j], 1) ||
               !same_bits(&mx, &e->max_abs[j], 1);
    }
    CHECKF(bad == 0, "statistics: %d channels differ from lq_stats_acc_add", bad);
    lq_stats_free(s);
    lq_stats_acc_free(acc);
    free(x);
}

/* ---- devices and backends ----------------------------------------------------------------- */

static void check_devices(void) {
    lq_device_kind kind;
    int index;
    lq_error err;
    CHECK_OK(lq_device_parse("auto", &kind, &index, &err), &err);
    CHECK(kind == LQ_DEVICE_AUTO && index == -1);
    CHECK_OK(lq_device_parse("CPU", &kind, &index, &err), &err);
    CHECK(kind == LQ_DEVICE_CPU);
    CHECK_OK(lq_device_parse("cuda:1", &kind, &index, &err), &err);
    CHECK(kind == LQ_DEVICE_CUDA && index == 1);
    CHECK(lq_device_parse("cuda:", &kind, &index, &err) == LQ_ERR_INVALID);
    CHECK(lq_device_parse("gpu", &kind, &index, &err) == LQ_ERR_INVALID && strstr(err.msg, "'gpu'"));
    CHECK(lq_device_parse("cuda:x", &kind, &index, &err) == LQ_ERR_INVALID);

    lq_device d;
    CHECK_OK(lq_device_select("cpu", &d, &err), &err);
    CHECK(d.kind == LQ_DEVICE_CPU && d.index == -1 && strstr(d.note, "cpu"));
    int n = lq_cuda_device_count();
    CHECK_OK(lq_device_select("auto", &d, &err), &err);
    if (n == 0) {
        CHECK(d.kind == LQ_DEVICE_CPU);
        /* the reason comes from the loader: no driver, no device, no module, or the build */
        CHECKF(!strncmp(d.note, "device: cpu (auto: ", 19) &&
               (lq_cuda_compiled() || strstr(d.note, "without CUDA")), "note: %s", d.note);
        CHECK(lq_device_select("cuda", &d, &err) == LQ_ERR_UNSUPPORTED && strstr(err.msg, "--device cuda"));
        lq_cuda_ctx *ctx = NULL;
        CHECK(lq_cuda_ctx_create(0, 0, &ctx, &err) == LQ_ERR_UNSUPPORTED && ctx == NULL);
    } else {
        CHECK(d.kind == LQ_DEVICE_CUDA && d.index == 0 && strstr(d.note, "cuda:0"));
        CHECK(lq_device_select("cuda:999", &d, &err) == LQ_ERR_INVALID);
    }
    printf("device selection here: %s\n", n ? "cuda" : "cpu");

    /* the CPU backend object computes what linalg.h computes */
    const lq_la_ops *be = lq_la_ops_cpu();
    CHECK(be && !strcmp(be->name, lq_la_backend()));
    float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, -1, 2, 0.5f, 3}, c[4] = {0}, c_ref[4] = {0};
    be->sgemm(be->ctx, false, false, 2, 2, 3, 1.0f, a, 3, b, 2, 0.0f, c, 2);
    lq_la_sgemm(false, false, 2, 2, 3, 1.0f, a, 3, b, 2, 0.0f, c_ref, 2);
    CHECK(same_bits(c, c_ref, 4) && c[0] == 1.0f * 1 + 2 * -1 + 3 * 0.5f);
    double h[4] = {4, 2, 2, 3};
    CHECK(be->potrf_lower(be->ctx, 2, h, 2) == 0 && h[0] == 2.0 && h[2] == 1.0);
    lq_la_ops cu;
    lq_status st = lq_la_ops_cuda(NULL, &cu, &err);
    CHECK(st != LQ_OK);
}

int main(void) {
    for (int t = 0; t < N_TYPES; t++) {
        check_type_random(k_types[t]);
        check_type_rows(k_types[t]);
        check_awq_clip(k_types[t]);
    }
    CHECKF(g_clipped_blocks > 0, "awq clip: the test data clips no block (test is too weak)");
    printf("awq clip: %d blocks clipped over all types, all identical\n", g_clipped_blocks);
    check_gptq(LQ_TYPE_Q4_0, 512);  /* one batch */
    check_gptq(LQ_TYPE_Q4_K, 128);  /* lazy batches with sgemm */
    check_gptq(LQ_TYPE_IQ4_NL, 96);
    check_gptq(LQ_TYPE_Q6_K, 256);
    check_stats();
    check_devices();
    check_shared_vectors();
    TEST_DONE();
}
