/* simd256.h — 256-bit kernels, included by avx2.c (AVX2 + FMA + F16C) and avx512.c (which
 * defines LQ_SIMD_VNNI first, so the u8×s8 products use AVX512-VNNI's vpdpbusd on 256-bit
 * vectors, and overrides the hottest kernels with 512-bit ones).
 *
 * Exactness rules (tests/kernels checks them on every path):
 *  - dequantization forms each value with the same float operations as the scalar reference
 *    (per-block scale products in scalar code, then one multiply and at most one add/sub per
 *    element; the build disables FMA contraction), so its output is bit-identical;
 *  - activation quantization is bit-identical (same scale arithmetic; roundf and nearest_int
 *    reproduced exactly);
 *  - dot products compute the integer sum of each block exactly (products never saturate:
 *    every u8·s8 pair sum stays below 2^15, see the notes at each kernel) and differ from the
 *    scalar path only in how the per-block float terms are summed. */
#ifndef LQ_SIMD256_H
#define LQ_SIMD256_H

#include "kernels.h"

#include "codecs/common.h"

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------------------- */
/* Weights stream from memory once per matrix-vector product; the hardware prefetchers alone
 * keep too few lines in flight for one core to approach its share of the bandwidth, so the
 * dot products prefetch the weights this far ahead (measured on a 2-core AVX-512 VM: 4-8 KiB
 * ahead reach 80-95 % of the read bandwidth, 2 KiB ~70 %, none ~50 %). */
#ifndef LQ_PF_HINT
#define LQ_PF_HINT _MM_HINT_T0
#endif
#ifndef LQ_PF_DIST
#define LQ_PF_DIST 8192
#endif
static inline void prefetch_ahead(const void *p, size_t bytes) {
    for (size_t off = 0; off < bytes; off += 64)
        _mm_prefetch((const char *)p + LQ_PF_DIST + off, LQ_PF_HINT);
}

static inline float s_h2f(lq_half h) { return _cvtsh_ss(h); } /* exact (F16C) */

/* acc + Σ_{4 bytes} u[i]·s[i] per int32 lane (u unsigned, s signed). Callers keep every
 * pair sum u0·s0 + u1·s1 below 2^15 so maddubs never saturates and both forms agree. */
static inline __m256i dot_us8(__m256i acc, __m256i u, __m256i s) {
#ifdef LQ_SIMD_VNNI
    return _mm256_dpbusd_epi32(acc, u, s);
#else
    __m256i p = _mm256_maddubs_epi16(u, s);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
#endif
}

/* Signed × signed through |x| and sign(y, x); exact while |x| <= 128 and |y| <= 127. */
static inline __m256i dot_ss8(__m256i acc, __m256i x, __m256i y) {
    return dot_us8(acc, _mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

/* Σ over pairs u·s as int16 (no saturation by the caller's bounds), then × scale16 summed in
 * pairs to int32: per-sub-block scaling of the K-quants. */
static inline __m256i dot_us8_scaled(__m256i u, __m256i s, __m256i scale16) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), scale16);
}

static inline float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline int hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

/* 16 bytes of nibbles → 32 bytes: low nibbles (elements 0..15) then high (16..31). */
static inline __m256i nibbles32(const uint8_t *qs) {
    __m128i t = _mm_loadu_si128((const __m128i *)qs);
    __m256i v = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
    return _mm256_and_si256(v, _mm256_set1_epi8(15));
}

/* 32 bits → 32 bytes, 0xFF where the bit is set (byte j ↔ bit j). */
static inline __m256i bits_to_bytes32(uint32_t bits) {
    __m256i v = _mm256_set1_epi32((int)bits);
    v = _mm256_shuffle_epi8(v, _mm256_set_epi64x(0x0303030303030303ll, 0x0202020202020202ll,
                                                 0x0101010101010101ll, 0));
    const __m256i sel = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, sel), sel);
}

static inline uint32_t s_load_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Q4_K/Q5_K scale and min codes as two 8-byte arrays (sc in bytes 0..7, mn in 8..15). */
static inline void unpack_k4_words(const uint8_t *packed, uint32_t out[4]) {
    uint32_t a, b, c;
    memcpy(&a, packed, 4);
    memcpy(&b, packed + 4, 4);
    memcpy(&c, packed + 8, 4);
    out[0] = a & 0x3F3F3F3Fu;
    out[1] = (c & 0x0F0F0F0Fu) | (((a >> 6) & 0x03030303u) << 4);
    out[2] = b & 0x3F3F3F3Fu;
    out[3] = ((c >> 4) & 0x0F0F0F0Fu) | (((b >> 6) & 0x03030303u) << 4);
}

/* Q3_K's 16 signed scales (code − 32) as int8 lanes. */
static inline __m128i unpack_q3_scales_v(const uint8_t *packed) {
    uint32_t a0, a1, a2;
    memcpy(&a0, packed, 4);
    memcpy(&a1, packed + 4, 4);
    memcpy(&a2, packed + 8, 4);
    __m128i v = _mm_setr_epi32((int)((a0 & 0x0F0F0F0Fu) | ((a2 & 0x03030303u) << 4)),
                               (int)((a1 & 0x0F0F0F0Fu) | (((a2 >> 2) & 0x03030303u) << 4)),
                               (int)(((a0 >> 4) & 0x0F0F0F0Fu) | (((a2 >> 4) & 0x03030303u) << 4)),
                               (int)(((a1 >> 4) & 0x0F0F0F0Fu) | (((a2 >> 6) & 0x03030303u) << 4)));
    return _mm_sub_epi8(v, _mm_set1_epi8(32));
}
static inline void unpack_q3_scales(const uint8_t *packed, int8_t sc[16]) {
    _mm_storeu_si128((__m128i *)sc, unpack_q3_scales_v(packed));
}

/* 16 int8 sub-block scales as two vectors of int32 lanes each holding the scale twice as
 * int16 (lo: scales 0..7, hi: 8..15), ready for madd after one lane permutation. */
static inline void scale_lanes16(__m128i sc8, __m256i *lo, __m256i *hi) {
    __m256i a = _mm256_cvtepi8_epi32(sc8), b = _mm256_cvtepi8_epi32(_mm_srli_si128(sc8, 8));
    const __m256i m16 = _mm256_set1_epi32(0xFFFF);
    *lo = _mm256_or_si256(_mm256_and_si256(a, m16), _mm256_slli_epi32(a, 16));
    *hi = _mm256_or_si256(_mm256_and_si256(b, m16), _mm256_slli_epi32(b, 16));
}
/* int16 scales for 32 elements = sub-blocks 2j, 2j+1 of the 8 held in lanes (j = 0..3). */
static inline __m256i scale_group(__m256i lanes, int j) {
    return _mm256_permutevar8x32_epi32(lanes, _mm256_setr_epi32(2 * j, 2 * j, 2 * j, 2 * j, 2 * j + 1, 2 * j + 1,
                                                                2 * j + 1, 2 * j + 1));
}

/* ---------------------------------------------------------------------------------------
 * Dequantization
 * ------------------------------------------------------------------------------------- */
/* y[0..7] = (float)(int8)b[0..7] · d  (and variants with + m / − m). */
static inline __m256 i8x8_to_ps(__m128i b) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b)); }
static inline void put8_mul(float *y, __m128i b, __m256 d) {
    _mm256_storeu_ps(y, _mm256_mul_ps(i8x8_to_ps(b), d));
}
static inline void put8_mul_add(float *y, __m128i b, __m256 d, __m256 m) {
    _mm256_storeu_ps(y, _mm256_add_ps(_mm256_mul_ps(i8x8_to_ps(b), d), m));
}
static inline void put8_mul_sub(float *y, __m128i b, __m256 d, __m256 m) {
    _mm256_storeu_ps(y, _mm256_sub_ps(_mm256_mul_ps(i8x8_to_ps(b), d), m));
}
static inline void put16_mul(float *y, __m128i b, __m256 d) {
    put8_mul(y, b, d);
    put8_mul(y + 8, _mm_srli_si128(b, 8), d);
}
static inline void put16_mul_sub(float *y, __m128i b, __m256 d, __m256 m) {
    put8_mul_sub(y, b, d, m);
    put8_mul_sub(y + 8, _mm_srli_si128(b, 8), d, m);
}
static inline void put32_mul(float *y, __m256i b, __m256 d) {
    put16_mul(y, _mm256_castsi256_si128(b), d);
    put16_mul(y + 16, _mm256_extracti128_si256(b, 1), d);
}
static inline void put32_mul_add(float *y, __m256i b, __m256 d, __m256 m) {
    __m128i lo = _mm256_castsi256_si128(b), hi = _mm256_extracti128_si256(b, 1);
    put8_mul_add(y, lo, d, m);
    put8_mul_add(y + 8, _mm_srli_si128(lo, 8), d, m);
    put8_mul_add(y + 16, hi, d, m);
    put8_mul_add(y + 24, _mm_srli_si128(hi, 8), d, m);
}
static inline void put32_mul_sub(float *y, __m256i b, __m256 d, __m256 m) {
    put16_mul_sub(y, _mm256_castsi256_si128(b), d, m);
    put16_mul_sub(y + 16, _mm256_extracti128_si256(b, 1), d, m);
}

static void v_deq_q4_0(const void *src, float *y, int64_t n) {
    const lq_block_q4_0 *b = (const lq_block_q4_0 *)src;
    for (int64_t i = 0; i < n / 32; i++, y += 32)
        put32_mul(y, _mm256_sub_epi8(nibbles32(b[i].qs), _mm256_set1_epi8(8)),
                  _mm256_set1_ps(s_h2f(b[i].d)));
}

static void v_deq_q4_1(const void *src, float *y, int64_t n) {
    const lq_block_q4_1 *b = (const lq_block_q4_1 *)src;
    for (int64_t i = 0; i < n / 32; i++, y += 32)
        put32_mul_add(y, nibbles32(b[i].qs), _mm256_set1_ps(s_h2f(b[i].d)),
                      _mm256_set1_ps(s_h2f(b[i].m)));
}

static void v_deq_q5_0(const void *src, float *y, int64_t n) {
    const lq_block_q5_0 *b = (const lq_block_q5_0 *)src;
    for (int64_t i = 0; i < n / 32; i++, y += 32) {
        __m256i hb = bits_to_bytes32(s_load_u32(b[i].qh));
        /* nibble | 0xF0 when the 5th bit is clear reads as nibble − 16 in int8 */
        __m256i q = _mm256_or_si256(nibbles32(b[i].qs), _mm256_andnot_si256(hb, _mm256_set1_epi8((char)0xF0)));
        put32_mul(y, q, _mm256_set1_ps(s_h2f(b[i].d)));
    }
}

static void v_deq_q5_1(const void *src, float *y, int64_t n) {
    const lq_block_q5_1 *b = (const lq_block_q5_1 *)src;
    for (int64_t i = 0; i < n / 32; i++, y += 32) {
        __m256i hb = bits_to_bytes32(s_load_u32(b[i].qh));
        __m256i q = _mm256_or_si256(nibbles32(b[i].qs), _mm256_and_si256(hb, _mm256_set1_epi8(16)));
        put32_mul_add(y, q, _mm256_set1_ps(s_h2f(b[i].d)), _mm256_set1_ps(s_h2f(b[i].m)));
    }
}

static void v_deq_q8_0(const void *src, float *y, int64_t n) {
    const lq_block_q8_0 *b = (const lq_block_q8_0 *)src;
    for (int64_t i = 0; i < n / 32; i++, y += 32)
        put32_mul(y, _mm256_loadu_si256((const __m256i *)b[i].qs), _mm256_set1_ps(s_h2f(b[i].d)));
}

static inline __m256i iq4_table(void) {
    return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)lq_iq4_values));
}

static void v_deq_iq4_nl(const void *src, float *y, int64_t n) {
    const lq_block_iq4_nl *b = (const lq_block_iq4_nl *)src;
    const __m256i table = iq4_table();
    for (int64_t i = 0; i < n / 32; i++, y += 32)
        put32_mul(y, _mm256_shuffle_epi8(table, nibbles32(b[i].qs)), _mm256_set1_ps(s_h2f(b[i].d)));
}

/* Q2_K codes (0..3) of the four 32-element groups of half h. */
static inline void q2_codes(const lq_block_q2_K *b, int h, __m256i q[4]) {
    __m256i qs = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * h));
    for (int k = 0; k < 4; k++) q[k] = _mm256_and_si256(_mm256_srli_epi16(qs, 2 * k), _mm256_set1_epi8(3));
}

/* Q3_K codes (0..7: value + 4) of the four 32-element groups of half h. */
static inline void q3_codes(const lq_block_q3_K *b, int h, __m256i q[4]) {
    const __m256i m3 = _mm256_set1_epi8(3), m1 = _mm256_set1_epi8(1);
    __m256i qs = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * h));
    __m256i hm = _mm256_loadu_si256((const __m256i *)b->hmask);
    for (int k = 0; k < 4; k++) {
        __m256i low = _mm256_and_si256(_mm256_srli_epi16(qs, 2 * k), m3);
        __m256i hb = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + k), m1);
        q[k] = _mm256_or_si256(low, _mm256_slli_epi16(hb, 2));
    }
}

static void v_deq_q2_K(const void *src, float *y, int64_t n) {
    const lq_block_q2_K *b = (const lq_block_q2_K *)src;
    for (int64_t i = 0; i < n / 256; i++, y += 256) {
        const float d = s_h2f(b[i].d), dmin = s_h2f(b[i].dmin);
        for (int h = 0; h < 2; h++) {
            __m256i codes[4];
            q2_codes(&b[i], h, codes);
            for (int k = 0; k < 4; k++) {
                __m256i q = codes[k];
                for (int half = 0; half < 2; half++) {
                    int s = 8 * h + 2 * k + half;
                    __m256 dl = _mm256_set1_ps(d * (float)(b[i].scales[s] & 15));
                    __m256 ml = _mm256_set1_ps(dmin * (float)(b[i].scales[s] >> 4));
                    __m128i q16 = half ? _mm256_extracti128_si256(q, 1) : _mm256_castsi256_si128(q);
                    put16_mul_sub(y + 16 * s, q16, dl, ml);
                }
            }
        }
    }
}

static void v_deq_q3_K(const void *src, float *y, int64_t n) {
    const lq_block_q3_K *b = (const lq_block_q3_K *)src;
    const __m256i four = _mm256_set1_epi8(4);
    for (int64_t i = 0; i < n / 256; i++, y += 256) {
        const float d = s_h2f(b[i].d);
        int8_t sc[16];
        unpack_q3_scales(b[i].scales, sc);
        for (int h = 0; h < 2; h++) {
            __m256i codes[4];
            q3_codes(&b[i], h, codes);
            for (int k = 0; k < 4; k++) {
                __m256i q = _mm256_sub_epi8(codes[k], four);
                int s = 8 * h + 2 * k;
                put16_mul(y + 16 * s, _mm256_castsi256_si128(q), _mm256_set1_ps(d * (float)sc[s]));
                put16_mul(y + 16 * s + 16, _mm256_extracti128_si256(q, 1),
                          _mm256_set1_ps(d * (float)sc[s + 1]));
            }
        }
    }
}

static void v_deq_q4_K(const void *src, float *y, int64_t n) {
    const lq_block_q4_K *b = (const lq_block_q4_K *)src;
    const __m256i m4 = _mm256_set1_epi8(15);
    for (int64_t i = 0; i < n / 256; i++, y += 256) {
        const float d = s_h2f(b[i].d), dmin = s_h2f(b[i].dmin);
        uint32_t w[4];
        unpack_k4_words(b[i].scales, w);
        const uint8_t *sc = (const uint8_t *)w, *mn = sc + 8;
        for (int c = 0; c < 4; c++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(b[i].qs + 32 * c));
            __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            put32_mul_sub(y + 64 * c, lo, _mm256_set1_ps(d * (float)sc[2 * c]),
                          _mm256_set1_ps(dmin * (float)mn[2 * c]));
            put32_mul_sub(y + 64 * c + 32, hi, _mm256_set1_ps(d * (float)sc[2 * c + 1]),
                          _mm256_set1_ps(dmin * (float)mn[2 * c + 1]));
        }
    }
}

static void v_deq_q5_K(const void *src, float *y, int64_t n) {
    const lq_block_q5_K *b = (const lq_block_q5_K *)src;
    const __m256i m4 = _mm256_set1_epi8(15), m1 = _mm256_set1_epi8(1);
    for (int64_t i = 0; i < n / 256; i++, y += 256) {
        const float d = s_h2f(b[i].d), dmin = s_h2f(b[i].dmin);
        uint32_t w[4];
        unpack_k4_words(b[i].scales, w);
        const uint8_t *sc = (const uint8_t *)w, *mn = sc + 8;
        __m256i qh = _mm256_loadu_si256((const __m256i *)b[i].qh);
        for (int c = 0; c < 4; c++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(b[i].qs + 32 * c));
            __m256i hlo = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), m1), 4);
            __m256i hhi = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), m1), 4);
            __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), hlo);
            __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), hhi);
            put32_mul_sub(y + 64 * c, lo, _mm256_set1_ps(d * (float)sc[2 * c]),
                          _mm256_set1_ps(dmin * (float)mn[2 * c]));
            put32_mul_sub(y + 64 * c + 32, hi, _mm256_set1_ps(d * (float)sc[2 * c + 1]),
                          _mm256_set1_ps(dmin * (float)mn[2 * c + 1]));
        }
    }
}

/* Q6_K codes (0..63, unsigned) of the four 32-element groups of half h. */
static inline void q6_codes(const lq_block_q6_K *b, int h, __m256i q[4]) {
    const __m256i m4 = _mm256_set1_epi8(15), m3 = _mm256_set1_epi8(3);
    __m256i ql0 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h));
    __m256i ql1 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h + 32));
    __m256i qh = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
    q[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4));
    q[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m3), 4));
    q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m3), 4));
    q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m3), 4));
}

static void v_deq_q6_K(const void *src, float *y, int64_t n) {
    const lq_block_q6_K *b = (const lq_block_q6_K *)src;
    const __m256i m32 = _mm256_set1_epi8(32);
    for (int64_t i = 0; i < n / 256; i++, y += 256) {
        const float d = s_h2f(b[i].d);
        for (int h = 0; h < 2; h++) {
            __m256i q[4];
            q6_codes(&b[i], h, q);
            for (int k = 0; k < 4; k++) {
                __m256i v = _mm256_sub_epi8(q[k], m32);
                int s = 8 * h + 2 * k;
                put16_mul(y + 16 * s, _mm256_castsi256_si128(v), _mm256_set1_ps(d * (float)b[i].scales[s]));
                put16_mul(y + 16 * s + 16, _mm256_extracti128_si256(v, 1),
                          _mm256_set1_ps(d * (float)b[i].scales[s + 1]));
            }
        }
    }
}

static void v_deq_iq4_xs(const void *src, float *y, int64_t n) {
    const lq_block_iq4_xs *b = (const lq_block_iq4_xs *)src;
    const __m256i table = iq4_table();
    for (int64_t i = 0; i < n / 256; i++, y += 256) {
        const float d = s_h2f(b[i].d);
        for (int sub = 0; sub < 8; sub++)
            put32_mul(y + 32 * sub, _mm256_shuffle_epi8(table, nibbles32(b[i].qs + 16 * sub)),
                      _mm256_set1_ps(d * (float)lq_iq4_xs_scale(&b[i], sub)));
    }
}

/* ---------------------------------------------------------------------------------------
 * Half conversions (bit-exact with codecs/common.h, NaNs included)
 * ------------------------------------------------------------------------------------- */
/* 8 fp16 → fp32. F16C quiets signalling NaNs; the scalar reference keeps the payload as is,
 * so NaN lanes are rebuilt from their bits. */
static inline __m256 h8_to_ps(__m128i h) {
    __m256 f = _mm256_cvtph_ps(h);
    __m256i w = _mm256_cvtepu16_epi32(h);
    __m256i man = _mm256_and_si256(w, _mm256_set1_epi32(0x3FF));
    __m256i is_nan = _mm256_andnot_si256(_mm256_cmpeq_epi32(man, _mm256_setzero_si256()),
                                         _mm256_cmpeq_epi32(_mm256_and_si256(w, _mm256_set1_epi32(0x7C00)),
                                                            _mm256_set1_epi32(0x7C00)));
    __m256i nan_bits = _mm256_or_si256(_mm256_slli_epi32(_mm256_and_si256(w, _mm256_set1_epi32(0x8000)), 16),
                                       _mm256_or_si256(_mm256_set1_epi32(0x7F800000), _mm256_slli_epi32(man, 13)));
    return _mm256_blendv_ps(f, _mm256_castsi256_ps(nan_bits), _mm256_castsi256_ps(is_nan));
}

/* 8 fp32 → fp16 with round to nearest even; NaN → sign | 0x7E00 as the scalar reference
 * (a quiet NaN with an empty payload converts to exactly that). */
static inline __m128i ps_to_h8(__m256 f) {
    __m256 is_nan = _mm256_cmp_ps(f, f, _CMP_UNORD_Q);
    __m256i sign = _mm256_and_si256(_mm256_castps_si256(f), _mm256_set1_epi32((int)0x80000000u));
    __m256 qnan = _mm256_castsi256_ps(_mm256_or_si256(sign, _mm256_set1_epi32(0x7FC00000)));
    return _mm256_cvtps_ph(_mm256_blendv_ps(f, qnan, is_nan), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

static inline __m256 bf8_to_ps(__m128i h) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/* 8 fp32 → bf16 (as 8 int32 lanes holding the 16-bit results). */
static inline __m256i ps_to_bf8_epi32(__m256 f) {
    __m256i u = _mm256_castps_si256(f);
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7FFF))), 16);
    __m256i nan = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(64));
    __m256i is_nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7FFFFFFF)),
                                        _mm256_set1_epi32(0x7F800000));
    return _mm256_blendv_epi8(rounded, nan, is_nan);
}

static void v_fp16_to_f32(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, h8_to_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++) dst[i] = lq_fp16_to_f32(src[i]);
}
static void v_f32_to_fp16(const float *src, uint16_t *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm_storeu_si128((__m128i *)(dst + i), ps_to_h8(_mm256_loadu_ps(src + i)));
    for (; i < n; i++) dst[i] = lq_fp16_from_f32(src[i]);
}
static void v_bf16_to_f32(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, bf8_to_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++) dst[i] = lq_bf16_to_f32(src[i]);
}
static void v_f32_to_bf16(const float *src, uint16_t *dst, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i a = ps_to_bf8_epi32(_mm256_loadu_ps(src + i));
        __m256i b = ps_to_bf8_epi32(_mm256_loadu_ps(src + i + 8));
        __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xD8);
        _mm256_storeu_si256((__m256i *)(dst + i), p);
    }
    for (; i < n; i++) dst[i] = lq_bf16_from_f32(src[i]);
}

static void v_deq_f16(const void *src, float *dst, int64_t n) {
    v_fp16_to_f32((const uint16_t *)src, dst, (size_t)n);
}
static void v_deq_bf16(const void *src, float *dst, int64_t n) {
    v_bf16_to_f32((const uint16_t *)src, dst, (size_t)n);
}

/* ---------------------------------------------------------------------------------------
 * Dot products with float activations
 * ------------------------------------------------------------------------------------- */
static float v_dotf_f32(const void *row, const float *x, int64_t n) {
    const float *w = (const float *)row;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
    }
    float sum = hsum_ps(_mm256_add_ps(a0, a1));
    for (; i < n; i++) sum += w[i] * x[i];
    return sum;
}

static float v_dotf_f16(const void *row, const float *x, int64_t n) {
    const uint16_t *w = (const uint16_t *)row;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i))), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i + 8))),
                             _mm256_loadu_ps(x + i + 8), a1);
    }
    float sum = hsum_ps(_mm256_add_ps(a0, a1));
    for (; i < n; i++) sum += lq_fp16_to_f32(w[i]) * x[i];
    return sum;
}

static float v_dotf_bf16(const void *row, const float *x, int64_t n) {
    const uint16_t *w = (const uint16_t *)row;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(bf8_to_ps(_mm_loadu_si128((const __m128i *)(w + i))), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(bf8_to_ps(_mm_loadu_si128((const __m128i *)(w + i + 8))), _mm256_loadu_ps(x + i + 8), a1);
    }
    float sum = hsum_ps(_mm256_add_ps(a0, a1));
    for (; i < n; i++) sum += lq_bf16_to_f32(w[i]) * x[i];
    return sum;
}

/* Block formats: decode 256 elements at a time with the SIMD decoder, then multiply. */
static inline float dotf_via_dequant(lq_dequant_fn deq, size_t block_bytes, int block_size,
                                     const void *row, const float *x, int64_t n) {
    float tmp[256] __attribute__((aligned(32)));
    const uint8_t *w = (const uint8_t *)row;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += 256) {
        int64_t len = n - i < 256 ? n - i : 256;
        deq(w + (size_t)(i / block_size) * block_bytes, tmp, len);
        for (int64_t j = 0; j < len; j += 16) {
            a0 = _mm256_fmadd_ps(_mm256_load_ps(tmp + j), _mm256_loadu_ps(x + i + j), a0);
            a1 = _mm256_fmadd_ps(_mm256_load_ps(tmp + j + 8), _mm256_loadu_ps(x + i + j + 8), a1);
        }
    }
    return hsum_ps(_mm256_add_ps(a0, a1));
}

/* ---------------------------------------------------------------------------------------
 * Activation quantization
 * ------------------------------------------------------------------------------------- */
/* C roundf (half away from zero), exactly: truncate, then step away from zero when the
 * (exact) remainder is at least one half. */
static inline __m256i roundf_epi32(__m256 v) {
    __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 rem = _mm256_sub_ps(v, t);
    __m256 abs_rem = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), rem);
    __m256 step = _mm256_or_ps(_mm256_and_ps(v, _mm256_set1_ps(-0.0f)), _mm256_set1_ps(1.0f));
    __m256 add = _mm256_and_ps(_mm256_cmp_ps(abs_rem, _mm256_set1_ps(0.5f), _CMP_GE_OQ), step);
    return _mm256_cvttps_epi32(_mm256_add_ps(t, add));
}

/* 32 int32 (four vectors, in order) → 32 int8. */
static inline __m256i pack32_epi8(__m256i a, __m256i b, __m256i c, __m256i d) {
    __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
    __m256i v = _mm256_packs_epi16(ab, cd);
    return _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

static inline float amax32(const float *x) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_andnot_ps(sign, _mm256_loadu_ps(x));
    m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8)));
    m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 16)));
    m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 24)));
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* One Q8_0/Q8_1 block: codes and d; returns Σ codes. */
static inline int quant_block_q8(const float *x, int8_t *qs, float *d_out) {
    const float amax = amax32(x);
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const __m256 vid = _mm256_set1_ps(id);
    __m256i q[4];
    for (int k = 0; k < 4; k++) q[k] = roundf_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), vid));
    _mm256_storeu_si256((__m256i *)qs, pack32_epi8(q[0], q[1], q[2], q[3]));
    *d_out = d;
    return hsum_epi32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
}

static void v_quant_q8_0(const float *x, void *dst, int64_t n) {
    lq_block_q8_0 *y = (lq_block_q8_0 *)dst;
    for (int64_t i = 0; i < n / 32; i++) {
        float d;
        quant_block_q8(x + 32 * i, y[i].qs, &d);
        y[i].d = lq_fp16_from_f32(d);
    }
}

static void v_quant_q8_1(const float *x, void *dst, int64_t n) {
    lq_block_q8_1 *y = (lq_block_q8_1 *)dst;
    for (int64_t i = 0; i < n / 32; i++) {
        float d;
        int sum = quant_block_q8(x + 32 * i, y[i].qs, &d);
        y[i].d = lq_fp16_from_f32(d);
        y[i].s = lq_fp16_from_f32((float)sum * d);
    }
}

static void v_quant_q8_K(const float *x, void *dst, int64_t n) {
    lq_block_q8_K *y = (lq_block_q8_K *)dst;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t i = 0; i < n / 256; i++, x += 256) {
        __m256 m = _mm256_setzero_ps();
        for (int j = 0; j < 256; j += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)));
        __m128 s = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        s = _mm_max_ps(s, _mm_movehl_ps(s, s));
        s = _mm_max_ss(s, _mm_movehdup_ps(s));
        const float amax = _mm_cvtss_f32(s);
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        /* the sign of the first element of largest magnitude decides the scale's sign */
        float max = 0.0f;
        const __m256 vmax = _mm256_set1_ps(amax);
        for (int j = 0; j < 256; j += 8) {
            int mask = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)), vmax, _CMP_EQ_OQ));
            if (mask) {
                max = x[j + __builtin_ctz((unsigned)mask)];
                break;
            }
        }
        const float iscale = -127.0f / max;
        const __m256 vis = _mm256_set1_ps(iscale);
        const __m256i v127 = _mm256_set1_epi32(127);
        for (int j = 0; j < 256; j += 32) {
            __m256i q[4];
            for (int k = 0; k < 4; k++) /* cvtps rounds half to even, as nearest_int does */
                q[k] = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j + 8 * k), vis)), v127);
            _mm256_storeu_si256((__m256i *)(y[i].qs + j), pack32_epi8(q[0], q[1], q[2], q[3]));
        }
        for (int sb = 0; sb < 16; sb++) {
            /* sum of 16 int8: widen to int16 and add horizontally */
            __m256i w = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(y[i].qs + 16 * sb)));
            __m256i p = _mm256_madd_epi16(w, _mm256_set1_epi16(1));
            y[i].bsums[sb] = (int16_t)hsum_epi32(p);
        }
        y[i].d = 1.0f / iscale;
    }
}

static void v_quant_f16(const float *x, void *dst, int64_t n) { v_f32_to_fp16(x, (uint16_t *)dst, (size_t)n); }
static void v_quant_bf16(const float *x, void *dst, int64_t n) { v_f32_to_bf16(x, (uint16_t *)dst, (size_t)n); }

/* ---------------------------------------------------------------------------------------
 * Quantized dot products
 * ------------------------------------------------------------------------------------- */
/* Legacy blocks × Q8_0: each block's int32 lanes sum to its exact integer dot product; the
 * lanes are scaled by dx·dy and accumulated as floats. */
#define LEGACY_DOT(name, wblock_t, ablock_t, block_ints)                                      \
    static float name(const void *row, const void *act, int64_t n) {                         \
        const wblock_t *x = (const wblock_t *)row;                                            \
        const ablock_t *y = (const ablock_t *)act;                                            \
        const int64_t nb = n / 32;                                                            \
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();                        \
        int64_t i = 0;                                                                        \
        for (; i + 2 <= nb; i += 2) {                                                         \
            if ((i & 3) == 0) prefetch_ahead(&x[i], 4 * sizeof(wblock_t));                   \
            __m256 d0 = _mm256_set1_ps(s_h2f(x[i].d) * s_h2f(y[i].d));                        \
            __m256 d1 = _mm256_set1_ps(s_h2f(x[i + 1].d) * s_h2f(y[i + 1].d));                \
            acc0 = _mm256_fmadd_ps(d0, _mm256_cvtepi32_ps(block_ints(&x[i], &y[i])), acc0);   \
            acc1 = _mm256_fmadd_ps(d1, _mm256_cvtepi32_ps(block_ints(&x[i + 1], &y[i + 1])), acc1); \
        }                                                                                     \
        for (; i < nb; i++) {                                                                 \
            __m256 d0 = _mm256_set1_ps(s_h2f(x[i].d) * s_h2f(y[i].d));                        \
            acc0 = _mm256_fmadd_ps(d0, _mm256_cvtepi32_ps(block_ints(&x[i], &y[i])), acc0);   \
        }                                                                                     \
        return hsum_ps(_mm256_add_ps(acc0, acc1));                                            \
    }

/* q − 8 ∈ [−8, 7] against activations in [−127, 127]. */
static inline __m256i ints_q4_0(const lq_block_q4_0 *x, const lq_block_q8_0 *y) {
    __m256i q = _mm256_sub_epi8(nibbles32(x->qs), _mm256_set1_epi8(8));
    return dot_ss8(_mm256_setzero_si256(), q, _mm256_loadu_si256((const __m256i *)y->qs));
}
static inline __m256i ints_q5_0(const lq_block_q5_0 *x, const lq_block_q8_0 *y) {
    __m256i hb = bits_to_bytes32(s_load_u32(x->qh));
    __m256i q = _mm256_or_si256(nibbles32(x->qs), _mm256_andnot_si256(hb, _mm256_set1_epi8((char)0xF0)));
    return dot_ss8(_mm256_setzero_si256(), q, _mm256_loadu_si256((const __m256i *)y->qs));
}
/* Q8_0 weights may hold −128 (|x| ≤ 128): pair sums ≤ 2·128·127 < 2^15. */
static inline __m256i ints_q8_0(const lq_block_q8_0 *x, const lq_block_q8_0 *y) {
    return dot_ss8(_mm256_setzero_si256(), _mm256_loadu_si256((const __m256i *)x->qs),
                   _mm256_loadu_si256((const __m256i *)y->qs));
}
/* codebook values |K| ≤ 127 */
static inline __m256i ints_iq4_nl(const lq_block_iq4_nl *x, const lq_block_q8_0 *y) {
    __m256i q = _mm256_shuffle_epi8(iq4_table(), nibbles32(x->qs));
    return dot_ss8(_mm256_setzero_si256(), q, _mm256_loadu_si256((const __m256i *)y->qs));
}
LEGACY_DOT(v_dotq_q4_0, lq_block_q4_0, lq_block_q8_0, ints_q4_0)
LEGACY_DOT(v_dotq_q5_0, lq_block_q5_0, lq_block_q8_0, ints_q5_0)
LEGACY_DOT(v_dotq_q8_0, lq_block_q8_0, lq_block_q8_0, ints_q8_0)
LEGACY_DOT(v_dotq_iq4_nl, lq_block_iq4_nl, lq_block_q8_0, ints_iq4_nl)

/* Q4_1/Q5_1 × Q8_1: unsigned codes (≤ 31), plus the min term m·s per block. */
#define LEGACY_DOT_MIN(name, wblock_t, block_ints)                                            \
    static float name(const void *row, const void *act, int64_t n) {                         \
        const wblock_t *x = (const wblock_t *)row;                                            \
        const lq_block_q8_1 *y = (const lq_block_q8_1 *)act;                                  \
        __m256 acc = _mm256_setzero_ps();                                                     \
        float mins = 0.0f;                                                                    \
        for (int64_t i = 0; i < n / 32; i++) {                                                \
            if ((i & 3) == 0) prefetch_ahead(&x[i], 4 * sizeof(wblock_t));                   \
            __m256 d = _mm256_set1_ps(s_h2f(x[i].d) * s_h2f(y[i].d));                         \
            acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(block_ints(&x[i], &y[i])), acc);      \
            mins += s_h2f(x[i].m) * s_h2f(y[i].s);                                            \
        }                                                                                     \
        return hsum_ps(acc) + mins;                                                           \
    }
static inline __m256i ints_q4_1(const lq_block_q4_1 *x, const lq_block_q8_1 *y) {
    return dot_us8(_mm256_setzero_si256(), nibbles32(x->qs), _mm256_loadu_si256((const __m256i *)y->qs));
}
static inline __m256i ints_q5_1(const lq_block_q5_1 *x, const lq_block_q8_1 *y) {
    __m256i hb = bits_to_bytes32(s_load_u32(x->qh));
    __m256i q = _mm256_or_si256(nibbles32(x->qs), _mm256_and_si256(hb, _mm256_set1_epi8(16)));
    return dot_us8(_mm256_setzero_si256(), q, _mm256_loadu_si256((const __m256i *)y->qs));
}
LEGACY_DOT_MIN(v_dotq_q4_1, lq_block_q4_1, ints_q4_1)
LEGACY_DOT_MIN(v_dotq_q5_1, lq_block_q5_1, ints_q5_1)

/* Σ_s mn[s]·(bsums[2s] + bsums[2s+1]) for the 8 min codes of Q4_K/Q5_K. */
static inline int k4_min_sum(const uint8_t mn[8], const int16_t *bsums) {
    __m128i m8 = _mm_loadl_epi64((const __m128i *)mn);
    m8 = _mm_shuffle_epi8(m8, _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7));
    __m256i m16 = _mm256_cvtepu8_epi16(m8);
    return hsum_epi32(_mm256_madd_epi16(m16, _mm256_loadu_si256((const __m256i *)bsums)));
}

/* Codes ≤ 15 (31 for Q5_K) against |y| ≤ 127: pair sums ≤ 7874; then × scale ≤ 63.
 * One block of one row, with the block's 256 activations already loaded (yv): the one- and
 * two-row kernels run exactly these operations per row, so they give the same bits. */
static inline void q4_K_block(const lq_block_q4_K *x, const lq_block_q8_K *y, const __m256i yv[8], __m256 *acc,
                              float *mins) {
    const __m256i m4 = _mm256_set1_epi8(15);
    uint32_t w[4];
    unpack_k4_words(x->scales, w);
    const uint8_t *sc = (const uint8_t *)w, *mn = sc + 8;
    __m256i sumi = _mm256_setzero_si256();
    for (int c = 0; c < 4; c++) {
        __m256i q = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * c));
        __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
        sumi = _mm256_add_epi32(sumi, dot_us8_scaled(lo, yv[2 * c], _mm256_set1_epi16(sc[2 * c])));
        sumi = _mm256_add_epi32(sumi, dot_us8_scaled(hi, yv[2 * c + 1], _mm256_set1_epi16(sc[2 * c + 1])));
    }
    *acc = _mm256_fmadd_ps(_mm256_set1_ps(y->d * s_h2f(x->d)), _mm256_cvtepi32_ps(sumi), *acc);
    *mins += (y->d * s_h2f(x->dmin)) * (float)k4_min_sum(mn, y->bsums);
}

static inline void load_q8_K_qs(const lq_block_q8_K *y, __m256i yv[8]) {
    for (int k = 0; k < 8; k++) yv[k] = _mm256_loadu_si256((const __m256i *)(y->qs + 32 * k));
}

static float v_dotq_q4_K(const void *row, const void *act, int64_t n) {
    const lq_block_q4_K *x = (const lq_block_q4_K *)row;
    const lq_block_q8_K *y = (const lq_block_q8_K *)act;
    __m256 acc = _mm256_setzero_ps();
    float mins = 0.0f;
    for (int64_t i = 0; i < n / 256; i++) {
        prefetch_ahead(&x[i], sizeof x[i]);
        __m256i yv[8];
        load_q8_K_qs(&y[i], yv);
        q4_K_block(&x[i], &y[i], yv, &acc, &mins);
    }
    return hsum_ps(acc) - mins;
}

/* Two rows sharing the activation loads (lq_kernel_matvec_q's pairs). */
static void v_dotq2_q4_K(const void *row0, const void *row1, const void *act, int64_t n, float out[2]) {
    const lq_block_q4_K *x0 = (const lq_block_q4_K *)row0, *x1 = (const lq_block_q4_K *)row1;
    const lq_block_q8_K *y = (const lq_block_q8_K *)act;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    float mins0 = 0.0f, mins1 = 0.0f;
    for (int64_t i = 0; i < n / 256; i++) {
        prefetch_ahead(&x0[i], sizeof x0[i]);
        prefetch_ahead(&x1[i], sizeof x1[i]);
        __m256i yv[8];
        load_q8_K_qs(&y[i], yv);
        q4_K_block(&x0[i], &y[i], yv, &acc0, &mins0);
        q4_K_block(&x1[i], &y[i], yv, &acc1, &mins1);
    }
    out[0] = hsum_ps(acc0) - mins0;
    out[1] = hsum_ps(acc1) - mins1;
}

/* Q4_K/Q5_K codes of chunk c (32 bytes at qs): low nibbles + 16 × bit 2c of qh, high nibbles
 * + 16 × bit 2c+1 (qh all zero for Q4_K). */
static inline void k5_codes(const uint8_t *qs, __m256i qh, int c, __m256i *lo, __m256i *hi) {
    const __m256i m4 = _mm256_set1_epi8(15), m1 = _mm256_set1_epi8(1);
    __m256i q = _mm256_loadu_si256((const __m256i *)qs);
    __m256i hlo = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), m1), 4);
    __m256i hhi = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), m1), 4);
    *lo = _mm256_or_si256(_mm256_and_si256(q, m4), hlo);
    *hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), hhi);
}

static float v_dotq_q5_K(const void *row, const void *act, int64_t n) {
    const lq_block_q5_K *x = (const lq_block_q5_K *)row;
    const lq_block_q8_K *y = (const lq_block_q8_K *)act;
    __m256 acc = _mm256_setzero_ps();
    float mins = 0.0f;
    for (int64_t i = 0; i < n / 256; i++) {
        prefetch_ahead(&x[i], sizeof x[i]);
        uint32_t w[4];
        unpack_k4_words(x[i].scales, w);
        const uint8_t *sc = (const uint8_t *)w, *mn = sc + 8;
        __m256i qh = _mm256_loadu_si256((const __m256i *)x[i].qh);
        __m256i sumi = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            __m256i lo, hi;
            k5_codes(x[i].qs + 32 * c, qh, c, &lo, &hi);
            __m256i y0 = _mm256_loadu_si256((const __m256i *)(y[i].qs + 64 * c));
            __m256i y1 = _mm256_loadu_si256((const __m256i *)(y[i].qs + 64 * c + 32));
            sumi = _mm256_add_epi32(sumi, dot_us8_scaled(lo, y0, _mm256_set1_epi16(sc[2 * c])));
            sumi = _mm256_add_epi32(sumi, dot_us8_scaled(hi, y1, _mm256_set1_epi16(sc[2 * c + 1])));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(y[i].d * s_h2f(x[i].d)), _mm256_cvtepi32_ps(sumi), acc);
        mins += (y[i].d * s_h2f(x[i].dmin)) * (float)k4_min_sum(mn, y[i].bsums);
    }
    return hsum_ps(acc) - mins;
}

/* Q6_K: unsigned codes 0..63 (pair sums ≤ 16002), the −32 offset folded in through bsums. */
static float v_dotq_q6_K(const void *row, const void *act, int64_t n) {
    const lq_block_q6_K *x = (const lq_block_q6_K *)row;
    const lq_block_q8_K *y = (const lq_block_q8_K *)act;
    __m256 acc = _mm256_setzero_ps();
    float offs = 0.0f;
    for (int64_t i = 0; i < n / 256; i++) {
        prefetch_ahead(&x[i], sizeof x[i]);
        __m128i sc8 = _mm_loadu_si128((const __m128i *)x[i].scales);
        __m256i sc16 = _mm256_cvtepi8_epi16(sc8), lanes[2];
        scale_lanes16(sc8, &lanes[0], &lanes[1]);
        int off = 32 * hsum_epi32(_mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)y[i].bsums)));
        __m256i sumi = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i q[4];
            q6_codes(&x[i], h, q);
            for (int k = 0; k < 4; k++) {
                __m256i yv = _mm256_loadu_si256((const __m256i *)(y[i].qs + 128 * h + 32 * k));
                sumi = _mm256_add_epi32(sumi, dot_us8_scaled(q[k], yv, scale_group(lanes[h], k)));
            }
        }
        const float d = y[i].d * s_h2f(x[i].d);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
        offs += d * (float)off;
    }
    return hsum_ps(acc) - offs;
}

/* Q3_K: unsigned codes 0..7 (value + 4), the −4 offset folded in through bsums. */
static float v_dotq_q3_K(const void *row, const void *act, int64_t n) {
    const lq_block_q3_K *x = (const lq_block_q3_K *)row;
    const lq_block_q8_K *y = (const lq_block_q8_K *)act;
    __m256 acc = _mm256_setzero_ps();
    float offs = 0.0f;
    for (int64_t i = 0; i < n / 256; i++) {
        prefetch_ahead(&x[i], sizeof x[i]);
        __m128i sc8 = unpack_q3_scales_v(x[i].scales);
        __m256i sc16 = _mm256_cvtepi8_epi16(sc8), lanes[2];
        scale_lanes16(sc8, &lanes[0], &lanes[1]);
        int off = 4 * hsum_epi32(_mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)y[i].bsums)));
        __m256i sumi = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i codes[4];
            q3_codes(&x[i], h, codes);
            for (int k = 0; k < 4; k++) {
                __m256i u = codes[k];
                __m256i yv = _mm256_loadu_si256((const __m256i *)(y[i].qs + 128 * h + 32 * k));
                sumi = _mm256_add_epi32(sumi, dot_us8_scaled(u, yv, scale_group(lanes[h], k)));
            }
        }
        const float d = y[i].d * s_h2f(x[i].d);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
        offs += d * (float)off;
    }
    return hsum_ps(acc) - offs;
}

/* Q2_K: codes 0..3 × scale (low nibble); mins (high nibble) through bsums. */
static float v_dotq_q2_K(const void *row, const void *act, int64_t n) {
    const lq_block_q2_K *x = (const lq_block_q2_K *)row;
    const lq_block_q8_K *y = (const lq_block_q8_K *)act;
    __m256 acc = _mm256_setzero_ps();
    float mins = 0.0f;
    for (int64_t i = 0; i < n / 256; i++) {
        prefetch_ahead(&x[i], sizeof x[i]);
        __m128i sc8 = _mm_loadu_si128((const __m128i *)x[i].scales);
        __m256i mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), _mm_set1_epi8(15)));
        __m256i lanes[2];
        scale_lanes16(_mm_and_si128(sc8, _mm_set1_epi8(15)), &lanes[0], &lanes[1]);
        int msum = hsum_epi32(_mm256_madd_epi16(mn16, _mm256_loadu_si256((const __m256i *)y[i].bsums)));
        __m256i sumi = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i codes[4];
            q2_codes(&x[i], h, codes);
            for (int k = 0; k < 4; k++) {
                __m256i u = codes[k];
                __m256i yv = _mm256_loadu_si256((const __m256i *)(y[i].qs + 128 * h + 32 * k));
                sumi = _mm256_add_epi32(sumi, dot_us8_scaled(u, yv, scale_group(lanes[h], k)));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(y[i].d * s_h2f(x[i].d)), _mm256_cvtepi32_ps(sumi), acc);
        mins += (y[i].d * s_h2f(x[i].dmin)) * (float)msum;
    }
    return hsum_ps(acc) - mins;
}

/* IQ4_XS: codebook values |K| ≤ 127 (sign trick), × the sub-block scale (−32..31). */
static float v_dotq_iq4_xs(const void *row, const void *act, int64_t n) {
    const lq_block_iq4_xs *x = (const lq_block_iq4_xs *)row;
    const lq_block_q8_K *y = (const lq_block_q8_K *)act;
    const __m256i table = iq4_table();
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 256; i++) {
        prefetch_ahead(&x[i], sizeof x[i]);
        __m256i sumi = _mm256_setzero_si256();
        for (int sub = 0; sub < 8; sub++) {
            __m256i q = _mm256_shuffle_epi8(table, nibbles32(x[i].qs + 16 * sub));
            __m256i yv = _mm256_loadu_si256((const __m256i *)(y[i].qs + 32 * sub));
            __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(yv, q));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, _mm256_set1_epi16((short)lq_iq4_xs_scale(&x[i], sub))));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(y[i].d * s_h2f(x[i].d)), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum_ps(acc);
}

/* Plain types with converted activations. */
static float v_dotq_f32(const void *row, const void *act, int64_t n) { return v_dotf_f32(row, (const float *)act, n); }

/* F16/BF16 × activations converted to the same type: 32 elements per step on four
 * accumulators (one FMA chain would be latency-bound), weights prefetched. */
#define PLAIN_DOT_Q(name, to_ps, to_f32)                                                          \
    static float name(const void *row, const void *act, int64_t n) {                           \
        const uint16_t *w = (const uint16_t *)row, *a = (const uint16_t *)act;                 \
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()}; \
        int64_t i = 0;                                                                         \
        for (; i + 32 <= n; i += 32) {                                                         \
            prefetch_ahead(w + i, 64);                                                         \
            for (int k = 0; k < 4; k++)                                                        \
                acc[k] = _mm256_fmadd_ps(to_ps(_mm_loadu_si128((const __m128i *)(w + i + 8 * k))), \
                                         to_ps(_mm_loadu_si128((const __m128i *)(a + i + 8 * k))), acc[k]); \
        }                                                                                      \
        for (; i + 8 <= n; i += 8)                                                             \
            acc[0] = _mm256_fmadd_ps(to_ps(_mm_loadu_si128((const __m128i *)(w + i))),         \
                                     to_ps(_mm_loadu_si128((const __m128i *)(a + i))), acc[0]); \
        float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]))); \
        for (; i < n; i++) sum += to_f32(w[i]) * to_f32(a[i]);                                 \
        return sum;                                                                            \
    }
PLAIN_DOT_Q(v_dotq_f16, _mm256_cvtph_ps, lq_fp16_to_f32)
PLAIN_DOT_Q(v_dotq_bf16, bf8_to_ps, lq_bf16_to_f32)

/* ---------------------------------------------------------------------------------------
 * dot_f32 for block formats through the SIMD decoders
 * ------------------------------------------------------------------------------------- */
#define DOTF_VIA(name, deq, type_id)                                                        \
    static float name(const void *row, const float *x, int64_t n) {                        \
        const lq_type_traits *tr = lq_type_get(type_id);                                   \
        return dotf_via_dequant(deq, tr->block_bytes, tr->block_size, row, x, n);          \
    }
DOTF_VIA(v_dotf_q4_0, v_deq_q4_0, LQ_TYPE_Q4_0)
DOTF_VIA(v_dotf_q4_1, v_deq_q4_1, LQ_TYPE_Q4_1)
DOTF_VIA(v_dotf_q5_0, v_deq_q5_0, LQ_TYPE_Q5_0)
DOTF_VIA(v_dotf_q5_1, v_deq_q5_1, LQ_TYPE_Q5_1)
DOTF_VIA(v_dotf_q8_0, v_deq_q8_0, LQ_TYPE_Q8_0)
DOTF_VIA(v_dotf_iq4_nl, v_deq_iq4_nl, LQ_TYPE_IQ4_NL)
DOTF_VIA(v_dotf_q2_K, v_deq_q2_K, LQ_TYPE_Q2_K)
DOTF_VIA(v_dotf_q3_K, v_deq_q3_K, LQ_TYPE_Q3_K)
DOTF_VIA(v_dotf_q4_K, v_deq_q4_K, LQ_TYPE_Q4_K)
DOTF_VIA(v_dotf_q5_K, v_deq_q5_K, LQ_TYPE_Q5_K)
DOTF_VIA(v_dotf_q6_K, v_deq_q6_K, LQ_TYPE_Q6_K)
DOTF_VIA(v_dotf_iq4_xs, v_deq_iq4_xs, LQ_TYPE_IQ4_XS)

/* ---------------------------------------------------------------------------------------
 * K-quant rows × tokens (the batch products of prompt processing)
 *
 * Two rows are unpacked once for all their blocks (codes as bytes and the scales as int16
 * lanes, per 32-element group), then met by the batch's tokens four at a time. Per group the
 * integer steps are the dot kernels' own (dot_us8_scaled into the same 8 lanes) and so are the
 * float steps after them: acc += (d_y·d) × (float)sumi, second += (d_y·d2) × (float)(Σ_k
 * m_k·bsums_k × 2^shift) (Q2_K, Q4_K, Q5_K: the mins, d2 = dmin; Q3_K, Q6_K: the −4 or −32
 * offset, d2 = d, shift 2 or 5), y = hsum(acc) − second. The tile therefore returns
 * v_dotq_*'s bits. (avx512.c replaces these with 512-bit tiles.)
 * ------------------------------------------------------------------------------------- */
#define VQ_ROWS 2
#define VQ_TOKS 4

/* What distinguishes the K-quant formats in the tiles' float steps and products. */
typedef struct kq_format {
    int shift;         /* the second term's integer × 2^shift */
    bool signed_codes; /* codes are |value| and the values' signs go onto the activations */
} kq_format;

/* The driver of the 256- and 512-bit tiles: ROWS rows at a time unpacked once for all their
 * blocks, then the tokens TOKS at a time through TILE (its loops unrolled for full tiles).
 * Without memory for the unpacked rows, the dot kernel row by row gives the same bits. */
#define KQUANT_GEMM_DRIVER(NAME, UNPACKED_T, ROWS, TOKS, TILE)                                                   \
    static void NAME(void (*unpack)(const void *, int64_t, UNPACKED_T *), lq_dot_q_fn dot, kq_format f,         \
                     const uint8_t *w, size_t row_stride, int64_t n_rows, const uint8_t *a, size_t act_stride,  \
                     int64_t n_tok, int64_t n, float *y, int64_t y_stride) {                                     \
        int64_t n_blocks = n / 256;                                                                              \
        UNPACKED_T *u = aligned_alloc(_Alignof(UNPACKED_T),                                                      \
                                      sizeof(UNPACKED_T) * ROWS * (size_t)(n_blocks > 0 ? n_blocks : 1));        \
        if (!u) {                                                                                                \
            for (int64_t t = 0; t < n_tok; t++)                                                                  \
                for (int64_t r = 0; r < n_rows; r++)                                                             \
                    y[t * y_stride + r] = dot(w + (size_t)r * row_stride, a + (size_t)t * act_stride, n);        \
            return;                                                                                              \
        }                                                                                                        \
        for (int64_t r = 0; r < n_rows; r += ROWS) {                                                             \
            int nr = n_rows - r < ROWS ? (int)(n_rows - r) : ROWS;                                               \
            for (int k = 0; k < nr; k++)                                                                         \
                unpack(w + (size_t)(r + k) * row_stride, n_blocks, u + (size_t)k * (size_t)n_blocks);            \
            for (int64_t t = 0; t < n_tok; t += TOKS) {                                                          \
                int nt = n_tok - t < TOKS ? (int)(n_tok - t) : TOKS;                                             \
                const uint8_t *at = a + (size_t)t * act_stride;                                                  \
                float *yt = y + t * y_stride + r;                                                                \
                if (nr == ROWS && nt == TOKS)                                                                    \
                    TILE(u, n_blocks, ROWS, at, act_stride, TOKS, f, yt, y_stride);                              \
                else                                                                                             \
                    TILE(u, n_blocks, nr, at, act_stride, nt, f, yt, y_stride);                                  \
            }                                                                                                    \
        }                                                                                                        \
        free(u);                                                                                                 \
    }

/* A table entry: DRIVER with one format's unpacking, dot kernel and kq_format. */
#define KQUANT_GEMM(NAME, DRIVER, UNPACK, DOT, SHIFT, SIGNED)                                                    \
    static void NAME(const void *rows, size_t row_stride, int64_t n_rows, const void *act, size_t act_stride,    \
                     int64_t n_tok, int64_t n, float *y, int64_t y_stride) {                                     \
        DRIVER(UNPACK, DOT, (kq_format){SHIFT, SIGNED}, (const uint8_t *)rows, row_stride, n_rows,               \
               (const uint8_t *)act, act_stride, n_tok, n, y, y_stride);                                         \
    }

typedef struct vq_unpacked {
    __m256i codes[8], scales[8]; /* per 32-element group */
    __m256i mterms;              /* m_k per 16-element bsum */
    float d, d2;
} vq_unpacked;

/* Q4_K/Q5_K (qh NULL for Q4_K). */
static void vq_unpack_k4(const uint8_t *scales, const uint8_t *qs, const uint8_t *qh, lq_half d, lq_half dmin,
                         vq_unpacked *u) {
    uint32_t w[4];
    unpack_k4_words(scales, w);
    const uint8_t *sc = (const uint8_t *)w, *mn = sc + 8;
    __m256i h = qh ? _mm256_loadu_si256((const __m256i *)qh) : _mm256_setzero_si256();
    for (int c = 0; c < 4; c++) {
        k5_codes(qs + 32 * c, h, c, &u->codes[2 * c], &u->codes[2 * c + 1]);
        u->scales[2 * c] = _mm256_set1_epi16(sc[2 * c]);
        u->scales[2 * c + 1] = _mm256_set1_epi16(sc[2 * c + 1]);
    }
    __m128i m8 = _mm_shuffle_epi8(_mm_loadl_epi64((const __m128i *)mn),
                                  _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7));
    u->mterms = _mm256_cvtepu8_epi16(m8);
    u->d = s_h2f(d);
    u->d2 = s_h2f(dmin);
}
static void vq_unpack_q4_K(const void *row, int64_t n_blocks, vq_unpacked *u) {
    const lq_block_q4_K *x = (const lq_block_q4_K *)row;
    for (int64_t i = 0; i < n_blocks; i++) vq_unpack_k4(x[i].scales, x[i].qs, NULL, x[i].d, x[i].dmin, &u[i]);
}
static void vq_unpack_q5_K(const void *row, int64_t n_blocks, vq_unpacked *u) {
    const lq_block_q5_K *x = (const lq_block_q5_K *)row;
    for (int64_t i = 0; i < n_blocks; i++) vq_unpack_k4(x[i].scales, x[i].qs, x[i].qh, x[i].d, x[i].dmin, &u[i]);
}

/* Scale per 16 elements: codes of half h (groups 4h..4h+3) with their scale lanes. */
static void vq_put_half16(vq_unpacked *u, int h, const __m256i q[4], __m128i sc8) {
    __m256i lanes[2];
    scale_lanes16(sc8, &lanes[0], &lanes[1]);
    for (int k = 0; k < 4; k++) {
        u->codes[4 * h + k] = q[k];
        u->scales[4 * h + k] = scale_group(lanes[h], k);
    }
}
static void vq_unpack_q2_K(const void *row, int64_t n_blocks, vq_unpacked *u) {
    const lq_block_q2_K *x = (const lq_block_q2_K *)row;
    for (int64_t i = 0; i < n_blocks; i++) {
        __m128i sc8 = _mm_loadu_si128((const __m128i *)x[i].scales);
        for (int h = 0; h < 2; h++) {
            __m256i q[4];
            q2_codes(&x[i], h, q);
            vq_put_half16(&u[i], h, q, _mm_and_si128(sc8, _mm_set1_epi8(15)));
        }
        u[i].mterms = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), _mm_set1_epi8(15)));
        u[i].d = s_h2f(x[i].d);
        u[i].d2 = s_h2f(x[i].dmin);
    }
}
static void vq_unpack_q3_K(const void *row, int64_t n_blocks, vq_unpacked *u) {
    const lq_block_q3_K *x = (const lq_block_q3_K *)row;
    for (int64_t i = 0; i < n_blocks; i++) {
        __m128i sc8 = unpack_q3_scales_v(x[i].scales);
        for (int h = 0; h < 2; h++) {
            __m256i q[4];
            q3_codes(&x[i], h, q);
            vq_put_half16(&u[i], h, q, sc8);
        }
        u[i].mterms = _mm256_cvtepi8_epi16(sc8);
        u[i].d = s_h2f(x[i].d);
        u[i].d2 = u[i].d;
    }
}
static void vq_unpack_q6_K(const void *row, int64_t n_blocks, vq_unpacked *u) {
    const lq_block_q6_K *x = (const lq_block_q6_K *)row;
    for (int64_t i = 0; i < n_blocks; i++) {
        __m128i sc8 = _mm_loadu_si128((const __m128i *)x[i].scales);
        for (int h = 0; h < 2; h++) {
            __m256i q[4];
            q6_codes(&x[i], h, q);
            vq_put_half16(&u[i], h, q, sc8);
        }
        u[i].mterms = _mm256_cvtepi8_epi16(sc8);
        u[i].d = s_h2f(x[i].d);
        u[i].d2 = u[i].d;
    }
}

static inline __attribute__((always_inline)) void vq_tile(const vq_unpacked *u, int64_t n_blocks, int nr,
                                                         const uint8_t *act, size_t act_stride, int nt, kq_format f,
                                                         float *y, int64_t y_stride) {
    __m256 acc[VQ_ROWS][VQ_TOKS];
    float second[VQ_ROWS][VQ_TOKS];
    for (int r = 0; r < nr; r++)
        for (int t = 0; t < nt; t++) acc[r][t] = _mm256_setzero_ps(), second[r][t] = 0.0f;
    for (int64_t i = 0; i < n_blocks; i++) {
        const lq_block_q8_K *b[VQ_TOKS];
        for (int t = 0; t < nt; t++) b[t] = (const lq_block_q8_K *)(act + (size_t)t * act_stride) + i;
        __m256i sumi[VQ_ROWS][VQ_TOKS];
        for (int r = 0; r < nr; r++)
            for (int t = 0; t < nt; t++) sumi[r][t] = _mm256_setzero_si256();
        for (int g = 0; g < 8; g++) {
            __m256i yv[VQ_TOKS];
            for (int t = 0; t < nt; t++) yv[t] = _mm256_loadu_si256((const __m256i *)(b[t]->qs + 32 * g));
            for (int r = 0; r < nr; r++) {
                const vq_unpacked *ur = &u[(size_t)r * (size_t)n_blocks + (size_t)i];
                for (int t = 0; t < nt; t++)
                    sumi[r][t] = _mm256_add_epi32(sumi[r][t], dot_us8_scaled(ur->codes[g], yv[t], ur->scales[g]));
            }
        }
        for (int r = 0; r < nr; r++) {
            const vq_unpacked *ur = &u[(size_t)r * (size_t)n_blocks + (size_t)i];
            for (int t = 0; t < nt; t++) {
                acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(b[t]->d * ur->d), _mm256_cvtepi32_ps(sumi[r][t]), acc[r][t]);
                int m = hsum_epi32(_mm256_madd_epi16(ur->mterms, _mm256_loadu_si256((const __m256i *)b[t]->bsums)));
                second[r][t] += (b[t]->d * ur->d2) * (float)(m * (1 << f.shift));
            }
        }
    }
    for (int r = 0; r < nr; r++)
        for (int t = 0; t < nt; t++) y[t * y_stride + r] = hsum_ps(acc[r][t]) - second[r][t];
}

KQUANT_GEMM_DRIVER(vq_gemm, vq_unpacked, VQ_ROWS, VQ_TOKS, vq_tile)
KQUANT_GEMM(v_gemm_q2_K, vq_gemm, vq_unpack_q2_K, v_dotq_q2_K, 0, false)
KQUANT_GEMM(v_gemm_q3_K, vq_gemm, vq_unpack_q3_K, v_dotq_q3_K, 2, false)
KQUANT_GEMM(v_gemm_q4_K, vq_gemm, vq_unpack_q4_K, v_dotq_q4_K, 0, false)
KQUANT_GEMM(v_gemm_q5_K, vq_gemm, vq_unpack_q5_K, v_dotq_q5_K, 0, false)
KQUANT_GEMM(v_gemm_q6_K, vq_gemm, vq_unpack_q6_K, v_dotq_q6_K, 5, false)

#define V_SET(t, type, deq, dotf, dotq) \
    do {                                \
        (t)->dequant[type] = deq;       \
        (t)->dot_f32[type] = dotf;      \
        (t)->dot_q[type] = dotq;        \
    } while (0)

static void fill_simd256(lq_kernel_table *t) {
    V_SET(t, LQ_TYPE_F32, t->dequant[LQ_TYPE_F32], v_dotf_f32, v_dotq_f32);
    V_SET(t, LQ_TYPE_F16, v_deq_f16, v_dotf_f16, v_dotq_f16);
    V_SET(t, LQ_TYPE_BF16, v_deq_bf16, v_dotf_bf16, v_dotq_bf16);
    V_SET(t, LQ_TYPE_Q4_0, v_deq_q4_0, v_dotf_q4_0, v_dotq_q4_0);
    V_SET(t, LQ_TYPE_Q4_1, v_deq_q4_1, v_dotf_q4_1, v_dotq_q4_1);
    V_SET(t, LQ_TYPE_Q5_0, v_deq_q5_0, v_dotf_q5_0, v_dotq_q5_0);
    V_SET(t, LQ_TYPE_Q5_1, v_deq_q5_1, v_dotf_q5_1, v_dotq_q5_1);
    V_SET(t, LQ_TYPE_Q8_0, v_deq_q8_0, v_dotf_q8_0, v_dotq_q8_0);
    V_SET(t, LQ_TYPE_IQ4_NL, v_deq_iq4_nl, v_dotf_iq4_nl, v_dotq_iq4_nl);
    V_SET(t, LQ_TYPE_Q2_K, v_deq_q2_K, v_dotf_q2_K, v_dotq_q2_K);
    V_SET(t, LQ_TYPE_Q3_K, v_deq_q3_K, v_dotf_q3_K, v_dotq_q3_K);
    V_SET(t, LQ_TYPE_Q4_K, v_deq_q4_K, v_dotf_q4_K, v_dotq_q4_K);
    V_SET(t, LQ_TYPE_Q5_K, v_deq_q5_K, v_dotf_q5_K, v_dotq_q5_K);
    V_SET(t, LQ_TYPE_Q6_K, v_deq_q6_K, v_dotf_q6_K, v_dotq_q6_K);
    V_SET(t, LQ_TYPE_IQ4_XS, v_deq_iq4_xs, v_dotf_iq4_xs, v_dotq_iq4_xs);
    t->dot_q2[LQ_TYPE_Q4_K] = v_dotq2_q4_K;
    t->gemm_q[LQ_TYPE_Q2_K] = v_gemm_q2_K;
    t->gemm_q[LQ_TYPE_Q3_K] = v_gemm_q3_K;
    t->gemm_q[LQ_TYPE_Q4_K] = v_gemm_q4_K;
    t->gemm_q[LQ_TYPE_Q5_K] = v_gemm_q5_K;
    t->gemm_q[LQ_TYPE_Q6_K] = v_gemm_q6_K;
    t->quant_act[LQ_TYPE_Q8_0] = v_quant_q8_0;
    t->quant_act[LQ_TYPE_Q8_1] = v_quant_q8_1;
    t->quant_act[LQ_TYPE_Q8_K] = v_quant_q8_K;
    t->quant_act[LQ_TYPE_F16] = v_quant_f16;
    t->quant_act[LQ_TYPE_BF16] = v_quant_bf16;
    t->fp16_to_f32 = v_fp16_to_f32;
    t->bf16_to_f32 = v_bf16_to_f32;
    t->f32_to_fp16 = v_f32_to_fp16;
    t->f32_to_bf16 = v_f32_to_bf16;
}

#endif
