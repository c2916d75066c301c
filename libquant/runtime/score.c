/* score.c — per-token scores of llama-perplexity: NLL, and the KL-divergence base rows
 * (u16 log-probabilities over the top 16 nats) with the comparison against them. */
#include "../internal.h"

#include <math.h>
#include <string.h>

#define KLD_RANGE 16.0f /* log-probs more than 16 nats below the top are stored as 0 */

typedef struct softmax_stats {
    float max_logit;
    int64_t argmax;     /* first index holding the maximum */
    double log_sum_exp; /* log Σ exp(logit - max_logit) */
} softmax_stats;

static softmax_stats softmax_of(const float *logits, int64_t n) {
    softmax_stats s = {logits[0], 0, 0};
    for (int64_t i = 1; i < n; i++)
        if (logits[i] > s.max_logit) {
            s.max_logit = logits[i];
            s.argmax = i;
        }
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += expf(logits[i] - s.max_logit);
    s.log_sum_exp = log(sum);
    return s;
}

double lq_nll(const float *logits, int64_t n_vocab, int32_t target) {
    softmax_stats s = softmax_of(logits, n_vocab);
    return s.log_sum_exp + (double)s.max_logit - (double)logits[target];
}

size_t lq_kld_row_u16(int64_t n_vocab) { return 2 * (size_t)((n_vocab + 1) / 2) + 4; }

double lq_kld_encode_row(const float *logits, int64_t n_vocab, int32_t target, uint16_t *row) {
    softmax_stats s = softmax_of(logits, n_vocab);
    float min_logit = s.max_logit - KLD_RANGE;
    float scale = KLD_RANGE / 65535.0f;
    float min_log_prob = (float)(-(double)KLD_RANGE - s.log_sum_exp);
    memcpy(row, &scale, sizeof scale);
    memcpy(row + 2, &min_log_prob, sizeof min_log_prob);
    uint16_t *q = row + 4;
    float inv_scale = 1.0f / scale;
    size_t n_row = lq_kld_row_u16(n_vocab) - 4;
    for (size_t i = 0; i < n_row; i++) {
        if ((int64_t)i >= n_vocab || !(logits[i] > min_logit)) {
            q[i] = 0;
            continue;
        }
        long v = lrintf(inv_scale * (logits[i] - min_logit));
        q[i] = (uint16_t)(v > 65535 ? 65535 : v);
    }
    return s.log_sum_exp + (double)s.max_logit - (double)logits[target];
}

lq_kld_token lq_kld_score_row(const float *logits, int64_t n_vocab, int32_t target,
                              const uint16_t *base_row) {
    lq_kld_token r;
    softmax_stats s = softmax_of(logits, n_vocab);
    float scale, min_log_prob;
    memcpy(&scale, base_row, sizeof scale);
    memcpy(&min_log_prob, base_row + 2, sizeof min_log_prob);
    const uint16_t *q = base_row + 4;
    double log_norm = (double)s.max_logit + s.log_sum_exp; /* log p_i = logit_i - log_norm */
    r.nll = log_norm - (double)logits[target];
    r.nll_base = -((double)scale * q[target] + (double)min_log_prob);
    double kld = 0;
    int64_t argmax_base = 0;
    for (int64_t i = 0; i < n_vocab; i++) {
        if (q[i] > q[argmax_base]) argmax_base = i;
        double log_p_base = (double)scale * q[i] + (double)min_log_prob;
        if (log_p_base > -KLD_RANGE) kld += exp(log_p_base) * (log_p_base - ((double)logits[i] - log_norm));
    }
    r.kld = kld;
    r.same_top = argmax_base == s.argmax;
    r.p_diff = exp(-r.nll) - exp(-r.nll_base);
    return r;
}
