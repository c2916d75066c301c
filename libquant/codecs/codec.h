/* codec.h — the internal interface every block format implements (one implementation per
 * format, shared by the row quantizers, GPTQ and the CUDA kernels).
 *
 * A format's per-block math lives in a header of static LQ_HD functions (legacy.h, kquants.h,
 * iq4.h) so CUDA code can include it; the .c files wrap them into these tables. */
#ifndef LQ_CODEC_H
#define LQ_CODEC_H

#include "blocks.h"
#include "common.h"

typedef struct lq_codec {
    lq_type type;
    int block_size;     /* elements covered by one fit (block or super-block) */
    size_t block_bytes;
    /* Fit the parameters of one block from its block_size values. qw: importance per element
     * (imatrix values of these columns) or NULL; sigma2: mean square of the whole row. Must
     * reproduce llama.cpp's reference search exactly (with and without importance). */
    void (*fit)(const float *x, const float *qw, float sigma2, lq_grid *g);
    /* Round x[first .. first+n-1] (x is the whole block) onto the fixed grid, writing
     * codes[first .. first+n-1]; exactly the rounding the reference encoder does after fitting. */
    void (*round)(const lq_grid *g, const float *x, int first, int n, int32_t *codes);
    /* Dequantized value of code at element e. */
    float (*value)(const lq_grid *g, int e, int32_t code);
    void (*encode)(const lq_grid *g, const int32_t *codes, void *block);
    void (*decode)(const void *block, float *y); /* block_size floats */
} lq_codec;

/* NULL for types without a codec. */
const lq_codec *lq_codec_get(lq_type type);

/* Tables defined by legacy.c, iq4.c, kquants.c. */
extern const lq_codec lq_codec_q4_0, lq_codec_q4_1, lq_codec_q5_0, lq_codec_q5_1, lq_codec_q8_0;
extern const lq_codec lq_codec_iq4_nl, lq_codec_iq4_xs;
extern const lq_codec lq_codec_q2_K, lq_codec_q3_K, lq_codec_q4_K, lq_codec_q5_K, lq_codec_q6_K,
    lq_codec_q8_K;

#endif
