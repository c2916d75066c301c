/* vocab_json.h — writes a byte-level tokenizer.json for the vocabulary of a GGUF (tokens,
 * merges, control tokens as special added tokens) with one of Hugging Face's pre-tokenizer
 * shapes, so that the tokenizer.json loader can be checked against references. */
#ifndef LQ_TEST_VOCAB_JSON_H
#define LQ_TEST_VOCAB_JSON_H

#include "test.h"

#include <jansson.h>

/* HF pre-tokenizer regexes of Llama-3 and Qwen2 (as in their tokenizer.json files). */
#define HF_RE_LLAMA3                                                                         \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+" \
    "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define HF_RE_QWEN2                                                                          \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+" \
    "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

static json_t *vj_byte_level(bool use_regex) {
    return json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 0,
                     "trim_offsets", 1, "use_regex", use_regex);
}

static json_t *vj_split(const char *re) {
    return json_pack("{s:s, s:{s:s}, s:s, s:b}", "type", "Split", "pattern", "Regex", re,
                     "behavior", "Isolated", "invert", 0);
}

/* variant: "gpt2" (ByteLevel with its regex), "llama3", "qwen2", "smollm" (Digits +
 * ByteLevel). Returns the JSON text (malloc'd) or NULL. */
static char *vj_tokenizer_json(const lq_gguf *g, const char *variant) {
    int64_t ti = lq_gguf_find_key(g, "tokenizer.ggml.tokens");
    int64_t yi = lq_gguf_find_key(g, "tokenizer.ggml.token_type");
    int64_t mi = lq_gguf_find_key(g, "tokenizer.ggml.merges");
    if (ti < 0 || yi < 0 || mi < 0) return NULL;
    json_t *vocab = json_object(), *merges = json_array(), *added = json_array();
    const uint8_t *types = lq_gguf_kv_data(g, yi);
    for (uint64_t i = 0; i < lq_gguf_arr_n(g, ti); i++) {
        lq_str s = lq_gguf_arr_str(g, ti, i);
        char *key = strndup(s.ptr, s.len);
        json_object_set_new(vocab, key, json_integer((json_int_t)i));
        int32_t ty;
        memcpy(&ty, types + 4 * i, 4);
        if (ty == 3)
            json_array_append_new(added, json_pack("{s:I, s:s, s:b}", "id", (json_int_t)i,
                                                   "content", key, "special", 1));
        free(key);
    }
    for (uint64_t i = 0; i < lq_gguf_arr_n(g, mi); i++) {
        lq_str s = lq_gguf_arr_str(g, mi, i);
        json_array_append_new(merges, json_stringn(s.ptr, s.len));
    }
    json_t *pre = NULL, *normalizer = json_null();
    bool ignore_merges = false;
    if (!strcmp(variant, "llama3")) {
        pre = json_pack("{s:s, s:[o, o]}", "type", "Sequence", "pretokenizers",
                        vj_split(HF_RE_LLAMA3), vj_byte_level(false));
        ignore_merges = true;
    } else if (!strcmp(variant, "qwen2")) {
        pre = json_pack("{s:s, s:[o, o]}", "type", "Sequence", "pretokenizers",
                        vj_split(HF_RE_QWEN2), vj_byte_level(false));
        json_decref(normalizer);
        normalizer = json_pack("{s:s}", "type", "NFC");
    } else if (!strcmp(variant, "smollm")) {
        pre = json_pack("{s:s, s:[{s:s, s:b}, o]}", "type", "Sequence", "pretokenizers", "type",
                        "Digits", "individual_digits", 1, vj_byte_level(true));
    } else {
        pre = vj_byte_level(true);
    }
    json_t *root = json_pack("{s:o, s:{s:s, s:o, s:o, s:n, s:b, s:b}, s:o, s:o}", "added_tokens",
                             added, "model", "type", "BPE", "vocab", vocab, "merges", merges,
                             "unk_token", "byte_fallback", 0, "ignore_merges", ignore_merges,
                             "pre_tokenizer", pre, "normalizer", normalizer);
    char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return text;
}

/* Writes text to dir/name; returns the path (static buffer) or NULL. */
static const char *vj_write(const char *dir, const char *name, const char *text) {
    static char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return NULL;
    bool ok = text && fputs(text, f) >= 0;
    fclose(f);
    return ok ? path : NULL;
}

#endif
