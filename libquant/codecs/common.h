/* codecs/common.h — scalar numeric conventions of llama.cpp's reference quantizers, as host and
 * device functions. Compiled with -ffp-contract=off (CUDA: -fmad=false): results must be
 * bit-exact with llama.cpp's reference code. */
#ifndef LQ_CODECS_COMMON_H
#define LQ_CODECS_COMMON_H

#include "../internal.h"

#include <math.h>
#include <string.h>

static LQ_HD inline uint32_t lq_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static LQ_HD inline float lq_bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* fp32 → fp16, round to nearest even; NaN → 0x7E00 (as the portable ggml path). Works on the
 * bit patterns so it is exact on every compiler and on the device. */
static LQ_HD inline uint16_t lq_fp16_from_f32(float f) {
    uint32_t x = lq_f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t ax = x & 0x7FFFFFFFu;
    if (ax > 0x7F800000u) return (uint16_t)(sign | 0x7E00u); /* NaN */
    if (ax >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u); /* rounds to Inf (>= 65520) */
    if (ax < 0x38800000u) {                                   /* result is subnormal or zero */
        if (ax < 0x33000000u) return (uint16_t)sign;          /* < 2^-25: rounds to zero */
        uint32_t e = ax >> 23;                                /* biased exponent, 102..112 */
        uint32_t m = (ax & 0x7FFFFFu) | 0x800000u;
        uint32_t shift = 126 - e;                             /* 14..24 */
        uint32_t q = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1u))) q++;
        return (uint16_t)(sign | q);
    }
    /* normal: rebias exponent and round the mantissa from 23 to 10 bits */
    uint32_t r = ax - 0x38000000u; /* exponent bias 127 → 15 */
    uint32_t q = r >> 13;
    uint32_t rem = r & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (q & 1u))) q++;
    return (uint16_t)(sign | q);
}

static LQ_HD inline float lq_fp16_to_f32(uint16_t h) {
    uint32_t sign = ((uint32_t)h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1Fu;
    uint32_t m = h & 0x3FFu;
    uint32_t bits;
    if (e == 0) {
        if (m == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int sh = 0;
            while (!(m & 0x400u)) {
                m <<= 1;
                sh++;
            }
            m &= 0x3FFu;
            bits = sign | ((uint32_t)(113 - sh) << 23) | (m << 13);
        }
    } else if (e == 31) {
        bits = sign | 0x7F800000u | (m << 13);
    } else {
        bits = sign | ((e + 112u) << 23) | (m << 13);
    }
    return lq_bits_f32(bits);
}

/* bf16: top 16 bits with round to nearest even; NaN forced quiet. */
static LQ_HD inline uint16_t lq_bf16_from_f32(float f) {
    uint32_t u = lq_f32_bits(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 64);
    return (uint16_t)((u + (0x7FFFu + ((u >> 16) & 1u))) >> 16);
}
static LQ_HD inline float lq_bf16_to_f32(uint16_t h) { return lq_bits_f32((uint32_t)h << 16); }

/* ggml's nearest_int: round half to even via the 1.5*2^23 trick; valid for |f| < 2^22. */
static LQ_HD inline int lq_nearest_int(float fval) {
    float val = fval + 12582912.f;
    int i;
    memcpy(&i, &val, sizeof(int));
    return (i & 0x007fffff) - 0x00400000;
}

#endif
