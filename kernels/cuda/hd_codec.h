/* hd_codec.h — the block codecs as one switch on the type, for host and device code.
 *
 * The codec tables (libquant/codecs/codec.h) hold host function pointers, which device code
 * cannot call. These dispatchers call the same per-format static LQ_HD functions (legacy.h,
 * kquants.h, iq4.h) through a switch, so a CUDA kernel runs exactly the codec math the CPU runs.
 * Compiled as C11 on the host (tests/cuda/test_cuda_host.c compares every dispatcher with the
 * codec tables bit for bit) and as CUDA C++ under nvcc (-fmad=false, like the host's
 * -ffp-contract=off: no contraction, same float operations in the same order).
 *
 * Semantics equal the public lq_grid_* functions: K-quant fits keep their search codes in
 * grid->keep and rounds take them from there (as codec.c's tables do); fit reports whether the
 * stored fp16 scales are finite (lq_grid_fit's LQ_ERR_NUMERIC). */
#ifndef LQ_CUDA_HD_CODEC_H
#define LQ_CUDA_HD_CODEC_H

#include "libquant/codecs/iq4.h"
#include "libquant/codecs/kquants.h"
#include "libquant/codecs/legacy.h"

/* Elements per block (super-block) of a weight type with a codec; 0 for any other type. */
static LQ_HD inline int lq_hd_block_size(int type) {
    switch (type) {
    case LQ_TYPE_Q4_0: case LQ_TYPE_Q4_1: case LQ_TYPE_Q5_0: case LQ_TYPE_Q5_1:
    case LQ_TYPE_Q8_0: case LQ_TYPE_IQ4_NL:
        return LQ_QK;
    case LQ_TYPE_Q2_K: case LQ_TYPE_Q3_K: case LQ_TYPE_Q4_K: case LQ_TYPE_Q5_K:
    case LQ_TYPE_Q6_K: case LQ_TYPE_IQ4_XS:
        return LQ_QK_K;
    default:
        return 0;
    }
}

/* Bytes per block of those types; 0 for any other type. */
static LQ_HD inline int lq_hd_block_bytes(int type) {
    switch (type) {
    case LQ_TYPE_Q4_0: return (int)sizeof(lq_block_q4_0);
    case LQ_TYPE_Q4_1: return (int)sizeof(lq_block_q4_1);
    case LQ_TYPE_Q5_0: return (int)sizeof(lq_block_q5_0);
    case LQ_TYPE_Q5_1: return (int)sizeof(lq_block_q5_1);
    case LQ_TYPE_Q8_0: return (int)sizeof(lq_block_q8_0);
    case LQ_TYPE_IQ4_NL: return (int)sizeof(lq_block_iq4_nl);
    case LQ_TYPE_Q2_K: return (int)sizeof(lq_block_q2_K);
    case LQ_TYPE_Q3_K: return (int)sizeof(lq_block_q3_K);
    case LQ_TYPE_Q4_K: return (int)sizeof(lq_block_q4_K);
    case LQ_TYPE_Q5_K: return (int)sizeof(lq_block_q5_K);
    case LQ_TYPE_Q6_K: return (int)sizeof(lq_block_q6_K);
    case LQ_TYPE_IQ4_XS: return (int)sizeof(lq_block_iq4_xs);
    default: return 0;
    }
}

/* Decodes one block into y[block_size]; false (nothing written) for other types. */
static LQ_HD inline bool lq_hd_decode(int type, const void *block, float *y) {
    switch (type) {
    case LQ_TYPE_Q4_0: lq_q4_0_decode(block, y); return true;
    case LQ_TYPE_Q4_1: lq_q4_1_decode(block, y); return true;
    case LQ_TYPE_Q5_0: lq_q5_0_decode(block, y); return true;
    case LQ_TYPE_Q5_1: lq_q5_1_decode(block, y); return true;
    case LQ_TYPE_Q8_0: lq_q8_0_decode(block, y); return true;
    case LQ_TYPE_IQ4_NL: lq_iq4_nl_decode(block, y); return true;
    case LQ_TYPE_Q2_K: lq_q2_K_decode(block, y); return true;
    case LQ_TYPE_Q3_K: lq_q3_K_decode(block, y); return true;
    case LQ_TYPE_Q4_K: lq_q4_K_decode(block, y); return true;
    case LQ_TYPE_Q5_K: lq_q5_K_decode(block, y); return true;
    case LQ_TYPE_Q6_K: lq_q6_K_decode(block, y); return true;
    case LQ_TYPE_IQ4_XS: lq_iq4_xs_decode(block, y); return true;
    default: return false;
    }
}

static LQ_HD inline bool lq_hd_fp16_finite(uint16_t h) { return (h & 0x7C00u) != 0x7C00u; }

/* lq_grid_fit: fits the grid of one block; true when its stored scales are finite (the grid
 * may be encoded), false for an overflowing block or a type without codec. */
static LQ_HD inline bool lq_hd_fit(int type, const float *x, const float *importance,
                                   float sigma2, lq_grid *g) {
    switch (type) {
    case LQ_TYPE_Q4_0: lq_q4_0_fit(x, importance, sigma2, g); break;
    case LQ_TYPE_Q4_1: lq_q4_1_fit(x, importance, sigma2, g); break;
    case LQ_TYPE_Q5_0: lq_q5_0_fit(x, importance, sigma2, g); break;
    case LQ_TYPE_Q5_1: lq_q5_1_fit(x, importance, sigma2, g); break;
    case LQ_TYPE_Q8_0: lq_q8_0_fit(x, importance, sigma2, g); break;
    case LQ_TYPE_IQ4_NL: lq_iq4_nl_fit(x, importance, sigma2, g); break;
    case LQ_TYPE_IQ4_XS: lq_iq4_xs_fit(x, importance, sigma2, g); break;
    /* K-quants weight with the super-block's own mean square (sigma2 unused), keep in g */
    case LQ_TYPE_Q2_K: lq_q2_K_fit(x, importance, g, g->keep); break;
    case LQ_TYPE_Q3_K: lq_q3_K_fit(x, importance, g, g->keep); break;
    case LQ_TYPE_Q4_K: lq_q4_K_fit(x, importance, g, g->keep); break;
    case LQ_TYPE_Q5_K: lq_q5_K_fit(x, importance, g, g->keep); break;
    case LQ_TYPE_Q6_K: lq_q6_K_fit(x, importance, g, g->keep); break;
    default: return false;
    }
    return lq_hd_fp16_finite(g->d_bits) && lq_hd_fp16_finite(g->dmin_bits);
}

/* lq_grid_round: codes[first .. first+n-1] of x on the fitted grid (range checked as there). */
static LQ_HD inline void lq_hd_round(const lq_grid *g, const float *x, int first, int n,
                                     int32_t *codes) {
    if (first < 0 || n < 0 || first > g->n - n || g->n != lq_hd_block_size(g->type)) return;
    switch (g->type) {
    case LQ_TYPE_Q4_0: lq_q4_0_round(g, x, first, n, codes); break;
    case LQ_TYPE_Q4_1: lq_q4_1_round(g, x, first, n, codes); break;
    case LQ_TYPE_Q5_0: lq_q5_0_round(g, x, first, n, codes); break;
    case LQ_TYPE_Q5_1: lq_q5_1_round(g, x, first, n, codes); break;
    case LQ_TYPE_Q8_0: lq_q8_0_round(g, x, first, n, codes); break;
    case LQ_TYPE_IQ4_NL: lq_iq4_nl_round(g, x, first, n, codes); break;
    case LQ_TYPE_IQ4_XS: lq_iq4_xs_round(g, x, first, n, codes); break;
    case LQ_TYPE_Q2_K: lq_q2_K_round(g, g->keep, x, first, n, codes); break;
    case LQ_TYPE_Q3_K: lq_q3_K_round(g, g->keep, x, first, n, codes); break;
    case LQ_TYPE_Q4_K: lq_q4_K_round(g, g->keep, x, first, n, codes); break;
    case LQ_TYPE_Q5_K: lq_q5_K_round(g, g->keep, x, first, n, codes); break;
    case LQ_TYPE_Q6_K: lq_q6_K_round(g, g->keep, x, first, n, codes); break;
    default: break;
    }
}

/* lq_grid_value: the decoder's value of code at element e; NaN outside the block or range. */
static LQ_HD inline float lq_hd_value(const lq_grid *g, int e, int32_t code) {
    float nan_value = lq_bits_f32(0x7FC00000u);
    if (g->n != lq_hd_block_size(g->type) || e < 0 || e >= g->n || code < g->qmin ||
        code > g->qmax)
        return nan_value;
    switch (g->type) {
    case LQ_TYPE_Q4_0: return lq_q4_0_value(g, e, code);
    case LQ_TYPE_Q4_1: return lq_q4_1_value(g, e, code);
    case LQ_TYPE_Q5_0: return lq_q5_0_value(g, e, code);
    case LQ_TYPE_Q5_1: return lq_q5_1_value(g, e, code);
    case LQ_TYPE_Q8_0: return lq_q8_0_value(g, e, code);
    case LQ_TYPE_IQ4_NL: return lq_iq4_nl_value(g, e, code);
    case LQ_TYPE_IQ4_XS: return lq_iq4_xs_value(g, e, code);
    case LQ_TYPE_Q2_K: return lq_q2_K_value(g, e, code);
    case LQ_TYPE_Q3_K: return lq_q3_K_value(g, e, code);
    case LQ_TYPE_Q4_K: return lq_q4_K_value(g, e, code);
    case LQ_TYPE_Q5_K: return lq_q5_K_value(g, e, code);
    case LQ_TYPE_Q6_K: return lq_q6_K_value(g, e, code);
    default: return nan_value;
    }
}

/* lq_grid_encode: packs grid->n codes with the grid's parameters into one block. */
static LQ_HD inline void lq_hd_encode(const lq_grid *g, const int32_t *codes, void *block) {
    if (g->n != lq_hd_block_size(g->type)) return;
    switch (g->type) {
    case LQ_TYPE_Q4_0: lq_q4_0_encode(g, codes, block); break;
    case LQ_TYPE_Q4_1: lq_q4_1_encode(g, codes, block); break;
    case LQ_TYPE_Q5_0: lq_q5_0_encode(g, codes, block); break;
    case LQ_TYPE_Q5_1: lq_q5_1_encode(g, codes, block); break;
    case LQ_TYPE_Q8_0: lq_q8_0_encode(g, codes, block); break;
    case LQ_TYPE_IQ4_NL: lq_iq4_nl_encode(g, codes, block); break;
    case LQ_TYPE_IQ4_XS: lq_iq4_xs_encode(g, codes, block); break;
    case LQ_TYPE_Q2_K: lq_q2_K_encode(g, codes, block); break;
    case LQ_TYPE_Q3_K: lq_q3_K_encode(g, codes, block); break;
    case LQ_TYPE_Q4_K: lq_q4_K_encode(g, codes, block); break;
    case LQ_TYPE_Q5_K: lq_q5_K_encode(g, codes, block); break;
    case LQ_TYPE_Q6_K: lq_q6_K_encode(g, codes, block); break;
    default: break;
    }
}

/* One block through fit → round → encode (the row quantizer's inner step), also writing the
 * decoded values to y when y != NULL (decode of the encoded block: what a file stores).
 * codes: scratch of block_size. false when the block's scales overflow fp16. */
static LQ_HD inline bool lq_hd_quantize_block(int type, const float *x, const float *importance,
                                              float sigma2, lq_grid *g, int32_t *codes,
                                              void *block, float *y) {
    if (!lq_hd_fit(type, x, importance, sigma2, g)) return false;
    lq_hd_round(g, x, 0, g->n, codes);
    lq_hd_encode(g, codes, block);
    if (y) lq_hd_decode(type, block, y);
    return true;
}

#endif
