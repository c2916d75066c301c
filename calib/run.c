/* run.c — a calibration pass: every chunk through the runtime with the statistics hook on,
 * the KV cache cleared per chunk, as llama-imatrix evaluates its chunks. */
#include "calib_internal.h"

#include <stdlib.h>
#include <time.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static lq_status run_chunk(lq_runtime *rt, const int32_t *tokens, int64_t n, float *logits,
                           const lq_stats_acc *acc, lq_error *err) {
    if (lq_interrupted) return lq_fail(err, LQ_ERR_INTERRUPTED, "calibration: interrupted");
    lq_runtime_reset(rt);
    lq_status st = lq_runtime_eval(rt, tokens, n, logits, err);
    if (st) return st;
    return lq_stats_acc_status(acc, err);
}

lq_status lq_calib_accumulate(lq_runtime *rt, const lq_calib_chunks *c, lq_stats_acc *acc,
                              lq_calib_progress_fn progress, void *progress_ctx, lq_error *err) {
    /* output.weight's input exists only when logits are computed */
    float *logits = NULL;
    if (calib_acc_wants_output(acc)) {
        size_t n = (size_t)c->chunk_size * (size_t)lq_runtime_n_vocab(rt);
        if (!(logits = (float *)lq_malloc(n * sizeof(float), err, "calibration logits"))) return LQ_ERR_NOMEM;
    }
    lq_runtime_set_hook(rt, lq_stats_acc_hook, acc);
    lq_status st = LQ_OK;
    for (int64_t i = 0; !st && i < c->n_chunks; i++) {
        double t0 = now_seconds();
        st = run_chunk(rt, c->tokens + i * c->chunk_size, c->chunk_size, logits, acc, err);
        if (!st && progress) progress(progress_ctx, i + 1, c->n_chunks, now_seconds() - t0);
    }
    lq_runtime_set_hook(rt, NULL, NULL);
    free(logits);
    return st;
}
