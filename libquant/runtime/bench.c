/* bench.c — llama-bench's pp and tg tests on a runtime (`lq bench` prints them). */
#include "rt_internal.h"

#include <math.h>
#include <stdlib.h>
#include <time.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Random ids (xorshift64), the first replaced by BOS as a prompt would start. */
static void random_tokens(int32_t *tok, int n, int64_t n_vocab, int32_t bos, uint64_t *state) {
    for (int i = 0; i < n; i++) {
        *state ^= *state << 13, *state ^= *state >> 7, *state ^= *state << 17;
        tok[i] = (int32_t)(*state % (uint64_t)n_vocab);
    }
    if (n > 0 && bos >= 0 && bos < n_vocab) tok[0] = bos;
}

/* One run from an empty cache: a prompt of n tokens, or n single-token steps. Each decode
 * computes the logits of its last token, as llama-bench's do (the output head is part of
 * what a generated token costs, and of the bytes the bandwidth bound counts). */
static lq_status timed_run(lq_runtime *rt, const int32_t *tok, int n, bool gen, float *logits, double *seconds,
                           lq_error *err) {
    lq_runtime_reset(rt);
    double t0 = now_seconds();
    lq_status st = LQ_OK;
    if (gen) {
        for (int i = 0; i < n && !st; i++) st = rt_eval_last_logits(rt, tok + i, 1, logits, err);
    } else {
        st = rt_eval_last_logits(rt, tok, n, logits, err);
    }
    *seconds = now_seconds() - t0;
    return st;
}

void lq_bench_mean_stddev(const double *x, int n, double *mean, double *stddev) {
    double sum = 0, sum2 = 0;
    for (int i = 0; i < n; i++) sum += x[i];
    *mean = n > 0 ? sum / n : 0;
    for (int i = 0; i < n; i++) sum2 += (x[i] - *mean) * (x[i] - *mean);
    *stddev = n > 1 ? sqrt(sum2 / (n - 1)) : 0;
}

lq_status lq_runtime_bench(lq_runtime *rt, bool gen, int n_tokens, int reps, int32_t bos, double *ts,
                           double *read_bw, size_t read_bw_bytes, lq_error *err) {
    if (n_tokens < 1 || reps < 1)
        return lq_fail(err, LQ_ERR_INVALID, "bench: %d tokens, %d repetitions", n_tokens, reps);
    lq_bw_probe *probe = NULL;
    if (read_bw) {
        lq_status st = lq_bw_probe_create(read_bw_bytes, &probe, err);
        if (st) return st;
    }
    int32_t *tok = (int32_t *)lq_malloc((size_t)n_tokens * sizeof(int32_t), err, "bench tokens");
    int64_t n_vocab = lq_runtime_n_vocab(rt);
    float *logits = tok ? (float *)lq_malloc((size_t)n_vocab * sizeof(float), err, "bench logits") : NULL;
    if (!logits) {
        free(tok);
        lq_bw_probe_free(probe);
        return err ? err->code : LQ_ERR_NOMEM;
    }
    uint64_t state = 0x9E3779B97F4A7C15ull;
    double dt;
    random_tokens(tok, n_tokens, n_vocab, bos, &state);
    /* warm-up, as llama-bench: the prompt once, or one token before generation */
    lq_status st = timed_run(rt, tok, gen ? 1 : n_tokens, gen, logits, &dt, err);
    double bw_before = 0;
    if (probe && !st) {
        (void)rt_probe_run(rt, probe, 1); /* untimed: TLB and page tables */
        bw_before = rt_probe_run(rt, probe, 2).wall;
    }
    for (int rep = 0; rep < reps && !st; rep++) {
        random_tokens(tok, n_tokens, n_vocab, bos, &state);
        st = timed_run(rt, tok, n_tokens, gen, logits, &dt, err);
        ts[rep] = dt > 0 ? n_tokens / dt : 0;
        if (probe) {
            double bw_after = rt_probe_run(rt, probe, 2).wall;
            read_bw[rep] = 0.5 * (bw_before + bw_after);
            bw_before = bw_after;
        }
    }
    free(logits);
    free(tok);
    lq_bw_probe_free(probe);
    return st;
}
