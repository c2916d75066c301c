/* avx512.c — the AVX-512 path (F, BW, VL, DQ, VNNI): the 256-bit kernels of simd256.h with
 * vpdpbusd for the u8×s8 products, plus 512-bit dot products for the legacy formats, whose
 * 32-element blocks are too small for the 256-bit code to stay ahead of memory. (A 512-bit
 * Q4_K kernel measured slower than the 256-bit one here: maddubs/madd on 512-bit vectors
 * issue on one port only, so the K-quants keep the 256-bit code for single rows. Batches of
 * tokens are another matter: the K-quant tiles at the end unpack each block once for several
 * tokens and give the same bits.)
 *
 * The 512-bit legacy kernels handle 8 blocks per step: the 8 fp16 scales of the weights and
 * of the activations are gathered and converted at once (per-block scalar conversion costs
 * as much as the integer work), and two blocks share each 512-bit product. vpdpbusd takes
 * unsigned × signed bytes, so signed weight codes enter as code + offset (unsigned) and the
 * offset times Σy (one more vpdpbusd with a constant) is subtracted: exact in int32.
 * Two-row variants share the activation side (loads, scales, offset sums) between two
 * weight rows: lq_kernel_matvec_q uses them. */
#define LQ_SIMD_VNNI 1
#include "simd256.h"

#include <stdlib.h>

/* Sum of the 16 lanes of a block pair's products, laid out as 128-bit chunks
 * [A, B, A, B] (nibble formats: low nibbles of A and B, then their high nibbles). */
static inline __m512i pair_perm_abab(int p) {
    return _mm512_setr_epi32(2 * p, 2 * p, 2 * p, 2 * p, 2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1,
                             2 * p, 2 * p, 2 * p, 2 * p, 2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1);
}
/* ... or as 256-bit halves [A, B] (Q8_0: whole blocks side by side). */
static inline __m512i pair_perm_ab(int p) {
    return _mm512_setr_epi32(2 * p, 2 * p, 2 * p, 2 * p, 2 * p, 2 * p, 2 * p, 2 * p, 2 * p + 1, 2 * p + 1,
                             2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1);
}

/* fp16 fields of 8 consecutive blocks (block_bytes apart, first at p) → 8 floats. */
static inline __m256 gather_h8(const void *p, __m256i offsets) {
    __m256i w = _mm256_i32gather_epi32((const int *)p, offsets, 1); /* 4 bytes from each field */
    return _mm256_cvtph_ps(_mm256_cvtepi32_epi16(w));
}

/* ... of 16 consecutive blocks → 16 floats (one gather instead of two). */
static inline __m512 gather_h16(const void *p, __m512i offsets) {
    __m512i w = _mm512_i32gather_epi32(offsets, p, 1);
    return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(w));
}
static inline __m512i strides16(int stride) {
    return _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                              _mm512_set1_epi32(stride));
}

static inline __m256i strides8(int stride) {
    return _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(stride));
}

/* Activations of a block pair in the [A lo16, B lo16, A hi16, B hi16] order of the nibble
 * formats (the activation blocks' qs sit at qs_off, blocks stride bytes apart). */
static inline __m512i y_pair_abab(const uint8_t *ya, int stride) {
    __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)ya)),
                                   _mm256_loadu_si256((const __m256i *)(ya + stride)), 1);
    return _mm512_shuffle_i64x2(v, v, _MM_SHUFFLE(3, 1, 2, 0));
}
/* ... and whole blocks side by side [A 32 | B 32] (Q8_0 weights). */
static inline __m512i y_pair_ab(const uint8_t *ya, int stride) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)ya)),
                              _mm256_loadu_si256((const __m256i *)(ya + stride)), 1);
}

/* Nibbles of a block pair: [A lo, B lo, A hi, B hi] as bytes 0..15. */
static inline __m512i nibbles_pair(const uint8_t *qa, const uint8_t *qb) {
    __m256i q = _mm256_loadu2_m128i((const __m128i *)qb, (const __m128i *)qa);
    __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1);
    return _mm512_and_si512(v, _mm512_set1_epi8(15));
}

/* 5th bits of a block pair in the nibble order, as bytes 0 or value. */
static inline __m512i qh_pair_bytes(const uint8_t *qha, const uint8_t *qhb, char value) {
    uint64_t a = s_load_u32(qha), b = s_load_u32(qhb);
    uint64_t m = (a & 0xFFFF) | ((b & 0xFFFF) << 16) | ((a >> 16) << 32) | ((b >> 16) << 48);
    return _mm512_maskz_mov_epi8((__mmask64)m, _mm512_set1_epi8(value));
}

/* Per format: the unsigned weight codes of a block pair (U), the activation order (YPAIR),
 * the lane→block permutation (PERM) and the code offset (OFFSET: Σ (u − OFFSET)·y is formed
 * as Σ u·y − Σ OFFSET·y; 0 for the unsigned formats). */
static inline __m512i u_q4_0(const lq_block_q4_0 *x) { return nibbles_pair(x[0].qs, x[1].qs); }
static inline __m512i u_q4_1(const lq_block_q4_1 *x) { return nibbles_pair(x[0].qs, x[1].qs); }
static inline __m512i u_q5_0(const lq_block_q5_0 *x) {
    return _mm512_or_si512(nibbles_pair(x[0].qs, x[1].qs), qh_pair_bytes(x[0].qh, x[1].qh, 16));
}
static inline __m512i u_q5_1(const lq_block_q5_1 *x) {
    return _mm512_or_si512(nibbles_pair(x[0].qs, x[1].qs), qh_pair_bytes(x[0].qh, x[1].qh, 16));
}
/* IQ4_NL: codebook values + 128 (1..241) looked up per 128-bit lane */
static inline __m512i u_iq4_nl(const lq_block_iq4_nl *x) {
    const __m512i table = _mm512_broadcast_i32x4(
        _mm_add_epi8(_mm_loadu_si128((const __m128i *)lq_iq4_values), _mm_set1_epi8((char)0x80)));
    return _mm512_shuffle_epi8(table, nibbles_pair(x[0].qs, x[1].qs));
}
/* Q8_0: weights + 128 (x = −128 gives 0) */
static inline __m512i u_q8_0(const lq_block_q8_0 *x) {
    return _mm512_xor_si512(y_pair_ab((const uint8_t *)x[0].qs, (int)sizeof *x), _mm512_set1_epi8((char)0x80));
}

/* Σ OFFSET·y per lane, shared by every weight row multiplied with the same activations */
static inline __m512i offset_dot(__m512i yv, char offset) {
    return offset ? _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(offset), yv) : _mm512_setzero_si512();
}
static inline __m512 pair_ints_ps(__m512i u, __m512i yv, __m512i off) {
    return _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), u, yv), off));
}

/* Q4_1/Q5_1 min term: Σ m·s of 8 blocks */
#define NO_MIN(accm, xb, yb, gx, gy) (void)0
#define WITH_MIN(accm, xb, yb, gx, gy) accm = _mm256_fmadd_ps(gather_h8(&(xb)->m, gx), gather_h8(&(yb)->s, gy), accm)

/* One row: 16 blocks per step (one gather of 16 scales per side), then 8, the rest of the
 * row by the 256-bit kernel. The two-row variant below steps by 8 blocks (16 would run out of
 * registers) but performs, for each row, exactly these float operations in this order (the
 * 16-block step is two 8-block steps with the scales gathered at once), so both give
 * identical bits. */
#define LEGACY_DOT512(name, wblock_t, ablock_t, U, YPAIR, PERM, OFFSET, MIN_TERM, tail_fn)      \
    static float name(const void *row, const void *act, int64_t n) {                          \
        const wblock_t *x = (const wblock_t *)row;                                             \
        const ablock_t *y = (const ablock_t *)act;                                             \
        const int64_t nb = n / 32;                                                             \
        const __m256i gx = strides8((int)sizeof(wblock_t)), gy = strides8((int)sizeof(ablock_t)); \
        __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();                         \
        __m256 accm = _mm256_setzero_ps();                                                     \
        const __m512i gx16 = strides16((int)sizeof(wblock_t)), gy16 = strides16((int)sizeof(ablock_t)); \
        int64_t i = 0;                                                                         \
        for (; i + 16 <= nb; i += 16) { /* as two 8-block steps, with one gather each */       \
            const wblock_t *xb = x + i;                                                        \
            const ablock_t *yb = y + i;                                                        \
            prefetch_ahead(xb, 16 * sizeof(wblock_t));                                         \
            __m512 d16 = _mm512_mul_ps(gather_h16(&xb->d, gx16), gather_h16(&yb->d, gy16));   \
            for (int p = 0; p < 8; p++) {                                                      \
                __m512i yv = YPAIR((const uint8_t *)yb[2 * p].qs, (int)sizeof(ablock_t));      \
                __m512 v = pair_ints_ps(U(xb + 2 * p), yv, offset_dot(yv, OFFSET));            \
                __m512 dp = _mm512_permutexvar_ps(_mm512_add_epi32(PERM(p & 3), _mm512_set1_epi32(p & 4 ? 8 : 0)), d16); \
                if (p & 1) acc1 = _mm512_fmadd_ps(v, dp, acc1);                                \
                else acc0 = _mm512_fmadd_ps(v, dp, acc0);                                      \
            }                                                                                  \
            MIN_TERM(accm, xb, yb, gx, gy);                                                    \
            MIN_TERM(accm, xb + 8, yb + 8, gx, gy);                                            \
        }                                                                                      \
        for (; i + 8 <= nb; i += 8) {                                                          \
            const wblock_t *xb = x + i;                                                        \
            const ablock_t *yb = y + i;                                                        \
            prefetch_ahead(xb, 8 * sizeof(wblock_t));                                          \
            __m512 d = _mm512_castps256_ps512(_mm256_mul_ps(gather_h8(&xb->d, gx), gather_h8(&yb->d, gy))); \
            for (int p = 0; p < 4; p++) {                                                      \
                __m512i yv = YPAIR((const uint8_t *)yb[2 * p].qs, (int)sizeof(ablock_t));      \
                __m512 v = pair_ints_ps(U(xb + 2 * p), yv, offset_dot(yv, OFFSET));            \
                if (p & 1) acc1 = _mm512_fmadd_ps(v, _mm512_permutexvar_ps(PERM(p), d), acc1); \
                else acc0 = _mm512_fmadd_ps(v, _mm512_permutexvar_ps(PERM(p), d), acc0);       \
            }                                                                                  \
            MIN_TERM(accm, xb, yb, gx, gy);                                                    \
        }                                                                                      \
        float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) + hsum_ps(accm);          \
        if (i < nb) sum += tail_fn(x + i, y + i, (nb - i) * 32);                               \
        return sum;                                                                            \
    }

/* Two rows against the same activations: the activation loads, their scales and the offset
 * sums are computed once for both rows. */
#define LEGACY_DOT512_2(name, wblock_t, ablock_t, U, YPAIR, PERM, OFFSET, MIN_TERM, tail_fn)    \
    static void name(const void *row0, const void *row1, const void *act, int64_t n, float out[2]) { \
        const wblock_t *x0 = (const wblock_t *)row0, *x1 = (const wblock_t *)row1;              \
        const ablock_t *y = (const ablock_t *)act;                                             \
        const int64_t nb = n / 32;                                                             \
        const __m256i gx = strides8((int)sizeof(wblock_t)), gy = strides8((int)sizeof(ablock_t)); \
        __m512 a00 = _mm512_setzero_ps(), a01 = a00, a10 = a00, a11 = a00;                     \
        __m256 am0 = _mm256_setzero_ps(), am1 = am0;                                           \
        int64_t i = 0;                                                                         \
        for (; i + 8 <= nb; i += 8) {                                                          \
            const wblock_t *xb0 = x0 + i, *xb1 = x1 + i;                                       \
            const ablock_t *yb = y + i;                                                        \
            prefetch_ahead(xb0, 8 * sizeof(wblock_t));                                         \
            prefetch_ahead(xb1, 8 * sizeof(wblock_t));                                         \
            __m256 dy = gather_h8(&yb->d, gy);                                                 \
            __m512 d0 = _mm512_castps256_ps512(_mm256_mul_ps(gather_h8(&xb0->d, gx), dy));     \
            __m512 d1 = _mm512_castps256_ps512(_mm256_mul_ps(gather_h8(&xb1->d, gx), dy));     \
            for (int p = 0; p < 4; p++) {                                                      \
                __m512i yv = YPAIR((const uint8_t *)yb[2 * p].qs, (int)sizeof(ablock_t));      \
                __m512i off = offset_dot(yv, OFFSET);                                          \
                __m512 v0 = pair_ints_ps(U(xb0 + 2 * p), yv, off);                             \
                __m512 v1 = pair_ints_ps(U(xb1 + 2 * p), yv, off);                             \
                __m512i perm = PERM(p);                                                        \
                if (p & 1) {                                                                   \
                    a01 = _mm512_fmadd_ps(v0, _mm512_permutexvar_ps(perm, d0), a01);           \
                    a11 = _mm512_fmadd_ps(v1, _mm512_permutexvar_ps(perm, d1), a11);           \
                } else {                                                                       \
                    a00 = _mm512_fmadd_ps(v0, _mm512_permutexvar_ps(perm, d0), a00);           \
                    a10 = _mm512_fmadd_ps(v1, _mm512_permutexvar_ps(perm, d1), a10);           \
                }                                                                              \
            }                                                                                  \
            MIN_TERM(am0, xb0, yb, gx, gy);                                                    \
            MIN_TERM(am1, xb1, yb, gx, gy);                                                    \
        }                                                                                      \
        out[0] = _mm512_reduce_add_ps(_mm512_add_ps(a00, a01)) + hsum_ps(am0);                \
        out[1] = _mm512_reduce_add_ps(_mm512_add_ps(a10, a11)) + hsum_ps(am1);                \
        if (i < nb) {                                                                          \
            out[0] += tail_fn(x0 + i, y + i, (nb - i) * 32);                                   \
            out[1] += tail_fn(x1 + i, y + i, (nb - i) * 32);                                   \
        }                                                                                      \
    }

#define LEGACY_BOTH(fmt, wblock_t, ablock_t, YPAIR, PERM, OFFSET, MIN_TERM)                         \
    LEGACY_DOT512(z_dotq_##fmt, wblock_t, ablock_t, u_##fmt, YPAIR, PERM, OFFSET, MIN_TERM, v_dotq_##fmt) \
    LEGACY_DOT512_2(z_dotq2_##fmt, wblock_t, ablock_t, u_##fmt, YPAIR, PERM, OFFSET, MIN_TERM, v_dotq_##fmt)

LEGACY_BOTH(q4_0, lq_block_q4_0, lq_block_q8_0, y_pair_abab, pair_perm_abab, 8, NO_MIN)
LEGACY_BOTH(q5_0, lq_block_q5_0, lq_block_q8_0, y_pair_abab, pair_perm_abab, 16, NO_MIN)
LEGACY_BOTH(iq4_nl, lq_block_iq4_nl, lq_block_q8_0, y_pair_abab, pair_perm_abab, (char)0x80, NO_MIN)
LEGACY_BOTH(q8_0, lq_block_q8_0, lq_block_q8_0, y_pair_ab, pair_perm_ab, (char)0x80, NO_MIN)
LEGACY_BOTH(q4_1, lq_block_q4_1, lq_block_q8_1, y_pair_abab, pair_perm_abab, 0, WITH_MIN)
LEGACY_BOTH(q5_1, lq_block_q5_1, lq_block_q8_1, y_pair_abab, pair_perm_abab, 0, WITH_MIN)

/* ---- bulk half conversions, 16 lanes, masked tails; NaNs as the scalar reference ---- */
static inline __m512 h16_to_ps(__m256i h) {
    __m512 f = _mm512_cvtph_ps(h);
    __m512i w = _mm512_cvtepu16_epi32(h);
    __m512i man = _mm512_and_si512(w, _mm512_set1_epi32(0x3FF));
    __mmask16 is_nan = _mm512_cmpeq_epi32_mask(_mm512_and_si512(w, _mm512_set1_epi32(0x7C00)), _mm512_set1_epi32(0x7C00)) &
                       _mm512_test_epi32_mask(man, man);
    /* F16C quiets signalling NaNs; the reference keeps the payload bits as they are */
    __m512i nan_bits = _mm512_or_si512(_mm512_slli_epi32(_mm512_and_si512(w, _mm512_set1_epi32(0x8000)), 16),
                                       _mm512_or_si512(_mm512_set1_epi32(0x7F800000), _mm512_slli_epi32(man, 13)));
    return _mm512_mask_blend_ps(is_nan, f, _mm512_castsi512_ps(nan_bits));
}

static inline __m256i ps_to_h16(__m512 f) {
    __mmask16 is_nan = _mm512_cmp_ps_mask(f, f, _CMP_UNORD_Q);
    __m512i sign = _mm512_and_si512(_mm512_castps_si512(f), _mm512_set1_epi32((int)0x80000000u));
    __m512 qnan = _mm512_castsi512_ps(_mm512_or_si512(sign, _mm512_set1_epi32(0x7FC00000)));
    return _mm512_cvtps_ph(_mm512_mask_blend_ps(is_nan, f, qnan), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

static inline __m256i ps_to_bf16x16(__m512 f) {
    __m512i u = _mm512_castps_si512(f);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF))), 16);
    __mmask16 is_nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7FFFFFFF)),
                                               _mm512_set1_epi32(0x7F800000));
    __m512i nan = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(64));
    return _mm512_cvtepi32_epi16(_mm512_mask_blend_epi32(is_nan, rounded, nan));
}

static inline __mmask16 tail_mask(size_t left) { return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1); }

static void z_fp16_to_f32(const uint16_t *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(dst + i, m, h16_to_ps(_mm256_maskz_loadu_epi16(m, src + i)));
    }
}
static void z_f32_to_fp16(const float *src, uint16_t *dst, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        _mm256_mask_storeu_epi16(dst + i, m, ps_to_h16(_mm512_maskz_loadu_ps(m, src + i)));
    }
}
static void z_bf16_to_f32(const uint16_t *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, src + i));
        _mm512_mask_storeu_ps(dst + i, m, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
    }
}
static void z_f32_to_bf16(const float *src, uint16_t *dst, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        _mm256_mask_storeu_epi16(dst + i, m, ps_to_bf16x16(_mm512_maskz_loadu_ps(m, src + i)));
    }
}
static void z_deq_f16(const void *src, float *dst, int64_t n) { z_fp16_to_f32((const uint16_t *)src, dst, (size_t)n); }
static void z_deq_bf16(const void *src, float *dst, int64_t n) { z_bf16_to_f32((const uint16_t *)src, dst, (size_t)n); }
static void z_quant_f16(const float *x, void *dst, int64_t n) { z_f32_to_fp16(x, (uint16_t *)dst, (size_t)n); }
static void z_quant_bf16(const float *x, void *dst, int64_t n) { z_f32_to_bf16(x, (uint16_t *)dst, (size_t)n); }

/* ---------------------------------------------------------------------------------------
 * K-quant rows × tokens (Q2_K…Q6_K, IQ4_XS: the batch products of prompt processing)
 *
 * Four rows at a time are first unpacked for all their blocks into 512-bit vectors (codes as
 * unsigned bytes, scales as int16 lanes; Q2_K…Q6_K through the 256-bit tiles' unpacking, two
 * groups per vector), then met by the batch's tokens four at a time. Per
 * 64 elements, maddubs (adjacent pairs) then vpdpwssd (× the scale of each pair's sub-block,
 * adjacent pairs again) add into 16 int32 lanes per row and token. Lane k holds elements
 * 4k..4k+3 of the first 32 and lane 8+k those of the second 32, so folding the halves gives
 * exactly the integers of the 256-bit kernel's lane k (v_dotq_q4_K and its siblings), and the
 * float steps after that are theirs, lane for lane: acc += (d_y·d) × (float)sumi, then the
 * second term, second += (d_y·d2) × (float)(Σ_k m_k·bsums_k << shift) (Q2_K, Q4_K, Q5_K: the
 * mins, d2 = dmin; Q3_K, Q6_K: the −4 or −32 offset, d2 = d, shift 2 or 5; IQ4_XS: none), and
 * y = hsum(acc) − second. The tiles therefore return the dot kernels' bits, and a token decoded
 * alone gets the batch's logits.
 * ------------------------------------------------------------------------------------- */
#define GQ_ROWS 4
#define GQ_TOKS 4

/* One block of one row, ready for the tile. */
typedef struct kq_unpacked {
    __m512i codes[4], scales[4]; /* per 64 elements */
    __m256i mterms;              /* m_k per 16-element bsum */
    __mmask64 neg[4];            /* IQ4_XS: codes are |value|, these elements negative */
    float d, d2;
} kq_unpacked;

/* Q2_K…Q6_K: the 256-bit tiles' unpacking (simd256.h), its 32-element groups 2c and 2c+1 put
 * side by side: their codes, and their scale lanes, are exactly the halves of this tile's
 * 64-element chunk c. */
static void kq_widen(void (*unpack)(const void *, int64_t, vq_unpacked *), size_t block_bytes, const void *row,
                     int64_t n_blocks, kq_unpacked *u) {
    for (int64_t i = 0; i < n_blocks; i++) {
        vq_unpacked v;
        unpack((const uint8_t *)row + (size_t)i * block_bytes, 1, &v);
        for (int c = 0; c < 4; c++) {
            u[i].codes[c] = _mm512_inserti64x4(_mm512_castsi256_si512(v.codes[2 * c]), v.codes[2 * c + 1], 1);
            u[i].scales[c] = _mm512_inserti64x4(_mm512_castsi256_si512(v.scales[2 * c]), v.scales[2 * c + 1], 1);
            u[i].neg[c] = 0;
        }
        u[i].mterms = v.mterms;
        u[i].d = v.d;
        u[i].d2 = v.d2;
    }
}

#define KQ_WIDEN(NAME, VQ_UNPACK, BLOCK_T)                                           \
    static void NAME(const void *row, int64_t n_blocks, kq_unpacked *u) {            \
        kq_widen(VQ_UNPACK, sizeof(BLOCK_T), row, n_blocks, u);                      \
    }
KQ_WIDEN(unpack_q2_K, vq_unpack_q2_K, lq_block_q2_K)
KQ_WIDEN(unpack_q3_K, vq_unpack_q3_K, lq_block_q3_K)
KQ_WIDEN(unpack_q4_K, vq_unpack_q4_K, lq_block_q4_K)
KQ_WIDEN(unpack_q5_K, vq_unpack_q5_K, lq_block_q5_K)
KQ_WIDEN(unpack_q6_K, vq_unpack_q6_K, lq_block_q6_K)

/* IQ4_XS: codebook values, signed. The 256-bit kernel multiplies |value| by the activation
 * with the value's sign (vpsignb); here the sign goes onto the activations per row and token
 * (0 − y where the value is negative, wrapping at −128 exactly as vpsignb does). No second
 * term (d2 = 0). */
static void unpack_iq4_xs(const void *row, int64_t n_blocks, kq_unpacked *u) {
    const lq_block_iq4_xs *x = (const lq_block_iq4_xs *)row;
    const __m256i table = iq4_table();
    for (int64_t i = 0; i < n_blocks; i++) {
        short sc[8];
        for (int sub = 0; sub < 8; sub++) sc[sub] = (short)lq_iq4_xs_scale(&x[i], sub);
        __m512i sc16 = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)sc));
        for (int c = 0; c < 4; c++) {
            __m256i lo = _mm256_shuffle_epi8(table, nibbles32(x[i].qs + 32 * c));
            __m256i hi = _mm256_shuffle_epi8(table, nibbles32(x[i].qs + 32 * c + 16));
            __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
            u[i].codes[c] = _mm512_abs_epi8(v);
            u[i].neg[c] = _mm512_movepi8_mask(v);
            __m512i pick = _mm512_inserti64x4(_mm512_set1_epi16((short)(2 * c)), _mm256_set1_epi16((short)(2 * c + 1)), 1);
            u[i].scales[c] = _mm512_permutexvar_epi16(pick, sc16);
        }
        u[i].mterms = _mm256_setzero_si256();
        u[i].d = s_h2f(x[i].d);
        u[i].d2 = 0.0f;
    }
}

/* Σ_k m_k·bsums_k for four tokens (bs01: tokens 0 and 1, bs23: 2 and 3) → token t in lane t. */
static inline __m128i kq_second_ints(__m256i mterms, __m512i bs01, __m512i bs23) {
    __m512i m2 = _mm512_broadcast_i64x4(mterms);
    __m512i a = _mm512_madd_epi16(m2, bs01), b = _mm512_madd_epi16(m2, bs23); /* 128-bit quarters a0 a1 | a2 a3 */
    __m512i s = _mm512_add_epi32(_mm512_shuffle_i64x2(a, b, 0x88), _mm512_shuffle_i64x2(a, b, 0xDD)); /* t0 t1 t2 t3 */
    s = _mm512_add_epi32(s, _mm512_shuffle_epi32(s, (_MM_PERM_ENUM)0x4E));
    s = _mm512_add_epi32(s, _mm512_shuffle_epi32(s, (_MM_PERM_ENUM)0xB1));
    __m512i lanes = _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), s);
    return _mm512_castsi512_si128(lanes);
}

static inline __attribute__((always_inline)) void kq_tile(const kq_unpacked *u, int64_t n_blocks, int nr,
                                                         const uint8_t *act, size_t act_stride, int nt, kq_format f,
                                                         float *y, int64_t y_stride) {
    __m512 acc[GQ_ROWS][GQ_TOKS / 2]; /* tokens 2j (low 8 lanes) and 2j+1 (high 8) */
    __m128 second[GQ_ROWS];           /* lane t: token t */
    for (int r = 0; r < nr; r++) {
        second[r] = _mm_setzero_ps();
        for (int j = 0; j < GQ_TOKS / 2; j++) acc[r][j] = _mm512_setzero_ps();
    }
    for (int64_t i = 0; i < n_blocks; i++) {
        const lq_block_q8_K *b[GQ_TOKS]; /* tokens past nt repeat token 0 (their lanes are dropped) */
        for (int t = 0; t < GQ_TOKS; t++) b[t] = (const lq_block_q8_K *)(act + (size_t)(t < nt ? t : 0) * act_stride) + i;
        __m512i sumi[GQ_ROWS][GQ_TOKS];
        for (int r = 0; r < nr; r++)
            for (int t = 0; t < nt; t++) sumi[r][t] = _mm512_setzero_si512();
        for (int c = 0; c < 4; c++) {
            __m512i yv[GQ_TOKS];
            for (int t = 0; t < nt; t++) yv[t] = _mm512_loadu_si512((const void *)(b[t]->qs + 64 * c));
            for (int r = 0; r < nr; r++) {
                const kq_unpacked *ur = &u[(size_t)r * (size_t)n_blocks + (size_t)i];
                for (int t = 0; t < nt; t++) {
                    __m512i yt = f.signed_codes ? _mm512_mask_sub_epi8(yv[t], ur->neg[c], _mm512_setzero_si512(), yv[t]) : yv[t];
                    sumi[r][t] = _mm512_dpwssd_epi32(sumi[r][t], _mm512_maddubs_epi16(ur->codes[c], yt), ur->scales[c]);
                }
            }
        }
        __m128 yd = _mm_setr_ps(b[0]->d, b[1]->d, b[2]->d, b[3]->d);
        __m512i bs01 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)b[0]->bsums)),
                                          _mm256_loadu_si256((const __m256i *)b[1]->bsums), 1);
        __m512i bs23 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)b[2]->bsums)),
                                          _mm256_loadu_si256((const __m256i *)b[3]->bsums), 1);
        for (int r = 0; r < nr; r++) {
            const kq_unpacked *ur = &u[(size_t)r * (size_t)n_blocks + (size_t)i];
            __m512 dd = _mm512_castps128_ps512(_mm_mul_ps(yd, _mm_set1_ps(ur->d)));
            for (int j = 0; 2 * j < nt; j++) {
                __m512i s0 = sumi[r][2 * j], s1 = 2 * j + 1 < nt ? sumi[r][2 * j + 1] : s0;
                __m512i folded = _mm512_add_epi32(_mm512_shuffle_i64x2(s0, s1, 0x44), _mm512_shuffle_i64x2(s0, s1, 0xEE));
                __m512 scale = _mm512_permutexvar_ps(
                    _mm512_inserti64x4(_mm512_set1_epi32(2 * j), _mm256_set1_epi32(2 * j + 1), 1), dd);
                acc[r][j] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(folded), acc[r][j]);
            }
            __m128i ints = _mm_sll_epi32(kq_second_ints(ur->mterms, bs01, bs23), _mm_cvtsi32_si128(f.shift));
            second[r] = _mm_add_ps(second[r], _mm_mul_ps(_mm_mul_ps(yd, _mm_set1_ps(ur->d2)), _mm_cvtepi32_ps(ints)));
        }
    }
    for (int r = 0; r < nr; r++) {
        float m[4];
        _mm_storeu_ps(m, second[r]);
        for (int t = 0; t < nt; t++) {
            __m512 a = acc[r][t / 2];
            __m256 half = t % 2 ? _mm512_extractf32x8_ps(a, 1) : _mm512_castps512_ps256(a);
            y[t * y_stride + r] = hsum_ps(half) - m[t];
        }
    }
}

KQUANT_GEMM_DRIVER(kq_gemm, kq_unpacked, GQ_ROWS, GQ_TOKS, kq_tile)
KQUANT_GEMM(z_gemm_q2_K, kq_gemm, unpack_q2_K, v_dotq_q2_K, 0, false)
KQUANT_GEMM(z_gemm_q3_K, kq_gemm, unpack_q3_K, v_dotq_q3_K, 2, false)
KQUANT_GEMM(z_gemm_q4_K, kq_gemm, unpack_q4_K, v_dotq_q4_K, 0, false)
KQUANT_GEMM(z_gemm_q5_K, kq_gemm, unpack_q5_K, v_dotq_q5_K, 0, false)
KQUANT_GEMM(z_gemm_q6_K, kq_gemm, unpack_q6_K, v_dotq_q6_K, 5, false)
KQUANT_GEMM(z_gemm_iq4_xs, kq_gemm, unpack_iq4_xs, v_dotq_iq4_xs, 0, true)

void lq_kernels_fill_avx512(lq_kernel_table *t) {
    fill_simd256(t);
    t->dot_q[LQ_TYPE_Q4_0] = z_dotq_q4_0;
    t->dot_q[LQ_TYPE_Q5_0] = z_dotq_q5_0;
    t->dot_q[LQ_TYPE_Q8_0] = z_dotq_q8_0;
    t->dot_q[LQ_TYPE_IQ4_NL] = z_dotq_iq4_nl;
    t->dot_q[LQ_TYPE_Q4_1] = z_dotq_q4_1;
    t->dot_q[LQ_TYPE_Q5_1] = z_dotq_q5_1;
    t->dot_q2[LQ_TYPE_Q4_0] = z_dotq2_q4_0;
    t->dot_q2[LQ_TYPE_Q5_0] = z_dotq2_q5_0;
    t->dot_q2[LQ_TYPE_Q8_0] = z_dotq2_q8_0;
    t->dot_q2[LQ_TYPE_IQ4_NL] = z_dotq2_iq4_nl;
    t->dot_q2[LQ_TYPE_Q4_1] = z_dotq2_q4_1;
    t->dot_q2[LQ_TYPE_Q5_1] = z_dotq2_q5_1;
    t->gemm_q[LQ_TYPE_Q4_K] = z_gemm_q4_K;
    t->gemm_q[LQ_TYPE_Q5_K] = z_gemm_q5_K;
    t->gemm_q[LQ_TYPE_Q6_K] = z_gemm_q6_K;
    t->gemm_q[LQ_TYPE_Q2_K] = z_gemm_q2_K;
    t->gemm_q[LQ_TYPE_Q3_K] = z_gemm_q3_K;
    t->gemm_q[LQ_TYPE_IQ4_XS] = z_gemm_iq4_xs;
    t->fp16_to_f32 = z_fp16_to_f32;
    t->f32_to_fp16 = z_f32_to_fp16;
    t->bf16_to_f32 = z_bf16_to_f32;
    t->f32_to_bf16 = z_f32_to_bf16;
    t->dequant[LQ_TYPE_F16] = z_deq_f16;
    t->dequant[LQ_TYPE_BF16] = z_deq_bf16;
    t->quant_act[LQ_TYPE_F16] = z_quant_f16;
    t->quant_act[LQ_TYPE_BF16] = z_quant_bf16;
}
