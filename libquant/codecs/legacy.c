/* legacy.c — codec tables of Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 over the per-block math in legacy.h. */
#include "codec.h"
#include "legacy.h"

#define LEGACY_CODEC(name, TYPE, block_type)                                                   \
    const lq_codec lq_codec_##name = {                                                         \
        .type = TYPE,                                                                          \
        .block_size = LQ_QK,                                                                   \
        .block_bytes = sizeof(block_type),                                                     \
        .fit = lq_##name##_fit,                                                                \
        .round = lq_##name##_round,                                                            \
        .value = lq_##name##_value,                                                            \
        .encode = lq_##name##_encode,                                                          \
        .decode = lq_##name##_decode,                                                          \
    }

LEGACY_CODEC(q4_0, LQ_TYPE_Q4_0, lq_block_q4_0);
LEGACY_CODEC(q4_1, LQ_TYPE_Q4_1, lq_block_q4_1);
LEGACY_CODEC(q5_0, LQ_TYPE_Q5_0, lq_block_q5_0);
LEGACY_CODEC(q5_1, LQ_TYPE_Q5_1, lq_block_q5_1);
LEGACY_CODEC(q8_0, LQ_TYPE_Q8_0, lq_block_q8_0);
