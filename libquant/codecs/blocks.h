/* blocks.h — one packed struct per GGUF block format (layouts as in llama.cpp's ggml-common:
 * facts, not code), sizes asserted at compile time. Shared by codecs, CPU and CUDA kernels. */
#ifndef LQ_BLOCKS_H
#define LQ_BLOCKS_H

#include "../internal.h"

#define LQ_QK 32    /* legacy block size */
#define LQ_QK_K 256 /* K-quant super-block size */

typedef uint16_t lq_half; /* IEEE binary16 bits */

typedef struct { lq_half d; uint8_t qs[16]; } lq_block_q4_0;
typedef struct { lq_half d; lq_half m; uint8_t qs[16]; } lq_block_q4_1;
typedef struct { lq_half d; uint8_t qh[4]; uint8_t qs[16]; } lq_block_q5_0;
typedef struct { lq_half d; lq_half m; uint8_t qh[4]; uint8_t qs[16]; } lq_block_q5_1;
typedef struct { lq_half d; int8_t qs[32]; } lq_block_q8_0;
typedef struct { lq_half d; lq_half s; int8_t qs[32]; } lq_block_q8_1;
typedef struct { lq_half d; uint8_t qs[16]; } lq_block_iq4_nl;

typedef struct { uint8_t scales[16]; uint8_t qs[64]; lq_half d; lq_half dmin; } lq_block_q2_K;
typedef struct { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; lq_half d; } lq_block_q3_K;
typedef struct { lq_half d; lq_half dmin; uint8_t scales[12]; uint8_t qs[128]; } lq_block_q4_K;
typedef struct { lq_half d; lq_half dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; } lq_block_q5_K;
typedef struct { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; lq_half d; } lq_block_q6_K;
typedef struct { float d; int8_t qs[256]; int16_t bsums[16]; } lq_block_q8_K;
typedef struct { lq_half d; uint16_t scales_h; uint8_t scales_l[4]; uint8_t qs[128]; } lq_block_iq4_xs;

/* All members are 1- or 2-byte aligned (Q8_K: 4), so these structs have no padding; the
 * asserts prove it for every compiler that builds us, nvcc included. */
LQ_STATIC_ASSERT(sizeof(lq_block_q4_0) == 18, "q4_0 block size");
LQ_STATIC_ASSERT(sizeof(lq_block_q4_1) == 20, "q4_1 block size");
LQ_STATIC_ASSERT(sizeof(lq_block_q5_0) == 22, "q5_0 block size");
LQ_STATIC_ASSERT(sizeof(lq_block_q5_1) == 24, "q5_1 block size");
LQ_STATIC_ASSERT(sizeof(lq_block_q8_0) == 34, "q8_0 block size");
LQ_STATIC_ASSERT(sizeof(lq_block_q8_1) == 36, "q8_1 block size");
LQ_STATIC_ASSERT(sizeof(lq_block_iq4_nl) == 18, "iq4_nl block size");
LQ_STATIC_ASSERT(sizeof(lq_block_q2_K) == 84, "q2_K block size");
LQ_STATIC_ASSERT(sizeof(lq_block_q3_K) == 110, "q3_K block size");
LQ_STATIC_ASSERT(sizeof(lq_block_q4_K) == 144, "q4_K block size");
LQ_STATIC_ASSERT(sizeof(lq_block_q5_K) == 176, "q5_K block size");
LQ_STATIC_ASSERT(sizeof(lq_block_q6_K) == 210, "q6_K block size");
LQ_STATIC_ASSERT(sizeof(lq_block_q8_K) == 292, "q8_K block size");
LQ_STATIC_ASSERT(sizeof(lq_block_iq4_xs) == 136, "iq4_xs block size");

/* IQ4_NL / IQ4_XS non-linear codebook. */
#define LQ_IQ4_VALUES {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

#endif
