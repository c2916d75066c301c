/* tokenizer.c — lq_tokenize: special tokens are cut out of the text first (llama.cpp's order:
 * longest special token first, every occurrence in every remaining text fragment), then each
 * text fragment goes through the vocabulary's shell (SentencePiece-style or byte-level). */
#include "tok_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

typedef struct fragment {
    int32_t token; /* -1 for text */
    size_t off, len;
} fragment;

typedef struct frag_list {
    fragment *v;
    size_t n, cap;
} frag_list;

static bool frag_push(frag_list *l, int32_t token, size_t off, size_t len) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        fragment *p = realloc(l->v, cap * sizeof *p);
        if (!p) return false;
        l->v = p;
        l->cap = cap;
    }
    l->v[l->n].token = token;
    l->v[l->n].off = off;
    l->v[l->n].len = len;
    l->n++;
    return true;
}

/* Splits the text fragments of in at every occurrence of special token id into out. */
static bool split_at_token(const lq_tokenizer *t, int32_t id, const char *text,
                           const frag_list *in, frag_list *out) {
    size_t tl;
    const char *tt = tok_text(t, id, &tl);
    uint8_t flags = t->flags[id];
    out->n = 0;
    for (size_t k = 0; k < in->n; k++) {
        fragment f = in->v[k];
        if (f.token >= 0) {
            if (!frag_push(out, f.token, 0, 0)) return false;
            continue;
        }
        size_t off = f.off, len = f.len;
        while (len > 0) {
            const char *m = memmem(text + off, len, tt, tl);
            if (!m) break;
            size_t at = (size_t)(m - text), left = at - off;
            if (flags & TOK_FLAG_LSTRIP)
                while (left > 0 && isspace((unsigned char)text[off + left - 1])) left--;
            if (left > 0 && !frag_push(out, -1, off, left)) return false;
            if (!frag_push(out, id, 0, 0)) return false;
            size_t right = at + tl;
            len = off + len - right;
            off = right;
            if (flags & TOK_FLAG_RSTRIP)
                while (len > 0 && isspace((unsigned char)text[off])) off++, len--;
        }
        if (len > 0 && !frag_push(out, -1, off, len)) return false;
    }
    return true;
}

/* Cuts special tokens out of text. Control and unknown tokens only when parse_special;
 * user-defined tokens always (as llama.cpp and Hugging Face do). */
static lq_status partition(const lq_tokenizer *t, const char *text, size_t len,
                           bool parse_special, frag_list *frags, lq_error *err) {
    frag_list other = {0};
    frags->n = 0;
    if (len == 0) return LQ_OK;
    if (!frag_push(frags, -1, 0, len)) goto nomem;
    /* Byte pairs present in the text: most special tokens can be skipped without a search. */
    uint8_t *pairs = calloc(65536 / 8, 1);
    uint8_t bytes[32] = {0};
    if (!pairs) goto nomem;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)text[i];
        bytes[c >> 3] |= (uint8_t)(1u << (c & 7));
        if (i + 1 < len) {
            unsigned p = (unsigned)c << 8 | (uint8_t)text[i + 1];
            pairs[p >> 3] |= (uint8_t)(1u << (p & 7));
        }
    }
    for (int32_t k = 0; k < t->n_special; k++) {
        int32_t id = t->special[k];
        uint8_t ty = t->type[id];
        if (!parse_special && (ty == TOK_TYPE_CONTROL || ty == TOK_TYPE_UNKNOWN)) continue;
        size_t tl;
        const uint8_t *tt = (const uint8_t *)tok_text(t, id, &tl);
        if (tl == 1 && !(bytes[tt[0] >> 3] & (1u << (tt[0] & 7)))) continue;
        if (tl >= 2) {
            unsigned p = (unsigned)tt[0] << 8 | tt[1];
            if (!(pairs[p >> 3] & (1u << (p & 7)))) continue;
        }
        if (!split_at_token(t, id, text, frags, &other)) {
            free(pairs);
            goto nomem;
        }
        frag_list tmp = *frags;
        *frags = other;
        other = tmp;
    }
    free(pairs);
    free(other.v);
    return LQ_OK;
nomem:
    free(other.v);
    return lq_fail(err, LQ_ERR_NOMEM, "%s: out of memory", t->source);
}

lq_status lq_tokenize(const lq_tokenizer *t, const char *text, size_t len, bool add_special,
                      bool parse_special, int32_t **out, int64_t *n_out, lq_error *err) {
    if (!t || !out || !n_out || (!text && len))
        return lq_fail(err, LQ_ERR_INVALID, "lq_tokenize: NULL argument");
    *out = NULL;
    *n_out = 0;
    frag_list frags = {0};
    tok_work w = {0};
    tok_out o = {0};
    lq_status st = partition(t, text, len, parse_special, &frags, err);
    if (st) goto done;
    if (add_special && t->add_bos && !tok_out_push(&o, t->bos)) goto nomem;
    bool prev_special = true; /* the first text fragment gets the space prefix */
    for (size_t k = 0; k < frags.n; k++) {
        const fragment *f = &frags.v[k];
        if (f->token >= 0) {
            if (!tok_out_push(&o, f->token)) goto nomem;
            prev_special = true;
            continue;
        }
        if (t->kind == TOK_KIND_SPM)
            st = tok_spm_piece(t, &w, text + f->off, f->len, t->add_space_prefix && prev_special,
                               &o, err);
        else
            st = tok_bpe_piece(t, &w, text + f->off, f->len, &o, err);
        if (st) goto done;
        prev_special = false;
    }
    if (add_special && t->add_eos && !tok_out_push(&o, t->eos)) goto nomem;
    if (!o.ids && !(o.ids = malloc(sizeof *o.ids))) goto nomem;
    *out = o.ids;
    *n_out = o.n;
    o.ids = NULL;
done:
    free(o.ids);
    free(frags.v);
    tok_work_free(&w);
    return st;
nomem:
    st = lq_fail(err, LQ_ERR_NOMEM, "%s: out of memory", t->source);
    goto done;
}
