/* tok_export.c — writes a tokenizer as GGUF tokenizer.ggml.* keys, the way llama.cpp's
 * converter describes the same vocabulary, so that llama.cpp and lq_tokenizer_from_gguf both
 * rebuild it.
 *
 * A SentencePiece-style tokenizer.json (BPE with byte_fallback) becomes model "llama" with
 * scores -rank for each merge product (other tokens -1e9): llama.cpp's score-ordered merging
 * then follows the merge order. (convert_hf_to_gguf writes -1000 for every token there, which
 * turns merging into left-to-right order and changes the ids.) A byte-level tokenizer becomes
 * model "gpt2" with its merges and the pre-tokenizer name llama.cpp knows it by. */
#include "tok_internal.h"

#include <stdlib.h>
#include <string.h>

static lq_status write_ids(const lq_tokenizer *t, lq_gguf_writer *w, lq_error *err) {
    static const char *const keys[4] = {
        "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id"};
    const int32_t ids[4] = {t->bos, t->eos, t->unk, t->pad};
    for (int k = 0; k < 4; k++) {
        if (ids[k] < 0) continue;
        lq_status st = lq_gguf_writer_set_u32(w, keys[k], (uint32_t)ids[k], err);
        if (st) return st;
    }
    lq_status st = lq_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", t->add_bos, err);
    if (!st) st = lq_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", t->add_eos, err);
    if (!st && t->kind == TOK_KIND_SPM)
        st = lq_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", t->add_space_prefix,
                                     err);
    return st;
}

static lq_status write_merges(const lq_tokenizer *t, lq_gguf_writer *w, lq_error *err) {
    lq_str *m = malloc(((size_t)t->n_merges + 1) * sizeof *m);
    if (!m) return lq_fail(err, LQ_ERR_NOMEM, "%s: out of memory", t->source);
    for (int32_t i = 0; i < t->n_merges; i++) {
        m[i].ptr = t->merge_text + t->merge_text_off[i];
        m[i].len = t->merge_text_off[i + 1] - t->merge_text_off[i];
    }
    lq_status st = lq_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", m,
                                              (uint64_t)t->n_merges, err);
    free(m);
    return st;
}

lq_status lq_tokenizer_write_gguf(const lq_tokenizer *t, lq_gguf_writer *w, lq_error *err) {
    if (!t || !w) return lq_fail(err, LQ_ERR_INVALID, "lq_tokenizer_write_gguf: NULL argument");
    bool spm = t->kind == TOK_KIND_SPM;
    if (!spm && !strcmp(t->pre, "custom"))
        return lq_fail(err, LQ_ERR_UNSUPPORTED,
                       "%s: the pre-tokenizer regexes match no tokenizer.ggml.pre name known to "
                       "llama.cpp", t->source);
    if (!spm && t->prefix_space)
        return lq_fail(err, LQ_ERR_UNSUPPORTED,
                       "%s: ByteLevel add_prefix_space has no GGUF equivalent", t->source);
    int32_t n = t->n_vocab;
    lq_str *tokens = malloc((size_t)n * sizeof *tokens);
    int32_t *types = malloc((size_t)n * sizeof *types);
    lq_status st = LQ_OK;
    if (!tokens || !types) {
        st = lq_fail(err, LQ_ERR_NOMEM, "%s: out of memory", t->source);
        goto done;
    }
    for (int32_t i = 0; i < n; i++) {
        size_t len;
        tokens[i].ptr = tok_text(t, i, &len);
        tokens[i].len = len;
        types[i] = t->type[i];
    }
    const char *model = spm ? "llama" : "gpt2", *pre = spm ? "default" : t->pre;
    if ((st = lq_gguf_writer_set_str(w, "tokenizer.ggml.model", model, strlen(model), err)) ||
        (st = lq_gguf_writer_set_str(w, "tokenizer.ggml.pre", pre, strlen(pre), err)) ||
        (st = lq_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", tokens, (uint64_t)n, err)))
        goto done;
    if (spm && (st = lq_gguf_writer_set_arr(w, "tokenizer.ggml.scores", LQ_GGUF_FLOAT32,
                                            t->score, (uint64_t)n, err)))
        goto done;
    if ((st = lq_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", LQ_GGUF_INT32, types,
                                     (uint64_t)n, err)))
        goto done;
    if (!spm && (st = write_merges(t, w, err))) goto done;
    st = write_ids(t, w, err);
done:
    free(tokens);
    free(types);
    return st;
}
