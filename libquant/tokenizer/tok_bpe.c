/* tok_bpe.c — the byte-level BPE shell (GGUF "gpt2", tokenizer.json with a ByteLevel
 * pre-tokenizer): pre-tokenizer regexes, the GPT-2 byte-to-unicode mapping, merges per word.
 *
 * The regex sets per tokenizer.ggml.pre are the ones llama.cpp applies (facts from its
 * llama-vocab.cpp). They are applied one after the other: each regex splits every piece left by
 * the previous one into its matches and the text between matches (which is kept as pieces of
 * its own). Each piece is matched as a whole subject, so "$" and "(?!\S)" see the end of the
 * piece. "\s" is rewritten to llama.cpp's whitespace set (Unicode White_Space) because PCRE2's
 * \s also matches U+180E. */
#include "tok_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------
 * Regex sets
 * ------------------------------------------------------------------------------------------- */

#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define RE_LLAMA3                                                                            \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|" \
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN2                                                                             \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|" \
    "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_DEEPSEEK_LETTERS /* cased letters, as U+ escapes */ \
    "\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}" \
    "\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}" \
    "\\x{37F}\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}" \
    "\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}" \
    "\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}" \
    "\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}" \
    "\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}" \
    "\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}" \
    "\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}" \
    "\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}" \
    "\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}" \
    "\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}" \
    "\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}" \
    "\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}" \
    "\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}" \
    "\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}" \
    "\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}" \
    "\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}]+"

#define RE_PORO " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{964}\\x{6D4}\\x{60C})]+"

typedef struct pre_set {
    const char *names; /* '|'-separated tokenizer.ggml.pre values */
    const char *regex[6];
    bool ignore_merges; /* llama.cpp also sets add_bos for these */
} pre_set;

static const pre_set k_pre_sets[] = {
    {"default",
     {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]", NULL}, false},
    {"llama3|llama-v3|llama-bpe|falcon3|falcon-h1|pixtral|midm-2.0|lfm2", {RE_LLAMA3, NULL}, true},
    {"dbrx|smaug-bpe|chatglm-bpe|glm4", {RE_LLAMA3, NULL}, false},
    {"deepseek-llm",
     {"[\r\n]", RE_DEEPSEEK_LETTERS,
     "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+",
     "\\s+$",  "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+", "\\p{N}+"},
     false},
    {"deepseek-coder",
     {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+",
     "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+", "\\p{N}", NULL}, false},
    {"deepseek-v3",
     {"\\p{N}{1,3}", "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+",
      "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
      " ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
      NULL},
     false},
    {"falcon", {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]", NULL}, false},
    {"gpt-2|mpt|phi-2|jina-es|jina-de|gigachat|jina-v1-en|jina-v2-es|jina-v2-de|jina-v2-code|"
     "roberta-bpe|olmo|jais|trillion|granite-docling|exaone4|a.x-4.0|mellum",
     {RE_GPT2, NULL}, false},
    {"starcoder|refact|command-r|smollm|codeshell|exaone|minerva-7b", {"\\p{N}", RE_GPT2, NULL},
     false},
    {"qwen2|deepseek-r1-qwen|kormo|megrez|stablelm2|hunyuan", {RE_QWEN2, NULL}, false},
    {"poro-chat|bloom|gpt3-finnish", {RE_PORO, NULL}, false},
    {"viking", {RE_PORO, "\\p{N}", NULL}, false},
};

static bool name_in_list(const char *name, const char *list) {
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, '|');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && memcmp(p, name, n) == 0) return true;
        if (!e) break;
        p = e + 1;
    }
    return false;
}

/* llama.cpp's whitespace set: U+0009..U+000D, U+0020, U+0085, U+00A0, U+1680, U+2000..U+200A,
 * U+2028, U+2029, U+202F, U+205F, U+3000. */
#define WS_CLASS "\\t-\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}" \
                 "\\x{202F}\\x{205F}\\x{3000}"

/* Rewrites \s and \S; returns false when \S appears inside a character class. */
static bool rewrite_whitespace(const char *pattern, tok_buf *out) {
    bool in_class = false;
    out->len = 0;
    for (const char *p = pattern; *p; p++) {
        if (*p == '\\' && p[1]) {
            if (p[1] == 's') {
                const char *cls = in_class ? WS_CLASS : "[" WS_CLASS "]";
                if (!tok_buf_append(out, cls, strlen(cls))) return false;
            } else if (p[1] == 'S') {
                if (in_class || !tok_buf_append(out, "[^" WS_CLASS "]", strlen("[^" WS_CLASS "]")))
                    return false;
            } else if (!tok_buf_append(out, p, 2)) {
                return false;
            }
            p++;
            continue;
        }
        if (*p == '[' && !in_class) {
            in_class = true;
            if (!tok_buf_append(out, p, 1)) return false;
            if (p[1] == '^') {
                if (!tok_buf_append(out, "^", 1)) return false;
                p++;
            }
            continue;
        }
        if (*p == ']' && in_class) in_class = false;
        if (!tok_buf_append(out, p, 1)) return false;
    }
    return tok_buf_append(out, "", 1);
}

lq_status tok_add_regex(lq_tokenizer *t, const char *pattern, lq_error *err) {
    if (t->n_regex >= TOK_MAX_REGEX)
        return lq_fail(err, LQ_ERR_UNSUPPORTED, "%s: more than %d pre-tokenizer regexes",
                       t->source, TOK_MAX_REGEX);
    tok_buf rewritten = {0};
    if (!rewrite_whitespace(pattern, &rewritten)) {
        free(rewritten.data);
        return lq_fail(err, LQ_ERR_UNSUPPORTED, "%s: pre-tokenizer regex '%s': \\S inside a class",
                       t->source, pattern);
    }
    int code;
    PCRE2_SIZE where;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)rewritten.data, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &code, &where,
                                   NULL);
    free(rewritten.data);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return lq_fail(err, LQ_ERR_UNSUPPORTED,
                       "%s: pre-tokenizer regex '%s': %s at offset %zu", t->source, pattern,
                       (const char *)msg, (size_t)where);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional: falls back to the interpreter */
    t->regex[t->n_regex++] = re;
    return LQ_OK;
}

lq_status tok_set_pre(lq_tokenizer *t, const char *pre, lq_error *err) {
    if (!pre || !*pre) pre = "default";
    for (size_t i = 0; i < sizeof k_pre_sets / sizeof k_pre_sets[0]; i++) {
        const pre_set *ps = &k_pre_sets[i];
        if (!name_in_list(pre, ps->names)) continue;
        snprintf(t->pre, sizeof t->pre, "%s", pre);
        for (int j = 0; j < 6 && ps->regex[j]; j++) {
            lq_status st = tok_add_regex(t, ps->regex[j], err);
            if (st) return st;
        }
        t->ignore_merges = ps->ignore_merges;
        return LQ_OK;
    }
    return lq_fail(err, LQ_ERR_UNSUPPORTED, "%s: unsupported pre-tokenizer '%s'", t->source, pre);
}

/* ---------------------------------------------------------------------------------------------
 * Text → pieces
 * ------------------------------------------------------------------------------------------- */

typedef struct span {
    size_t off, len;
} span;

typedef struct span_list {
    span *v;
    size_t n, cap;
} span_list;

static bool span_push(span_list *l, size_t off, size_t len) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        span *p = realloc(l->v, cap * sizeof *p);
        if (!p) return false;
        l->v = p;
        l->cap = cap;
    }
    l->v[l->n].off = off;
    l->v[l->n].len = len;
    l->n++;
    return true;
}

/* Decodes like llama.cpp (an invalid byte becomes U+FFFD and decoding resumes at the next
 * byte) and re-encodes, so PCRE2 always sees valid UTF-8. Surrogates and code points beyond
 * U+10FFFF also become U+FFFD. */
static bool sanitize_utf8(const char *text, size_t len, tok_buf *out) {
    out->len = 0;
    if (!tok_buf_reserve(out, len * 3 + 1)) return false;
    const uint8_t *s = (const uint8_t *)text;
    for (size_t i = 0; i < len;) {
        uint32_t c = s[i];
        size_t n = 0;
        if (c < 0x80) n = 1;
        else if (!(c & 0x40)) n = 0;
        else if (!(c & 0x20)) n = 2;
        else if (!(c & 0x10)) n = 3;
        else if (!(c & 0x08)) n = 4;
        bool ok = n > 0 && i + n <= len;
        for (size_t k = 1; ok && k < n; k++) ok = (s[i + k] & 0xC0) == 0x80;
        uint32_t cpt = 0xFFFD;
        if (ok) {
            static const uint32_t lead_mask[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
            cpt = c & lead_mask[n];
            for (size_t k = 1; k < n; k++) cpt = (cpt << 6) | (s[i + k] & 0x3F);
            if ((cpt >= 0xD800 && cpt <= 0xDFFF) || cpt > 0x10FFFF) cpt = 0xFFFD;
            i += n;
        } else {
            i += 1;
        }
        out->len += tok_utf8_encode(cpt, out->data + out->len);
    }
    return true;
}

static lq_status split_with_regex(const lq_tokenizer *t, tok_work *w, pcre2_code *re,
                                  const char *text, const span_list *in, span_list *out,
                                  lq_error *err) {
    out->n = 0;
    for (size_t k = 0; k < in->n; k++) {
        const char *subject = text + in->v[k].off;
        size_t len = in->v[k].len, pos = 0, done = 0;
        while (pos < len) {
            int rc = pcre2_match(re, (PCRE2_SPTR)subject, len, pos, PCRE2_NO_UTF_CHECK, w->md,
                                 NULL);
            if (rc == PCRE2_ERROR_NOMATCH) break;
            if (rc < 0)
                return lq_fail(err, LQ_ERR_INVALID, "%s: pre-tokenizer regex failed (%d)",
                               t->source, rc);
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(w->md);
            size_t ms = ov[0], me = ov[1];
            if (me <= ms) { /* empty match: produces no piece; step over one character */
                pos = ms + 1;
                while (pos < len && ((uint8_t)subject[pos] & 0xC0) == 0x80) pos++;
                continue;
            }
            if (ms > done && !span_push(out, in->v[k].off + done, ms - done)) goto nomem;
            if (!span_push(out, in->v[k].off + ms, me - ms)) goto nomem;
            done = pos = me;
        }
        if (done < len && !span_push(out, in->v[k].off + done, len - done)) goto nomem;
    }
    return LQ_OK;
nomem:
    return lq_fail(err, LQ_ERR_NOMEM, "%s: out of memory", t->source);
}

/* Merges one byte-encoded word and appends its tokens. */
static lq_status bpe_word(const lq_tokenizer *t, tok_work *w, const char *word, size_t len,
                          tok_out *out, lq_error *err) {
    if (t->ignore_merges) {
        int32_t id = tok_map_get(&t->token_map, word, len);
        if (id >= 0) return tok_out_push(out, id) ? LQ_OK : lq_fail(err, LQ_ERR_NOMEM, "oom");
    }
    lq_status st = tok_merge(t, w, word, len, err);
    if (st) return st;
    for (int64_t i = w->n_sym > 0 ? 0 : -1; i >= 0; i = w->sym[i].next) {
        const tok_sym *s = &w->sym[i];
        int32_t id = s->id;
        if (id >= 0) {
            if (!tok_out_push(out, id)) goto nomem;
            continue;
        }
        /* As llama.cpp: each byte of the symbol's text that is a token by itself; others are
         * dropped (only reachable with a vocabulary lacking base characters). */
        for (uint32_t j = 0; j < s->len; j++) {
            int32_t b = tok_map_get(&t->token_map, word + s->off + j, 1);
            if (b >= 0 && !tok_out_push(out, b)) goto nomem;
        }
    }
    return LQ_OK;
nomem:
    return lq_fail(err, LQ_ERR_NOMEM, "%s: out of memory", t->source);
}

lq_status tok_bpe_piece(const lq_tokenizer *t, tok_work *w, const char *text, size_t len,
                        tok_out *out, lq_error *err) {
    tok_buf clean = {0}, word = {0};
    span_list a = {0}, b = {0};
    lq_status st = LQ_OK;
    if (!w->md && !(w->md = pcre2_match_data_create(4, NULL))) goto nomem;
    if (t->prefix_space && (len == 0 || text[0] != ' ')) {
        if (!tok_buf_append(&word, " ", 1) || !tok_buf_append(&word, text, len)) goto nomem;
        if (!sanitize_utf8(word.data, word.len, &clean)) goto nomem;
    } else if (!sanitize_utf8(text, len, &clean)) {
        goto nomem;
    }
    if (!span_push(&a, 0, clean.len)) goto nomem;
    for (int r = 0; r < t->n_regex; r++) {
        st = split_with_regex(t, w, t->regex[r], clean.data, &a, &b, err);
        if (st) goto done;
        span_list tmp = a;
        a = b;
        b = tmp;
    }
    for (size_t k = 0; k < a.n; k++) {
        word.len = 0;
        for (size_t i = 0; i < a.v[k].len; i++) {
            uint8_t c = (uint8_t)clean.data[a.v[k].off + i];
            if (!tok_buf_append(&word, t->byte_enc[c], t->byte_enc_len[c])) goto nomem;
        }
        st = bpe_word(t, w, word.data, word.len, out, err);
        if (st) goto done;
    }
done:
    free(clean.data);
    free(word.data);
    free(a.v);
    free(b.v);
    return st;
nomem:
    st = lq_fail(err, LQ_ERR_NOMEM, "%s: out of memory", t->source);
    goto done;
}
