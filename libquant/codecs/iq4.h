/* iq4.h — per-block math of IQ4_NL (32-element blocks) and IQ4_XS (256-element super-blocks of
 * eight 32-element sub-blocks), bit-exact with llama.cpp's quantize_iq4_nl / quantize_iq4_xs
 * (shared routine, ntry = 7, as llama-quantize uses them). Host and device code.
 *
 * Both formats store codes 0..15 that index the non-linear codebook K (LQ_IQ4_VALUES).
 * How they use lq_grid:
 *   IQ4_NL  d = the weighted least-squares scale (float), d_bits = fp16(d), id = 1/d (0 if d = 0);
 *           round: code = nearest codebook entry of id·x; scale[0] = fp32(d_bits).
 *   IQ4_XS  d = the super-block scale dS = −max_scale/32 (float), d_bits = fp16(dS);
 *           sc[b] = l_b + 32 (6-bit sub-block code); round in sub-block b: nearest codebook entry
 *           of x/(dS·l_b) computed as the reference does (1/(dS·l_b) with float dS);
 *           scale[b] = fp32(d_bits)·(sc[b] − 32) as the decoder forms it.
 *   min[] is 0: x ≈ scale[s]·K[code].
 *
 * fit() computes its own weighting from the block: sigma2 = 2·Σx²/len over the (super-)block,
 * w = qw·sqrt(sigma2 + x²) with importance, x² without; the row-level sigma2 is not used.
 */
#ifndef LQ_CODECS_IQ4_H
#define LQ_CODECS_IQ4_H

#include "blocks.h"
#include "common.h"

#define LQ_IQ4_NTRY 7 /* llama-quantize's quantize_iq4_nl / _xs */
#define LQ_IQ4_EPS 1e-15f

/* Codebook entry of a code, as float (exact: the entries are small integers). A local table works
 * on host and device alike. */
static LQ_HD inline float lq_iq4_value(int code) {
    const float k[16] = LQ_IQ4_VALUES;
    return k[code & 15];
}

/* Index of the codebook entry nearest to v; an exact midpoint goes to the upper entry; values
 * beyond the ends clamp; NaN ends at the top entry. The reference finds the bracketing pair
 * K[mu−1] <= v < K[mu] by binary search; counting the entries <= v gives the same mu without
 * data-dependent loads, and the final distance test is the reference's. */
static LQ_HD inline int lq_iq4_best_index(float v) {
    const float k[16] = LQ_IQ4_VALUES; /* float compares equal the reference's int8 ones */
    if (v <= k[0]) return 0;
    if (v >= k[15]) return 15;
    if (v != v) return 15;
    int mu = 0;
    for (int i = 0; i < 15; i++) mu += k[i] <= v;
    return v - k[mu - 1] < k[mu] - v ? mu - 1 : mu;
}

/* The best scale of one 32-element block: first guess from the largest-|x| element, weighted
 * least squares over its codes, then 2·ntry+1 further inverse scales on the other side of zero,
 * keeping the scale with the largest (Σwqx)²/Σwq². Returns 0 for an all-zero block and for a
 * block whose weights are all zero (where the reference's 0/0 would be NaN). */
static LQ_HD inline float lq_iq4_block_scale(const float *x, const float *w) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; j++) {
        float ax = fabsf(x[j]);
        if (ax > amax) {
            amax = ax;
            max = x[j];
        }
    }
    if (amax < LQ_IQ4_EPS) return 0.0f;
    const float k0 = lq_iq4_value(0);
    float d = -max / k0; /* ntry > 0 */
    float id = 1 / d;
    float sumqx = 0, sumq2 = 0;
    for (int j = 0; j < 32; j++) {
        float q = lq_iq4_value(lq_iq4_best_index(id * x[j]));
        sumqx += w[j] * q * x[j];
        sumq2 += w[j] * q * q;
    }
    d = sumq2 > 0 ? sumqx / sumq2 : 0.0f;
    float best = d * sumqx;
    for (int itry = -LQ_IQ4_NTRY; itry <= LQ_IQ4_NTRY; itry++) {
        id = (itry + k0) / max;
        sumqx = sumq2 = 0;
        for (int j = 0; j < 32; j++) {
            float q = lq_iq4_value(lq_iq4_best_index(id * x[j]));
            sumqx += w[j] * q * x[j];
            sumq2 += w[j] * q * q;
        }
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            d = sumqx / sumq2;
            best = d * sumqx;
        }
    }
    return d;
}

/* Weights of a (super-)block of len elements, as described at the top. */
static LQ_HD inline void lq_iq4_weights(const float *x, const float *qw, int len, float *w) {
    float sigma2 = 0;
    for (int j = 0; j < len; j++) sigma2 += x[j] * x[j];
    sigma2 *= 2.f / len;
    for (int j = 0; j < len; j++) w[j] = qw ? qw[j] * sqrtf(sigma2 + x[j] * x[j]) : x[j] * x[j];
}

static LQ_HD inline void lq_iq4_grid_init(lq_grid *g, lq_type type, int n) {
    memset(g, 0, sizeof *g);
    g->type = (int)type;
    g->n = n;
    g->n_sub = n / 32;
    g->sub_size = 32;
    g->qmin = 0;
    g->qmax = 15;
}

/* Packs 32 codes per sub-block in the Q4_0 nibble order. */
static LQ_HD inline void lq_iq4_pack(const int32_t *codes, int n, uint8_t *qs) {
    for (int b = 0; b < n / 32; b++)
        for (int j = 0; j < 16; j++)
            qs[16 * b + j] = (uint8_t)((codes[32 * b + j] & 15) | ((codes[32 * b + j + 16] & 15) << 4));
}

static LQ_HD inline int lq_iq4_code_at(const uint8_t *qs, int e) {
    int b = e / 32, j = e % 32;
    return j < 16 ? (qs[16 * b + j] & 15) : (qs[16 * b + j - 16] >> 4);
}

/* ---- IQ4_NL ----------------------------------------------------------------------------- */

static LQ_HD inline void lq_iq4_nl_fit(const float *x, const float *qw, float sigma2, lq_grid *g) {
    (void)sigma2;
    float w[32];
    lq_iq4_grid_init(g, LQ_TYPE_IQ4_NL, 32);
    lq_iq4_weights(x, qw, 32, w);
    float d = lq_iq4_block_scale(x, w);
    g->d = d;
    g->id = d != 0.0f ? 1 / d : 0.0f;
    g->d_bits = lq_fp16_from_f32(d);
    g->scale[0] = lq_fp16_to_f32(g->d_bits);
}
static LQ_HD inline void lq_iq4_nl_round(const lq_grid *g, const float *x, int first, int n,
                                         int32_t *codes) {
    for (int j = first; j < first + n; j++) codes[j] = lq_iq4_best_index(g->id * x[j]);
}
static LQ_HD inline float lq_iq4_nl_value(const lq_grid *g, int e, int32_t code) {
    (void)e;
    return g->scale[0] * lq_iq4_value(code);
}
static LQ_HD inline void lq_iq4_nl_encode(const lq_grid *g, const int32_t *codes, void *block) {
    lq_block_iq4_nl *b = (lq_block_iq4_nl *)block;
    b->d = g->d_bits;
    lq_iq4_pack(codes, 32, b->qs);
}
static LQ_HD inline void lq_iq4_nl_decode(const void *block, float *y) {
    const lq_block_iq4_nl *b = (const lq_block_iq4_nl *)block;
    float d = lq_fp16_to_f32(b->d);
    for (int j = 0; j < 32; j++) y[j] = d * lq_iq4_value(lq_iq4_code_at(b->qs, j));
}

/* ---- IQ4_XS ----------------------------------------------------------------------------- */

static LQ_HD inline void lq_iq4_xs_fit(const float *x, const float *qw, float sigma2, lq_grid *g) {
    (void)sigma2;
    float w[LQ_QK_K], scales[LQ_QK_K / 32];
    lq_iq4_grid_init(g, LQ_TYPE_IQ4_XS, LQ_QK_K);
    lq_iq4_weights(x, qw, LQ_QK_K, w);
    float max_scale = 0, amax_scale = 0;
    bool finite = true;
    for (int b = 0; b < LQ_QK_K / 32; b++) {
        scales[b] = lq_iq4_block_scale(x + 32 * b, w + 32 * b);
        float ad = fabsf(scales[b]);
        if (!(ad <= 3.4e38f)) finite = false; /* NaN/Inf from overflowing sums */
        if (ad > amax_scale) {
            amax_scale = ad;
            max_scale = scales[b];
        }
    }
    float d = -max_scale / 32; /* -0.0f for an all-zero super-block, as stored by the reference */
    g->d = d;
    g->d_bits = finite ? lq_fp16_from_f32(d) : (uint16_t)0x7E00u; /* rejected by the caller */
    float id = d != 0.0f ? 1.f / d : 0.f;
    float dhat = lq_fp16_to_f32(g->d_bits);
    for (int b = 0; b < LQ_QK_K / 32; b++) {
        int l = lq_nearest_int(id * scales[b]);
        l = l < -32 ? -32 : (l > 31 ? 31 : l);
        g->sc[b] = (uint8_t)(l + 32);
        g->scale[b] = dhat * (float)l;
    }
}
static LQ_HD inline void lq_iq4_xs_round(const lq_grid *g, const float *x, int first, int n,
                                         int32_t *codes) {
    int sub = -1;
    float idl = 0.0f;
    for (int j = first; j < first + n; j++) {
        if (j / 32 != sub) {
            sub = j / 32;
            float dl = g->d * (float)((int)g->sc[sub] - 32);
            idl = dl != 0.0f ? 1.f / dl : 0.f;
        }
        codes[j] = lq_iq4_best_index(idl * x[j]);
    }
}
static LQ_HD inline float lq_iq4_xs_value(const lq_grid *g, int e, int32_t code) {
    return g->scale[e / 32] * lq_iq4_value(code);
}
static LQ_HD inline void lq_iq4_xs_encode(const lq_grid *g, const int32_t *codes, void *block) {
    lq_block_iq4_xs *b = (lq_block_iq4_xs *)block;
    b->d = g->d_bits;
    uint16_t sh = 0;
    for (int s = 0; s < 4; s++) b->scales_l[s] = 0;
    for (int s = 0; s < LQ_QK_K / 32; s++) {
        int ls = g->sc[s];
        b->scales_l[s / 2] |= (uint8_t)((ls & 15) << (4 * (s % 2)));
        sh |= (uint16_t)((ls >> 4) << (2 * s));
    }
    b->scales_h = sh;
    lq_iq4_pack(codes, LQ_QK_K, b->qs);
}
static LQ_HD inline void lq_iq4_xs_decode(const void *block, float *y) {
    const lq_block_iq4_xs *b = (const lq_block_iq4_xs *)block;
    float d = lq_fp16_to_f32(b->d);
    for (int s = 0; s < LQ_QK_K / 32; s++) {
        int ls = ((b->scales_l[s / 2] >> (4 * (s % 2))) & 15) | (((b->scales_h >> (2 * s)) & 3) << 4);
        float dl = d * (float)(ls - 32);
        for (int j = 0; j < 32; j++)
            y[32 * s + j] = dl * lq_iq4_value(lq_iq4_code_at(b->qs, 32 * s + j));
    }
}

#endif
