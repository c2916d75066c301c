/* tok_gguf.c — a tokenizer from GGUF keys (tokenizer.ggml.*), with llama.cpp's defaults and
 * its per-token adjustments (control-looking tokens forced to control type, Phi-3's
 * right-stripping special tokens). */
#include "tok_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct gguf_src {
    const lq_gguf *g;
    const char *path;
} gguf_src;

/* Copies a STRING key into buf; *found = false when absent. */
static lq_status get_string(const gguf_src *s, const char *key, char *buf, size_t size,
                            bool *found, lq_error *err) {
    *found = false;
    buf[0] = '\0';
    int64_t i = lq_gguf_find_key(s->g, key);
    if (i < 0) return LQ_OK;
    if (lq_gguf_kv_type(s->g, i) != LQ_GGUF_STRING)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: key '%s' is %s, expected a string", s->path, key,
                       lq_gguf_type_name(lq_gguf_kv_type(s->g, i)));
    lq_str v = lq_gguf_get_str(s->g, i);
    size_t n = v.len < size - 1 ? (size_t)v.len : size - 1;
    if (n) memcpy(buf, v.ptr, n);
    buf[n] = '\0';
    *found = true;
    return LQ_OK;
}

/* Index of an array key with the given element type and n elements (n = 0: any count), -1
 * when absent. */
static lq_status find_array(const gguf_src *s, const char *key, lq_gguf_type elem, uint64_t n,
                            int64_t *index, lq_error *err) {
    *index = lq_gguf_find_key(s->g, key);
    if (*index < 0) return LQ_OK;
    int64_t i = *index;
    if (lq_gguf_kv_type(s->g, i) != LQ_GGUF_ARRAY || lq_gguf_arr_type(s->g, i) != elem)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: key '%s' is not an array of %s", s->path, key,
                       lq_gguf_type_name(elem));
    if (n && lq_gguf_arr_n(s->g, i) != n)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: key '%s' has %llu elements, expected %llu",
                       s->path, key, (unsigned long long)lq_gguf_arr_n(s->g, i),
                       (unsigned long long)n);
    return LQ_OK;
}

static lq_status get_bool(const gguf_src *s, const char *key, bool *v, lq_error *err) {
    int64_t i = lq_gguf_find_key(s->g, key);
    return i < 0 ? LQ_OK : lq_gguf_get_bool(s->g, i, v, err);
}

/* Token ids out of range keep their default, as llama.cpp does. */
static lq_status get_id(const gguf_src *s, const char *key, int32_t n_vocab, int32_t *id,
                        lq_error *err) {
    int64_t i = lq_gguf_find_key(s->g, key);
    if (i < 0) return LQ_OK;
    uint64_t v;
    lq_status st = lq_gguf_get_u64(s->g, i, &v, err);
    if (st) return st;
    if (v < (uint64_t)n_vocab) *id = (int32_t)v;
    return LQ_OK;
}

static lq_status load_tokens(lq_tokenizer *t, const gguf_src *s, lq_error *err) {
    int64_t ti;
    lq_status st = find_array(s, "tokenizer.ggml.tokens", LQ_GGUF_STRING, 0, &ti, err);
    if (st) return st;
    if (ti < 0) return lq_fail(err, LQ_ERR_FORMAT, "%s: no tokenizer.ggml.tokens", s->path);
    uint64_t n = lq_gguf_arr_n(s->g, ti);
    if (n == 0 || n > INT32_MAX)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: tokenizer.ggml.tokens has %llu entries", s->path,
                       (unsigned long long)n);
    lq_str *tokens = malloc(n * sizeof *tokens);
    if (!tokens) return lq_fail(err, LQ_ERR_NOMEM, "%s: out of memory", s->path);
    for (uint64_t j = 0; j < n; j++) tokens[j] = lq_gguf_arr_str(s->g, ti, j);
    st = tok_set_vocab(t, tokens, (int32_t)n, err);
    free(tokens);
    if (st) return st;

    int64_t si, yi;
    if ((st = find_array(s, "tokenizer.ggml.scores", LQ_GGUF_FLOAT32, n, &si, err))) return st;
    if ((st = find_array(s, "tokenizer.ggml.token_type", LQ_GGUF_INT32, n, &yi, err))) return st;
    const uint8_t *scores = si >= 0 ? lq_gguf_kv_data(s->g, si) : NULL;
    const uint8_t *types = yi >= 0 ? lq_gguf_kv_data(s->g, yi) : NULL;
    for (uint64_t j = 0; j < n; j++) {
        if (scores) {
            memcpy(&t->score[j], scores + 4 * j, 4);
            if (t->score[j] != t->score[j])
                return lq_fail(err, LQ_ERR_NUMERIC, "%s: tokenizer.ggml.scores[%llu] is NaN",
                               s->path, (unsigned long long)j);
        }
        if (types) {
            int32_t ty;
            memcpy(&ty, types + 4 * j, 4);
            t->type[j] = (ty >= TOK_TYPE_NORMAL && ty <= TOK_TYPE_BYTE) ? (uint8_t)ty
                                                                         : TOK_TYPE_UNDEFINED;
        }
    }
    return LQ_OK;
}

static lq_status load_merges(lq_tokenizer *t, const gguf_src *s, bool required, lq_error *err) {
    int64_t mi;
    lq_status st = find_array(s, "tokenizer.ggml.merges", LQ_GGUF_STRING, 0, &mi, err);
    if (st) return st;
    if (mi < 0)
        return required ? lq_fail(err, LQ_ERR_FORMAT, "%s: no tokenizer.ggml.merges", s->path)
                        : LQ_OK;
    uint64_t n = lq_gguf_arr_n(s->g, mi);
    if (n > INT32_MAX)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: %llu merges", s->path, (unsigned long long)n);
    lq_str *merges = malloc((n ? n : 1) * sizeof *merges);
    if (!merges) return lq_fail(err, LQ_ERR_NOMEM, "%s: out of memory", s->path);
    for (uint64_t j = 0; j < n; j++) merges[j] = lq_gguf_arr_str(s->g, mi, j);
    st = tok_set_merges(t, merges, NULL, (int32_t)n, err);
    free(merges);
    return st;
}

/* llama.cpp treats these texts as end-of-generation / FIM tokens and makes them control
 * tokens whatever the file says (so they are not matched when parse_special is off). */
static const char *const k_control_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>",
    "<|endoftext|>", "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>",
    "<\xef\xbd\x9c" "end\xe2\x96\x81" "of\xe2\x96\x81sentence\xef\xbd\x9c>",
};

static void force_control_tokens(lq_tokenizer *t) {
    for (size_t k = 0; k < sizeof k_control_texts / sizeof k_control_texts[0]; k++) {
        int32_t id = tok_map_get(&t->token_map, k_control_texts[k], strlen(k_control_texts[k]));
        if (id >= 0) t->type[id] = TOK_TYPE_CONTROL;
    }
}

/* Phi-3 (by general.name): special tokens strip the whitespace after them, except <unk>, <s>
 * and <|endoftext|>; "</s>" always does. */
static void phi3_flags(lq_tokenizer *t, const char *name) {
    char lower[256];
    size_t i = 0;
    for (; name[i] && i + 1 < sizeof lower; i++) lower[i] = (char)tolower((unsigned char)name[i]);
    lower[i] = '\0';
    if (!strstr(lower, "phi-3") && !strstr(lower, "phi3")) return;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        uint8_t ty = t->type[id];
        if (ty == TOK_TYPE_CONTROL || ty == TOK_TYPE_USER_DEFINED || ty == TOK_TYPE_UNKNOWN)
            t->flags[id] |= TOK_FLAG_RSTRIP;
    }
    const char *on = "</s>", *off[3] = {"<unk>", "<s>", "<|endoftext|>"};
    int32_t id = tok_map_get(&t->token_map, on, strlen(on));
    if (id >= 0) t->flags[id] |= TOK_FLAG_RSTRIP;
    for (int k = 0; k < 3; k++) {
        id = tok_map_get(&t->token_map, off[k], strlen(off[k]));
        if (id >= 0) t->flags[id] &= (uint8_t)~TOK_FLAG_RSTRIP;
    }
}

static lq_status load(lq_tokenizer *t, const gguf_src *s, lq_error *err) {
    char model[64], pre[64], name[256];
    bool found;
    lq_status st;
    if ((st = get_string(s, "tokenizer.ggml.model", model, sizeof model, &found, err))) return st;
    if (!found) return lq_fail(err, LQ_ERR_FORMAT, "%s: no tokenizer.ggml.model", s->path);
    if ((st = get_string(s, "tokenizer.ggml.pre", pre, sizeof pre, &found, err))) return st;
    if ((st = get_string(s, "general.name", name, sizeof name, &found, err))) return st;

    if (!strcmp(model, "llama")) {
        t->kind = TOK_KIND_SPM;
        t->bos = 1, t->eos = 2, t->unk = 0;
        t->add_bos = true, t->add_space_prefix = true;
        t->byte_fallback = true;
        /* Characters with neither a token nor byte tokens: llama.cpp aborts; we give one
         * <unk> per run of them, as Hugging Face does for the same vocabulary. */
        t->fuse_unk = true;
    } else if (!strcmp(model, "gpt2")) {
        t->kind = TOK_KIND_BPE;
        t->bos = 11, t->eos = 11;
        t->use_merges = true;
        if ((st = tok_set_pre(t, pre, err))) return st;
        t->add_bos = t->ignore_merges; /* llama3-style pre-tokenizers add BOS by default */
    } else {
        return lq_fail(err, LQ_ERR_UNSUPPORTED, "%s: unsupported tokenizer.ggml.model '%s'",
                       s->path, model);
    }
    if ((st = load_tokens(t, s, err))) return st;
    if (t->kind == TOK_KIND_BPE && (st = load_merges(t, s, true, err))) return st;

    int32_t n = t->n_vocab;
    if ((st = get_id(s, "tokenizer.ggml.bos_token_id", n, &t->bos, err)) ||
        (st = get_id(s, "tokenizer.ggml.eos_token_id", n, &t->eos, err)) ||
        (st = get_id(s, "tokenizer.ggml.unknown_token_id", n, &t->unk, err)) ||
        (st = get_id(s, "tokenizer.ggml.padding_token_id", n, &t->pad, err)) ||
        (st = get_bool(s, "tokenizer.ggml.add_bos_token", &t->add_bos, err)) ||
        (st = get_bool(s, "tokenizer.ggml.add_eos_token", &t->add_eos, err)) ||
        (st = get_bool(s, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix, err)))
        return st;
    force_control_tokens(t);
    phi3_flags(t, name);
    return tok_finish(t, err);
}

lq_status lq_tokenizer_from_gguf(const lq_gguf *g, lq_tokenizer **out, lq_error *err) {
    if (!g || !out) return lq_fail(err, LQ_ERR_INVALID, "lq_tokenizer_from_gguf: NULL argument");
    *out = NULL;
    gguf_src s = {g, lq_gguf_path(g) ? lq_gguf_path(g) : "gguf"};
    lq_tokenizer *t = tok_new(s.path, err);
    if (!t) return err ? err->code : LQ_ERR_NOMEM;
    lq_status st = load(t, &s, err);
    if (st) {
        lq_tokenizer_free(t);
        return st;
    }
    *out = t;
    return LQ_OK;
}
