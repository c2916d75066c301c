/* tok_spm.c — the SentencePiece-style shell (GGUF "llama", tokenizer.json BPE with
 * byte_fallback and a "▁" normalizer).
 *
 * A piece of text gets an optional leading space, every space becomes U+2581 ("▁"), and the
 * merge engine runs over its UTF-8 characters. Symbols that are not tokens after merging are
 * characters outside the vocabulary: they become their bytes' <0xXX> tokens when all of those
 * exist (byte fallback), else <unk> (consecutive ones fused into one when the vocabulary says
 * so, as Hugging Face's BPE does). */
#include "tok_internal.h"

#include <string.h>

static const char k_space_mark[3] = {(char)0xE2, (char)0x96, (char)0x81}; /* U+2581 */

/* Writes the escaped text (optional prefix, spaces → ▁) into w->text. */
static bool escape_spaces(tok_work *w, const char *text, size_t len, bool space_prefix) {
    w->text.len = 0;
    size_t n_space = space_prefix ? 1 : 0;
    for (size_t i = 0; i < len; i++) n_space += text[i] == ' ';
    if (!tok_buf_reserve(&w->text, len + 2 * n_space + 1)) return false;
    char *o = w->text.data;
    size_t k = 0;
    if (space_prefix) {
        memcpy(o, k_space_mark, 3);
        k = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(o + k, k_space_mark, 3);
            k += 3;
        } else {
            o[k++] = text[i];
        }
    }
    w->text.len = k;
    return true;
}

/* Merges s[0..len) and appends its tokens; *last_unk carries <unk> fusing across calls. */
static lq_status spm_segment(const lq_tokenizer *t, tok_work *w, const char *s, size_t len,
                             bool *last_unk, tok_out *out, lq_error *err) {
    lq_status st = tok_merge(t, w, s, len, err);
    if (st) return st;
    for (int64_t i = w->n_sym > 0 ? 0 : -1; i >= 0; i = w->sym[i].next) {
        const tok_sym *sym = &w->sym[i];
        int32_t id = sym->id;
        if (id >= 0) {
            if (!tok_out_push(out, id)) goto nomem;
            *last_unk = false;
            continue;
        }
        bool all_bytes = true;
        for (uint32_t j = 0; j < sym->len; j++)
            if (t->byte_token[(uint8_t)s[sym->off + j]] < 0) all_bytes = false;
        if (all_bytes) {
            for (uint32_t j = 0; j < sym->len; j++)
                if (!tok_out_push(out, t->byte_token[(uint8_t)s[sym->off + j]])) goto nomem;
            *last_unk = false;
            continue;
        }
        if (t->unk < 0)
            return lq_fail(err, LQ_ERR_INVALID,
                           "%s: character 0x%02X... has no token, no byte token and there is no "
                           "unknown token",
                           t->source, (unsigned)(uint8_t)s[sym->off]);
        if (!(t->fuse_unk && *last_unk) && !tok_out_push(out, t->unk)) goto nomem;
        *last_unk = true;
    }
    return LQ_OK;
nomem:
    return lq_fail(err, LQ_ERR_NOMEM, "%s: out of memory", t->source);
}

/* The text is cut between two characters that no token or merge contains side by side:
 * no merge can join them, so merging the parts apart gives the same result with a much
 * smaller heap (the whole 807 KB validation text is otherwise one merge problem). */
lq_status tok_spm_piece(const lq_tokenizer *t, tok_work *w, const char *text, size_t len,
                        bool space_prefix, tok_out *out, lq_error *err) {
    if (!escape_spaces(w, text, len, space_prefix))
        return lq_fail(err, LQ_ERR_NOMEM, "%s: out of memory", t->source);
    const char *s = w->text.data;
    size_t n = w->text.len, start = 0, prev = 0, prev_len = 0;
    bool last_unk = false;
    for (size_t i = 0; i < n;) {
        size_t cl = tok_utf8_len((uint8_t)s[i]);
        if (cl > n - i) cl = n - i;
        if (prev_len && !tok_char_pair_known(t, tok_char_pair_key(s + prev, prev_len, s + i, cl))) {
            lq_status st = spm_segment(t, w, s + start, i - start, &last_unk, out, err);
            if (st) return st;
            start = i;
        }
        prev = i;
        prev_len = cl;
        i += cl;
    }
    return spm_segment(t, w, s + start, n - start, &last_unk, out, err);
}
