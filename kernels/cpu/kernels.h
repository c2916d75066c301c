/* kernels.h — the CPU kernel tables shared by the scalar reference (scalar.c), the AVX2 path
 * (avx2.c) and the AVX-512/VNNI path (avx512.c); dispatch.c picks one at run time.
 *
 * Every table entry works on whole rows: n elements, a multiple of the type's block size
 * (checked by dispatch.c before a kernel runs). A SIMD path fills only the entries it
 * implements; the others keep the scalar reference. */
#ifndef LQ_CPU_KERNELS_H
#define LQ_CPU_KERNELS_H

#include "codecs/blocks.h"

typedef void (*lq_dequant_fn)(const void *src, float *dst, int64_t n);
typedef float (*lq_dot_f32_fn)(const void *row, const float *x, int64_t n);
typedef float (*lq_dot_q_fn)(const void *row, const void *act, int64_t n);
typedef void (*lq_quant_act_fn)(const float *x, void *dst, int64_t n);
/* Two weight rows against the same activations; out[r] must equal dot_q of row r bit for bit. */
typedef void (*lq_dot_q2_fn)(const void *row0, const void *row1, const void *act, int64_t n, float out[2]);
/* Rows × tokens: y[t·y_stride + r] must equal dot_q of row r and token t's activations bit
 * for bit (r < n_rows, t < n_tok; rows row_stride and tokens act_stride bytes apart). */
typedef void (*lq_gemm_q_fn)(const void *rows, size_t row_stride, int64_t n_rows, const void *act,
                             size_t act_stride, int64_t n_tok, int64_t n, float *y, int64_t y_stride);
typedef void (*lq_half_to_f32_fn)(const uint16_t *src, float *dst, size_t n);
typedef void (*lq_f32_to_half_fn)(const float *src, uint16_t *dst, size_t n);

typedef struct lq_kernel_table {
    lq_dequant_fn dequant[LQ_TYPE_COUNT];     /* by weight type */
    lq_dot_f32_fn dot_f32[LQ_TYPE_COUNT];     /* by weight type */
    lq_dot_q_fn dot_q[LQ_TYPE_COUNT];         /* by weight type; act is its vec-dot type */
    lq_dot_q2_fn dot_q2[LQ_TYPE_COUNT];       /* optional (NULL: dot_q row by row) */
    lq_gemm_q_fn gemm_q[LQ_TYPE_COUNT];       /* optional (NULL: dot_q per row and token) */
    lq_quant_act_fn quant_act[LQ_TYPE_COUNT]; /* by activation type (Q8_0, Q8_1, Q8_K, F*) */
    lq_half_to_f32_fn fp16_to_f32, bf16_to_f32;
    lq_f32_to_half_fn f32_to_fp16, f32_to_bf16;
} lq_kernel_table;

/* Fill a table: scalar sets every entry; the SIMD fills override what they implement. */
void lq_kernels_fill_scalar(lq_kernel_table *t);
void lq_kernels_fill_avx2(lq_kernel_table *t);
void lq_kernels_fill_avx512(lq_kernel_table *t);

/* The vec-dot pairing (llama.cpp's): Q8_0 for Q4_0/Q5_0/Q8_0/IQ4_NL, Q8_1 for Q4_1/Q5_1,
 * Q8_K for the K-quants and IQ4_XS, the type itself for F32/F16/BF16; LQ_TYPE_COUNT when the
 * type has no kernels. */
lq_type lq_kernels_act_type(lq_type type);

/* The IQ4 codebook as a table (values of LQ_IQ4_VALUES). */
extern const int8_t lq_iq4_values[16];

/* Q4_K / Q5_K: the 8 six-bit scale codes and 8 min codes packed in 12 bytes. */
static inline void lq_unpack_scales_k4(const uint8_t *packed, uint8_t sc[8], uint8_t mn[8]) {
    for (int s = 0; s < 4; s++) {
        sc[s] = packed[s] & 63;
        mn[s] = packed[s + 4] & 63;
        sc[s + 4] = (uint8_t)((packed[s + 8] & 15) | ((packed[s] >> 6) << 4));
        mn[s + 4] = (uint8_t)((packed[s + 8] >> 4) | ((packed[s + 4] >> 6) << 4));
    }
}

/* Q3_K: 16 six-bit codes (0..63, stored with +32 offset) packed in 12 bytes. */
static inline void lq_unpack_scales_q3(const uint8_t *packed, int8_t sc[16]) {
    for (int s = 0; s < 16; s++) {
        int low = s < 8 ? packed[s] & 15 : packed[s - 8] >> 4;
        int high = (packed[8 + s % 4] >> (2 * (s / 4))) & 3;
        sc[s] = (int8_t)((low | (high << 4)) - 32);
    }
}

/* IQ4_XS: the 6-bit scale of sub-block b, minus 32. */
static inline int lq_iq4_xs_scale(const lq_block_iq4_xs *b, int sub) {
    int low = (b->scales_l[sub / 2] >> (4 * (sub % 2))) & 15;
    int high = (b->scales_h >> (2 * sub)) & 3;
    return (low | (high << 4)) - 32;
}

#endif
