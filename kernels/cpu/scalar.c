/* scalar.c — the scalar reference kernels. Block decoding and the Q8_0/Q8_K activation
 * quantizers are the codecs' own functions (libquant/codecs/ headers); the dot products are written
 * from the block layouts (libquant/codecs/blocks.h and the reference notes, section b).
 *
 * Compiled with -ffp-contract=off: dequantization forms every value with the same float
 * operations, in the same order, as llama.cpp's to_float functions, so it reproduces their
 * output bit for bit. The quantized dot products follow llama.cpp's vec_dot: an exact integer
 * sum per block (or super-block), then one float scaling per block accumulated in block order.
 * The SIMD paths are tested against these functions. */
#include "kernels.h"

#include "codecs/common.h"
#include "codecs/iq4.h"
#include "codecs/kquants.h"
#include "codecs/legacy.h"

#include <string.h>

const int8_t lq_iq4_values[16] = LQ_IQ4_VALUES;

static float h2f(lq_half h) { return lq_fp16_to_f32(h); }

/* ---------------------------------------------------------------------------------------
 * Dequantization: the codecs' block decoders (one implementation per format, shared with
 * the row API, GPTQ and the CUDA kernels).
 * ------------------------------------------------------------------------------------- */
#define deq_q4_0 lq_q4_0_decode
#define deq_q4_1 lq_q4_1_decode
#define deq_q5_0 lq_q5_0_decode
#define deq_q5_1 lq_q5_1_decode
#define deq_q8_0 lq_q8_0_decode
#define deq_iq4_nl lq_iq4_nl_decode
#define deq_q2_K lq_q2_K_decode
#define deq_q3_K lq_q3_K_decode
#define deq_q4_K lq_q4_K_decode
#define deq_q5_K lq_q5_K_decode
#define deq_q6_K lq_q6_K_decode
#define deq_iq4_xs lq_iq4_xs_decode

/* Layout helpers of the dot products below. */
static uint32_t load_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static int plane2(const uint8_t *qs, int e) {
    int h = e / 128, k = (e % 128) / 32, l = e % 32;
    return (qs[32 * h + l] >> (2 * k)) & 3;
}

static int nibble_k(const uint8_t *qs, int e) {
    int c = e / 64, l = e % 32;
    return (e % 64) < 32 ? qs[32 * c + l] & 15 : qs[32 * c + l] >> 4;
}

static int q6_code(const lq_block_q6_K *b, int e) {
    int h = e / 128, k = (e % 128) / 32, l = e % 32;
    const uint8_t *ql = b->ql + 64 * h;
    int low = k == 0 ? ql[l] & 15 : k == 1 ? ql[32 + l] & 15 : k == 2 ? ql[l] >> 4 : ql[32 + l] >> 4;
    int high = (b->qh[32 * h + l] >> (2 * k)) & 3;
    return (low | (high << 4)) - 32;
}

/* Row loops over the block decoders. */
#define DEQ_ROW(name, block_t, bs)                                          \
    static void name##_row(const void *src, float *dst, int64_t n) {        \
        const block_t *b = (const block_t *)src;                            \
        for (int64_t i = 0; i < n / (bs); i++) name(b + i, dst + i * (bs)); \
    }
DEQ_ROW(deq_q4_0, lq_block_q4_0, 32)
DEQ_ROW(deq_q4_1, lq_block_q4_1, 32)
DEQ_ROW(deq_q5_0, lq_block_q5_0, 32)
DEQ_ROW(deq_q5_1, lq_block_q5_1, 32)
DEQ_ROW(deq_q8_0, lq_block_q8_0, 32)
DEQ_ROW(deq_iq4_nl, lq_block_iq4_nl, 32)
DEQ_ROW(deq_q2_K, lq_block_q2_K, 256)
DEQ_ROW(deq_q3_K, lq_block_q3_K, 256)
DEQ_ROW(deq_q4_K, lq_block_q4_K, 256)
DEQ_ROW(deq_q5_K, lq_block_q5_K, 256)
DEQ_ROW(deq_q6_K, lq_block_q6_K, 256)
DEQ_ROW(deq_iq4_xs, lq_block_iq4_xs, 256)

static void deq_f32_row(const void *src, float *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

static void fp16_to_f32_scalar(const uint16_t *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = lq_fp16_to_f32(src[i]);
}
static void bf16_to_f32_scalar(const uint16_t *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = lq_bf16_to_f32(src[i]);
}
static void f32_to_fp16_scalar(const float *src, uint16_t *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = lq_fp16_from_f32(src[i]);
}
static void f32_to_bf16_scalar(const float *src, uint16_t *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = lq_bf16_from_f32(src[i]);
}
static void deq_f16_row(const void *src, float *dst, int64_t n) {
    fp16_to_f32_scalar((const uint16_t *)src, dst, (size_t)n);
}
static void deq_bf16_row(const void *src, float *dst, int64_t n) {
    bf16_to_f32_scalar((const uint16_t *)src, dst, (size_t)n);
}

/* ---------------------------------------------------------------------------------------
 * Dot product with float activations: decode a block, then accumulate in element order.
 * ------------------------------------------------------------------------------------- */
#define DOT_F32_ROW(name, deq, block_t, bs)                                    \
    static float name(const void *row, const float *x, int64_t n) {            \
        const block_t *b = (const block_t *)row;                               \
        float tmp[bs], sum = 0.0f;                                             \
        for (int64_t i = 0; i < n / (bs); i++) {                               \
            deq(b + i, tmp);                                                   \
            for (int j = 0; j < (bs); j++) sum += tmp[j] * x[i * (bs) + j];    \
        }                                                                      \
        return sum;                                                            \
    }
DOT_F32_ROW(dotf_q4_0, deq_q4_0, lq_block_q4_0, 32)
DOT_F32_ROW(dotf_q4_1, deq_q4_1, lq_block_q4_1, 32)
DOT_F32_ROW(dotf_q5_0, deq_q5_0, lq_block_q5_0, 32)
DOT_F32_ROW(dotf_q5_1, deq_q5_1, lq_block_q5_1, 32)
DOT_F32_ROW(dotf_q8_0, deq_q8_0, lq_block_q8_0, 32)
DOT_F32_ROW(dotf_iq4_nl, deq_iq4_nl, lq_block_iq4_nl, 32)
DOT_F32_ROW(dotf_q2_K, deq_q2_K, lq_block_q2_K, 256)
DOT_F32_ROW(dotf_q3_K, deq_q3_K, lq_block_q3_K, 256)
DOT_F32_ROW(dotf_q4_K, deq_q4_K, lq_block_q4_K, 256)
DOT_F32_ROW(dotf_q5_K, deq_q5_K, lq_block_q5_K, 256)
DOT_F32_ROW(dotf_q6_K, deq_q6_K, lq_block_q6_K, 256)
DOT_F32_ROW(dotf_iq4_xs, deq_iq4_xs, lq_block_iq4_xs, 256)

static float dotf_f32(const void *row, const float *x, int64_t n) {
    const float *w = (const float *)row;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += w[i] * x[i];
    return sum;
}
static float dotf_f16(const void *row, const float *x, int64_t n) {
    const uint16_t *w = (const uint16_t *)row;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += lq_fp16_to_f32(w[i]) * x[i];
    return sum;
}
static float dotf_bf16(const void *row, const float *x, int64_t n) {
    const uint16_t *w = (const uint16_t *)row;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += lq_bf16_to_f32(w[i]) * x[i];
    return sum;
}

/* ---------------------------------------------------------------------------------------
 * Activation quantization (llama.cpp's reference quantizers for Q8_0, Q8_1, Q8_K)
 * ------------------------------------------------------------------------------------- */
static void quant_q8_0(const float *x, void *dst, int64_t n) {
    lq_block_q8_0 *y = (lq_block_q8_0 *)dst;
    for (int64_t i = 0; i < n / 32; i++) lq_q8_0_quantize_block(x + 32 * i, &y[i]);
}

static void quant_q8_1(const float *x, void *dst, int64_t n) {
    lq_block_q8_1 *y = (lq_block_q8_1 *)dst;
    for (int64_t i = 0; i < n / 32; i++, x += 32) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            y[i].qs[j] = (int8_t)roundf(x[j] * id);
            sum += y[i].qs[j];
        }
        y[i].d = lq_fp16_from_f32(d);
        y[i].s = lq_fp16_from_f32((float)sum * d);
    }
}

static void quant_q8_K(const float *x, void *dst, int64_t n) {
    lq_block_q8_K *y = (lq_block_q8_K *)dst;
    lq_grid g;
    int32_t codes[256];
    for (int64_t i = 0; i < n / 256; i++) { /* the codec's Q8_K reference quantizer */
        lq_q8_K_fit(x + 256 * i, NULL, &g, NULL);
        lq_q8_K_round(&g, NULL, x + 256 * i, 0, 256, codes);
        lq_q8_K_encode(&g, codes, &y[i]);
    }
}

static void quant_f32(const float *x, void *dst, int64_t n) { memcpy(dst, x, (size_t)n * 4); }
static void quant_f16(const float *x, void *dst, int64_t n) {
    f32_to_fp16_scalar(x, (uint16_t *)dst, (size_t)n);
}
static void quant_bf16(const float *x, void *dst, int64_t n) {
    f32_to_bf16_scalar(x, (uint16_t *)dst, (size_t)n);
}

/* ---------------------------------------------------------------------------------------
 * Quantized dot products: integer sums per block, then scaled.
 * ------------------------------------------------------------------------------------- */
static float dotq_q4_0(const void *row, const void *act, int64_t n) {
    const lq_block_q4_0 *x = (const lq_block_q4_0 *)row;
    const lq_block_q8_0 *y = (const lq_block_q8_0 *)act;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / 32; i++) {
        int isum = 0;
        for (int j = 0; j < 16; j++)
            isum += ((x[i].qs[j] & 15) - 8) * y[i].qs[j] + ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + 16];
        sum += (float)isum * (h2f(x[i].d) * h2f(y[i].d));
    }
    return sum;
}

static float dotq_q4_1(const void *row, const void *act, int64_t n) {
    const lq_block_q4_1 *x = (const lq_block_q4_1 *)row;
    const lq_block_q8_1 *y = (const lq_block_q8_1 *)act;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / 32; i++) {
        int isum = 0;
        for (int j = 0; j < 16; j++)
            isum += (x[i].qs[j] & 15) * y[i].qs[j] + (x[i].qs[j] >> 4) * y[i].qs[j + 16];
        sum += (float)isum * (h2f(x[i].d) * h2f(y[i].d)) + h2f(x[i].m) * h2f(y[i].s);
    }
    return sum;
}

static float dotq_q5_0(const void *row, const void *act, int64_t n) {
    const lq_block_q5_0 *x = (const lq_block_q5_0 *)row;
    const lq_block_q8_0 *y = (const lq_block_q8_0 *)act;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / 32; i++) {
        const uint32_t qh = load_u32(x[i].qh);
        int isum = 0;
        for (int j = 0; j < 16; j++) {
            int lo = (x[i].qs[j] & 15) | (int)(((qh >> j) & 1) << 4);
            int hi = (x[i].qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
            isum += (lo - 16) * y[i].qs[j] + (hi - 16) * y[i].qs[j + 16];
        }
        sum += (float)isum * (h2f(x[i].d) * h2f(y[i].d));
    }
    return sum;
}

static float dotq_q5_1(const void *row, const void *act, int64_t n) {
    const lq_block_q5_1 *x = (const lq_block_q5_1 *)row;
    const lq_block_q8_1 *y = (const lq_block_q8_1 *)act;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / 32; i++) {
        const uint32_t qh = load_u32(x[i].qh);
        int isum = 0;
        for (int j = 0; j < 16; j++) {
            int lo = (x[i].qs[j] & 15) | (int)(((qh >> j) & 1) << 4);
            int hi = (x[i].qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
            isum += lo * y[i].qs[j] + hi * y[i].qs[j + 16];
        }
        sum += (float)isum * (h2f(x[i].d) * h2f(y[i].d)) + h2f(x[i].m) * h2f(y[i].s);
    }
    return sum;
}

static float dotq_q8_0(const void *row, const void *act, int64_t n) {
    const lq_block_q8_0 *x = (const lq_block_q8_0 *)row;
    const lq_block_q8_0 *y = (const lq_block_q8_0 *)act;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / 32; i++) {
        int isum = 0;
        for (int j = 0; j < 32; j++) isum += x[i].qs[j] * y[i].qs[j];
        sum += (float)isum * (h2f(x[i].d) * h2f(y[i].d));
    }
    return sum;
}

static float dotq_iq4_nl(const void *row, const void *act, int64_t n) {
    const lq_block_iq4_nl *x = (const lq_block_iq4_nl *)row;
    const lq_block_q8_0 *y = (const lq_block_q8_0 *)act;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / 32; i++) {
        int isum = 0;
        for (int j = 0; j < 16; j++)
            isum += lq_iq4_values[x[i].qs[j] & 15] * y[i].qs[j] +
                    lq_iq4_values[x[i].qs[j] >> 4] * y[i].qs[j + 16];
        sum += (float)isum * (h2f(x[i].d) * h2f(y[i].d));
    }
    return sum;
}

/* Sum of codes × activations over the 16 elements of sub-block s (K-quants). */
static float dotq_q2_K(const void *row, const void *act, int64_t n) {
    const lq_block_q2_K *x = (const lq_block_q2_K *)row;
    const lq_block_q8_K *y = (const lq_block_q8_K *)act;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / 256; i++) {
        int isum = 0, msum = 0;
        for (int s = 0; s < 16; s++) {
            int sub = 0;
            for (int j = 0; j < 16; j++) sub += plane2(x[i].qs, 16 * s + j) * y[i].qs[16 * s + j];
            isum += (x[i].scales[s] & 15) * sub;
            msum += (x[i].scales[s] >> 4) * y[i].bsums[s];
        }
        sum += (y[i].d * h2f(x[i].d)) * (float)isum - (y[i].d * h2f(x[i].dmin)) * (float)msum;
    }
    return sum;
}

static float dotq_q3_K(const void *row, const void *act, int64_t n) {
    const lq_block_q3_K *x = (const lq_block_q3_K *)row;
    const lq_block_q8_K *y = (const lq_block_q8_K *)act;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / 256; i++) {
        int8_t sc[16];
        lq_unpack_scales_q3(x[i].scales, sc);
        int isum = 0;
        for (int s = 0; s < 16; s++) {
            int sub = 0;
            for (int j = 0; j < 16; j++) {
                int e = 16 * s + j;
                int high = (x[i].hmask[e % 32] >> (e / 32)) & 1;
                sub += (plane2(x[i].qs, e) - (high ? 0 : 4)) * y[i].qs[e];
            }
            isum += sc[s] * sub;
        }
        sum += (y[i].d * h2f(x[i].d)) * (float)isum;
    }
    return sum;
}

static float dotq_q4_K(const void *row, const void *act, int64_t n) {
    const lq_block_q4_K *x = (const lq_block_q4_K *)row;
    const lq_block_q8_K *y = (const lq_block_q8_K *)act;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / 256; i++) {
        uint8_t sc[8], mn[8];
        lq_unpack_scales_k4(x[i].scales, sc, mn);
        int isum = 0, msum = 0;
        for (int s = 0; s < 8; s++) {
            int sub = 0;
            for (int j = 0; j < 32; j++) sub += nibble_k(x[i].qs, 32 * s + j) * y[i].qs[32 * s + j];
            isum += sc[s] * sub;
            msum += mn[s] * (y[i].bsums[2 * s] + y[i].bsums[2 * s + 1]);
        }
        sum += (y[i].d * h2f(x[i].d)) * (float)isum - (y[i].d * h2f(x[i].dmin)) * (float)msum;
    }
    return sum;
}

static float dotq_q5_K(const void *row, const void *act, int64_t n) {
    const lq_block_q5_K *x = (const lq_block_q5_K *)row;
    const lq_block_q8_K *y = (const lq_block_q8_K *)act;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / 256; i++) {
        uint8_t sc[8], mn[8];
        lq_unpack_scales_k4(x[i].scales, sc, mn);
        int isum = 0, msum = 0;
        for (int s = 0; s < 8; s++) {
            int sub = 0;
            for (int j = 0; j < 32; j++) {
                int q = nibble_k(x[i].qs, 32 * s + j) + 16 * ((x[i].qh[j] >> s) & 1);
                sub += q * y[i].qs[32 * s + j];
            }
            isum += sc[s] * sub;
            msum += mn[s] * (y[i].bsums[2 * s] + y[i].bsums[2 * s + 1]);
        }
        sum += (y[i].d * h2f(x[i].d)) * (float)isum - (y[i].d * h2f(x[i].dmin)) * (float)msum;
    }
    return sum;
}

static float dotq_q6_K(const void *row, const void *act, int64_t n) {
    const lq_block_q6_K *x = (const lq_block_q6_K *)row;
    const lq_block_q8_K *y = (const lq_block_q8_K *)act;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / 256; i++) {
        int isum = 0;
        for (int s = 0; s < 16; s++) {
            int sub = 0;
            for (int j = 0; j < 16; j++) sub += q6_code(&x[i], 16 * s + j) * y[i].qs[16 * s + j];
            isum += x[i].scales[s] * sub;
        }
        sum += (y[i].d * h2f(x[i].d)) * (float)isum;
    }
    return sum;
}

static float dotq_iq4_xs(const void *row, const void *act, int64_t n) {
    const lq_block_iq4_xs *x = (const lq_block_iq4_xs *)row;
    const lq_block_q8_K *y = (const lq_block_q8_K *)act;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / 256; i++) {
        int isum = 0;
        for (int sub = 0; sub < 8; sub++) {
            const uint8_t *qs = x[i].qs + 16 * sub;
            const int8_t *q8 = y[i].qs + 32 * sub;
            int acc = 0;
            for (int j = 0; j < 16; j++)
                acc += lq_iq4_values[qs[j] & 15] * q8[j] + lq_iq4_values[qs[j] >> 4] * q8[j + 16];
            isum += lq_iq4_xs_scale(&x[i], sub) * acc;
        }
        sum += (y[i].d * h2f(x[i].d)) * (float)isum;
    }
    return sum;
}

/* Plain types: the activations are converted to the weight type and multiplied as floats. */
static float dotq_f32(const void *row, const void *act, int64_t n) {
    return dotf_f32(row, (const float *)act, n);
}
static float dotq_f16(const void *row, const void *act, int64_t n) {
    const uint16_t *w = (const uint16_t *)row, *a = (const uint16_t *)act;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += lq_fp16_to_f32(w[i]) * lq_fp16_to_f32(a[i]);
    return sum;
}
static float dotq_bf16(const void *row, const void *act, int64_t n) {
    const uint16_t *w = (const uint16_t *)row, *a = (const uint16_t *)act;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += lq_bf16_to_f32(w[i]) * lq_bf16_to_f32(a[i]);
    return sum;
}

/* ---------------------------------------------------------------------------------------
 * Table
 * ------------------------------------------------------------------------------------- */
#define SET(t, type, deq, dotf, dotq) \
    do {                              \
        (t)->dequant[type] = deq;     \
        (t)->dot_f32[type] = dotf;    \
        (t)->dot_q[type] = dotq;      \
    } while (0)

void lq_kernels_fill_scalar(lq_kernel_table *t) {
    memset(t, 0, sizeof *t);
    SET(t, LQ_TYPE_F32, deq_f32_row, dotf_f32, dotq_f32);
    SET(t, LQ_TYPE_F16, deq_f16_row, dotf_f16, dotq_f16);
    SET(t, LQ_TYPE_BF16, deq_bf16_row, dotf_bf16, dotq_bf16);
    SET(t, LQ_TYPE_Q4_0, deq_q4_0_row, dotf_q4_0, dotq_q4_0);
    SET(t, LQ_TYPE_Q4_1, deq_q4_1_row, dotf_q4_1, dotq_q4_1);
    SET(t, LQ_TYPE_Q5_0, deq_q5_0_row, dotf_q5_0, dotq_q5_0);
    SET(t, LQ_TYPE_Q5_1, deq_q5_1_row, dotf_q5_1, dotq_q5_1);
    SET(t, LQ_TYPE_Q8_0, deq_q8_0_row, dotf_q8_0, dotq_q8_0);
    SET(t, LQ_TYPE_IQ4_NL, deq_iq4_nl_row, dotf_iq4_nl, dotq_iq4_nl);
    SET(t, LQ_TYPE_Q2_K, deq_q2_K_row, dotf_q2_K, dotq_q2_K);
    SET(t, LQ_TYPE_Q3_K, deq_q3_K_row, dotf_q3_K, dotq_q3_K);
    SET(t, LQ_TYPE_Q4_K, deq_q4_K_row, dotf_q4_K, dotq_q4_K);
    SET(t, LQ_TYPE_Q5_K, deq_q5_K_row, dotf_q5_K, dotq_q5_K);
    SET(t, LQ_TYPE_Q6_K, deq_q6_K_row, dotf_q6_K, dotq_q6_K);
    SET(t, LQ_TYPE_IQ4_XS, deq_iq4_xs_row, dotf_iq4_xs, dotq_iq4_xs);
    t->quant_act[LQ_TYPE_Q8_0] = quant_q8_0;
    t->quant_act[LQ_TYPE_Q8_1] = quant_q8_1;
    t->quant_act[LQ_TYPE_Q8_K] = quant_q8_K;
    t->quant_act[LQ_TYPE_F32] = quant_f32;
    t->quant_act[LQ_TYPE_F16] = quant_f16;
    t->quant_act[LQ_TYPE_BF16] = quant_bf16;
    t->fp16_to_f32 = fp16_to_f32_scalar;
    t->bf16_to_f32 = bf16_to_f32_scalar;
    t->f32_to_fp16 = f32_to_fp16_scalar;
    t->f32_to_bf16 = f32_to_bf16_scalar;
}

lq_type lq_kernels_act_type(lq_type type) {
    switch (type) {
    case LQ_TYPE_Q4_0:
    case LQ_TYPE_Q5_0:
    case LQ_TYPE_Q8_0:
    case LQ_TYPE_IQ4_NL: return LQ_TYPE_Q8_0;
    case LQ_TYPE_Q4_1:
    case LQ_TYPE_Q5_1: return LQ_TYPE_Q8_1;
    case LQ_TYPE_Q2_K:
    case LQ_TYPE_Q3_K:
    case LQ_TYPE_Q4_K:
    case LQ_TYPE_Q5_K:
    case LQ_TYPE_Q6_K:
    case LQ_TYPE_IQ4_XS: return LQ_TYPE_Q8_K;
    case LQ_TYPE_F32:
    case LQ_TYPE_F16:
    case LQ_TYPE_BF16: return type;
    default: return LQ_TYPE_COUNT;
    }
}
