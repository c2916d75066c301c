/* kquants.h — per-super-block math of the K-quants (Q2_K … Q6_K) and the activation format
 * Q8_K, as host+device functions (layouts and procedures: reference notes section b).
 *
 * Each format T has
 *   lq_T_fit(x, qw, g, keep)   search + sub-scale quantization + fp16 rounding → grid g
 *   lq_T_round(g, keep, x, first, n, codes)  the reference's final requantization
 *   lq_T_value(g, e, code)     the decoder's value of a code
 *   lq_T_encode(g, codes, blk) / lq_T_decode(blk, y)
 * Codes are the stored unsigned codes (Q2_K 0..3, Q3_K 0..7, Q4_K 0..15, Q5_K 0..31,
 * Q6_K 0..63, Q8_K -128..127).
 *
 * "keep": where a sub-block's effective scale d̂·sc is zero, llama.cpp skips the
 * requantization and stores the codes its search left there (they still occupy bits in the
 * file, although they do not change the decoded values). fit() writes those search codes to
 * keep[256] when keep != NULL and round() takes them from there; with keep == NULL round()
 * recomputes them with the reference search *without* importance weights (exact for the
 * no-imatrix path; with an imatrix the bytes of such sub-blocks may then differ from llama.cpp
 * while decoding to the same values).
 *
 * Arithmetic: float32 in the reference operation order, no FMA (compile with
 * -ffp-contract=off / -fmad=false). */
#ifndef LQ_CODECS_KQUANTS_H
#define LQ_CODECS_KQUANTS_H

#include "blocks.h"
#include "search.h"

/* ---------------------------------------------------------------------------------------
 * Shared pieces: grid setup, bit planes, scale packing
 * ------------------------------------------------------------------------------------- */

static LQ_HD inline void lq_kq_grid_init(lq_grid *g, int type, int n_sub, int sub_size, int qmin,
                                         int qmax) {
    memset(g, 0, sizeof *g);
    g->type = type;
    g->n = LQ_QK_K;
    g->n_sub = n_sub;
    g->sub_size = sub_size;
    g->qmin = qmin;
    g->qmax = qmax;
}

/* Stores fp16 d (and dmin) and derives the effective per-sub-block affine map from the stored
 * codes, with the same float products the reference requantization and the decoder form:
 * scale = d̂·sc, min = m̂·m. */
static LQ_HD inline void lq_kq_set_affine(lq_grid *g, float d, float dmin) {
    g->d_bits = lq_fp16_from_f32(d);
    g->dmin_bits = lq_fp16_from_f32(dmin);
    g->d = lq_fp16_to_f32(g->d_bits);
    g->dmin = lq_fp16_to_f32(g->dmin_bits);
    for (int s = 0; s < g->n_sub; ++s) {
        g->scale[s] = g->d * (float)g->sc[s];
        g->min[s] = g->dmin * (float)g->mn[s];
    }
}

/* Symmetric formats (Q3_K, Q6_K): code c means (c - offset); scale = d̂·signed_scale. */
static LQ_HD inline void lq_kq_set_symmetric(lq_grid *g, float d, int offset) {
    g->d_bits = lq_fp16_from_f32(d);
    g->d = lq_fp16_to_f32(g->d_bits);
    for (int s = 0; s < g->n_sub; ++s) {
        g->scale[s] = g->d * (float)g->sc_signed[s];
        g->min[s] = g->scale[s] * (float)offset; /* x ≈ scale·c - min */
    }
}

/* 2-bit plane of Q2_K/Q3_K: byte 32h + l holds elements 128h + l + 32k in bits 2k..2k+1. */
static LQ_HD inline void lq_kq_pack_2bit(const uint8_t *L, uint8_t *qs) {
    for (int h = 0; h < 2; ++h)
        for (int l = 0; l < 32; ++l) {
            const uint8_t *p = L + 128 * h + l;
            qs[32 * h + l] = (uint8_t)(p[0] | (p[32] << 2) | (p[64] << 4) | (p[96] << 6));
        }
}
static LQ_HD inline int lq_kq_get_2bit(const uint8_t *qs, int e) {
    int r = e % 128;
    return (qs[32 * (e / 128) + r % 32] >> (2 * (r / 32))) & 3;
}

/* Q4_K/Q5_K: 8 six-bit scales and 8 six-bit mins in 12 bytes. */
static LQ_HD inline void lq_kq_pack_scale_min_k4(const uint8_t *sc, const uint8_t *mn,
                                                 uint8_t *scales) {
    for (int j = 0; j < 8; ++j) {
        if (j < 4) {
            scales[j] = sc[j];
            scales[j + 4] = mn[j];
        } else {
            scales[j + 4] = (uint8_t)((sc[j] & 0xF) | ((mn[j] & 0xF) << 4));
            scales[j - 4] |= (uint8_t)((sc[j] >> 4) << 6);
            scales[j] |= (uint8_t)((mn[j] >> 4) << 6);
        }
    }
}
static LQ_HD inline void lq_kq_get_scale_min_k4(int j, const uint8_t *q, uint8_t *sc,
                                                uint8_t *mn) {
    if (j < 4) {
        *sc = q[j] & 63;
        *mn = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *mn = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* Q3_K: 16 six-bit codes in 12 bytes (low nibbles in bytes 0..7, top 2 bits in bytes 8..11). */
static LQ_HD inline void lq_kq_pack_q3_scales(const uint8_t *codes, uint8_t *scales) {
    for (int j = 0; j < 12; ++j) scales[j] = 0;
    for (int j = 0; j < 16; ++j) {
        int l = codes[j];
        if (j < 8)
            scales[j] = (uint8_t)(l & 0xF);
        else
            scales[j - 8] |= (uint8_t)((l & 0xF) << 4);
        scales[j % 4 + 8] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
    }
}
static LQ_HD inline int lq_kq_get_q3_scale(const uint8_t *scales, int j) {
    int low = j < 8 ? scales[j] & 0xF : scales[j - 8] >> 4;
    return low | (((scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4);
}

/* Largest sub-block value (the reference starts from 0, so negatives never win). */
static LQ_HD inline float lq_kq_max_pos(int n, const float *v) {
    float m = 0.0f;
    for (int i = 0; i < n; ++i)
        if (v[i] > m) m = v[i];
    return m;
}

/* Σ x² over the super-block, accumulated in order. */
static LQ_HD inline float lq_kq_sum_x2(const float *x) {
    float s = 0.0f;
    for (int i = 0; i < LQ_QK_K; ++i) s += x[i] * x[i];
    return s;
}

/* Importance weights of the imatrix paths: qw·sqrt(sigma2 + x²), and their sum. */
static LQ_HD inline float lq_kq_imatrix_weights(int n, const float *x, const float *qw,
                                                float sigma2, float *w) {
    for (int l = 0; l < n; ++l) w[l] = qw[l] * sqrtf(sigma2 + x[l] * x[l]);
    float sumw = 0.0f;
    for (int l = 0; l < n; ++l) sumw += w[l];
    return sumw;
}

static LQ_HD inline void lq_kq_keep_codes(uint8_t *keep, int first, int n, const uint8_t *L) {
    if (!keep) return;
    for (int i = 0; i < n; ++i) keep[first + i] = L[i];
}

/* ---------------------------------------------------------------------------------------
 * Q4_K / Q5_K (8 sub-blocks of 32, asymmetric, 6-bit scales and mins)
 * ------------------------------------------------------------------------------------- */

/* The no-imatrix search of one 32-element sub-block: weights av + |x|. */
static LQ_HD inline float lq_q45K_ref_search(int nmax, const float *xs, uint8_t *L, float *the_min) {
    float w[32];
    uint8_t Laux[32];
    float sum_x2 = 0.0f;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    float av_x = sqrtf(sum_x2 / 32.0f);
    for (int l = 0; l < 32; ++l) w[l] = av_x + fabsf(xs[l]);
    if (nmax == 15) return lq_make_qkx2_quants(32, 15, xs, w, L, the_min, Laux, -1.0f, 0.1f, 20, false);
    return lq_make_qkx2_quants(32, 31, xs, w, L, the_min, Laux, -0.5f, 0.1f, 15, false);
}

static LQ_HD inline void lq_q45K_fit(int type, int nmax, const float *x, const float *qw,
                                     lq_grid *g, uint8_t *keep) {
    float scales[8], mins[8], sw[8], w[32];
    uint8_t L[32], Laux[32];
    float d, dmin;
    lq_kq_grid_init(g, type, 8, 32, 0, nmax);
    if (!qw) {
        for (int j = 0; j < 8; ++j) {
            scales[j] = lq_q45K_ref_search(nmax, x + 32 * j, L, &mins[j]);
            lq_kq_keep_codes(keep, 32 * j, 32, L);
        }
        float max_scale = lq_kq_max_pos(8, scales), max_min = lq_kq_max_pos(8, mins);
        float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
        float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
        for (int j = 0; j < 8; ++j) {
            /* the reference converts to uint8_t before clamping */
            uint8_t ls = (uint8_t)lq_nearest_int(inv_scale * scales[j]);
            uint8_t lm = (uint8_t)lq_nearest_int(inv_min * mins[j]);
            g->sc[j] = ls < 63 ? ls : 63;
            g->mn[j] = lm < 63 ? lm : 63;
        }
        d = max_scale / 63.0f;
        dmin = max_min / 63.0f;
    } else {
        /* imatrix path: sigma2 of the super-block, doubled */
        float sigma2 = 2 * lq_kq_sum_x2(x) / LQ_QK_K;
        for (int j = 0; j < 8; ++j) {
            sw[j] = lq_kq_imatrix_weights(32, x + 32 * j, qw + 32 * j, sigma2, w);
            scales[j] = lq_make_qkx3_quants(32, nmax, x + 32 * j, w, L, &mins[j], Laux, -0.9f,
                                            0.05f, 36, false);
            lq_kq_keep_codes(keep, 32 * j, 32, L);
        }
        d = lq_make_qp_quants(8, 63, scales, g->sc, sw);
        dmin = lq_make_qp_quants(8, 63, mins, g->mn, sw);
    }
    lq_kq_set_affine(g, d, dmin);
}

static LQ_HD inline void lq_q45K_round(const lq_grid *g, const uint8_t *keep, const float *x,
                                       int first, int n, int32_t *codes) {
    int nmax = g->qmax;
    for (int e = first; e < first + n;) {
        int s = e / 32, end = (s + 1) * 32 < first + n ? (s + 1) * 32 : first + n;
        float ds = g->scale[s], dm = g->min[s];
        if (ds == 0.0f) {
            uint8_t L[32];
            float the_min;
            if (!keep) lq_q45K_ref_search(nmax, x + 32 * s, L, &the_min);
            for (; e < end; ++e) codes[e] = keep ? keep[e] : L[e - 32 * s];
            continue;
        }
        for (; e < end; ++e) codes[e] = lq_clampi(lq_nearest_int((x[e] + dm) / ds), 0, nmax);
    }
}

static LQ_HD inline float lq_q45K_value(const lq_grid *g, int e, int32_t code) {
    return g->scale[e / 32] * (float)code - g->min[e / 32];
}

static LQ_HD inline void lq_q4_K_fit(const float *x, const float *qw, lq_grid *g, uint8_t *keep) {
    lq_q45K_fit(LQ_TYPE_Q4_K, 15, x, qw, g, keep);
}
static LQ_HD inline void lq_q5_K_fit(const float *x, const float *qw, lq_grid *g, uint8_t *keep) {
    lq_q45K_fit(LQ_TYPE_Q5_K, 31, x, qw, g, keep);
}

static LQ_HD inline void lq_q4_K_round(const lq_grid *g, const uint8_t *keep, const float *x,
                                       int first, int n, int32_t *codes) {
    lq_q45K_round(g, keep, x, first, n, codes);
}
static LQ_HD inline void lq_q5_K_round(const lq_grid *g, const uint8_t *keep, const float *x,
                                       int first, int n, int32_t *codes) {
    lq_q45K_round(g, keep, x, first, n, codes);
}
static LQ_HD inline float lq_q4_K_value(const lq_grid *g, int e, int32_t code) {
    return lq_q45K_value(g, e, code);
}
static LQ_HD inline float lq_q5_K_value(const lq_grid *g, int e, int32_t code) {
    return lq_q45K_value(g, e, code);
}

static LQ_HD inline void lq_q4_K_encode(const lq_grid *g, const int32_t *codes, void *block) {
    lq_block_q4_K *b = (lq_block_q4_K *)block;
    b->d = g->d_bits;
    b->dmin = g->dmin_bits;
    lq_kq_pack_scale_min_k4(g->sc, g->mn, b->scales);
    for (int c = 0; c < 4; ++c)
        for (int l = 0; l < 32; ++l)
            b->qs[32 * c + l] = (uint8_t)(codes[64 * c + l] | (codes[64 * c + 32 + l] << 4));
}

static LQ_HD inline void lq_q4_K_decode(const void *block, float *y) {
    const lq_block_q4_K *b = (const lq_block_q4_K *)block;
    float d = lq_fp16_to_f32(b->d), dmin = lq_fp16_to_f32(b->dmin);
    for (int s = 0; s < 8; ++s) {
        uint8_t sc, mn;
        lq_kq_get_scale_min_k4(s, b->scales, &sc, &mn);
        float ds = d * (float)sc, dm = dmin * (float)mn;
        int c = s / 2, shift = 4 * (s % 2);
        for (int l = 0; l < 32; ++l) y[32 * s + l] = ds * (float)((b->qs[32 * c + l] >> shift) & 0xF) - dm;
    }
}

static LQ_HD inline void lq_q5_K_encode(const lq_grid *g, const int32_t *codes, void *block) {
    lq_block_q5_K *b = (lq_block_q5_K *)block;
    b->d = g->d_bits;
    b->dmin = g->dmin_bits;
    lq_kq_pack_scale_min_k4(g->sc, g->mn, b->scales);
    for (int l = 0; l < 32; ++l) b->qh[l] = 0;
    for (int c = 0; c < 4; ++c)
        for (int l = 0; l < 32; ++l) {
            int lo = codes[64 * c + l], hi = codes[64 * c + 32 + l];
            if (lo > 15) b->qh[l] |= (uint8_t)(1u << (2 * c));
            if (hi > 15) b->qh[l] |= (uint8_t)(2u << (2 * c));
            b->qs[32 * c + l] = (uint8_t)((lo & 0xF) | ((hi & 0xF) << 4));
        }
}

static LQ_HD inline void lq_q5_K_decode(const void *block, float *y) {
    const lq_block_q5_K *b = (const lq_block_q5_K *)block;
    float d = lq_fp16_to_f32(b->d), dmin = lq_fp16_to_f32(b->dmin);
    for (int s = 0; s < 8; ++s) {
        uint8_t sc, mn;
        lq_kq_get_scale_min_k4(s, b->scales, &sc, &mn);
        float ds = d * (float)sc, dm = dmin * (float)mn;
        int c = s / 2, shift = 4 * (s % 2);
        for (int l = 0; l < 32; ++l) {
            int q = ((b->qs[32 * c + l] >> shift) & 0xF) | (((b->qh[l] >> s) & 1) << 4);
            y[32 * s + l] = ds * (float)q - dm;
        }
    }
}

/* ---------------------------------------------------------------------------------------
 * Q6_K (16 sub-blocks of 16, symmetric, int8 sub-scales, codes 0..63 meaning c - 32)
 * ------------------------------------------------------------------------------------- */

/* g->id is the reference's iscale = -128/max_scale; 0 marks an all-zero block. */
static LQ_HD inline void lq_q6_K_fit(const float *x, const float *qw, lq_grid *g, uint8_t *keep) {
    float scales[16];
    int8_t L[16];
    lq_kq_grid_init(g, LQ_TYPE_Q6_K, 16, 16, 0, 63);
    float max_scale = 0.0f, max_abs_scale = 0.0f;
    for (int s = 0; s < 16; ++s) {
        /* with an imatrix the raw importance is the weight (no sigma2 term) */
        scales[s] = lq_make_qx_quants(16, 32, x + 16 * s, L, 1, qw ? qw + 16 * s : NULL);
        if (keep)
            for (int l = 0; l < 16; ++l) keep[16 * s + l] = (uint8_t)L[l];
        float abs_scale = fabsf(scales[s]);
        if (abs_scale > max_abs_scale) {
            max_abs_scale = abs_scale;
            max_scale = scales[s];
        }
    }
    if (max_abs_scale < LQ_GROUP_MAX_EPS) { /* the reference zeroes the whole block */
        if (keep)
            for (int e = 0; e < LQ_QK_K; ++e) keep[e] = 0;
        lq_kq_set_symmetric(g, 0.0f, 32);
        return;
    }
    float iscale = -128.0f / max_scale;
    g->id = iscale;
    for (int s = 0; s < 16; ++s) {
        int l = lq_nearest_int(iscale * scales[s]);
        g->sc_signed[s] = (int8_t)(l < 127 ? l : 127);
        g->sc[s] = (uint8_t)g->sc_signed[s];
    }
    lq_kq_set_symmetric(g, 1.0f / iscale, 32);
}

static LQ_HD inline void lq_q6_K_round(const lq_grid *g, const uint8_t *keep, const float *x,
                                       int first, int n, int32_t *codes) {
    for (int e = first; e < first + n;) {
        int s = e / 16, end = (s + 1) * 16 < first + n ? (s + 1) * 16 : first + n;
        float ds = g->scale[s];
        if (ds == 0.0f) {
            int8_t L[16];
            if (!keep) {
                if (g->id == 0.0f)
                    for (int l = 0; l < 16; ++l) L[l] = 0;
                else
                    lq_make_qx_quants(16, 32, x + 16 * s, L, 1, NULL);
            }
            for (; e < end; ++e) codes[e] = keep ? keep[e] : L[e - 16 * s];
            continue;
        }
        for (; e < end; ++e) codes[e] = lq_clampi(lq_nearest_int(x[e] / ds), -32, 31) + 32;
    }
}

static LQ_HD inline float lq_q6_K_value(const lq_grid *g, int e, int32_t code) {
    return g->scale[e / 16] * (float)(code - 32);
}

static LQ_HD inline void lq_q6_K_encode(const lq_grid *g, const int32_t *codes, void *block) {
    lq_block_q6_K *b = (lq_block_q6_K *)block;
    for (int h = 0; h < 2; ++h)
        for (int l = 0; l < 32; ++l) {
            const int32_t *c = codes + 128 * h + l;
            b->ql[64 * h + l] = (uint8_t)((c[0] & 0xF) | ((c[64] & 0xF) << 4));
            b->ql[64 * h + 32 + l] = (uint8_t)((c[32] & 0xF) | ((c[96] & 0xF) << 4));
            b->qh[32 * h + l] = (uint8_t)((c[0] >> 4) | ((c[32] >> 4) << 2) | ((c[64] >> 4) << 4) |
                                          ((c[96] >> 4) << 6));
        }
    for (int s = 0; s < 16; ++s) b->scales[s] = g->sc_signed[s];
    b->d = g->d_bits;
}

static LQ_HD inline void lq_q6_K_decode(const void *block, float *y) {
    const lq_block_q6_K *b = (const lq_block_q6_K *)block;
    float d = lq_fp16_to_f32(b->d);
    for (int e = 0; e < LQ_QK_K; ++e) {
        int h = e / 128, k = (e % 128) / 32, l = e % 32;
        int lo = (b->ql[64 * h + 32 * (k & 1) + l] >> (4 * (k >> 1))) & 0xF;
        int hi = (b->qh[32 * h + l] >> (2 * k)) & 3;
        y[e] = d * (float)b->scales[e / 16] * (float)((lo | (hi << 4)) - 32);
    }
}

/* ---------------------------------------------------------------------------------------
 * Q3_K (16 sub-blocks of 16, symmetric, signed 6-bit sub-scales, codes 0..7 meaning c - 4)
 * ------------------------------------------------------------------------------------- */

static LQ_HD inline void lq_q3_K_fit(const float *x, const float *qw, lq_grid *g, uint8_t *keep) {
    float scales[16], sw[16], w[16];
    int8_t L[16];
    float d;
    lq_kq_grid_init(g, LQ_TYPE_Q3_K, 16, 16, 0, 7);
    if (!qw) {
        float max_scale = 0.0f, amax = 0.0f;
        for (int s = 0; s < 16; ++s) {
            scales[s] = lq_make_q3_quants(16, 4, x + 16 * s, L, true);
            if (keep)
                for (int l = 0; l < 16; ++l) keep[16 * s + l] = (uint8_t)L[l];
            float a = fabsf(scales[s]);
            if (a > amax) {
                amax = a;
                max_scale = scales[s];
            }
        }
        if (max_scale != 0.0f) {
            float iscale = -32.0f / max_scale;
            for (int s = 0; s < 16; ++s) {
                int8_t l = (int8_t)lq_nearest_int(iscale * scales[s]);
                g->sc[s] = (uint8_t)(lq_clampi(l, -32, 31) + 32);
            }
            d = 1.0f / iscale;
        } else {
            d = 0.0f; /* scale bytes stay 0 */
        }
    } else {
        float sigma2 = 2 * lq_kq_sum_x2(x) / LQ_QK_K;
        int8_t Ls[16];
        for (int s = 0; s < 16; ++s) {
            sw[s] = lq_kq_imatrix_weights(16, x + 16 * s, qw + 16 * s, sigma2, w);
            scales[s] = lq_make_qx_quants(16, 4, x + 16 * s, L, 1, w);
            if (keep)
                for (int l = 0; l < 16; ++l) keep[16 * s + l] = (uint8_t)L[l];
        }
        d = lq_make_qx_quants(16, 32, scales, Ls, 1, sw);
        for (int s = 0; s < 16; ++s) g->sc[s] = (uint8_t)Ls[s];
    }
    for (int s = 0; s < 16; ++s) g->sc_signed[s] = (int8_t)(g->sc[s] - 32);
    lq_kq_set_symmetric(g, d, 4);
}

static LQ_HD inline void lq_q3_K_round(const lq_grid *g, const uint8_t *keep, const float *x,
                                       int first, int n, int32_t *codes) {
    for (int e = first; e < first + n;) {
        int s = e / 16, end = (s + 1) * 16 < first + n ? (s + 1) * 16 : first + n;
        float ds = g->scale[s];
        if (ds == 0.0f) {
            int8_t L[16];
            if (!keep) lq_make_q3_quants(16, 4, x + 16 * s, L, true);
            for (; e < end; ++e) codes[e] = keep ? keep[e] : L[e - 16 * s];
            continue;
        }
        for (; e < end; ++e) codes[e] = lq_clampi(lq_nearest_int(x[e] / ds), -4, 3) + 4;
    }
}

static LQ_HD inline float lq_q3_K_value(const lq_grid *g, int e, int32_t code) {
    return g->scale[e / 16] * (float)(code - 4);
}

static LQ_HD inline void lq_q3_K_encode(const lq_grid *g, const int32_t *codes, void *block) {
    lq_block_q3_K *b = (lq_block_q3_K *)block;
    uint8_t low[LQ_QK_K];
    for (int l = 0; l < 32; ++l) b->hmask[l] = 0;
    for (int e = 0; e < LQ_QK_K; ++e) {
        int c = codes[e];
        if (c > 3) {
            b->hmask[e % 32] |= (uint8_t)(1u << (e / 32));
            c -= 4;
        }
        low[e] = (uint8_t)c;
    }
    lq_kq_pack_2bit(low, b->qs);
    lq_kq_pack_q3_scales(g->sc, b->scales);
    b->d = g->d_bits;
}

static LQ_HD inline void lq_q3_K_decode(const void *block, float *y) {
    const lq_block_q3_K *b = (const lq_block_q3_K *)block;
    float d = lq_fp16_to_f32(b->d);
    for (int s = 0; s < 16; ++s) {
        float ds = d * (float)(lq_kq_get_q3_scale(b->scales, s) - 32);
        for (int l = 0; l < 16; ++l) {
            int e = 16 * s + l;
            int c = lq_kq_get_2bit(b->qs, e) | (((b->hmask[e % 32] >> (e / 32)) & 1) << 2);
            y[e] = ds * (float)(c - 4);
        }
    }
}

/* ---------------------------------------------------------------------------------------
 * Q2_K (16 sub-blocks of 16, asymmetric, 4-bit scales and mins)
 * ------------------------------------------------------------------------------------- */

static LQ_HD inline float lq_q2_K_ref_search(const float *xs, uint8_t *L, float *the_min) {
    float w[16];
    uint8_t Laux[16];
    for (int l = 0; l < 16; ++l) w[l] = fabsf(xs[l]);
    return lq_make_qkx2_quants(16, 3, xs, w, L, the_min, Laux, -0.5f, 0.1f, 15, true);
}

static LQ_HD inline void lq_q2_K_fit(const float *x, const float *qw, lq_grid *g, uint8_t *keep) {
    float scales[16], mins[16], sw[16], w[16];
    uint8_t L[16], Laux[16];
    float d, dmin;
    lq_kq_grid_init(g, LQ_TYPE_Q2_K, 16, 16, 0, 3);
    if (!qw) {
        for (int s = 0; s < 16; ++s) {
            scales[s] = lq_q2_K_ref_search(x + 16 * s, L, &mins[s]);
            lq_kq_keep_codes(keep, 16 * s, 16, L);
        }
        float max_scale = lq_kq_max_pos(16, scales), max_min = lq_kq_max_pos(16, mins);
        uint8_t bytes[16] = {0};
        d = 0.0f;
        dmin = 0.0f;
        if (max_scale > 0) {
            float iscale = 15.0f / max_scale;
            for (int s = 0; s < 16; ++s) bytes[s] = (uint8_t)lq_nearest_int(iscale * scales[s]);
            d = max_scale / 15.0f;
        }
        if (max_min > 0) {
            float iscale = 15.0f / max_min;
            for (int s = 0; s < 16; ++s) bytes[s] |= (uint8_t)(lq_nearest_int(iscale * mins[s]) << 4);
            dmin = max_min / 15.0f;
        }
        for (int s = 0; s < 16; ++s) {
            g->sc[s] = bytes[s] & 0xF;
            g->mn[s] = bytes[s] >> 4;
        }
    } else {
        /* Q2_K's imatrix weighting uses the super-block mean square, not doubled */
        float sigma2 = lq_kq_sum_x2(x) / LQ_QK_K;
        for (int s = 0; s < 16; ++s) {
            sw[s] = lq_kq_imatrix_weights(16, x + 16 * s, qw + 16 * s, sigma2, w);
            scales[s] = lq_make_qkx3_quants(16, 3, x + 16 * s, w, L, &mins[s], Laux, -0.9f,
                                            0.05f, 36, false);
            lq_kq_keep_codes(keep, 16 * s, 16, L);
        }
        d = lq_make_qp_quants(16, 15, scales, g->sc, sw);
        dmin = lq_make_qp_quants(16, 15, mins, g->mn, sw);
    }
    lq_kq_set_affine(g, d, dmin);
}

static LQ_HD inline void lq_q2_K_round(const lq_grid *g, const uint8_t *keep, const float *x,
                                       int first, int n, int32_t *codes) {
    for (int e = first; e < first + n;) {
        int s = e / 16, end = (s + 1) * 16 < first + n ? (s + 1) * 16 : first + n;
        float ds = g->scale[s], dm = g->min[s];
        if (ds == 0.0f) {
            uint8_t L[16];
            float the_min;
            if (!keep) lq_q2_K_ref_search(x + 16 * s, L, &the_min);
            for (; e < end; ++e) codes[e] = keep ? keep[e] : L[e - 16 * s];
            continue;
        }
        for (; e < end; ++e) codes[e] = lq_clampi(lq_nearest_int((x[e] + dm) / ds), 0, 3);
    }
}

static LQ_HD inline float lq_q2_K_value(const lq_grid *g, int e, int32_t code) {
    return g->scale[e / 16] * (float)code - g->min[e / 16];
}

static LQ_HD inline void lq_q2_K_encode(const lq_grid *g, const int32_t *codes, void *block) {
    lq_block_q2_K *b = (lq_block_q2_K *)block;
    uint8_t L[LQ_QK_K];
    for (int e = 0; e < LQ_QK_K; ++e) L[e] = (uint8_t)codes[e];
    for (int s = 0; s < 16; ++s) b->scales[s] = (uint8_t)(g->sc[s] | (g->mn[s] << 4));
    lq_kq_pack_2bit(L, b->qs);
    b->d = g->d_bits;
    b->dmin = g->dmin_bits;
}

static LQ_HD inline void lq_q2_K_decode(const void *block, float *y) {
    const lq_block_q2_K *b = (const lq_block_q2_K *)block;
    float d = lq_fp16_to_f32(b->d), dmin = lq_fp16_to_f32(b->dmin);
    for (int s = 0; s < 16; ++s) {
        float dl = d * (float)(b->scales[s] & 0xF), ml = dmin * (float)(b->scales[s] >> 4);
        for (int l = 0; l < 16; ++l) y[16 * s + l] = dl * (float)lq_kq_get_2bit(b->qs, 16 * s + l) - ml;
    }
}

/* ---------------------------------------------------------------------------------------
 * Q8_K (activations: one float scale per 256, int8 codes, 16 partial sums). No imatrix.
 * ------------------------------------------------------------------------------------- */

/* g->id = iscale = -127/max (0 for an all-zero block); g->d = 1/iscale, stored as float. */
static LQ_HD inline void lq_q8_K_fit(const float *x, const float *qw, lq_grid *g, uint8_t *keep) {
    (void)qw; /* activations carry no importance */
    (void)keep;
    lq_kq_grid_init(g, LQ_TYPE_Q8_K, 1, LQ_QK_K, -128, 127);
    float amax;
    float max = lq_signed_absmax(LQ_QK_K, x, &amax);
    if (amax == 0.0f) return;
    g->id = -127.0f / max;
    g->d = 1.0f / g->id;
    g->scale[0] = g->d;
}

static LQ_HD inline void lq_q8_K_round(const lq_grid *g, const uint8_t *keep, const float *x,
                                       int first, int n, int32_t *codes) {
    (void)keep;
    for (int e = first; e < first + n; ++e) {
        int v = lq_nearest_int(g->id * x[e]);
        codes[e] = g->id == 0.0f ? 0 : (v < 127 ? v : 127);
    }
}

static LQ_HD inline float lq_q8_K_value(const lq_grid *g, int e, int32_t code) {
    (void)e;
    return g->d * (float)code;
}

static LQ_HD inline void lq_q8_K_encode(const lq_grid *g, const int32_t *codes, void *block) {
    lq_block_q8_K *b = (lq_block_q8_K *)block;
    b->d = g->d;
    for (int e = 0; e < LQ_QK_K; ++e) b->qs[e] = (int8_t)codes[e];
    for (int s = 0; s < 16; ++s) {
        int sum = 0;
        for (int l = 0; l < 16; ++l) sum += b->qs[16 * s + l];
        b->bsums[s] = (int16_t)sum;
    }
}

static LQ_HD inline void lq_q8_K_decode(const void *block, float *y) {
    const lq_block_q8_K *b = (const lq_block_q8_K *)block;
    for (int e = 0; e < LQ_QK_K; ++e) y[e] = b->d * (float)b->qs[e];
}

#endif
