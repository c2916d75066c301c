/* test_kernels.c — CPU kernels: the scalar reference against llama.cpp's test vectors, and
 * every SIMD path (forced with lq_kernels_set_simd) against the scalar reference.
 *
 * What must hold:
 *  - dequantization: bit-exact with llama.cpp's .dequant.f32 (scalar) and with the scalar
 *    path (SIMD), for every type, on the test vectors and on random blocks;
 *  - activation quantization (Q8_0, Q8_1, Q8_K): byte-exact with llama.cpp's reference files
 *    and identical on every path;
 *  - quantized dot products: the integer part of every block is exact, so when every float
 *    operation is exact too (power-of-two scales, small codes) all paths return the same bits;
 *    with arbitrary scales they may differ only by float summation order (bound below);
 *  - bulk fp16/bf16 conversion: bit-exact with the scalar reference for every fp16/bf16 value
 *    and for special fp32 inputs (NaN, Inf, subnormals, rounding ties). */
#include "test.h"

#include <float.h>

/* Types with kernels, their fp16 fields (byte offsets, -1 = none) and sane scale ranges. */
typedef struct ktype {
    lq_type type;
    int off_d, off_m; /* fp16 scale and min/dmin */
} ktype;

static const ktype ktypes[] = {
    {LQ_TYPE_Q4_0, 0, -1},   {LQ_TYPE_Q4_1, 0, 2},   {LQ_TYPE_Q5_0, 0, -1},
    {LQ_TYPE_Q5_1, 0, 2},    {LQ_TYPE_Q8_0, 0, -1},  {LQ_TYPE_IQ4_NL, 0, -1},
    {LQ_TYPE_Q2_K, 80, 82},  {LQ_TYPE_Q3_K, 108, -1}, {LQ_TYPE_Q4_K, 0, 2},
    {LQ_TYPE_Q5_K, 0, 2},    {LQ_TYPE_Q6_K, 208, -1}, {LQ_TYPE_IQ4_XS, 0, -1},
    {LQ_TYPE_F32, -1, -1},   {LQ_TYPE_F16, -1, -1},  {LQ_TYPE_BF16, -1, -1},
};
#define N_KTYPES (int)(sizeof ktypes / sizeof ktypes[0])

static const char *simd_names[] = {"scalar", "avx2", "avx512"};
static lq_simd max_simd;

/* Sets a path; false (with a message) when the CPU lacks it. */
static bool use_simd(lq_simd level) {
    if (level > max_simd) {
        static bool told[3];
        if (!told[level]) fprintf(stderr, "note: CPU lacks %s, path not tested\n", simd_names[level]);
        told[level] = true;
        return false;
    }
    CHECK(lq_kernels_set_simd(level) == level);
    return true;
}

static const char *tname(lq_type t) { return lq_type_get(t)->name; }

/* ------------------------------------------------------------------------------------- */
/* llama.cpp test vectors                                                                */
/* ------------------------------------------------------------------------------------- */
#define TV_ROWS 32
#define TV_COLS 4096

/* The shared vectors as found here are damaged: the files are sparse and most of their
 * content reads as zeros (input.f32 rows 1-30, every .dequant.f32, q8_K.ref.bin), although the
 * README says row 1 is the constant 0.0123, row 2 the constant -0.5, ... A row is trusted only
 * when its content is consistent with the README; the rest is reported and skipped. */
static bool all_zero(const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i]) return false;
    return true;
}

/* All values ±0: a decoded row of real data never is (signed zeros are what a hole decodes to). */
static bool all_zero_f32(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (x[i] != 0.0f) return false;
    return true;
}

static float *tv_input;             /* 32 x 4096 */
static bool tv_row_ok[TV_ROWS];     /* input row holds data (row 0 is zeros by design) */

static bool load_tv_input(void) {
    size_t nin = 0;
    tv_input = test_read_file(test_shared_path("testvectors/quants/input.f32"), &nin);
    CHECK(tv_input && nin == sizeof(float) * TV_ROWS * TV_COLS);
    if (!tv_input || nin != sizeof(float) * TV_ROWS * TV_COLS) return false;
    int n_ok = 0;
    for (int r = 0; r < TV_ROWS; r++) {
        tv_row_ok[r] = r == 0 || !all_zero(tv_input + (size_t)r * TV_COLS, sizeof(float) * TV_COLS);
        n_ok += tv_row_ok[r];
    }
    if (n_ok < TV_ROWS)
        fprintf(stderr, "WARNING: testvectors/quants/input.f32: %d of 32 rows are zero-filled holes "
                        "(README promises data): those rows are skipped\n", TV_ROWS - n_ok);
    return true;
}

/* Dequantization of llama.cpp's blocks. Bit-exact against .dequant.f32 where that file holds
 * data; for every trusted row also a reconstruction check against the input: a decoder that
 * reads the layout wrongly gives relative RMS errors near or above 1, while a correct one stays
 * under a loose ceiling set by the format's bits per weight. */
static double rel_rms_ceiling(lq_type t) {
    double bpw = lq_type_get(t)->bpw;
    return bpw > 8 ? 0.03 : bpw > 6 ? 0.06 : bpw > 5 ? 0.1 : bpw > 4 ? 0.2 : bpw > 3 ? 0.3 : 0.5;
}

static void test_vectors_dequant(void) {
    static const lq_type types[] = {LQ_TYPE_Q4_0, LQ_TYPE_Q4_1, LQ_TYPE_Q5_0, LQ_TYPE_Q5_1,
                                    LQ_TYPE_Q8_0, LQ_TYPE_Q2_K, LQ_TYPE_Q3_K, LQ_TYPE_Q4_K,
                                    LQ_TYPE_Q5_K, LQ_TYPE_Q6_K, LQ_TYPE_IQ4_NL, LQ_TYPE_IQ4_XS};
    static const char *variants[] = {"ref", "imatrix"};
    float *out = malloc(sizeof(float) * TV_COLS);
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        for (int v = 0; v < 2; v++) {
            char rel[256], rel_deq[256];
            snprintf(rel, sizeof rel, "testvectors/quants/%s.%s.bin", tname(types[ti]), variants[v]);
            snprintf(rel_deq, sizeof rel_deq, "testvectors/quants/%s.%s.dequant.f32",
                     tname(types[ti]), variants[v]);
            size_t nq = 0, nd = 0;
            uint8_t *q = test_read_file(test_shared_path(rel), &nq);
            float *want = test_read_file(test_shared_path(rel_deq), &nd);
            size_t row_bytes = lq_row_size(types[ti], TV_COLS);
            CHECK(q && want && nq == row_bytes * TV_ROWS && nd == sizeof(float) * TV_ROWS * TV_COLS);
            if (!q || !want || nq != row_bytes * TV_ROWS || nd != sizeof(float) * TV_ROWS * TV_COLS) {
                free(q);
                free(want);
                continue;
            }
            /* A row of the expected output is usable when neither file has a hole there: the
             * input row is intact, the encoded row is not all zero bytes, and the decoded row is
             * not all zeros (an intact input row with data never decodes to all ±0). A file
             * that is zero throughout is a hole as a whole. */
            bool whole_hole = all_zero_f32(want, nd / sizeof(float));
            bool deq_ok[TV_ROWS], bin_ok[TV_ROWS];
            int n_deq_ok = 0;
            for (int r = 0; r < TV_ROWS; r++) {
                bin_ok[r] = tv_row_ok[r] && !all_zero(q + r * row_bytes, row_bytes);
                deq_ok[r] = bin_ok[r] && !whole_hole &&
                            !all_zero_f32(want + (size_t)r * TV_COLS, TV_COLS);
                n_deq_ok += deq_ok[r];
            }
            if (n_deq_ok == 0)
                fprintf(stderr, "WARNING: %s holds no usable row (zero-filled): bit-exact dequantization "
                                "against llama.cpp NOT verified for %s %s\n", rel_deq, tname(types[ti]), variants[v]);
            for (int level = 0; level <= 2; level++) {
                if (!use_simd((lq_simd)level)) continue;
                int bad_rows = 0;
                double worst = 0.0;
                for (int r = 0; r < TV_ROWS; r++) {
                    if (!bin_ok[r]) continue;
                    lq_kernel_dequant_row(types[ti], q + r * row_bytes, out, TV_COLS);
                    if (deq_ok[r] && memcmp(out, want + (size_t)r * TV_COLS, sizeof(float) * TV_COLS)) bad_rows++;
                    const float *x = tv_input + (size_t)r * TV_COLS;
                    double e2 = 0.0, x2 = 0.0, amax = 0.0;
                    for (int i = 0; i < TV_COLS; i++) {
                        e2 += ((double)out[i] - x[i]) * ((double)out[i] - x[i]);
                        x2 += (double)x[i] * x[i];
                        amax = fmax(amax, fabs((double)x[i]));
                    }
                    /* Rows of tiny values (the README's row 4, ~1e-7) put block scales in fp16's
                     * subnormal range or below, where the relative error is unbounded by design;
                     * the ceiling only applies to rows whose scales are normal fp16 numbers. */
                    bool normal_scales = amax >= 1e-3;
                    if (normal_scales && x2 > 0.0 && sqrt(e2 / x2) > worst) worst = sqrt(e2 / x2);
                }
                CHECKF(bad_rows == 0, "%s %s dequant (%s): %d rows differ from llama.cpp",
                       tname(types[ti]), variants[v], simd_names[level], bad_rows);
                CHECKF(worst <= rel_rms_ceiling(types[ti]), "%s %s dequant (%s): relative RMS error %.4f "
                       "of llama.cpp's encoding exceeds %.2f", tname(types[ti]), variants[v],
                       simd_names[level], worst, rel_rms_ceiling(types[ti]));
                if (level == 0)
                    fprintf(stderr, "%s %s: llama.cpp blocks decode with relative RMS error %.4f\n",
                            tname(types[ti]), variants[v], worst);
            }
            free(q);
            free(want);
        }
    }
    free(out);
}

/* Q8_0 and Q8_K activation quantization of input.f32 against llama.cpp's reference bytes
 * (q8_0.ref.bin is Q8_0's reference quantizer, the same function llama.cpp uses for Q8_0
 * activations). Rows whose expected bytes are a hole are skipped with a warning. */
static void test_vectors_act(void) {
    static const lq_type acts[] = {LQ_TYPE_Q8_0, LQ_TYPE_Q8_K};
    for (int a = 0; a < 2; a++) {
        char rel[256];
        snprintf(rel, sizeof rel, "testvectors/quants/%s.ref.bin", tname(acts[a]));
        size_t nref = 0;
        uint8_t *want = test_read_file(test_shared_path(rel), &nref);
        size_t row_bytes = lq_row_size(acts[a], TV_COLS);
        CHECK(want && nref == row_bytes * TV_ROWS);
        if (!want || nref != row_bytes * TV_ROWS) {
            free(want);
            continue;
        }
        bool usable[TV_ROWS];
        int n_data_rows = 0;
        for (int r = 0; r < TV_ROWS; r++) {
            usable[r] = tv_row_ok[r] && !all_zero(want + r * row_bytes, row_bytes);
            n_data_rows += usable[r];
        }
        if (n_data_rows == 0)
            fprintf(stderr, "WARNING: %s holds no usable row: %s byte-exactness against llama.cpp NOT verified\n",
                    rel, tname(acts[a]));
        else
            fprintf(stderr, "%s: %d rows with data checked byte for byte\n", rel, n_data_rows);
        uint8_t *got = malloc(row_bytes);
        for (int level = 0; level <= 2; level++) {
            if (!use_simd((lq_simd)level)) continue;
            int bad_rows = 0;
            for (int r = 0; r < TV_ROWS; r++) {
                if (!usable[r]) continue;
                memset(got, 0xAB, row_bytes);
                lq_kernel_quantize_act(acts[a], tv_input + (size_t)r * TV_COLS, got, TV_COLS);
                if (memcmp(got, want + r * row_bytes, row_bytes)) bad_rows++;
            }
            CHECKF(bad_rows == 0, "%s activation quantization (%s): %d rows differ",
                   tname(acts[a]), simd_names[level], bad_rows);
        }
        free(got);
        free(want);
    }
}

/* Q8_K's defining properties on the input rows (independent of the reference file): the
 * first element of largest magnitude maps to -127, d = max / -127, |q| <= 127, bsums are the
 * sums of 16 codes, and d·q reconstructs x within d/2 (plus float rounding). */
static void test_q8_K_properties(const float *x, int64_t n) {
    size_t bytes = lq_row_size(LQ_TYPE_Q8_K, n);
    uint8_t *a = malloc(bytes);
    lq_kernels_set_simd(LQ_SIMD_SCALAR);
    lq_kernel_quantize_act(LQ_TYPE_Q8_K, x, a, n);
    int bad = 0;
    for (int64_t b = 0; b < n / 256; b++) {
        const uint8_t *blk = a + b * 292;
        const float *xb = x + b * 256;
        float d, amax = 0.0f, max = 0.0f;
        memcpy(&d, blk, 4);
        for (int j = 0; j < 256; j++)
            if (fabsf(xb[j]) > amax) {
                amax = fabsf(xb[j]);
                max = xb[j];
            }
        int imax = -1;
        for (int j = 0; j < 256 && imax < 0; j++)
            if (xb[j] == max) imax = j;
        if (amax == 0.0f) {
            bad += !all_zero(blk, 292);
            continue;
        }
        bad += (int8_t)blk[4 + imax] != -127;
        bad += fabsf(d - max / -127.0f) > 1e-6f * fabsf(d);
        for (int s = 0; s < 16; s++) {
            int sum = 0;
            for (int j = 0; j < 16; j++) sum += (int8_t)blk[4 + 16 * s + j];
            int16_t bs;
            memcpy(&bs, blk + 260 + 2 * s, 2);
            bad += bs != sum;
        }
        for (int j = 0; j < 256; j++) {
            int8_t q = (int8_t)blk[4 + j];
            bad += q == -128 || fabsf(d * q - xb[j]) > 0.5f * fabsf(d) * 1.0001f;
        }
    }
    CHECKF(bad == 0, "q8_K properties: %d violations", bad);
    free(a);
}

/* ------------------------------------------------------------------------------------- */
/* Random blocks                                                                          */
/* ------------------------------------------------------------------------------------- */
static uint64_t rng = 0x9E3779B97F4A7C15ull;

static void put_half(uint8_t *p, uint16_t h) { memcpy(p, &h, 2); }

/* A sane fp16 scale: ±[2^-12, 2^-1) (exact: 2^-1 or 2^-2). */
static uint16_t rand_scale(bool exact, bool allow_negative) {
    float v;
    if (exact)
        v = ldexpf(1.0f, -1 - (int)(test_rand_u64(&rng) % 2));
    else
        v = ldexpf(1.0f + test_rand_uniform(&rng), -2 - (int)(test_rand_u64(&rng) % 11));
    if (allow_negative && (test_rand_u64(&rng) & 1)) v = -v;
    return lq_fp32_to_fp16(v);
}

/* n elements of random weights of type kt: random bytes with sane scales; plain types get
 * random values in [-2, 2] (exact: small integers). */
static void *rand_weights(const ktype *kt, int64_t n, bool exact) {
    const lq_type_traits *tr = lq_type_get(kt->type);
    size_t bytes = lq_row_size(kt->type, n);
    uint8_t *w = malloc(bytes);
    for (size_t i = 0; i < bytes; i++) w[i] = (uint8_t)test_rand_u64(&rng);
    if (!tr->is_quantized) {
        for (int64_t i = 0; i < n; i++) {
            float v = exact ? (float)((int)(test_rand_u64(&rng) % 9) - 4)
                            : 4.0f * test_rand_uniform(&rng) - 2.0f;
            if (kt->type == LQ_TYPE_F32) memcpy(w + 4 * i, &v, 4);
            else if (kt->type == LQ_TYPE_F16) put_half(w + 2 * i, lq_fp32_to_fp16(v));
            else put_half(w + 2 * i, lq_fp32_to_bf16(v));
        }
        return w;
    }
    for (int64_t b = 0; b < n / tr->block_size; b++) {
        uint8_t *blk = w + b * tr->block_bytes;
        put_half(blk + kt->off_d, rand_scale(exact, !exact));
        if (kt->off_m >= 0) put_half(blk + kt->off_m, rand_scale(exact, kt->type == LQ_TYPE_Q4_1 || kt->type == LQ_TYPE_Q5_1));
        if (kt->type == LQ_TYPE_Q8_0 && !exact) { /* the decoder accepts -128 too */
            if (b % 3 == 0) blk[2 + test_rand_u64(&rng) % 32] = 0x80;
        }
    }
    return w;
}

/* Activations: random floats (Gaussian, occasional outliers); exact mode builds quantized
 * activation blocks directly with power-of-two scales and small codes. */
static float *rand_floats(int64_t n) {
    float *x = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        x[i] = test_rand_normal(&rng);
        if (test_rand_u64(&rng) % 61 == 0) x[i] *= 20.0f;
    }
    return x;
}

static void *exact_acts(lq_type act, int64_t n, float *as_float) {
    size_t bytes = lq_row_size(act, n);
    uint8_t *a = calloc(1, bytes);
    const lq_type_traits *tr = lq_type_get(act);
    for (int64_t b = 0; b < n / tr->block_size; b++) {
        uint8_t *blk = a + b * tr->block_bytes;
        float d = ldexpf(1.0f, (int)(test_rand_u64(&rng) % 3) - 1);
        int8_t q[256];
        int sum = 0;
        for (int j = 0; j < tr->block_size; j++) {
            q[j] = (int8_t)((int)(test_rand_u64(&rng) % 7) - 3);
            sum += q[j];
            as_float[b * tr->block_size + j] = d * q[j];
        }
        if (act == LQ_TYPE_Q8_K) {
            memcpy(blk, &d, 4);
            memcpy(blk + 4, q, 256);
            for (int s = 0; s < 16; s++) {
                int16_t bs = 0;
                for (int j = 0; j < 16; j++) bs = (int16_t)(bs + q[16 * s + j]);
                memcpy(blk + 260 + 2 * s, &bs, 2);
            }
        } else {
            put_half(blk, lq_fp32_to_fp16(d));
            int off = act == LQ_TYPE_Q8_1 ? 4 : 2;
            if (act == LQ_TYPE_Q8_1) put_half(blk + 2, lq_fp32_to_fp16(d * (float)sum));
            memcpy(blk + off, q, 32);
        }
    }
    return a;
}

/* Value of element i of an activation row (for the double-precision cross-check). */
static double act_value(lq_type act, const void *a, int64_t i) {
    const uint8_t *p = a;
    if (act == LQ_TYPE_F32) { float v; memcpy(&v, p + 4 * i, 4); return v; }
    if (act == LQ_TYPE_F16 || act == LQ_TYPE_BF16) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        return act == LQ_TYPE_F16 ? lq_fp16_to_fp32(h) : lq_bf16_to_fp32(h);
    }
    const lq_type_traits *tr = lq_type_get(act);
    const uint8_t *blk = p + (i / tr->block_size) * tr->block_bytes;
    int j = (int)(i % tr->block_size);
    if (act == LQ_TYPE_Q8_K) {
        float d;
        memcpy(&d, blk, 4);
        return (double)d * (int8_t)blk[4 + j];
    }
    uint16_t dh;
    memcpy(&dh, blk, 2);
    int off = act == LQ_TYPE_Q8_1 ? 4 : 2;
    return (double)lq_fp16_to_fp32(dh) * (int8_t)blk[off + j];
}

/* Σ m·s over blocks for Q4_1/Q5_1 × Q8_1: llama.cpp uses the stored s (= fp16(d·Σq)) for
 * the min term instead of recomputing it from the codes. */
static double min_term(const ktype *kt, const void *w, const void *a, int64_t n, double *mag) {
    double sum = 0.0;
    if (kt->type != LQ_TYPE_Q4_1 && kt->type != LQ_TYPE_Q5_1) return 0.0;
    size_t wb = lq_type_get(kt->type)->block_bytes;
    for (int64_t b = 0; b < n / 32; b++) {
        uint16_t m, s, d;
        memcpy(&d, (const uint8_t *)a + 36 * b, 2);
        memcpy(&s, (const uint8_t *)a + 36 * b + 2, 2);
        memcpy(&m, (const uint8_t *)w + wb * b + 2, 2);
        double t = (double)lq_fp16_to_fp32(m) * lq_fp16_to_fp32(s);
        /* remove what the element-wise sum counted for the min: m · d · Σq */
        double qsum = 0.0;
        for (int j = 0; j < 32; j++) qsum += (int8_t)((const uint8_t *)a)[36 * b + 4 + j];
        t -= (double)lq_fp16_to_fp32(m) * lq_fp16_to_fp32(d) * qsum;
        sum += t;
        *mag += fabs(t);
    }
    return sum;
}

/* Worst-case bound of float recursive summation of `count` terms (γ_count ≈ count·u with
 * u = FLT_EPSILON/2), doubled, plus a few roundings per term (scale products, int→float),
 * relative to the sum of absolute values of the terms. */
static double sum_tolerance(int64_t count, double magnitude) {
    return (double)(count + 8) * FLT_EPSILON * magnitude + 1e-30;
}

/* One row of weights of type kt with n elements: every path against the scalar reference. */
static void check_random_row(const ktype *kt, int64_t n, bool exact) {
    const lq_type_traits *tr = lq_type_get(kt->type);
    lq_type act = lq_kernel_vec_dot_type(kt->type);
    void *w = rand_weights(kt, n, exact);
    float *x = rand_floats(n);
    float *ref_deq = malloc(sizeof(float) * (size_t)n), *deq = malloc(sizeof(float) * (size_t)n);
    float *x_exact = malloc(sizeof(float) * (size_t)n);
    size_t act_bytes = lq_row_size(act, n);
    void *a_ref = malloc(act_bytes), *a = malloc(act_bytes);

    lq_kernels_set_simd(LQ_SIMD_SCALAR);
    lq_kernel_dequant_row(kt->type, w, ref_deq, n);
    if (exact && tr->is_quantized) {
        free(a_ref);
        a_ref = exact_acts(act, n, x_exact);
        memcpy(x, x_exact, sizeof(float) * (size_t)n);
    } else {
        if (exact) /* plain types: small integers, exact in every format and every sum */
            for (int64_t i = 0; i < n; i++) x[i] = (float)((int)(test_rand_u64(&rng) % 7) - 3);
        lq_kernel_quantize_act(act, x, a_ref, n);
    }
    float ref_dotf = lq_kernel_dot_f32(kt->type, w, x, n);
    float ref_dotq = lq_kernel_dot_q(kt->type, w, a_ref, n);

    /* The scalar reference against double precision: the integer formulation of dot_q must
     * be the dot product of the dequantized values. */
    double want_f = 0.0, mag_f = 0.0, want_q = 0.0, mag_q = 0.0;
    for (int64_t i = 0; i < n; i++) {
        want_f += (double)ref_deq[i] * x[i];
        mag_f += fabs((double)ref_deq[i] * x[i]);
        double av = act_value(act, a_ref, i);
        want_q += (double)ref_deq[i] * av;
        mag_q += fabs((double)ref_deq[i] * av);
    }
    int64_t nb = n / tr->block_size;
    if (tr->is_quantized && (kt->type == LQ_TYPE_Q4_1 || kt->type == LQ_TYPE_Q5_1))
        want_q += min_term(kt, w, a_ref, n, &mag_q);
    CHECKF(fabs(ref_dotf - want_f) <= sum_tolerance(n, mag_f),
           "%s n=%" PRId64 " scalar dot_f32 %.9g vs double %.9g", tname(kt->type), n, ref_dotf, want_f);
    /* dequantized weights carry their own rounding (d·sc, then ·q): a few u per term */
    CHECKF(fabs(ref_dotq - want_q) <= sum_tolerance(tr->is_quantized ? nb + 8 : n, mag_q),
           "%s n=%" PRId64 " scalar dot_q %.9g vs double %.9g", tname(kt->type), n, ref_dotq, want_q);

    for (int level = 1; level <= 2; level++) {
        if (!use_simd((lq_simd)level)) continue;
        lq_kernel_dequant_row(kt->type, w, deq, n);
        CHECKF(!memcmp(deq, ref_deq, sizeof(float) * (size_t)n), "%s n=%" PRId64 " dequant %s differs from scalar",
               tname(kt->type), n, simd_names[level]);
        if (!(exact && tr->is_quantized)) {
            memset(a, 0xCD, act_bytes);
            lq_kernel_quantize_act(act, x, a, n);
            CHECKF(!memcmp(a, a_ref, act_bytes), "%s activations (%s) differ from scalar", tname(act),
                   simd_names[level]);
        }
        float dotf = lq_kernel_dot_f32(kt->type, w, x, n);
        float dotq = lq_kernel_dot_q(kt->type, w, a_ref, n);
        if (exact) { /* every float operation exact: identical on every path */
            CHECKF(dotf == ref_dotf, "%s n=%" PRId64 " exact dot_f32 %s %.9g vs scalar %.9g",
                   tname(kt->type), n, simd_names[level], dotf, ref_dotf);
            CHECKF(dotq == ref_dotq, "%s n=%" PRId64 " exact dot_q %s %.9g vs scalar %.9g",
                   tname(kt->type), n, simd_names[level], dotq, ref_dotq);
        } else {
            CHECKF(fabs(dotf - ref_dotf) <= 2 * sum_tolerance(n, mag_f),
                   "%s n=%" PRId64 " dot_f32 %s %.9g vs scalar %.9g", tname(kt->type), n,
                   simd_names[level], dotf, ref_dotf);
            int64_t count = tr->is_quantized ? nb : n;
            CHECKF(fabs(dotq - ref_dotq) <= 2 * sum_tolerance(count, mag_q),
                   "%s n=%" PRId64 " dot_q %s %.9g vs scalar %.9g (tol %.3g)", tname(kt->type), n,
                   simd_names[level], dotq, ref_dotq, 2 * sum_tolerance(count, mag_q));
        }
    }
    free(w);
    free(x);
    free(x_exact);
    free(ref_deq);
    free(deq);
    free(a_ref);
    free(a);
}

static void test_random_rows(void) {
    /* exact mode keeps rows short so that every partial sum stays below 2^24 units */
    static const int legacy_blocks[] = {1, 2, 3, 5, 7, 9, 17, 33, 128};
    static const int k_blocks[] = {1, 2, 3, 5, 16};
    static const int n_legacy[2] = {9, 7}, n_k[2] = {5, 3};
    static const int plain_n[] = {1, 7, 16, 31, 64, 100, 257, 4096};
    for (int k = 0; k < N_KTYPES; k++) {
        const lq_type_traits *tr = lq_type_get(ktypes[k].type);
        for (int exact = 0; exact <= 1; exact++) {
            if (!tr->is_quantized) {
                for (size_t i = 0; i < sizeof plain_n / sizeof plain_n[0]; i++)
                    check_random_row(&ktypes[k], plain_n[i], exact);
            } else if (tr->block_size == 32) {
                for (int i = 0; i < n_legacy[exact]; i++)
                    check_random_row(&ktypes[k], 32 * legacy_blocks[i], exact);
            } else {
                for (int i = 0; i < n_k[exact]; i++)
                    check_random_row(&ktypes[k], 256 * k_blocks[i], exact);
            }
        }
    }
}

/* The kernels' decoders against the codecs' own (libquant/codecs, written separately from the
 * same layouts) through lq_dequantize_rows, on random blocks: with llama.cpp's dequantized
 * vectors damaged here, two independent readings of the layouts agreeing bit for bit is the
 * strongest check available. Formats whose codec is not built yet are reported. */
static void test_against_codecs(void) {
    for (int k = 0; k < N_KTYPES; k++) {
        const lq_type_traits *tr = lq_type_get(ktypes[k].type);
        if (!tr->is_quantized) continue;
        int64_t n = 256 * 4, rows = 3;
        size_t row_bytes = lq_row_size(ktypes[k].type, n);
        uint8_t *w = malloc(row_bytes * (size_t)rows);
        for (int64_t r = 0; r < rows; r++) {
            void *row = rand_weights(&ktypes[k], n, false);
            memcpy(w + (size_t)r * row_bytes, row, row_bytes);
            free(row);
        }
        float *want = malloc(sizeof(float) * (size_t)(n * rows)), *got = malloc(sizeof(float) * (size_t)n);
        lq_error err;
        lq_error_clear(&err);
        if (lq_dequantize_rows(ktypes[k].type, w, want, rows, n, &err) != LQ_OK) {
            fprintf(stderr, "note: %s: codec decoder unavailable (%s): not cross-checked\n", tname(ktypes[k].type), err.msg);
        } else {
            lq_kernels_set_simd(LQ_SIMD_SCALAR);
            int bad = 0;
            for (int64_t r = 0; r < rows; r++) {
                lq_kernel_dequant_row(ktypes[k].type, w + (size_t)r * row_bytes, got, n);
                bad += memcmp(got, want + r * n, sizeof(float) * (size_t)n) != 0;
            }
            CHECKF(bad == 0, "%s: kernel dequantization differs from the codec's decoder in %d of %d rows",
                   tname(ktypes[k].type), bad, (int)rows);
        }
        free(w);
        free(want);
        free(got);
    }
}

/* Activation quantizers against the codecs' row quantizers for the same formats (Q8_0 is
 * llama.cpp's reference quantizer for weights and activations alike; Q8_K's codec implements
 * quantize_row_q8_K_ref): q8_K.ref.bin is damaged here, so this is its independent check. */
static void test_act_against_codecs(void) {
    static const lq_type acts[] = {LQ_TYPE_Q8_0, LQ_TYPE_Q8_K};
    const int64_t n = 4096, rows = 4;
    float *x = malloc(sizeof(float) * (size_t)(n * rows));
    for (int64_t i = 0; i < n * rows; i++) {
        x[i] = test_rand_normal(&rng) * 0.02f;
        if (i % 997 == 0) x[i] *= 30.0f;
        if (i / n == 3) x[i] = (float)((int)(i % 255) - 127) / 4.0f; /* ties after scaling */
    }
    for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++) {
        size_t row_bytes = lq_row_size(acts[a], n);
        uint8_t *want = malloc(row_bytes * (size_t)rows), *got = malloc(row_bytes);
        lq_error err;
        lq_error_clear(&err);
        if (lq_quantize_rows(acts[a], x, want, rows, n, NULL, &err) != LQ_OK) {
            fprintf(stderr, "note: %s: codec quantizer unavailable (%s): not cross-checked\n", tname(acts[a]), err.msg);
        } else {
            for (int level = 0; level <= 2; level++) {
                if (!use_simd((lq_simd)level)) continue;
                int bad = 0;
                for (int64_t r = 0; r < rows; r++) {
                    lq_kernel_quantize_act(acts[a], x + r * n, got, n);
                    bad += memcmp(got, want + (size_t)r * row_bytes, row_bytes) != 0;
                }
                CHECKF(bad == 0, "%s activations (%s) differ from the codec's quantizer in %d of %d rows",
                       tname(acts[a]), simd_names[level], bad, (int)rows);
            }
        }
        free(want);
        free(got);
    }
    free(x);
}

/* lq_kernel_matvec_q: every row bit-identical to lq_kernel_dot_q on the same path, for odd
 * row counts (the two-row kernels leave one row over), 1 and 2 threads, rows with a tail
 * shorter than the 512-bit kernels' 8-block step. */
static void test_matvec(void) {
    static const int64_t row_counts[] = {1, 2, 3, 7, 10};
    for (int k = 0; k < N_KTYPES; k++) {
        const lq_type_traits *tr = lq_type_get(ktypes[k].type);
        lq_type act = lq_kernel_vec_dot_type(ktypes[k].type);
        int64_t n = tr->block_size == 32 ? 32 * 19 : tr->block_size == 256 ? 256 * 3 : 300;
        size_t row_bytes = lq_row_size(ktypes[k].type, n);
        int64_t max_rows = 10;
        uint8_t *w = malloc(row_bytes * (size_t)max_rows);
        for (int64_t r = 0; r < max_rows; r++) {
            void *row = rand_weights(&ktypes[k], n, false);
            memcpy(w + (size_t)r * row_bytes, row, row_bytes);
            free(row);
        }
        float *x = rand_floats(n), out[10], want[10];
        void *a = malloc(lq_row_size(act, n));
        for (int level = 0; level <= 2; level++) {
            if (!use_simd((lq_simd)level)) continue;
            lq_kernel_quantize_act(act, x, a, n);
            for (size_t rc = 0; rc < sizeof row_counts / sizeof row_counts[0]; rc++) {
                int64_t rows = row_counts[rc];
                for (int64_t r = 0; r < rows; r++) want[r] = lq_kernel_dot_q(ktypes[k].type, w + (size_t)r * row_bytes, a, n);
                for (int threads = 1; threads <= 2; threads++) {
                    for (int64_t r = 0; r < 10; r++) out[r] = -12345.0f;
                    lq_kernel_matvec_q(ktypes[k].type, w, row_bytes, rows, a, n, out, threads);
                    CHECKF(!memcmp(out, want, sizeof(float) * (size_t)rows) && out[rows < 10 ? rows : 9] == (rows < 10 ? -12345.0f : out[9]),
                           "%s matvec (%s, %" PRId64 " rows, %d threads) differs from dot_q row by row",
                           tname(ktypes[k].type), simd_names[level], rows, threads);
                }
                /* the caller's-thread variant on a sub-range [1, rows): writes exactly those */
                for (int64_t r = 0; r < 10; r++) out[r] = -12345.0f;
                lq_kernel_matvec_q_rows(ktypes[k].type, w, row_bytes, 1, rows, a, n, out);
                bool outside_kept = out[0] == -12345.0f && (rows >= 10 || out[rows] == -12345.0f);
                CHECKF(outside_kept && !memcmp(out + 1, want + 1, sizeof(float) * (size_t)(rows - 1)),
                       "%s matvec rows [1, %" PRId64 ") (%s) differ from dot_q or write outside",
                       tname(ktypes[k].type), rows, simd_names[level]);
            }
        }
        free(w);
        free(x);
        free(a);
    }
    float out[2] = {0, 0};
    uint8_t blk[64] = {0};
    lq_kernel_matvec_q(LQ_TYPE_Q4_0, blk, 18, 2, blk, 33, out, 1);
    CHECK(isnan(out[0]) && isnan(out[1]));
    out[0] = out[1] = 0;
    lq_kernel_matvec_q_rows(LQ_TYPE_Q4_0, blk, 18, 0, 2, blk, 33, out);
    CHECK(isnan(out[0]) && isnan(out[1]));
}

/* Rows × tokens (lq_kernel_gemm_q) against dot_q per row and token, bit for bit, for tile
 * edges on both sides (1-9 rows, 1-9 tokens), writing nothing outside its rows. For the
 * 256-element formats row 0 is an extreme (every code and scale byte 0xFF), and token 0 is
 * (every activation -1, so -128 codes): the largest sums a kernel's 16-bit steps must hold. */
static void test_gemm(void) {
    enum { MAX_ROWS = 9, MAX_TOK = 9, STRIDE = MAX_ROWS + 2 };
    for (int k = 0; k < N_KTYPES; k++) {
        lq_type type = ktypes[k].type;
        const lq_type_traits *tr = lq_type_get(type);
        lq_type act = lq_kernel_vec_dot_type(type);
        int64_t n = tr->block_size == 32 ? 32 * 19 : tr->block_size == 256 ? 256 * 3 : 300;
        size_t row_bytes = lq_row_size(type, n), act_bytes = lq_row_size(act, n);
        uint8_t *w = malloc(row_bytes * MAX_ROWS);
        for (int r = 0; r < MAX_ROWS; r++) {
            void *row = rand_weights(&ktypes[k], n, false);
            memcpy(w + (size_t)r * row_bytes, row, row_bytes);
            free(row);
        }
        if (tr->is_quantized && tr->block_size == 256) { /* row 0: every byte 0xFF but the scales d, dmin (1.0) */
            memset(w, 0xFF, row_bytes);
            for (int64_t b = 0; b < n / 256; b++) {
                uint8_t *blk = w + b * tr->block_bytes;
                put_half(blk + ktypes[k].off_d, 0x3C00);
                if (ktypes[k].off_m >= 0) put_half(blk + ktypes[k].off_m, 0x3C00);
            }
        }
        float *x[MAX_TOK];
        for (int t = 0; t < MAX_TOK; t++) x[t] = rand_floats(n);
        for (int64_t i = 0; i < n; i++) x[0][i] = -1.0f;
        uint8_t *a = malloc(act_bytes * MAX_TOK);
        for (int level = 0; level <= 2; level++) {
            if (!use_simd((lq_simd)level)) continue;
            for (int t = 0; t < MAX_TOK; t++) lq_kernel_quantize_act(act, x[t], a + (size_t)t * act_bytes, n);
            float want[MAX_TOK][MAX_ROWS], y[MAX_TOK * STRIDE];
            for (int t = 0; t < MAX_TOK; t++)
                for (int r = 0; r < MAX_ROWS; r++)
                    want[t][r] = lq_kernel_dot_q(type, w + (size_t)r * row_bytes, a + (size_t)t * act_bytes, n);
            int bad = 0, outside = 0;
            for (int rows = 1; rows <= MAX_ROWS; rows++)
                for (int toks = 1; toks <= MAX_TOK; toks++) {
                    for (int i = 0; i < MAX_TOK * STRIDE; i++) y[i] = -12345.0f;
                    lq_kernel_gemm_q(type, w, row_bytes, rows, a, act_bytes, toks, n, y, STRIDE);
                    for (int t = 0; t < MAX_TOK; t++)
                        for (int r = 0; r < STRIDE; r++) {
                            float got = y[t * STRIDE + r];
                            if (t < toks && r < rows) bad += memcmp(&got, &want[t][r], sizeof got) != 0;
                            else outside += got != -12345.0f;
                        }
                }
            CHECKF(bad == 0 && outside == 0, "%s gemm (%s): %d results differ from dot_q, %d writes outside",
                   tname(type), simd_names[level], bad, outside);
        }
        for (int t = 0; t < MAX_TOK; t++) free(x[t]);
        free(w);
        free(a);
    }
    float y[2] = {0, 0};
    uint8_t blk[64] = {0};
    lq_kernel_gemm_q(LQ_TYPE_Q4_K, blk, 18, 1, blk, 33, 2, 33, y, 1);
    CHECK(isnan(y[0]) && isnan(y[1]));
}

/* Activation quantization on awkward inputs: all-zero blocks, a single outlier, ties at
 * ±0.5 after scaling, the largest element negative and repeated with both signs. */
static void test_act_edges(void) {
    static const lq_type acts[] = {LQ_TYPE_Q8_0, LQ_TYPE_Q8_1, LQ_TYPE_Q8_K, LQ_TYPE_F16, LQ_TYPE_BF16};
    const int64_t n = 512;
    float *x = calloc((size_t)n, sizeof(float));
    for (int pattern = 0; pattern < 5; pattern++) {
        for (int64_t i = 0; i < n; i++) {
            switch (pattern) {
            case 0: x[i] = 0.0f; break;
            case 1: x[i] = i == 300 ? -3.0f : 0.0f; break;
            case 2: x[i] = (float)((int)(i % 255) - 127) / 2.0f; break; /* ties after scaling */
            case 3: x[i] = (i % 5 == 0) ? ((i & 1) ? 2.0f : -2.0f) : 0.01f * (float)(i % 13); break;
            default: x[i] = test_rand_normal(&rng) * 1e-3f; break;
            }
        }
        for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++) {
            size_t bytes = lq_row_size(acts[a], n);
            uint8_t *ref = malloc(bytes), *got = malloc(bytes);
            lq_kernels_set_simd(LQ_SIMD_SCALAR);
            lq_kernel_quantize_act(acts[a], x, ref, n);
            for (int level = 1; level <= 2; level++) {
                if (!use_simd((lq_simd)level)) continue;
                memset(got, 0x5A, bytes);
                lq_kernel_quantize_act(acts[a], x, got, n);
                CHECKF(!memcmp(got, ref, bytes), "%s pattern %d (%s) differs from scalar",
                       tname(acts[a]), pattern, simd_names[level]);
            }
            free(ref);
            free(got);
        }
    }
    free(x);
}

/* ------------------------------------------------------------------------------------- */
/* Bulk half conversions                                                                  */
/* ------------------------------------------------------------------------------------- */
static void test_conversions(void) {
    /* every fp16 / bf16 bit pattern to fp32 */
    uint16_t *h = malloc(sizeof(uint16_t) * 65536);
    float *f = malloc(sizeof(float) * 65536);
    for (int i = 0; i < 65536; i++) h[i] = (uint16_t)i;
    for (int level = 0; level <= 2; level++) {
        if (!use_simd((lq_simd)level)) continue;
        int bad16 = 0, bad_bf = 0;
        lq_convert_fp16_to_fp32(h, f, 65536);
        for (int i = 0; i < 65536; i++) {
            float want = lq_fp16_to_fp32(h[i]);
            if (memcmp(&want, &f[i], 4)) bad16++;
        }
        lq_convert_bf16_to_fp32(h, f, 65536);
        for (int i = 0; i < 65536; i++) {
            float want = lq_bf16_to_fp32(h[i]);
            if (memcmp(&want, &f[i], 4)) bad_bf++;
        }
        CHECKF(bad16 == 0, "fp16->fp32 (%s): %d of 65536 values differ", simd_names[level], bad16);
        CHECKF(bad_bf == 0, "bf16->fp32 (%s): %d of 65536 values differ", simd_names[level], bad_bf);
    }
    /* fp32 → half: random bit patterns, every fp16 value and its neighbours, ties */
    const size_t n = 65536 * 4 + 4096;
    float *src = malloc(sizeof(float) * n);
    uint16_t *out = malloc(sizeof(uint16_t) * n);
    for (size_t i = 0; i < 65536; i++) {
        float v = lq_fp16_to_fp32((uint16_t)i);
        uint32_t u;
        memcpy(&u, &v, 4);
        uint32_t tie = u + 0x1000u; /* halfway to the next fp16 (for normal fp16 values) */
        uint32_t pats[4] = {u, u + 1u, tie, tie - 1u};
        for (int k = 0; k < 4; k++) memcpy(&src[4 * i + k], &pats[k], 4);
    }
    for (size_t i = 65536 * 4; i < n; i++) {
        uint32_t u = (uint32_t)test_rand_u64(&rng);
        memcpy(&src[i], &u, 4);
    }
    for (int level = 0; level <= 2; level++) {
        if (!use_simd((lq_simd)level)) continue;
        for (int which = 0; which < 2; which++) {
            int bad = 0;
            if (which == 0) lq_convert_fp32_to_fp16(src, out, n);
            else lq_convert_fp32_to_bf16(src, out, n);
            for (size_t i = 0; i < n; i++) {
                uint16_t want = which == 0 ? lq_fp32_to_fp16(src[i]) : lq_fp32_to_bf16(src[i]);
                if (want != out[i]) bad++;
            }
            CHECKF(bad == 0, "fp32->%s (%s): %d of %zu values differ", which ? "bf16" : "fp16",
                   simd_names[level], bad, n);
        }
        /* short lengths exercise the tails; nothing past n is written */
        for (size_t len = 0; len < 70; len++) {
            uint16_t buf[80];
            float fb[80];
            for (int k = 0; k < 80; k++) buf[k] = 0xBEEF;
            lq_convert_fp32_to_fp16(src + 7, buf, len);
            bool ok = buf[len] == 0xBEEF;
            for (size_t k = 0; k < len; k++) ok = ok && buf[k] == lq_fp32_to_fp16(src[7 + k]);
            for (int k = 0; k < 80; k++) fb[k] = -7.0f;
            lq_convert_bf16_to_fp32(h + 3, fb, len);
            ok = ok && fb[len] == -7.0f;
            CHECKF(ok, "conversion of %zu values (%s) wrong or wrote past the end", len, simd_names[level]);
        }
    }
    free(h);
    free(f);
    free(src);
    free(out);
}

/* Bad arguments: no crash, NaN results. */
static void test_bad_args(void) {
    lq_kernels_set_simd(max_simd);
    uint8_t blk[512] = {0};
    float x[512] = {0}, y[64];
    CHECK(isnan(lq_kernel_dot_f32(LQ_TYPE_Q4_0, blk, x, 33)));
    CHECK(isnan(lq_kernel_dot_q(LQ_TYPE_Q4_K, blk, blk, 32)));
    CHECK(isnan(lq_kernel_dot_q(LQ_TYPE_IQ2_XXS, blk, blk, 256)));
    CHECK(isnan(lq_kernel_dot_f32((lq_type)99, blk, x, 32)));
    CHECK(lq_kernel_vec_dot_type(LQ_TYPE_TQ1_0) == LQ_TYPE_COUNT);
    CHECK(lq_kernel_vec_dot_type(LQ_TYPE_Q4_1) == LQ_TYPE_Q8_1);
    CHECK(lq_kernel_vec_dot_type(LQ_TYPE_IQ4_XS) == LQ_TYPE_Q8_K);
    lq_kernel_dequant_row(LQ_TYPE_Q4_0, blk, y, 40);
    CHECK(isnan(y[0]) && isnan(y[39]));
    CHECK(lq_kernels_set_simd((lq_simd)7) == max_simd);
}

int main(void) {
    max_simd = lq_kernels_set_simd(LQ_SIMD_AVX512);
    fprintf(stderr, "best kernel path: %s (cpu: %s)\n", simd_names[max_simd], lq_cpu_simd_level());
    test_bad_args();
    test_conversions();
    test_act_edges();
    test_random_rows();
    test_matvec();
    test_gemm();
    test_against_codecs();
    test_act_against_codecs();
    float *rx = rand_floats(4096);
    test_q8_K_properties(rx, 4096);
    free(rx);
    if (test_shared_dir() && load_tv_input()) {
        test_vectors_act();
        test_vectors_dequant();
        for (int r = 0; r < TV_ROWS; r++)
            if (tv_row_ok[r]) test_q8_K_properties(tv_input + (size_t)r * TV_COLS, TV_COLS);
        free(tv_input);
    } else {
        fprintf(stderr, "note: ../shared is absent: llama.cpp test vectors not checked\n");
    }
    TEST_DONE();
}
