/* qtest.h — shared helpers of the quantize tests: run the pipeline into a scratch directory and
 * score a GGUF with the reference runtime the way llama-perplexity does. */
#ifndef LQ_QTEST_H
#define LQ_QTEST_H

#include "test.h"

/* Quantizes model to dir/name with a preset; returns the output path (static slot) or NULL. */
static inline const char *qt_quantize(const char *model, const char *dir, const char *name,
                                      const char *preset, const char *imatrix, int n_threads) {
    static char paths[4][4096];
    static int slot;
    char *out = paths[slot++ & 3];
    snprintf(out, 4096, "%s/%s", dir, name);
    lq_quantize_opts o;
    memset(&o, 0, sizeof o);
    o.model_path = model;
    o.out_path = out;
    o.plan.preset = preset;
    o.plan.output_type = o.plan.token_embd_type = -1;
    o.imatrix_path = imatrix;
    o.n_threads = n_threads;
    lq_error err;
    lq_status st = lq_quantize_model(&o, NULL, &err);
    CHECKF(st == LQ_OK, "%s -> %s: %s", model, preset, err.msg);
    return st == LQ_OK ? out : NULL;
}

/* The first n_tokens tokens of a text file (tokenizer of the given GGUF/HF model). */
static inline int32_t *qt_tokens(const lq_model *m, const char *text_path, size_t max_bytes,
                                 int64_t *n_tokens) {
    lq_error err;
    lq_tokenizer *tok = NULL;
    lq_status st = lq_model_gguf(m) ? lq_tokenizer_from_gguf(lq_model_gguf(m), &tok, &err)
                                    : lq_tokenizer_from_json(lq_model_tokenizer_json(m), &tok, &err);
    CHECK_OK(st, &err);
    size_t size = 0;
    char *text = test_read_file(text_path, &size);
    CHECK(text != NULL);
    int32_t *ids = NULL;
    if (tok && text) {
        if (size > max_bytes) size = max_bytes;
        CHECK_OK(lq_tokenize(tok, text, size, true, false, &ids, n_tokens, &err), &err);
    }
    free(text);
    lq_tokenizer_free(tok);
    return ids;
}

/* llama-perplexity's PPL over n_chunks chunks of n_ctx tokens (BOS first, second half scored). */
static inline double qt_ppl(const char *model_path, const int32_t *tokens, int64_t n_tokens,
                            int n_ctx, int n_chunks, int32_t bos) {
    lq_error err;
    lq_model *m = NULL;
    CHECK_OK(lq_model_open(model_path, &m, &err), &err);
    if (!m) return NAN;
    lq_runtime *rt = NULL;
    lq_runtime_opts ro = {2, n_ctx, n_ctx, false, LQ_ACT_INT8_NONE};
    CHECK_OK(lq_runtime_create(m, &ro, &rt, &err), &err);
    double sum = 0;
    int64_t count = 0;
    int64_t nv = rt ? lq_runtime_n_vocab(rt) : 0;
    float *logits = malloc((size_t)n_ctx * (size_t)(nv ? nv : 1) * sizeof(float));
    int32_t *chunk = malloc((size_t)n_ctx * sizeof(int32_t));
    for (int c = 0; rt && c < n_chunks && (int64_t)(c + 1) * n_ctx <= n_tokens; c++) {
        memcpy(chunk, tokens + (size_t)c * n_ctx, (size_t)n_ctx * sizeof(int32_t));
        if (bos >= 0) chunk[0] = bos;
        lq_runtime_reset(rt);
        if (lq_runtime_eval(rt, chunk, n_ctx, logits, &err) != LQ_OK) {
            CHECKF(0, "%s: %s", model_path, err.msg);
            break;
        }
        for (int j = n_ctx / 2; j < n_ctx - 1; j++, count++) sum += lq_nll(logits + (size_t)j * nv, nv, chunk[j + 1]);
    }
    free(logits);
    free(chunk);
    lq_runtime_free(rt);
    lq_model_close(m);
    CHECK(count > 0);
    return count ? exp(sum / (double)count) : NAN;
}

/* Recursively removes a scratch directory's files (one level). */
static inline void qt_rmdir(const char *dir) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

#endif
