/* iq4.c — codec tables of IQ4_NL and IQ4_XS over the per-block math in iq4.h. */
#include "codec.h"
#include "iq4.h"

const lq_codec lq_codec_iq4_nl = {
    .type = LQ_TYPE_IQ4_NL,
    .block_size = 32,
    .block_bytes = sizeof(lq_block_iq4_nl),
    .fit = lq_iq4_nl_fit,
    .round = lq_iq4_nl_round,
    .value = lq_iq4_nl_value,
    .encode = lq_iq4_nl_encode,
    .decode = lq_iq4_nl_decode,
};

const lq_codec lq_codec_iq4_xs = {
    .type = LQ_TYPE_IQ4_XS,
    .block_size = LQ_QK_K,
    .block_bytes = sizeof(lq_block_iq4_xs),
    .fit = lq_iq4_xs_fit,
    .round = lq_iq4_xs_round,
    .value = lq_iq4_xs_value,
    .encode = lq_iq4_xs_encode,
    .decode = lq_iq4_xs_decode,
};
