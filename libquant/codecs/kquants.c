/* kquants.c — codec tables of Q2_K … Q6_K and Q8_K over the host+device math in kquants.h.
 * The tables pass no "keep" buffer: in sub-blocks whose stored scale is zero, round() then
 * recomputes the codes of the search without importance weights (see kquants.h). */
#include "codec.h"
#include "kquants.h"

#define LQ_KQ_WRAP(T)                                                                        \
    static void T##_fit_tab(const float *x, const float *qw, float sigma2, lq_grid *g) {     \
        (void)sigma2; /* K-quants weight with the super-block's own mean square */          \
        lq_##T##_fit(x, qw, g, g->keep);                                                        \
    }                                                                                        \
    static void T##_round_tab(const lq_grid *g, const float *x, int first, int n,            \
                              int32_t *codes) {                                              \
        lq_##T##_round(g, g->keep, x, first, n, codes);                                         \
    }

LQ_KQ_WRAP(q2_K)
LQ_KQ_WRAP(q3_K)
LQ_KQ_WRAP(q4_K)
LQ_KQ_WRAP(q5_K)
LQ_KQ_WRAP(q6_K)
LQ_KQ_WRAP(q8_K)

const lq_codec lq_codec_q2_K = {LQ_TYPE_Q2_K, LQ_QK_K, sizeof(lq_block_q2_K), q2_K_fit_tab,
                                q2_K_round_tab, lq_q2_K_value, lq_q2_K_encode, lq_q2_K_decode};
const lq_codec lq_codec_q3_K = {LQ_TYPE_Q3_K, LQ_QK_K, sizeof(lq_block_q3_K), q3_K_fit_tab,
                                q3_K_round_tab, lq_q3_K_value, lq_q3_K_encode, lq_q3_K_decode};
const lq_codec lq_codec_q4_K = {LQ_TYPE_Q4_K, LQ_QK_K, sizeof(lq_block_q4_K), q4_K_fit_tab,
                                q4_K_round_tab, lq_q4_K_value, lq_q4_K_encode, lq_q4_K_decode};
const lq_codec lq_codec_q5_K = {LQ_TYPE_Q5_K, LQ_QK_K, sizeof(lq_block_q5_K), q5_K_fit_tab,
                                q5_K_round_tab, lq_q5_K_value, lq_q5_K_encode, lq_q5_K_decode};
const lq_codec lq_codec_q6_K = {LQ_TYPE_Q6_K, LQ_QK_K, sizeof(lq_block_q6_K), q6_K_fit_tab,
                                q6_K_round_tab, lq_q6_K_value, lq_q6_K_encode, lq_q6_K_decode};
const lq_codec lq_codec_q8_K = {LQ_TYPE_Q8_K, LQ_QK_K, sizeof(lq_block_q8_K), q8_K_fit_tab,
                                q8_K_round_tab, lq_q8_K_value, lq_q8_K_encode, lq_q8_K_decode};
