/* test_legacy.c — Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, IQ4_XS against llama.cpp's test vectors
 * (../shared/testvectors/quants), plus properties of the codecs and of the row API on random data.
 * Compiled with -ffp-contract=off: it calls search.h directly to cross-check the legacy searches. */
#include "test.h"

#include "codecs/codec.h"
#include "codecs/legacy.h"
#include "codecs/search.h"

#define ROWS 32
#define COLS 4096

typedef struct fmt {
    lq_type type;
    const char *name;   /* file prefix in the vectors */
    int scale_bytes;    /* leading fp16 scale fields of a block (d, or d and m) */
    bool ref_bound;     /* reference path has the closed-form error bound of elem_bound() */
    double blk_rmse[2]; /* bound on a block's RMSE / its max|x|: reference path, imatrix path */
    double code_mag;    /* largest |code value| a stored fp16 scale is multiplied by */
    double const_rel;   /* relative error bound on a constant row */
} fmt;

/* blk_rmse (per codec block: 32 elements, IQ4_XS 256): rounding to the nearest of 2^b levels over
 * [−amax, amax] (Q4_1/Q5_1: [min, max], at most 2·amax wide) errs by at most half a step,
 * amax/(2^b − 1) (Q4_0/Q5_0: amax/2^b, with one clipped element off by a full step), so the block
 * RMSE is at most that: Q4_0 0.0645, Q4_1 0.0667, Q5_0 0.0323, Q5_1 0.0323, Q8_0 0.0039 (+fp16).
 * IQ4_NL: codebook gaps up to 24 with |d| ≈ amax/127: 12/127 = 0.094. IQ4_XS adds the 6-bit
 * sub-block scale (error ≤ dS/2 = amax/64 per codebook unit of 127): 0.11. The importance-weighted
 * searches may pick a scale up to ~1.5× coarser and leave zero-importance elements clipped, so
 * their bound is 4× the half step.
 * const_rel: fp16 storage of a scale costs 2^-11; IQ4_XS also rounds each sub-block scale to an
 * integer multiple l of the super-block scale with |l| ≥ 28 for a constant row: 1/56. */
static const fmt formats[] = {
    {LQ_TYPE_Q4_0, "q4_0", 2, true, {0.0646, 0.25}, 8, 0x1p-9},
    {LQ_TYPE_Q4_1, "q4_1", 4, true, {0.0668, 0.27}, 16, 0x1p-9},
    {LQ_TYPE_Q5_0, "q5_0", 2, true, {0.0324, 0.13}, 16, 0x1p-9},
    {LQ_TYPE_Q5_1, "q5_1", 4, true, {0.0324, 0.13}, 32, 0x1p-9},
    {LQ_TYPE_Q8_0, "q8_0", 2, true, {0.0040, 0.0040}, 127, 0x1p-9},
    {LQ_TYPE_IQ4_NL, "iq4_nl", 2, false, {0.095, 0.38}, 127, 0x1p-9},
    {LQ_TYPE_IQ4_XS, "iq4_xs", 2, false, {0.11, 0.44}, 32 * 127, 1.0 / 56 + 0x1p-9},
};
#define N_FORMATS (int)(sizeof formats / sizeof formats[0])

static void *load_exact(const char *rel, size_t want) {
    size_t size = 0;
    void *p = test_read_file(test_shared_path(rel), &size);
    if (!p || size != want) {
        fprintf(stderr, "%s: expected %zu bytes, got %zu\n", rel, want, p ? size : 0);
        exit(1);
    }
    return p;
}

static int block_size(lq_type t) { return lq_type_get(t)->block_size; }
static size_t block_bytes(lq_type t) { return lq_type_get(t)->block_bytes; }

/* ---- conformance with llama.cpp's vectors ------------------------------------------------ */

static int64_t first_diff_block(const uint8_t *a, const uint8_t *b, size_t n, size_t bbytes) {
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) return (int64_t)(i / bbytes);
    return -1;
}

static int64_t first_diff_f32(const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], 4) != 0) return i;
    return -1;
}

static bool all_zero(const float *a, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (a[i] != 0.0f) return false;
    return true;
}

/* Encoding: every row byte for byte. */
static void check_encode(const fmt *f, const float *input, const float *imp, const char *variant,
                         const uint8_t *want) {
    size_t row_bytes = lq_row_size(f->type, COLS);
    uint8_t *got = (uint8_t *)calloc(ROWS, row_bytes);
    lq_error err;
    CHECK_OK(lq_quantize_rows(f->type, input, got, ROWS, COLS, imp, &err), &err);
    int bad_rows = 0;
    for (int r = 0; r < ROWS; r++) {
        int64_t b = first_diff_block(got + r * row_bytes, want + r * row_bytes, row_bytes,
                                     block_bytes(f->type));
        if (b >= 0 && bad_rows++ < 3)
            fprintf(stderr, "%s %s: row %d differs from llama.cpp first at block %" PRId64 "\n",
                    f->name, variant, r, b);
    }
    CHECKF(bad_rows == 0, "%s %s: %d of %d rows differ", f->name, variant, bad_rows, ROWS);
    free(got);
}

/* Largest block RMSE / block max|x| over n elements (blocks of the type's block size). */
static double worst_block_rel(lq_type t, const float *x, const float *y, int64_t n) {
    int bs = block_size(t);
    double worst = 0;
    for (int64_t b = 0; b < n / bs; b++) {
        double amax = 0;
        for (int i = 0; i < bs; i++) amax = fmax(amax, fabs(x[bs * b + i]));
        if (amax > 0) worst = fmax(worst, sqrt(lq_row_mse(x + bs * b, y + bs * b, bs, NULL)) / amax);
    }
    return worst;
}

/* Decoding: bit for bit against the .dequant.f32 file.
 *
 * The .dequant.f32 files of this copy of the vectors hold only ±0: they were written by a to_float
 * whose fp16 → fp32 conversion returned +0 for every scale (ggml's fp16 table uninitialised), so
 * each value is code·(+0), signed like the code's value. The same defect zeroed input rows 0-30,
 * which the README says were "rounded through fp16". When a file is like that while the blocks
 * decode to nonzero values, the comparison is made against our decoder fed the same blocks with
 * their scale fields set to +0, which must reproduce the file's sign pattern bit for bit (that
 * still checks the code extraction); the real values are then checked against the input. */
static void check_decode(const fmt *f, const float *input, const char *variant, const uint8_t *bin,
                         const float *want) {
    const int64_t n = (int64_t)ROWS * COLS;
    size_t row_bytes = lq_row_size(f->type, COLS), total = row_bytes * ROWS;
    float *deq = (float *)calloc((size_t)n, sizeof(float));
    lq_error err;
    CHECK_OK(lq_dequantize_rows(f->type, bin, deq, ROWS, COLS, &err), &err);
    int64_t bad;
    if (all_zero(want, n) && !all_zero(deq, n)) {
        static bool told = false;
        if (!told)
            fprintf(stderr, "NOTE: the .dequant.f32 vectors are ±0 only (made with fp16 scales read "
                            "as 0); comparing with zeroed-scale decoding instead\n");
        told = true;
        uint8_t *zeroed = (uint8_t *)malloc(total);
        memcpy(zeroed, bin, total);
        for (size_t off = 0; off < total; off += block_bytes(f->type))
            memset(zeroed + off, 0, (size_t)f->scale_bytes);
        float *deq0 = (float *)calloc((size_t)n, sizeof(float));
        CHECK_OK(lq_dequantize_rows(f->type, zeroed, deq0, ROWS, COLS, &err), &err);
        bad = first_diff_f32(deq0, want, n);
        free(deq0);
        free(zeroed);
        /* the real values: row 31 is the only nonzero input row */
        double rel = worst_block_rel(f->type, input + 31 * COLS, deq + 31 * COLS, COLS);
        double bound = f->blk_rmse[strcmp(variant, "imatrix") == 0];
        CHECKF(rel < bound, "%s %s: decoded row 31: block RMSE/amax %g over %g", f->name, variant,
               rel, bound);
    } else {
        bad = first_diff_f32(deq, want, n);
    }
    CHECKF(bad < 0, "%s %s: decode differs at row %" PRId64 " column %" PRId64 " (block %" PRId64 ")",
           f->name, variant, bad / COLS, bad % COLS, (bad % COLS) / block_size(f->type));
    free(deq);
}

static void check_vectors(const fmt *f, const float *input, const float *imatrix, bool with_imatrix) {
    size_t total = lq_row_size(f->type, COLS) * ROWS;
    const char *variant = with_imatrix ? "imatrix" : "ref";
    char rel[256];
    snprintf(rel, sizeof rel, "testvectors/quants/%s.%s.bin", f->name, variant);
    uint8_t *bin = (uint8_t *)load_exact(rel, total);
    snprintf(rel, sizeof rel, "testvectors/quants/%s.%s.dequant.f32", f->name, variant);
    float *want = (float *)load_exact(rel, sizeof(float) * ROWS * COLS);
    check_encode(f, input, with_imatrix ? imatrix : NULL, variant, bin);
    check_decode(f, input, variant, bin, want);
    free(bin);
    free(want);
}

/* ---- random data ------------------------------------------------------------------------- */

/* Gaussian rows, σ varying by row over 1e-3 .. 1e2, with rare ×20 outliers. */
static void fill_rows(float *x, int64_t rows, int64_t cols, uint64_t seed) {
    uint64_t s = seed;
    for (int64_t r = 0; r < rows; r++) {
        float sigma = powf(10.0f, -3.0f + 5.0f * test_rand_uniform(&s));
        for (int64_t c = 0; c < cols; c++) {
            float v = sigma * test_rand_normal(&s);
            if (test_rand_uniform(&s) < 0.005f) v *= 20.0f;
            x[r * cols + c] = v;
        }
    }
}

static void fill_importance(float *w, int64_t cols, uint64_t seed) {
    uint64_t s = seed;
    for (int64_t c = 0; c < cols; c++) {
        float u = test_rand_uniform(&s);
        w[c] = c % 50 == 7 ? 0.0f : expf(3.0f * (u - 0.5f)); /* log-uniform, some zeros */
    }
}

static float mean_square(const float *x, int64_t n) {
    float sum = 0.0f; /* accumulated in order, as the row quantizer does */
    for (int64_t i = 0; i < n; i++) sum += x[i] * x[i];
    return sum / (float)n;
}

/* ---- fit → round → encode through the public lq_grid API ---------------------------------- */

/* Rounds one element at a time (as GPTQ does column by column) and checks that the codes, the
 * encoded bytes and lq_grid_value agree with the row quantizer and the decoder. */
static void check_grid_api(const fmt *f, const float *x, int64_t rows, int64_t cols, const float *imp) {
    size_t row_bytes = lq_row_size(f->type, cols);
    uint8_t *want = (uint8_t *)calloc((size_t)rows, row_bytes);
    uint8_t block[256];
    float dec[256];
    int32_t codes[256];
    lq_error err;
    CHECK_OK(lq_quantize_rows(f->type, x, want, rows, cols, imp, &err), &err);
    int bs = block_size(f->type);
    size_t bb = block_bytes(f->type);
    int64_t bad_bytes = 0, bad_values = 0, bad_range = 0;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float sigma2 = imp ? mean_square(xr, cols) : 0.0f;
        for (int64_t b = 0; b < cols / bs; b++) {
            lq_grid g;
            lq_status st = lq_grid_fit(f->type, xr + b * bs, imp ? imp + b * bs : NULL, sigma2, &g);
            CHECK(st == LQ_OK);
            for (int e = 0; e < bs; e++) lq_grid_round(&g, xr + b * bs, e, 1, codes);
            lq_grid_encode(&g, codes, block);
            if (memcmp(block, want + r * row_bytes + b * bb, bb) != 0 && bad_bytes++ < 3)
                fprintf(stderr, "%s: grid API row %" PRId64 " block %" PRId64 " differs\n", f->name, r, b);
            CHECK_OK(lq_dequantize_rows(f->type, block, dec, 1, bs, &err), &err);
            for (int e = 0; e < bs; e++) {
                if (codes[e] < g.qmin || codes[e] > g.qmax) bad_range++;
                float v = lq_grid_value(&g, e, codes[e]);
                if (memcmp(&v, &dec[e], 4) != 0) bad_values++;
            }
        }
    }
    CHECKF(bad_bytes == 0, "%s: %" PRId64 " blocks from lq_grid_* differ from lq_quantize_rows",
           f->name, bad_bytes);
    CHECKF(bad_values == 0, "%s: %" PRId64 " lq_grid_value results differ from the decoder", f->name,
           bad_values);
    CHECKF(bad_range == 0, "%s: %" PRId64 " codes outside [qmin, qmax]", f->name, bad_range);
    free(want);
}

/* Codes for values far outside the fitted block (GPTQ's updated weights) stay in range, and the
 * endpoints are chosen: the largest positive input gets the largest value. */
static void check_round_out_of_range(const fmt *f) {
    float x[256], y[256];
    int32_t codes[256];
    uint64_t s = 99;
    int bs = block_size(f->type);
    for (int i = 0; i < bs; i++) x[i] = test_rand_normal(&s);
    lq_grid g;
    CHECK(lq_grid_fit(f->type, x, NULL, 0.0f, &g) == LQ_OK);
    for (int i = 0; i < bs; i++) y[i] = (i % 2 ? 1e30f : -1e30f);
    lq_grid_round(&g, y, 0, bs, codes);
    bool ok = true;
    for (int i = 0; i < bs && ok; i++) {
        ok = codes[i] >= g.qmin && codes[i] <= g.qmax;
        float v = lq_grid_value(&g, i, codes[i]);
        for (int32_t c = g.qmin; c <= g.qmax && ok; c++) {
            float other = lq_grid_value(&g, i, c);
            ok = i % 2 ? v >= other : v <= other;
        }
    }
    CHECKF(ok, "%s: rounding of values far outside the block is not clamped to the extreme codes", f->name);
}

/* ---- the legacy searches against search.h ------------------------------------------------- */

static void check_searches(void) {
    uint64_t s = 7;
    int bad_qx = 0, bad_qkx = 0;
    for (int trial = 0; trial < 2000; trial++) {
        float x[32], qw[32], w[32];
        float sigma = powf(10.0f, -4.0f + 6.0f * test_rand_uniform(&s));
        if (trial % 50 == 3) sigma = 1e-39f; /* subnormal: inverse scales overflow to Inf */
        for (int i = 0; i < 32; i++) {
            x[i] = sigma * test_rand_normal(&s);
            if (trial % 5 == 0) x[i] = fabsf(x[i]); /* one-signed blocks */
            qw[i] = trial % 7 == 0 ? 0.0f : test_rand_uniform(&s);
        }
        float sigma2 = sigma * sigma * test_rand_uniform(&s);
        for (int i = 0; i < 32; i++) w[i] = qw[i] * sqrtf(sigma2 + x[i] * x[i]);
        for (int k = 0; k < 2; k++) {
            lq_type sym = k ? LQ_TYPE_Q5_0 : LQ_TYPE_Q4_0, asym = k ? LQ_TYPE_Q5_1 : LQ_TYPE_Q4_1;
            int nmax_sym = k ? 16 : 8, nmax_asym = k ? 31 : 15;
            lq_grid g;
            int32_t codes[32];
            int8_t L[32];
            float scale = lq_make_qx_quants(32, nmax_sym, x, L, 1, w);
            lq_grid_fit(sym, x, qw, sigma2, &g);
            lq_grid_round(&g, x, 0, 32, codes);
            bool same = memcmp(&scale, &g.d, 4) == 0;
            for (int i = 0; i < 32; i++) same = same && codes[i] == L[i];
            bad_qx += !same;

            uint8_t Lu[32], Laux[32];
            float the_min;
            scale = lq_make_qkx3_quants(32, nmax_asym, x, w, Lu, &the_min, Laux, -0.9f, 0.05f, 36, false);
            lq_grid_fit(asym, x, qw, sigma2, &g);
            lq_grid_round(&g, x, 0, 32, codes);
            same = memcmp(&scale, &g.d, 4) == 0 && g.dmin_bits == lq_fp16_from_f32(-the_min);
            for (int i = 0; i < 32; i++) same = same && codes[i] == Lu[i];
            bad_qkx += !same;
        }
    }
    CHECKF(bad_qx == 0, "%d blocks where Q4_0/Q5_0's search differs from lq_make_qx_quants", bad_qx);
    CHECKF(bad_qkx == 0, "%d blocks where Q4_1/Q5_1's search differs from lq_make_qkx3_quants", bad_qkx);
}

/* ---- error bounds -------------------------------------------------------------------------- */

#define FP16_REL 0x1p-11  /* relative rounding error of a normal fp16 */
#define FP16_ABS 0x1p-25  /* absolute rounding error in the fp16 subnormal range */

/* Bound on |x − decode(encode(x))| for the reference (no imatrix) encoders, element e of a block:
 * rounding to the nearest code costs d/2, the clipped end of Q4_0/Q5_0 (codes −nmax..nmax−1 with
 * the largest |x| at −nmax) costs up to d, storing d (and m) in fp16 costs |code|·δd (+ δm), and
 * the decoder's float product costs one rounding of the result. */
static double elem_bound(lq_type t, const float *xb, int e) {
    double amax = 0, max = 0, lo = xb[0], hi = xb[0];
    for (int i = 0; i < 32; i++) {
        if (fabs(xb[i]) > amax) {
            amax = fabs(xb[i]);
            max = xb[i];
        }
        lo = xb[i] < lo ? xb[i] : lo;
        hi = xb[i] > hi ? xb[i] : hi;
    }
    double d, qmax, extra = amax * 0x1p-22;
    switch (t) {
    case LQ_TYPE_Q8_0:
        d = amax / 127, qmax = 127;
        return d * 0.50001 + qmax * (d * FP16_REL + FP16_ABS) + extra;
    case LQ_TYPE_Q4_0:
    case LQ_TYPE_Q5_0: {
        double nmax = t == LQ_TYPE_Q4_0 ? 8 : 16;
        d = amax / nmax;
        bool clipped = max != 0 && xb[e] / max < -(nmax - 0.5) / nmax + 1e-6;
        return d * (clipped ? 1.00001 : 0.50001) + nmax * (d * FP16_REL + FP16_ABS) + extra;
    }
    default: { /* Q4_1, Q5_1 */
        qmax = t == LQ_TYPE_Q4_1 ? 15 : 31;
        d = (hi - lo) / qmax;
        extra = (fabs(hi) + fabs(lo)) * 0x1p-22;
        return d * 0.50001 + qmax * (d * FP16_REL + FP16_ABS) + fabs(lo) * FP16_REL + FP16_ABS + extra;
    }
    }
}

static double rms(const float *x, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return sqrt(s / (double)n);
}

/* Round trip on random rows: the closed-form element bound for the reference encoders, a bound on
 * each block's RMSE relative to its largest |x| for every path, and (summed over rows) a lower
 * importance-weighted error with the imatrix than without. */
static void check_round_trip(const fmt *f) {
    const int64_t rows = 48, cols = 1024;
    float *x = (float *)malloc(sizeof(float) * rows * cols), *y = (float *)malloc(sizeof(float) * rows * cols);
    float imp[1024];
    uint8_t *q = (uint8_t *)malloc(lq_row_size(f->type, cols) * rows);
    fill_rows(x, rows, cols, 1234 + f->type);
    fill_importance(imp, cols, 77);
    lq_error err;
    double werr[2] = {0, 0}, worst[2] = {0, 0};
    int64_t over_bound = 0;
    for (int with_imp = 0; with_imp < 2; with_imp++) {
        CHECK_OK(lq_quantize_rows(f->type, x, q, rows, cols, with_imp ? imp : NULL, &err), &err);
        CHECK_OK(lq_dequantize_rows(f->type, q, y, rows, cols, &err), &err);
        for (int64_t r = 0; r < rows; r++) {
            const float *xr = x + r * cols, *yr = y + r * cols;
            werr[with_imp] += lq_row_mse(xr, yr, cols, imp) / (rms(xr, cols) * rms(xr, cols));
            worst[with_imp] = fmax(worst[with_imp], worst_block_rel(f->type, xr, yr, cols));
            if (with_imp || !f->ref_bound) continue;
            for (int64_t c = 0; c < cols; c++) {
                double e = fabs((double)xr[c] - yr[c]);
                if (e > elem_bound(f->type, xr + c / 32 * 32, (int)(c % 32)) && over_bound++ < 3)
                    fprintf(stderr, "%s: row %" PRId64 " column %" PRId64 ": |%g - %g| over the bound %g\n",
                            f->name, r, c, xr[c], yr[c], elem_bound(f->type, xr + c / 32 * 32, (int)(c % 32)));
            }
        }
    }
    CHECKF(over_bound == 0, "%s: %" PRId64 " elements over the reference error bound", f->name, over_bound);
    CHECKF(worst[0] < f->blk_rmse[0], "%s: worst block RMSE/amax %.4f over %.4f", f->name, worst[0],
           f->blk_rmse[0]);
    CHECKF(worst[1] < f->blk_rmse[1], "%s imatrix: worst block RMSE/amax %.4f over %.4f", f->name,
           worst[1], f->blk_rmse[1]);
    if (f->type != LQ_TYPE_Q8_0) /* Q8_0 ignores the imatrix */
        CHECKF(werr[1] < werr[0], "%s: importance-weighted error with imatrix %.4g not below without %.4g",
               f->name, werr[1], werr[0]);
    else
        CHECKF(werr[1] == werr[0], "q8_0: the imatrix changed the output");
    fprintf(stderr, "%-7s worst block RMSE/amax %.4f (imatrix %.4f); weighted error imatrix/ref %.3f\n",
            f->name, worst[0], worst[1], werr[1] / werr[0]);
    free(x);
    free(y);
    free(q);
}

/* Zero and constant rows (with and without importance). */
static void check_special_rows(const fmt *f) {
    const float consts[] = {0.0f, 0.0123f, -0.5f, 3.0f, 1e-3f, -7.25f};
    float x[256], y[256];
    float imp[256];
    uint8_t q[1024];
    fill_importance(imp, 256, 5);
    lq_error err;
    for (size_t k = 0; k < sizeof consts / sizeof consts[0]; k++) {
        for (int i = 0; i < 256; i++) x[i] = consts[k];
        for (int with_imp = 0; with_imp < 2; with_imp++) {
            CHECK_OK(lq_quantize_rows(f->type, x, q, 1, 256, with_imp ? imp : NULL, &err), &err);
            CHECK_OK(lq_dequantize_rows(f->type, q, y, 1, 256, &err), &err);
            double bound = fabs(consts[k]) * f->const_rel + f->code_mag * FP16_ABS;
            double e = lq_row_max_err(x, y, 256);
            CHECKF(e <= bound, "%s: constant row %g (%s): max error %g over %g", f->name, consts[k],
                   with_imp ? "imatrix" : "ref", e, bound);
        }
    }
}

/* Large magnitudes: either finite output within the format's relative error, or LQ_ERR_NUMERIC
 * naming row and block — never Inf/NaN in the output. */
static void check_huge(const fmt *f) {
    const float amps[] = {1e3f, 3e4f, 1e6f, 1e9f, 1e20f, 3e38f};
    float x[2 * 256], y[2 * 256];
    uint8_t q[2048];
    uint64_t s = 3;
    lq_error err;
    for (size_t k = 0; k < sizeof amps / sizeof amps[0]; k++) {
        for (int i = 0; i < 256; i++) x[i] = 0.01f * test_rand_normal(&s);
        for (int i = 256; i < 512; i++) x[i] = amps[k] * (i % 3 ? 0.3f : -1.0f) * test_rand_uniform(&s);
        lq_status st = lq_quantize_rows(f->type, x, q, 2, 256, NULL, &err);
        if (st == LQ_OK) {
            CHECK_OK(lq_dequantize_rows(f->type, q, y, 2, 256, &err), &err);
            bool finite = true;
            for (int i = 0; i < 512; i++) finite = finite && isfinite(y[i]);
            CHECKF(finite, "%s: amplitude %g gave non-finite output", f->name, amps[k]);
            double rel = sqrt(lq_row_mse(x + 256, y + 256, 256, NULL)) / amps[k];
            CHECKF(rel < f->blk_rmse[0], "%s: amplitude %g: RMSE/amplitude %g", f->name, amps[k], rel);
        } else {
            CHECKF(st == LQ_ERR_NUMERIC && strstr(err.msg, "row 1,") &&
                       (strstr(err.msg, "block") || strstr(err.msg, "column")) && strstr(err.msg, f->name),
                   "%s: amplitude %g: status %d, message '%s'", f->name, amps[k], st, err.msg);
        }
        if (amps[k] <= 1e3f) CHECKF(st == LQ_OK, "%s: amplitude %g refused: %s", f->name, amps[k], err.msg);
        if (amps[k] >= 1e20f) CHECKF(st == LQ_ERR_NUMERIC, "%s: amplitude %g accepted", f->name, amps[k]);
    }
}

/* NaN/Inf rejected naming row and column, single- and multi-threaded. */
static void check_nonfinite(const fmt *f) {
    const int64_t rows = 64, cols = 512;
    float *x = (float *)malloc(sizeof(float) * rows * cols);
    uint8_t *q = (uint8_t *)malloc(lq_row_size(f->type, cols) * rows);
    fill_rows(x, rows, cols, 11);
    lq_error err;
    x[2 * cols + 77] = NAN;
    CHECK(lq_quantize_rows(f->type, x, q, rows, cols, NULL, &err) == LQ_ERR_NUMERIC);
    CHECKF(strstr(err.msg, "row 2,") && strstr(err.msg, "column 77") && strstr(err.msg, "NaN"),
           "%s: message '%s'", f->name, err.msg);
    x[2 * cols + 77] = 1.0f;
    x[40 * cols + 300] = -INFINITY;
    x[5 * cols + 1] = INFINITY;
    lq_status st = lq_quantize_rows_mt(f->type, x, q, rows, cols, NULL, 4, &err);
    CHECKF(st == LQ_ERR_NUMERIC && strstr(err.msg, "row 5,") && strstr(err.msg, "column 1:") &&
               strstr(err.msg, "Inf"),
           "%s: 4 threads: status %d message '%s'", f->name, st, err.msg);
    free(x);
    free(q);
}

static void check_threads(const fmt *f) {
    const int64_t rows = 37, cols = 1024;
    size_t n = lq_row_size(f->type, cols) * rows;
    float *x = (float *)malloc(sizeof(float) * rows * cols);
    float imp[1024];
    uint8_t *one = (uint8_t *)malloc(n), *many = (uint8_t *)malloc(n);
    fill_rows(x, rows, cols, 21);
    fill_importance(imp, cols, 8);
    lq_error err;
    const int threads[] = {2, 3, 8, 0};
    for (int with_imp = 0; with_imp < 2; with_imp++) {
        CHECK_OK(lq_quantize_rows(f->type, x, one, rows, cols, with_imp ? imp : NULL, &err), &err);
        for (size_t k = 0; k < sizeof threads / sizeof threads[0]; k++) {
            memset(many, 0xA5, n);
            CHECK_OK(lq_quantize_rows_mt(f->type, x, many, rows, cols, with_imp ? imp : NULL, threads[k], &err),
                     &err);
            CHECKF(memcmp(one, many, n) == 0, "%s: %d threads differ from one", f->name, threads[k]);
        }
    }
    free(x);
    free(one);
    free(many);
}

static void check_grid_api_all(const fmt *f, const float *input, const float *imatrix) {
    const int64_t rows = 8, cols = 1024;
    float *x = (float *)malloc(sizeof(float) * rows * cols);
    float imp[1024];
    fill_rows(x, rows, cols, 4242);
    fill_importance(imp, cols, 9);
    check_grid_api(f, x, rows, cols, NULL);
    check_grid_api(f, x, rows, cols, imp);
    check_grid_api(f, input + 31 * COLS, 1, COLS, NULL);
    check_grid_api(f, input + 31 * COLS, 1, COLS, imatrix);
    free(x);
}

/* Random block bytes decode to finite values or are refused as malformed (Inf/NaN scales). */
static void check_decode_random_bytes(const fmt *f) {
    uint8_t blocks[64 * 136];
    float y[64 * 256];
    uint64_t s = 555 + f->type;
    int refused = 0, bad = 0;
    for (int trial = 0; trial < 50; trial++) {
        for (size_t i = 0; i < sizeof blocks; i++) blocks[i] = (uint8_t)test_rand_u64(&s);
        int bs = block_size(f->type);
        int64_t n_blocks = (int64_t)(sizeof blocks / block_bytes(f->type));
        lq_error err;
        lq_status st = lq_dequantize_rows(f->type, blocks, y, 1, n_blocks * bs, &err);
        if (st == LQ_ERR_FORMAT) {
            refused++;
            continue;
        }
        for (int64_t i = 0; i < n_blocks * bs; i++) bad += st != LQ_OK || !isfinite(y[i]);
    }
    CHECKF(bad == 0, "%s: random blocks gave %d non-finite values", f->name, bad);
    CHECKF(refused > 0, "%s: no random block had an Inf/NaN scale (1/32 of fp16 patterns)", f->name);
}

/* Argument errors of the row API. */
static void check_api_errors(void) {
    float x[4096] = {0}, y[4096];
    uint8_t q[4096];
    lq_error err;
    CHECK(lq_quantize_rows(LQ_TYPE_Q4_0, x, q, 2, 48, NULL, &err) == LQ_ERR_INVALID);
    CHECKF(strstr(err.msg, "q4_0") && strstr(err.msg, "48"), "message '%s'", err.msg);
    CHECK(lq_quantize_rows(LQ_TYPE_IQ4_XS, x, q, 1, 288, NULL, &err) == LQ_ERR_INVALID);
    CHECKF(strstr(err.msg, "iq4_xs") && strstr(err.msg, "288"), "message '%s'", err.msg);
    CHECK(lq_dequantize_rows(LQ_TYPE_Q5_1, q, y, 1, 100, &err) == LQ_ERR_INVALID);
    CHECK(lq_quantize_rows(LQ_TYPE_IQ2_XXS, x, q, 1, 256, NULL, &err) == LQ_ERR_UNSUPPORTED);
    CHECKF(strstr(err.msg, "iq2_xxs") != NULL, "message '%s'", err.msg);
    CHECK(lq_dequantize_rows(LQ_TYPE_TQ1_0, q, y, 1, 256, &err) == LQ_ERR_UNSUPPORTED);
    CHECK(lq_quantize_rows((lq_type)4, x, q, 1, 32, NULL, &err) == LQ_ERR_INVALID);
    CHECK(lq_quantize_rows(LQ_TYPE_Q8_0, x, q, -1, 32, NULL, &err) == LQ_ERR_INVALID);
    float bad_imp[32] = {0};
    bad_imp[3] = NAN;
    CHECK(lq_quantize_rows(LQ_TYPE_Q4_0, x, q, 1, 32, bad_imp, &err) == LQ_ERR_NUMERIC);
    CHECKF(strstr(err.msg, "column 3") != NULL, "message '%s'", err.msg);
    bad_imp[3] = -1.0f;
    CHECK(lq_quantize_rows(LQ_TYPE_Q4_0, x, q, 1, 32, bad_imp, &err) == LQ_ERR_INVALID);
    /* zero rows is fine and writes nothing */
    CHECK(lq_quantize_rows(LQ_TYPE_Q4_0, NULL, NULL, 0, 32, NULL, &err) == LQ_OK);
    /* a stored Inf scale is a malformed block */
    lq_block_q8_0 blk;
    memset(&blk, 0, sizeof blk);
    blk.d = 0x7C00; /* Inf · 0 = NaN at column 0 */
    CHECK(lq_dequantize_rows(LQ_TYPE_Q8_0, &blk, y, 1, 32, &err) == LQ_ERR_FORMAT);
    CHECKF(strstr(err.msg, "column 0") && strstr(err.msg, "NaN"), "message '%s'", err.msg);
    /* F16: overflow is refused, ordinary values convert */
    x[0] = 1e6f;
    uint16_t h[32];
    CHECK(lq_quantize_rows(LQ_TYPE_F16, x, h, 1, 32, NULL, &err) == LQ_ERR_NUMERIC);
    x[0] = 1.5f;
    CHECK_OK(lq_quantize_rows(LQ_TYPE_F16, x, h, 1, 32, NULL, &err), &err);
    CHECK_OK(lq_dequantize_rows(LQ_TYPE_F16, h, y, 1, 32, &err), &err);
    CHECK(y[0] == 1.5f && y[1] == 0.0f);
    CHECK_OK(lq_quantize_rows(LQ_TYPE_BF16, x, h, 1, 32, NULL, &err), &err);
    CHECK_OK(lq_dequantize_rows(LQ_TYPE_BF16, h, y, 1, 32, &err), &err);
    CHECK(y[0] == 1.5f);
    /* the registry */
    for (int i = 0; i < N_FORMATS; i++) {
        const lq_codec *c = lq_codec_get(formats[i].type);
        CHECK(c && c->type == formats[i].type && c->block_size == block_size(formats[i].type) &&
              c->block_bytes == block_bytes(formats[i].type));
    }
    CHECK(lq_codec_get(LQ_TYPE_IQ2_XXS) == NULL && lq_codec_get(LQ_TYPE_F16) == NULL);
    /* error helpers */
    float a[3] = {1, 2, 3}, b[3] = {1, 4, 0}, w[3] = {1, 1, 2};
    CHECK(fabs(lq_row_mse(a, b, 3, NULL) - 13.0 / 3) < 1e-12);
    CHECK(fabs(lq_row_mse(a, b, 3, w) - 22.0 / 4) < 1e-12);
    CHECK(lq_row_max_err(a, b, 3) == 3.0);
}

int main(void) {
    check_api_errors();
    check_searches();
    for (int i = 0; i < N_FORMATS; i++) {
        check_round_trip(&formats[i]);
        check_special_rows(&formats[i]);
        check_huge(&formats[i]);
        check_nonfinite(&formats[i]);
        check_threads(&formats[i]);
        check_round_out_of_range(&formats[i]);
        check_decode_random_bytes(&formats[i]);
    }
    float *input = (float *)load_exact("testvectors/quants/input.f32", sizeof(float) * ROWS * COLS);
    float *imatrix = (float *)load_exact("testvectors/quants/imatrix.f32", sizeof(float) * COLS);
    for (int i = 0; i < N_FORMATS; i++) {
        check_vectors(&formats[i], input, imatrix, false);
        check_vectors(&formats[i], input, imatrix, true);
        check_grid_api_all(&formats[i], input, imatrix);
    }
    free(input);
    free(imatrix);
    TEST_DONE();
}
