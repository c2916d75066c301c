/* avx512.c — the AVX-512 path (F, BW, VL, DQ, VNNI): the 256-bit kernels of simd256.h with
 * vpdpbusd for the u8×s8 products, plus 512-bit dot products for the legacy formats, whose
 * 32-element blocks are too small for the 256-bit code to stay ahead of memory.
 *
 * The 512-bit legacy kernels handle 8 blocks per step: the 8 fp16 scales of the weights and
 * of the activations are gathered and converted at once (per-block scalar conversion costs
 * as much as the integer work), and two blocks share each 512-bit product. vpdpbusd takes
 * unsigned × signed bytes, so signed weight codes enter as code + offset (unsigned) and the
 * offset times Σy (one more vpdpbusd with a constant) is subtracted: exact in int32. */
#define LQ_SIMD_VNNI 1
#include "simd256.h"

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

static inline __m256i strides8(int stride) {
    return _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(stride));
}

/* Activations of a block pair in the [A lo16, B lo16, A hi16, B hi16] order of the nibble
 * formats. */
static inline __m512i y_pair_abab(const lq_block_q8_0 *ya, const lq_block_q8_0 *yb) {
    __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)ya->qs)),
                                   _mm256_loadu_si256((const __m256i *)yb->qs), 1);
    return _mm512_shuffle_i64x2(v, v, _MM_SHUFFLE(3, 1, 2, 0));
}

/* Nibbles of a block pair: [A lo, B lo, A hi, B hi] as bytes 0..15. */
static inline __m512i nibbles_pair(const uint8_t *qa, const uint8_t *qb) {
    __m256i q = _mm256_loadu2_m128i((const __m128i *)qb, (const __m128i *)qa);
    __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1);
    return _mm512_and_si512(v, _mm512_set1_epi8(15));
}

/* Σ (u − offset)·y per int32 lane: u unsigned codes, offset subtracted through Σy. */
static inline __m512i dot_u_minus(__m512i u, __m512i y, __m512i offset_bytes) {
    return _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), u, y),
                            _mm512_dpbusd_epi32(_mm512_setzero_si512(), offset_bytes, y));
}

/* The common loop: 8 blocks per step (4 pairs), scales gathered, the rest of the row by the
 * 256-bit kernel. PAIR(xa, ya) yields the int32 lanes of blocks xa, xa+1; MIN_TERM adds
 * Σ m·s of the 8 blocks for the formats with a min (Q4_1, Q5_1 × Q8_1). */
#define LEGACY_DOT512(name, wblock_t, ablock_t, PERM, PAIR, MIN_TERM, tail_fn)                 \
    static float name(const void *row, const void *act, int64_t n) {                          \
        const wblock_t *x = (const wblock_t *)row;                                             \
        const ablock_t *y = (const ablock_t *)act;                                             \
        const int64_t nb = n / 32;                                                             \
        const __m256i gx = strides8((int)sizeof(wblock_t)), gy = strides8((int)sizeof(ablock_t)); \
        const __m512i p0 = PERM(0), p1 = PERM(1), p2 = PERM(2), p3 = PERM(3);                  \
        __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();                         \
        __m256 accm = _mm256_setzero_ps();                                                     \
        int64_t i = 0;                                                                         \
        for (; i + 8 <= nb; i += 8) {                                                          \
            const wblock_t *xb = x + i;                                                        \
            const ablock_t *yb = y + i;                                                        \
            prefetch_ahead(xb, 8 * sizeof(wblock_t));                                          \
            __m512 d = _mm512_castps256_ps512(_mm256_mul_ps(gather_h8(&xb->d, gx), gather_h8(&yb->d, gy))); \
            acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(PAIR(xb, yb)), _mm512_permutexvar_ps(p0, d), acc0); \
            acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(PAIR(xb + 2, yb + 2)), _mm512_permutexvar_ps(p1, d), acc1); \
            acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(PAIR(xb + 4, yb + 4)), _mm512_permutexvar_ps(p2, d), acc0); \
            acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(PAIR(xb + 6, yb + 6)), _mm512_permutexvar_ps(p3, d), acc1); \
            MIN_TERM(accm, xb, yb, gx, gy);                                                    \
        }                                                                                      \
        float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) + hsum_ps(accm);          \
        if (i < nb) sum += tail_fn(x + i, y + i, (nb - i) * 32);                               \
        return sum;                                                                            \
    }
#define NO_MIN(accm, xb, yb, gx, gy) (void)0
#define WITH_MIN(accm, xb, yb, gx, gy) accm = _mm256_fmadd_ps(gather_h8(&(xb)->m, gx), gather_h8(&(yb)->s, gy), accm)

/* Q4_0: codes 0..15, offset 8. */
static inline __m512i pair_q4_0(const lq_block_q4_0 *x, const lq_block_q8_0 *y) {
    return dot_u_minus(nibbles_pair(x[0].qs, x[1].qs), y_pair_abab(&y[0], &y[1]), _mm512_set1_epi8(8));
}
LEGACY_DOT512(z_dotq_q4_0, lq_block_q4_0, lq_block_q8_0, pair_perm_abab, pair_q4_0, NO_MIN, v_dotq_q4_0)

/* IQ4_NL: codebook values + 128 (1..241) looked up per 128-bit lane, offset 128. */
static inline __m512i pair_iq4_nl(const lq_block_iq4_nl *x, const lq_block_q8_0 *y) {
    const __m512i table = _mm512_broadcast_i32x4(
        _mm_add_epi8(_mm_loadu_si128((const __m128i *)lq_iq4_values), _mm_set1_epi8((char)0x80)));
    __m512i u = _mm512_shuffle_epi8(table, nibbles_pair(x[0].qs, x[1].qs));
    return dot_u_minus(u, y_pair_abab(&y[0], &y[1]), _mm512_set1_epi8((char)0x80));
}
LEGACY_DOT512(z_dotq_iq4_nl, lq_block_iq4_nl, lq_block_q8_0, pair_perm_abab, pair_iq4_nl, NO_MIN, v_dotq_iq4_nl)

/* Q5_0: 5-bit codes 0..31 (the qh bits placed in the [A lo, B lo, A hi, B hi] order),
 * offset 16. */
static inline __m512i qh_pair_bytes(const uint8_t *qha, const uint8_t *qhb, char value) {
    uint64_t a = s_load_u32(qha), b = s_load_u32(qhb);
    uint64_t m = (a & 0xFFFF) | ((b & 0xFFFF) << 16) | ((a >> 16) << 32) | ((b >> 16) << 48);
    return _mm512_maskz_mov_epi8((__mmask64)m, _mm512_set1_epi8(value));
}
static inline __m512i pair_q5_0(const lq_block_q5_0 *x, const lq_block_q8_0 *y) {
    __m512i u = _mm512_or_si512(nibbles_pair(x[0].qs, x[1].qs), qh_pair_bytes(x[0].qh, x[1].qh, 16));
    return dot_u_minus(u, y_pair_abab(&y[0], &y[1]), _mm512_set1_epi8(16));
}
LEGACY_DOT512(z_dotq_q5_0, lq_block_q5_0, lq_block_q8_0, pair_perm_abab, pair_q5_0, NO_MIN, v_dotq_q5_0)

/* Q8_0: weights + 128 as unsigned (x = −128 gives 0), offset 128. */
static inline __m512i pair_q8_0(const lq_block_q8_0 *x, const lq_block_q8_0 *y) {
    __m512i xv = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)x[0].qs)),
                                    _mm256_loadu_si256((const __m256i *)x[1].qs), 1);
    __m512i yv = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)y[0].qs)),
                                    _mm256_loadu_si256((const __m256i *)y[1].qs), 1);
    const __m512i bias = _mm512_set1_epi8((char)0x80);
    return dot_u_minus(_mm512_xor_si512(xv, bias), yv, bias);
}
LEGACY_DOT512(z_dotq_q8_0, lq_block_q8_0, lq_block_q8_0, pair_perm_ab, pair_q8_0, NO_MIN, v_dotq_q8_0)

/* Q4_1 / Q5_1 × Q8_1: unsigned codes, no offset; the min term m·s per block. */
static inline __m512i y1_pair_abab(const lq_block_q8_1 *ya, const lq_block_q8_1 *yb) {
    __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)ya->qs)),
                                   _mm256_loadu_si256((const __m256i *)yb->qs), 1);
    return _mm512_shuffle_i64x2(v, v, _MM_SHUFFLE(3, 1, 2, 0));
}
static inline __m512i pair_q4_1(const lq_block_q4_1 *x, const lq_block_q8_1 *y) {
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), nibbles_pair(x[0].qs, x[1].qs), y1_pair_abab(&y[0], &y[1]));
}
static inline __m512i pair_q5_1(const lq_block_q5_1 *x, const lq_block_q8_1 *y) {
    __m512i u = _mm512_or_si512(nibbles_pair(x[0].qs, x[1].qs), qh_pair_bytes(x[0].qh, x[1].qh, 16));
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, y1_pair_abab(&y[0], &y[1]));
}
LEGACY_DOT512(z_dotq_q4_1, lq_block_q4_1, lq_block_q8_1, pair_perm_abab, pair_q4_1, WITH_MIN, v_dotq_q4_1)
LEGACY_DOT512(z_dotq_q5_1, lq_block_q5_1, lq_block_q8_1, pair_perm_abab, pair_q5_1, WITH_MIN, v_dotq_q5_1)

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

void lq_kernels_fill_avx512(lq_kernel_table *t) {
    fill_simd256(t);
    t->dot_q[LQ_TYPE_Q4_0] = z_dotq_q4_0;
    t->dot_q[LQ_TYPE_Q5_0] = z_dotq_q5_0;
    t->dot_q[LQ_TYPE_Q8_0] = z_dotq_q8_0;
    t->dot_q[LQ_TYPE_IQ4_NL] = z_dotq_iq4_nl;
    t->dot_q[LQ_TYPE_Q4_1] = z_dotq_q4_1;
    t->dot_q[LQ_TYPE_Q5_1] = z_dotq_q5_1;
    t->fp16_to_f32 = z_fp16_to_f32;
    t->f32_to_fp16 = z_f32_to_fp16;
    t->bf16_to_f32 = z_bf16_to_f32;
    t->f32_to_bf16 = z_f32_to_bf16;
    t->dequant[LQ_TYPE_F16] = z_deq_f16;
    t->dequant[LQ_TYPE_BF16] = z_deq_bf16;
    t->quant_act[LQ_TYPE_F16] = z_quant_f16;
    t->quant_act[LQ_TYPE_BF16] = z_quant_bf16;
}
