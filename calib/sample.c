/* sample.c — calibration chunks as llama-imatrix cuts them: the whole text tokenized once
 * (BOS first when the vocabulary adds it), consecutive chunks of chunk_size tokens, the first
 * token of every chunk replaced by BOS. Optionally a seeded random subset of the chunks. */
#include "calib_internal.h"

#include <stdlib.h>
#include <string.h>

/* splitmix64: a fixed, portable generator, so a seed picks the same chunks everywhere. */
static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n) by multiply-high (bias below 2^-40 for any n here). */
static int64_t below(uint64_t *state, int64_t n) {
    return (int64_t)(((unsigned __int128)splitmix64(state) * (uint64_t)n) >> 64);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Which of the text's n_avail chunks to keep: the first n, or a seeded partial Fisher-Yates
 * shuffle's first n, sorted into text order. */
static lq_status choose_chunks(int64_t n_avail, int64_t n, const lq_calib_sample_opts *o,
                               int64_t *chosen, lq_error *err) {
    if (!o->shuffle) {
        for (int64_t i = 0; i < n; i++) chosen[i] = i;
        return LQ_OK;
    }
    int64_t *perm = (int64_t *)lq_malloc((size_t)n_avail * sizeof *perm, err, "chunk permutation");
    if (!perm) return LQ_ERR_NOMEM;
    for (int64_t i = 0; i < n_avail; i++) perm[i] = i;
    uint64_t state = o->seed;
    for (int64_t i = 0; i < n; i++) {
        int64_t j = i + below(&state, n_avail - i);
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    memcpy(chosen, perm, (size_t)n * sizeof *chosen);
    free(perm);
    qsort(chosen, (size_t)n, sizeof *chosen, cmp_i64);
    return LQ_OK;
}

void lq_calib_chunks_free(lq_calib_chunks *c) {
    if (!c) return;
    free(c->tokens);
    free(c->source_index);
    memset(c, 0, sizeof *c);
}

lq_status lq_calib_sample(const lq_tokenizer *tok, const char *text, size_t len,
                          const lq_calib_sample_opts *o, lq_calib_chunks *out, lq_error *err) {
    memset(out, 0, sizeof *out);
    int64_t chunk = o->chunk_size ? o->chunk_size : 512;
    if (chunk < 2 || o->n_chunks < 0)
        return lq_fail(err, LQ_ERR_INVALID, "calibration: chunk size %lld, %lld chunks", (long long)chunk,
                       (long long)o->n_chunks);
    int32_t *ids = NULL;
    int64_t n_ids = 0;
    lq_status st = lq_tokenize(tok, text, len, true, o->parse_special, &ids, &n_ids, err);
    if (st) return st;
    int64_t n_avail = n_ids / chunk;
    if (n_avail == 0) {
        free(ids);
        return lq_fail(err, LQ_ERR_INVALID, "calibration: the text has %lld tokens, fewer than one chunk of %lld",
                       (long long)n_ids, (long long)chunk);
    }
    /* as llama-imatrix: asking for more chunks than the text holds gives all of them */
    int64_t n = o->n_chunks && o->n_chunks < n_avail ? o->n_chunks : n_avail;
    out->tokens = (int32_t *)lq_malloc((size_t)(n * chunk) * sizeof(int32_t), err, "calibration chunks");
    out->source_index = (int64_t *)lq_malloc((size_t)n * sizeof(int64_t), err, "calibration chunks");
    if (!out->tokens || !out->source_index) st = LQ_ERR_NOMEM;
    if (!st) st = choose_chunks(n_avail, n, o, out->source_index, err);
    if (st) {
        free(ids);
        lq_calib_chunks_free(out);
        return st;
    }
    int32_t bos = lq_tokenizer_add_bos(tok) ? lq_tokenizer_bos(tok) : -1;
    for (int64_t i = 0; i < n; i++) {
        int32_t *dst = out->tokens + i * chunk;
        memcpy(dst, ids + out->source_index[i] * chunk, (size_t)chunk * sizeof(int32_t));
        if (bos >= 0) dst[0] = bos;
    }
    free(ids);
    out->n_chunks = n;
    out->chunk_size = chunk;
    out->n_text_tokens = n_ids;
    out->n_text_chunks = n_avail;
    return LQ_OK;
}

lq_status lq_calib_tokenizer(const lq_model *m, lq_tokenizer **out, lq_error *err) {
    if (lq_model_gguf(m)) return lq_tokenizer_from_gguf(lq_model_gguf(m), out, err);
    const char *json = lq_model_tokenizer_json(m);
    if (!json)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: no tokenizer (no tokenizer.json beside the model)", lq_model_path(m));
    return lq_tokenizer_from_json(json, out, err);
}
