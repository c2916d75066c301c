/* tok_json.c — a tokenizer from a Hugging Face tokenizer.json (model.type "BPE").
 *
 * Two shapes are understood:
 *  - SentencePiece-style BPE: normalizer Prepend("▁") + Replace(" " → "▁") (or a Metaspace
 *    pre-tokenizer without splitting), byte_fallback, no pre-tokenizer. Runs in the SPM shell
 *    with pair priorities from the merge ranks (Hugging Face's BPE), so ids match HF.
 *  - byte-level BPE: a ByteLevel pre-tokenizer, possibly after Split(regex, Isolated) and
 *    Digits steps (GPT-2, Llama-3, Qwen2, SmolLM). Runs in the byte-level shell.
 * added_tokens become control tokens ("special": true) or user-defined tokens. BOS/EOS come
 * from tokenizer_config.json next to the file when present, else from the post-processor.
 * Normalizers other than Prepend/Replace/NFC and pre-tokenizers other than the above are
 * refused with LQ_ERR_UNSUPPORTED; NFC is accepted and not applied (as llama.cpp does). */
#include "tok_internal.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char k_mark[] = "\xe2\x96\x81"; /* U+2581 */

typedef struct json_src {
    const char *path;
    json_t *root;
    json_t *config; /* tokenizer_config.json or NULL */
    /* What the normalizer / pre-tokenizer steps ask for. */
    bool prepend_mark, replace_space, byte_level, prefix_space, saw_pre;
    char pre_name[64];
} json_src;

static bool jstr_is(json_t *v, const char *s) {
    return json_is_string(v) && strcmp(json_string_value(v), s) == 0;
}

/* ---------------------------------------------------------------------------------------------
 * Normalizer and pre-tokenizer
 * ------------------------------------------------------------------------------------------- */

static lq_status parse_normalizer(json_src *s, json_t *n, lq_error *err) {
    if (!n || json_is_null(n)) return LQ_OK;
    json_t *type = json_object_get(n, "type");
    if (jstr_is(type, "Sequence")) {
        json_t *list = json_object_get(n, "normalizers");
        size_t i;
        json_t *v;
        json_array_foreach(list, i, v) {
            lq_status st = parse_normalizer(s, v, err);
            if (st) return st;
        }
        return LQ_OK;
    }
    if (jstr_is(type, "Prepend") && jstr_is(json_object_get(n, "prepend"), k_mark)) {
        s->prepend_mark = true;
        return LQ_OK;
    }
    if (jstr_is(type, "Replace")) {
        json_t *pat = json_object_get(n, "pattern");
        if (jstr_is(json_object_get(pat, "String"), " ") &&
            jstr_is(json_object_get(n, "content"), k_mark)) {
            s->replace_space = true;
            return LQ_OK;
        }
    }
    if (jstr_is(type, "NFC")) return LQ_OK;
    return lq_fail(err, LQ_ERR_UNSUPPORTED, "%s: unsupported normalizer '%s'", s->path,
                   json_is_string(type) ? json_string_value(type) : "?");
}

/* The Hugging Face byte-level GPT-2 regex. */
#define HF_GPT2_REGEX \
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
#define HF_LLAMA3_REGEX                                                                      \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+" \
    "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define HF_QWEN2_REGEX                                                                       \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+" \
    "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

static lq_status parse_pre(json_src *s, lq_tokenizer *t, json_t *p, lq_error *err) {
    if (!p || json_is_null(p)) return LQ_OK;
    s->saw_pre = true;
    json_t *type = json_object_get(p, "type");
    const char *ty = json_is_string(type) ? json_string_value(type) : "?";
    if (!strcmp(ty, "Sequence")) {
        json_t *list = json_object_get(p, "pretokenizers");
        size_t i;
        json_t *v;
        json_array_foreach(list, i, v) {
            lq_status st = parse_pre(s, t, v, err);
            if (st) return st;
        }
        return LQ_OK;
    }
    if (!strcmp(ty, "ByteLevel")) {
        s->byte_level = true;
        s->prefix_space = json_is_true(json_object_get(p, "add_prefix_space"));
        json_t *use_regex = json_object_get(p, "use_regex");
        if (!use_regex || json_is_true(use_regex)) {
            if (!s->pre_name[0]) snprintf(s->pre_name, sizeof s->pre_name, "gpt-2");
            return tok_add_regex(t, HF_GPT2_REGEX, err);
        }
        return LQ_OK;
    }
    if (!strcmp(ty, "Split")) {
        json_t *pat = json_object_get(json_object_get(p, "pattern"), "Regex");
        if (!json_is_string(pat) || !jstr_is(json_object_get(p, "behavior"), "Isolated") ||
            json_is_true(json_object_get(p, "invert")))
            return lq_fail(err, LQ_ERR_UNSUPPORTED,
                           "%s: pre_tokenizer Split: only an isolated, non-inverted regex is "
                           "supported", s->path);
        const char *re = json_string_value(pat);
        if (!strcmp(re, HF_LLAMA3_REGEX)) snprintf(s->pre_name, sizeof s->pre_name, "llama-bpe");
        else if (!strcmp(re, HF_QWEN2_REGEX)) snprintf(s->pre_name, sizeof s->pre_name, "qwen2");
        else snprintf(s->pre_name, sizeof s->pre_name, "custom");
        return tok_add_regex(t, re, err);
    }
    if (!strcmp(ty, "Digits")) {
        bool single = json_is_true(json_object_get(p, "individual_digits"));
        if (single && !s->pre_name[0]) snprintf(s->pre_name, sizeof s->pre_name, "smollm");
        return tok_add_regex(t, single ? "\\p{N}" : "\\p{N}+", err);
    }
    if (!strcmp(ty, "Metaspace")) {
        json_t *split = json_object_get(p, "split");
        json_t *scheme = json_object_get(p, "prepend_scheme");
        if (!jstr_is(json_object_get(p, "replacement"), k_mark) || json_is_true(split))
            return lq_fail(err, LQ_ERR_UNSUPPORTED,
                           "%s: pre_tokenizer Metaspace: only replacement U+2581 without "
                           "splitting is supported", s->path);
        s->replace_space = true;
        if (json_is_true(json_object_get(p, "add_prefix_space")) ||
            (json_is_string(scheme) && !jstr_is(scheme, "never")))
            s->prepend_mark = true;
        return LQ_OK;
    }
    return lq_fail(err, LQ_ERR_UNSUPPORTED, "%s: unsupported pre_tokenizer '%s'", s->path, ty);
}

/* ---------------------------------------------------------------------------------------------
 * Vocabulary
 * ------------------------------------------------------------------------------------------- */

typedef struct id_text {
    const char *ptr;
    size_t len;
    int kind; /* 0 hole, 1 vocab, 2 added special, 3 added normal */
    uint8_t flags;
} id_text;

static lq_status get_id_value(const json_src *s, json_t *v, const char *what, int64_t *id,
                              lq_error *err) {
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= INT32_MAX)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: %s: token id is not an integer in [0, 2^31)",
                       s->path, what);
    *id = json_integer_value(v);
    return LQ_OK;
}

static lq_status collect_vocab(json_src *s, json_t *model, id_text **out, int32_t *n_out,
                               lq_error *err) {
    json_t *vocab = json_object_get(model, "vocab"), *added = json_object_get(s->root,
                                                                              "added_tokens");
    if (!json_is_object(vocab))
        return lq_fail(err, LQ_ERR_FORMAT, "%s: model.vocab is not an object", s->path);
    if (added && !json_is_array(added) && !json_is_null(added))
        return lq_fail(err, LQ_ERR_FORMAT, "%s: added_tokens is not an array", s->path);
    int64_t max_id = -1, id = 0;
    const char *key;
    json_t *v;
    lq_status st;
    json_object_foreach(vocab, key, v) {
        if ((st = get_id_value(s, v, key, &id, err))) return st;
        if (id > max_id) max_id = id;
    }
    size_t i;
    json_array_foreach(added, i, v) {
        if ((st = get_id_value(s, json_object_get(v, "id"), "added_tokens", &id, err))) return st;
        if (!json_is_string(json_object_get(v, "content")))
            return lq_fail(err, LQ_ERR_FORMAT, "%s: added_tokens[%zu]: no content", s->path, i);
        if (id > max_id) max_id = id;
    }
    if (max_id < 0) return lq_fail(err, LQ_ERR_FORMAT, "%s: empty vocabulary", s->path);
    /* Ids may have holes (filled with placeholders below), but a lone huge id would make us
     * allocate gigabytes for a file of a few bytes: allow at most as many holes as tokens. */
    size_t n_given = json_object_size(vocab) + (added ? json_array_size(added) : 0);
    if ((uint64_t)max_id >= 2 * (uint64_t)n_given + 1024)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: token id %lld is far beyond the %zu tokens "
                       "given (too sparse a vocabulary)", s->path, (long long)max_id, n_given);
    id_text *tx = calloc((size_t)max_id + 1, sizeof *tx);
    if (!tx) return lq_fail(err, LQ_ERR_NOMEM, "%s: out of memory", s->path);
    json_object_foreach(vocab, key, v) {
        id = json_integer_value(v);
        if (tx[id].kind)
            return free(tx), lq_fail(err, LQ_ERR_FORMAT, "%s: token id %lld appears twice in "
                                     "model.vocab", s->path, (long long)id);
        tx[id].ptr = key;
        tx[id].len = strlen(key);
        tx[id].kind = 1;
    }
    json_array_foreach(added, i, v) {
        id = json_integer_value(json_object_get(v, "id"));
        json_t *content = json_object_get(v, "content");
        tx[id].ptr = json_string_value(content);
        tx[id].len = json_string_length(content);
        tx[id].kind = json_is_true(json_object_get(v, "special")) ? 2 : 3;
        tx[id].flags = (uint8_t)((json_is_true(json_object_get(v, "lstrip")) ? TOK_FLAG_LSTRIP : 0) |
                                 (json_is_true(json_object_get(v, "rstrip")) ? TOK_FLAG_RSTRIP : 0));
    }
    *out = tx;
    *n_out = (int32_t)(max_id + 1);
    return LQ_OK;
}

static lq_status load_vocab(json_src *s, lq_tokenizer *t, json_t *model, lq_error *err) {
    id_text *tx = NULL;
    int32_t n = 0;
    lq_status st = collect_vocab(s, model, &tx, &n, err);
    if (st) return st;
    /* Ids without a token get "[PAD<id>]" placeholders, as llama.cpp's converter writes. */
    char *holes = NULL;
    size_t n_holes = 0;
    for (int32_t i = 0; i < n; i++) n_holes += tx[i].kind == 0;
    lq_str *tokens = malloc((size_t)n * sizeof *tokens);
    if (n_holes) holes = malloc(n_holes * 24);
    if (!tokens || (n_holes && !holes)) {
        st = lq_fail(err, LQ_ERR_NOMEM, "%s: out of memory", s->path);
        goto done;
    }
    char *h = holes;
    for (int32_t i = 0; i < n; i++) {
        if (tx[i].kind == 0) {
            int len = snprintf(h, 24, "[PAD%d]", (int)i);
            tokens[i].ptr = h;
            tokens[i].len = (uint64_t)len;
            h += 24;
        } else {
            tokens[i].ptr = tx[i].ptr;
            tokens[i].len = tx[i].len;
        }
    }
    if ((st = tok_set_vocab(t, tokens, n, err))) goto done;
    for (int32_t i = 0; i < n; i++) {
        t->flags[i] = tx[i].flags;
        if (tx[i].kind == 0) t->type[i] = TOK_TYPE_UNUSED;
        else if (tx[i].kind == 2) t->type[i] = TOK_TYPE_CONTROL;
        else if (tx[i].kind == 3) t->type[i] = TOK_TYPE_USER_DEFINED;
        else if (t->byte_fallback && tx[i].len == 6 && !memcmp(tx[i].ptr, "<0x", 3) &&
                 tx[i].ptr[5] == '>')
            t->type[i] = TOK_TYPE_BYTE;
    }
done:
    free(tx);
    free(tokens);
    free(holes);
    return st;
}

static lq_status load_merges(json_src *s, lq_tokenizer *t, json_t *model, lq_error *err) {
    json_t *merges = json_object_get(model, "merges");
    if (!json_is_array(merges))
        return lq_fail(err, LQ_ERR_FORMAT, "%s: model.merges is not an array", s->path);
    size_t n = json_array_size(merges);
    if (n > INT32_MAX) return lq_fail(err, LQ_ERR_FORMAT, "%s: too many merges", s->path);
    lq_str *left = malloc((n ? n : 1) * sizeof *left), *right = malloc((n ? n : 1) * sizeof *right);
    lq_status st = LQ_OK;
    bool pairs = n > 0 && json_is_array(json_array_get(merges, 0));
    if (!left || !right) {
        st = lq_fail(err, LQ_ERR_NOMEM, "%s: out of memory", s->path);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(merges, i);
        if (pairs) { /* ["left", "right"] (tokenizers >= 0.20) */
            json_t *a = json_array_get(m, 0), *b = json_array_get(m, 1);
            if (!json_is_array(m) || json_array_size(m) != 2 || !json_is_string(a) ||
                !json_is_string(b)) {
                st = lq_fail(err, LQ_ERR_FORMAT, "%s: model.merges[%zu] is not a pair of "
                             "strings", s->path, i);
                goto done;
            }
            left[i] = (lq_str){json_string_value(a), json_string_length(a)};
            right[i] = (lq_str){json_string_value(b), json_string_length(b)};
        } else {
            if (!json_is_string(m)) {
                st = lq_fail(err, LQ_ERR_FORMAT, "%s: model.merges[%zu] is not a string",
                             s->path, i);
                goto done;
            }
            left[i] = (lq_str){json_string_value(m), json_string_length(m)};
        }
    }
    st = tok_set_merges(t, left, pairs ? right : NULL, (int32_t)n, err);
done:
    free(left);
    free(right);
    return st;
}

/* Scores for export and for the SentencePiece view: a token made by merge r scores -r (the
 * earlier the merge, the higher), other tokens far below any merge. */
static void derive_scores(lq_tokenizer *t) {
    for (int32_t i = 0; i < t->n_vocab; i++) t->score[i] = -1e9f;
    for (int32_t r = t->n_merges - 1; r >= 0; r--) { /* the first merge making a token wins */
        const char *key = t->merge_keys + t->merge_key_off[r];
        size_t len = (size_t)(t->merge_key_off[r + 1] - t->merge_key_off[r]);
        /* key = u32 left length, left, right: the product is the bytes after the length */
        int32_t id = tok_map_get(&t->token_map, key + 4, len - 4);
        if (id >= 0) t->score[id] = -(float)r;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Special token ids
 * ------------------------------------------------------------------------------------------- */

/* Id of a tokenizer_config.json token entry (a string or {"content": ...}); -1 if none. */
static int32_t config_token(const lq_tokenizer *t, json_t *config, const char *field) {
    json_t *v = json_object_get(config, field);
    if (json_is_object(v)) v = json_object_get(v, "content");
    if (!json_is_string(v)) return -1;
    return tok_map_get(&t->token_map, json_string_value(v), json_string_length(v));
}

static int32_t template_token(const lq_tokenizer *t, json_t *item) {
    json_t *id = json_object_get(json_object_get(item, "SpecialToken"), "id");
    if (!json_is_string(id)) return -1;
    return tok_map_get(&t->token_map, json_string_value(id), json_string_length(id));
}

static void set_special_ids(const json_src *s, lq_tokenizer *t, json_t *model) {
    json_t *unk = json_object_get(model, "unk_token");
    if (json_is_string(unk)) t->unk = tok_map_get(&t->token_map, json_string_value(unk),
                                                  json_string_length(unk));
    /* Post-processor template: a leading special token is BOS, a trailing one EOS. */
    json_t *pp = json_object_get(s->root, "post_processor");
    json_t *single = json_object_get(pp, "single");
    if (jstr_is(json_object_get(pp, "type"), "TemplateProcessing") && json_is_array(single) &&
        json_array_size(single) > 0) {
        int32_t first = template_token(t, json_array_get(single, 0));
        int32_t last = template_token(t, json_array_get(single, json_array_size(single) - 1));
        if (first >= 0) t->bos = first, t->add_bos = true;
        if (last >= 0 && json_array_size(single) > 1) t->eos = last, t->add_eos = true;
    }
    if (s->config) {
        int32_t id;
        if ((id = config_token(t, s->config, "bos_token")) >= 0) t->bos = id;
        if ((id = config_token(t, s->config, "eos_token")) >= 0) t->eos = id;
        if ((id = config_token(t, s->config, "pad_token")) >= 0) t->pad = id;
        if ((id = config_token(t, s->config, "unk_token")) >= 0) t->unk = id;
        json_t *b = json_object_get(s->config, "add_bos_token");
        json_t *e = json_object_get(s->config, "add_eos_token");
        if (json_is_boolean(b)) t->add_bos = json_is_true(b);
        if (json_is_boolean(e)) t->add_eos = json_is_true(e);
    }
    if (t->unk >= 0 && t->type[t->unk] == TOK_TYPE_NORMAL) t->type[t->unk] = TOK_TYPE_UNKNOWN;
}

/* ---------------------------------------------------------------------------------------------
 * Loading
 * ------------------------------------------------------------------------------------------- */

static lq_status load(json_src *s, lq_tokenizer *t, lq_error *err) {
    json_t *model = json_object_get(s->root, "model");
    if (!json_is_object(model))
        return lq_fail(err, LQ_ERR_FORMAT, "%s: no \"model\" object", s->path);
    json_t *type = json_object_get(model, "type");
    if (type && !jstr_is(type, "BPE"))
        return lq_fail(err, LQ_ERR_UNSUPPORTED, "%s: model type '%s' (only BPE is supported)",
                       s->path, json_is_string(type) ? json_string_value(type) : "?");
    json_t *dropout = json_object_get(model, "dropout");
    if (json_is_number(dropout) && json_number_value(dropout) > 0)
        return lq_fail(err, LQ_ERR_UNSUPPORTED, "%s: BPE dropout is not supported", s->path);
    json_t *cont = json_object_get(model, "continuing_subword_prefix");
    json_t *suffix = json_object_get(model, "end_of_word_suffix");
    if ((json_is_string(cont) && json_string_length(cont)) ||
        (json_is_string(suffix) && json_string_length(suffix)))
        return lq_fail(err, LQ_ERR_UNSUPPORTED, "%s: subword prefixes/suffixes are not supported",
                       s->path);
    t->byte_fallback = json_is_true(json_object_get(model, "byte_fallback"));
    t->fuse_unk = json_is_true(json_object_get(model, "fuse_unk"));
    t->ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
    t->use_merges = true;

    lq_status st;
    if ((st = parse_normalizer(s, json_object_get(s->root, "normalizer"), err))) return st;
    if ((st = parse_pre(s, t, json_object_get(s->root, "pre_tokenizer"), err))) return st;
    if (s->byte_level) {
        t->kind = TOK_KIND_BPE;
        t->prefix_space = s->prefix_space;
        snprintf(t->pre, sizeof t->pre, "%s", s->pre_name[0] ? s->pre_name : "custom");
    } else {
        if (!s->replace_space)
            return lq_fail(err, LQ_ERR_UNSUPPORTED,
                           "%s: neither a ByteLevel pre-tokenizer nor a SentencePiece-style "
                           "space replacement", s->path);
        if (t->n_regex > 0)
            return lq_fail(err, LQ_ERR_UNSUPPORTED,
                           "%s: regex pre-tokenizers need a ByteLevel step", s->path);
        t->kind = TOK_KIND_SPM;
        t->add_space_prefix = s->prepend_mark;
    }
    if ((st = load_vocab(s, t, model, err))) return st;
    if ((st = load_merges(s, t, model, err))) return st;
    derive_scores(t);
    set_special_ids(s, t, model);
    return tok_finish(t, err);
}

/* tokenizer_config.json in the same directory, or NULL. */
static json_t *load_config(const char *path) {
    const char *slash = strrchr(path, '/');
    size_t dir = slash ? (size_t)(slash - path) + 1 : 0;
    char *cfg = malloc(dir + sizeof "tokenizer_config.json");
    if (!cfg) return NULL;
    memcpy(cfg, path, dir);
    memcpy(cfg + dir, "tokenizer_config.json", sizeof "tokenizer_config.json");
    json_t *c = json_load_file(cfg, JSON_DECODE_INT_AS_REAL, NULL); /* model_max_length: 1e30 */
    free(cfg);
    if (c && !json_is_object(c)) {
        json_decref(c);
        c = NULL;
    }
    return c;
}

lq_status lq_tokenizer_from_json(const char *path, lq_tokenizer **out, lq_error *err) {
    if (!path || !out) return lq_fail(err, LQ_ERR_INVALID, "lq_tokenizer_from_json: NULL argument");
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return lq_fail(err, LQ_ERR_IO, "%s: %s", path, strerror(errno));
    json_error_t jerr;
    json_t *root = json_loadf(f, 0, &jerr);
    fclose(f);
    if (!root)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: line %d: %s", path, jerr.line, jerr.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return lq_fail(err, LQ_ERR_FORMAT, "%s: top level is not an object", path);
    }
    json_src s = {.path = path, .root = root, .config = load_config(path)};
    lq_tokenizer *t = tok_new(path, err);
    lq_status st = t ? load(&s, t, err) : LQ_ERR_NOMEM;
    json_decref(root);
    if (s.config) json_decref(s.config);
    if (st) {
        lq_tokenizer_free(t);
        return st;
    }
    *out = t;
    return LQ_OK;
}
