/* legacy.h — per-block math of the legacy 32-element formats Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
 * bit-exact with llama.cpp's reference quantizers (see the reference notes, section b). Host and
 * device code: static LQ_HD inline functions only, no VLAs, no compound literals.
 *
 * How a legacy block uses lq_grid (n = 32, one sub-block):
 *   d, d_bits      the unrounded scale the reference computes, and fp16(d) as stored
 *   id             the multiplier round() applies (1/d, or the search's best inverse scale)
 *   dmin           the offset round() subtracts first: the block minimum for Q4_1/Q5_1 (the
 *                  search's current minimum with an imatrix), 0 for the symmetric formats
 *   dmin_bits      the stored m of Q4_1/Q5_1 (0 otherwise)
 *   sc[LQ_LEGACY_RULE]  which rounding round() performs: LQ_ROUND_REF, the truncating
 *                  conversion of the reference encoders (roundf for Q8_0), or LQ_ROUND_SEARCH,
 *                  nearest_int as the imatrix searches (make_qx_quants / make_qkx3_quants)
 *                  leave their codes
 *   qmin, qmax     code range; the search's all-zero block has qmin = qmax = 0
 *   scale[0], min[0]  decoded x = scale·code − min (from the stored fp16 values)
 *
 * round() always returns a code in [qmin, qmax], also for values outside the block's fitted
 * range (GPTQ feeds updated values); inside the range it is exactly the reference rounding.
 */
#ifndef LQ_CODECS_LEGACY_H
#define LQ_CODECS_LEGACY_H

#include "blocks.h"
#include "common.h"
#include "search.h"

#include <stddef.h>

#define LQ_LEGACY_RULE 0 /* index into lq_grid.sc holding the rounding rule */
enum { LQ_ROUND_REF = 0, LQ_ROUND_SEARCH = 1 };

/* ---- shared pieces ---------------------------------------------------------------------- */

static LQ_HD inline void lq_legacy_grid_init(lq_grid *g, lq_type type, int qmin, int qmax) {
    /* zero everything but the K-quants' 256-byte keep[] (unused here; clearing it per 32-element
     * block would cost more than the fit) */
    size_t keep_end = offsetof(lq_grid, keep) + sizeof g->keep;
    memset(g, 0, offsetof(lq_grid, keep));
    memset((char *)g + keep_end, 0, sizeof *g - keep_end);
    g->type = (int)type;
    g->n = LQ_QK;
    g->n_sub = 1;
    g->sub_size = LQ_QK;
    g->qmin = qmin;
    g->qmax = qmax;
}

/* The reference's truncating float→int8 conversion of t (already offset by +0.5/+8.5/+16.5),
 * clamped to [qmin, qmax]. In the reference t lies in [0, qmax + 1.5) and this is exactly
 * MIN(qmax, (int8_t)t). Non-finite t happens only when 1/d overflowed to Inf (blocks with
 * max|x| below ~1e-38, whose fp16 scale is 0 anyway): x86 converts it to 0x80000000, whose low
 * byte is 0, so the reference stores code 0 there, and so do we. */
static LQ_HD inline int lq_trunc_code(float t, int qmin, int qmax) {
    if (t != t || t == INFINITY || t == -INFINITY) return 0;
    if (t < (float)qmin) return qmin;
    if (t >= (float)qmax) return qmax;
    return (int)t;
}

/* nearest_int(t) clamped to [lo, hi], made total for finite values far outside the range
 * (nearest_int itself is only valid for |t| < 2^22). Non-finite t (an inverse scale that
 * overflowed for a block spanning less than ~1e-38) goes through nearest_int's bit trick as in
 * the search, so round() reproduces the search's codes there too. */
static LQ_HD inline int lq_nearest_code(float t, int lo, int hi) {
    if (t != t || t == INFINITY || t == -INFINITY) return lq_clampi(lq_nearest_int(t), lo, hi);
    if (t < (float)lo - 1.0f) return lo;
    if (t > (float)hi + 1.0f) return hi;
    return lq_clampi(lq_nearest_int(t), lo, hi);
}

/* Weights of the imatrix paths: w_i = qw_i · sqrt(sigma2 + x_i²), sigma2 = mean x² of the row. */
static LQ_HD inline void lq_legacy_weights(const float *x, const float *qw, float sigma2, float *w) {
    for (int j = 0; j < LQ_QK; j++) w[j] = qw[j] * sqrtf(sigma2 + x[j] * x[j]);
}

/* Nibble order of Q4_*, Q5_*, IQ4_NL: byte j = element j (low) | element j+16 (high). */
static LQ_HD inline void lq_pack_nibbles(const int32_t *codes, uint8_t *qs) {
    for (int j = 0; j < LQ_QK / 2; j++)
        qs[j] = (uint8_t)((codes[j] & 0x0F) | ((codes[j + LQ_QK / 2] & 0x0F) << 4));
}

/* The 5th bits of 32 codes as the little-endian u32 qh of Q5_0/Q5_1. */
static LQ_HD inline void lq_pack_qh(const int32_t *codes, uint8_t *qh) {
    uint32_t bits = 0;
    for (int j = 0; j < LQ_QK; j++) bits |= (uint32_t)((codes[j] >> 4) & 1) << j;
    for (int k = 0; k < 4; k++) qh[k] = (uint8_t)(bits >> (8 * k));
}

static LQ_HD inline int lq_q5_code(const uint8_t *qs, const uint8_t *qh, int j) {
    uint32_t bits = (uint32_t)qh[0] | ((uint32_t)qh[1] << 8) | ((uint32_t)qh[2] << 16) |
                    ((uint32_t)qh[3] << 24);
    int nib = j < 16 ? (qs[j] & 0x0F) : (qs[j - 16] >> 4);
    return nib | (int)(((bits >> j) & 1u) << 4);
}

static LQ_HD inline int lq_q4_code(const uint8_t *qs, int j) {
    return j < 16 ? (qs[j] & 0x0F) : (qs[j - 16] >> 4);
}

/* ---- symmetric formats: Q4_0 (nmax 8), Q5_0 (nmax 16) ----------------------------------- */

/* Reference encoder's fit: d = max / −nmax with max the signed largest-|x| element. */
static LQ_HD inline void lq_sym_fit_ref(const float *x, int nmax, lq_grid *g) {
    float amax;
    float max = lq_signed_absmax(LQ_QK, x, &amax);
    float d = max / (float)(-nmax);
    g->d = d;
    g->id = d != 0.0f ? 1.0f / d : 0.0f;
    g->sc[LQ_LEGACY_RULE] = LQ_ROUND_REF;
}

/* make_qx_quants(32, nmax, x, L, rmse_type 1, w) (search.h) that also reports the inverse scale
 * whose codes it kept, so round() can reproduce them: the same candidates and acceptance test,
 * built from search.h's lq_qx_sums (the test compares it with lq_make_qx_quants). Returns the
 * scale; *zero is set for the all-zero block (codes 0). */
static LQ_HD inline float lq_sym_search(const float *x, const float *w, int nmax, float *best_iscale,
                                        bool *zero) {
    float amax;
    float max = lq_signed_absmax(LQ_QK, x, &amax);
    *zero = amax < LQ_GROUP_MAX_EPS;
    *best_iscale = 0.0f;
    if (*zero) return 0.0f;
    float iscale = (float)(-nmax) / max;
    float sumlx, suml2;
    lq_qx_sums(LQ_QK, nmax, x, w, 1, iscale, &sumlx, &suml2);
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    *best_iscale = iscale;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -((float)nmax + 0.1f * (float)is) / max;
        lq_qx_sums(LQ_QK, nmax, x, w, 1, iscale, &sumlx, &suml2);
        if (suml2 > 0.0f && sumlx * sumlx > best * suml2) {
            scale = sumlx / suml2;
            best = scale * sumlx;
            *best_iscale = iscale;
        }
    }
    return scale;
}

static LQ_HD inline void lq_sym_fit_imatrix(const float *x, const float *qw, float sigma2, int nmax,
                                            lq_grid *g) {
    float w[LQ_QK];
    lq_legacy_weights(x, qw, sigma2, w);
    bool zero;
    float iscale;
    g->d = lq_sym_search(x, w, nmax, &iscale, &zero);
    g->id = iscale;
    g->sc[LQ_LEGACY_RULE] = LQ_ROUND_SEARCH;
    if (zero) g->qmin = g->qmax = 0; /* the search leaves L = 0 for an all-zero block */
}

/* Fills the stored and decoded parameters of a symmetric block from g->d. */
static LQ_HD inline void lq_sym_finish(lq_grid *g, int nmax) {
    g->d_bits = lq_fp16_from_f32(g->d);
    g->scale[0] = lq_fp16_to_f32(g->d_bits);
    g->min[0] = (float)nmax * g->scale[0];
}

static LQ_HD inline void lq_sym_round(const lq_grid *g, const float *x, int first, int n, int nmax,
                                      int32_t *codes) {
    bool ref = g->sc[LQ_LEGACY_RULE] == LQ_ROUND_REF;
    float offset = (float)nmax + 0.5f; /* 8.5f or 16.5f, exact */
    for (int j = first; j < first + n; j++) {
        float t = x[j] * g->id;
        codes[j] = ref ? lq_trunc_code(t + offset, g->qmin, g->qmax)
                       : lq_nearest_code(t, g->qmin - nmax, g->qmax - nmax) + nmax;
    }
}

/* ---- asymmetric formats: Q4_1 (nmax 15), Q5_1 (nmax 31) -------------------------------- */

static LQ_HD inline void lq_asym_fit_ref(const float *x, int nmax, lq_grid *g) {
    float min = x[0], max = x[0]; /* FLT_MAX/-FLT_MAX starts give the same result */
    for (int j = 1; j < LQ_QK; j++) {
        if (x[j] < min) min = x[j];
        if (x[j] > max) max = x[j];
    }
    float d = (max - min) / (float)nmax;
    g->d = d;
    g->id = d != 0.0f ? 1.0f / d : 0.0f;
    g->dmin = min;
    g->sc[LQ_LEGACY_RULE] = LQ_ROUND_REF;
    g->dmin_bits = lq_fp16_from_f32(min);
}

/* make_qkx3_quants(32, nmax, x, w, L, &the_min, Laux, −0.9, 0.05, 36, use_mad = false) (search.h)
 * that also reports the inverse scale and the minimum its kept codes were rounded with (the
 * search is path dependent: candidates are rounded against the current best minimum). Built
 * from search.h's lq_qkx_codes / lq_qkx_error; the test compares it with lq_make_qkx3_quants.
 * Returns the scale; *the_min = −(final min); *zero for the degenerate block (codes 0). */
static LQ_HD inline float lq_asym_search(const float *x, const float *w, int nmax, float *the_min,
                                         float *round_iscale, float *round_min, bool *zero) {
    const float rmin = -0.9f, rdelta = 0.05f;
    const int nstep = 36;
    float min = x[0], max = x[0];
    float sum_w = w[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < LQ_QK; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0.0f) min = 0.0f;
    *zero = max <= min;
    *round_iscale = 0.0f;
    *round_min = min;
    *the_min = -min;
    if (*zero) return 0.0f;
    uint8_t L[LQ_QK], laux[LQ_QK];
    float iscale = (float)nmax / (max - min);
    float scale = 1.0f / iscale;
    lq_qkx_codes(LQ_QK, nmax, x, iscale, min, L);
    float best_mad = lq_qkx_error(LQ_QK, x, w, L, scale, min, false);
    *round_iscale = iscale;
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * (float)is + (float)nmax) / (max - min);
        lq_qkx_codes(LQ_QK, nmax, x, iscale, min, laux);
        float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
        for (int i = 0; i < LQ_QK; i++) {
            float l = (float)laux[i];
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0.0f) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0.0f) {
                this_min = 0.0f;
                this_scale = sum_xl / sum_l2;
            }
            float mad = lq_qkx_error(LQ_QK, x, w, laux, this_scale, this_min, false);
            if (mad < best_mad) {
                best_mad = mad;
                *round_iscale = iscale;
                *round_min = min; /* the min these codes were rounded against */
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

static LQ_HD inline void lq_asym_fit_imatrix(const float *x, const float *qw, float sigma2, int nmax,
                                             lq_grid *g) {
    float w[LQ_QK];
    lq_legacy_weights(x, qw, sigma2, w);
    float the_min, iscale, rmin_used;
    bool zero;
    g->d = lq_asym_search(x, w, nmax, &the_min, &iscale, &rmin_used, &zero);
    g->id = iscale;
    g->dmin = rmin_used;
    g->sc[LQ_LEGACY_RULE] = LQ_ROUND_SEARCH;
    if (zero) g->qmin = g->qmax = 0;
    g->dmin_bits = lq_fp16_from_f32(-the_min);
}

static LQ_HD inline void lq_asym_finish(lq_grid *g) {
    g->d_bits = lq_fp16_from_f32(g->d);
    g->scale[0] = lq_fp16_to_f32(g->d_bits);
    g->min[0] = -lq_fp16_to_f32(g->dmin_bits);
}

static LQ_HD inline void lq_asym_round(const lq_grid *g, const float *x, int first, int n,
                                       int32_t *codes) {
    bool ref = g->sc[LQ_LEGACY_RULE] == LQ_ROUND_REF;
    for (int j = first; j < first + n; j++) {
        float t = (x[j] - g->dmin) * g->id;
        codes[j] = ref ? lq_trunc_code(t + 0.5f, g->qmin, g->qmax)
                       : lq_nearest_code(t, g->qmin, g->qmax);
    }
}

/* ---- Q4_0 ------------------------------------------------------------------------------- */

static LQ_HD inline void lq_q4_0_fit(const float *x, const float *qw, float sigma2, lq_grid *g) {
    lq_legacy_grid_init(g, LQ_TYPE_Q4_0, 0, 15);
    if (qw)
        lq_sym_fit_imatrix(x, qw, sigma2, 8, g);
    else
        lq_sym_fit_ref(x, 8, g);
    lq_sym_finish(g, 8);
}
static LQ_HD inline void lq_q4_0_round(const lq_grid *g, const float *x, int first, int n,
                                       int32_t *codes) {
    lq_sym_round(g, x, first, n, 8, codes);
}
static LQ_HD inline float lq_q4_0_value(const lq_grid *g, int e, int32_t code) {
    (void)e;
    return (float)(code - 8) * g->scale[0];
}
static LQ_HD inline void lq_q4_0_encode(const lq_grid *g, const int32_t *codes, void *block) {
    lq_block_q4_0 *b = (lq_block_q4_0 *)block;
    b->d = g->d_bits;
    lq_pack_nibbles(codes, b->qs);
}
static LQ_HD inline void lq_q4_0_decode(const void *block, float *y) {
    const lq_block_q4_0 *b = (const lq_block_q4_0 *)block;
    float d = lq_fp16_to_f32(b->d);
    for (int j = 0; j < LQ_QK; j++) y[j] = (float)(lq_q4_code(b->qs, j) - 8) * d;
}

/* ---- Q5_0 ------------------------------------------------------------------------------- */

static LQ_HD inline void lq_q5_0_fit(const float *x, const float *qw, float sigma2, lq_grid *g) {
    lq_legacy_grid_init(g, LQ_TYPE_Q5_0, 0, 31);
    if (qw)
        lq_sym_fit_imatrix(x, qw, sigma2, 16, g);
    else
        lq_sym_fit_ref(x, 16, g);
    lq_sym_finish(g, 16);
}
static LQ_HD inline void lq_q5_0_round(const lq_grid *g, const float *x, int first, int n,
                                       int32_t *codes) {
    lq_sym_round(g, x, first, n, 16, codes);
}
static LQ_HD inline float lq_q5_0_value(const lq_grid *g, int e, int32_t code) {
    (void)e;
    return (float)(code - 16) * g->scale[0];
}
static LQ_HD inline void lq_q5_0_encode(const lq_grid *g, const int32_t *codes, void *block) {
    lq_block_q5_0 *b = (lq_block_q5_0 *)block;
    b->d = g->d_bits;
    lq_pack_qh(codes, b->qh);
    lq_pack_nibbles(codes, b->qs);
}
static LQ_HD inline void lq_q5_0_decode(const void *block, float *y) {
    const lq_block_q5_0 *b = (const lq_block_q5_0 *)block;
    float d = lq_fp16_to_f32(b->d);
    for (int j = 0; j < LQ_QK; j++) y[j] = (float)(lq_q5_code(b->qs, b->qh, j) - 16) * d;
}

/* ---- Q4_1 ------------------------------------------------------------------------------- */

static LQ_HD inline void lq_q4_1_fit(const float *x, const float *qw, float sigma2, lq_grid *g) {
    lq_legacy_grid_init(g, LQ_TYPE_Q4_1, 0, 15);
    if (qw)
        lq_asym_fit_imatrix(x, qw, sigma2, 15, g);
    else
        lq_asym_fit_ref(x, 15, g);
    lq_asym_finish(g);
}
static LQ_HD inline void lq_q4_1_round(const lq_grid *g, const float *x, int first, int n,
                                       int32_t *codes) {
    lq_asym_round(g, x, first, n, codes);
}
static LQ_HD inline float lq_q4_1_value(const lq_grid *g, int e, int32_t code) {
    (void)e;
    return (float)code * g->scale[0] + lq_fp16_to_f32(g->dmin_bits);
}
static LQ_HD inline void lq_q4_1_encode(const lq_grid *g, const int32_t *codes, void *block) {
    lq_block_q4_1 *b = (lq_block_q4_1 *)block;
    b->d = g->d_bits;
    b->m = g->dmin_bits;
    lq_pack_nibbles(codes, b->qs);
}
static LQ_HD inline void lq_q4_1_decode(const void *block, float *y) {
    const lq_block_q4_1 *b = (const lq_block_q4_1 *)block;
    float d = lq_fp16_to_f32(b->d), m = lq_fp16_to_f32(b->m);
    for (int j = 0; j < LQ_QK; j++) y[j] = (float)lq_q4_code(b->qs, j) * d + m;
}

/* ---- Q5_1 ------------------------------------------------------------------------------- */

static LQ_HD inline void lq_q5_1_fit(const float *x, const float *qw, float sigma2, lq_grid *g) {
    lq_legacy_grid_init(g, LQ_TYPE_Q5_1, 0, 31);
    if (qw)
        lq_asym_fit_imatrix(x, qw, sigma2, 31, g);
    else
        lq_asym_fit_ref(x, 31, g);
    lq_asym_finish(g);
}
static LQ_HD inline void lq_q5_1_round(const lq_grid *g, const float *x, int first, int n,
                                       int32_t *codes) {
    lq_asym_round(g, x, first, n, codes);
}
static LQ_HD inline float lq_q5_1_value(const lq_grid *g, int e, int32_t code) {
    (void)e;
    return (float)code * g->scale[0] + lq_fp16_to_f32(g->dmin_bits);
}
static LQ_HD inline void lq_q5_1_encode(const lq_grid *g, const int32_t *codes, void *block) {
    lq_block_q5_1 *b = (lq_block_q5_1 *)block;
    b->d = g->d_bits;
    b->m = g->dmin_bits;
    lq_pack_qh(codes, b->qh);
    lq_pack_nibbles(codes, b->qs);
}
static LQ_HD inline void lq_q5_1_decode(const void *block, float *y) {
    const lq_block_q5_1 *b = (const lq_block_q5_1 *)block;
    float d = lq_fp16_to_f32(b->d), m = lq_fp16_to_f32(b->m);
    for (int j = 0; j < LQ_QK; j++) y[j] = (float)lq_q5_code(b->qs, b->qh, j) * d + m;
}

/* ---- Q8_0 (weights and the activation format of the legacy dot products) ---------------- */

/* amax = max|x|, d = amax/127, id = 1/d (0 when d = 0). The imatrix is ignored, as in llama.cpp. */
static LQ_HD inline void lq_q8_0_fit(const float *x, const float *qw, float sigma2, lq_grid *g) {
    (void)qw;
    (void)sigma2;
    lq_legacy_grid_init(g, LQ_TYPE_Q8_0, -127, 127);
    float amax = 0.0f;
    for (int j = 0; j < LQ_QK; j++) {
        float ax = fabsf(x[j]);
        amax = amax > ax ? amax : ax;
    }
    float d = amax / 127.0f;
    g->d = d;
    g->id = d != 0.0f ? 1.0f / d : 0.0f;
    g->sc[LQ_LEGACY_RULE] = LQ_ROUND_REF;
    g->d_bits = lq_fp16_from_f32(d);
    g->scale[0] = lq_fp16_to_f32(g->d_bits);
}
/* q = roundf(x·id) (half away from zero), clamped to ±127 for values beyond the fitted amax.
 * Non-finite x·id (id overflowed for max|x| below ~3.7e-37, stored d is 0) gives 0 as the
 * reference's float→int8 store does on x86. */
static LQ_HD inline void lq_q8_0_round(const lq_grid *g, const float *x, int first, int n,
                                       int32_t *codes) {
    for (int j = first; j < first + n; j++) {
        float t = x[j] * g->id;
        if (t != t || t == INFINITY || t == -INFINITY)
            codes[j] = 0;
        else if (t > 127.0f || t < -127.0f)
            codes[j] = t > 0 ? 127 : -127;
        else
            codes[j] = (int32_t)roundf(t);
    }
}
static LQ_HD inline float lq_q8_0_value(const lq_grid *g, int e, int32_t code) {
    (void)e;
    return (float)code * g->scale[0];
}
static LQ_HD inline void lq_q8_0_encode(const lq_grid *g, const int32_t *codes, void *block) {
    lq_block_q8_0 *b = (lq_block_q8_0 *)block;
    b->d = g->d_bits;
    for (int j = 0; j < LQ_QK; j++) b->qs[j] = (int8_t)codes[j];
}
static LQ_HD inline void lq_q8_0_decode(const void *block, float *y) {
    const lq_block_q8_0 *b = (const lq_block_q8_0 *)block;
    float d = lq_fp16_to_f32(b->d);
    for (int j = 0; j < LQ_QK; j++) y[j] = (float)b->qs[j] * d;
}
/* One activation block: fit, round and encode in one call (what the dot-product kernels use). */
static LQ_HD inline void lq_q8_0_quantize_block(const float *x, lq_block_q8_0 *b) {
    lq_grid g;
    int32_t codes[LQ_QK];
    lq_q8_0_fit(x, NULL, 0.0f, &g);
    lq_q8_0_round(&g, x, 0, LQ_QK, codes);
    lq_q8_0_encode(&g, codes, b);
}

#endif
