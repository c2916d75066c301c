/* tok_vocab.c — vocabulary storage shared by every tokenizer source: the token hash map, the
 * merge table, byte tokens, the special-token list and the output pieces. */
#include "tok_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------
 * Hash map
 * ------------------------------------------------------------------------------------------- */

uint64_t tok_hash(const void *data, size_t len) {
    /* 64-bit multiply-xorshift over 8-byte words: fast for the short keys we look up. */
    const uint8_t *p = (const uint8_t *)data;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (len * 0xC2B2AE3D27D4EB4Full);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ (w * 0xFF51AFD7ED558CCDull)) * 0xC4CEB9FE1A85EC53ull;
        h ^= h >> 29;
        p += 8;
        len -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, len);
    h = (h ^ (w * 0xFF51AFD7ED558CCDull)) * 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 32;
    return h;
}

lq_status tok_map_init(tok_map *m, uint64_t expected, lq_error *err) {
    memset(m, 0, sizeof *m);
    uint64_t cap = 16;
    while (cap < expected * 2 + 16) cap <<= 1;
    m->key = calloc(cap, sizeof *m->key);
    m->key_len = calloc(cap, sizeof *m->key_len);
    m->value = calloc(cap, sizeof *m->value);
    m->hash = calloc(cap, sizeof *m->hash);
    if (!m->key || !m->key_len || !m->value || !m->hash) {
        tok_map_free(m);
        return lq_fail(err, LQ_ERR_NOMEM, "tokenizer: out of memory for a map of %llu entries",
                       (unsigned long long)expected);
    }
    m->cap = cap;
    return LQ_OK;
}

void tok_map_free(tok_map *m) {
    free(m->key);
    free(m->key_len);
    free(m->value);
    free(m->hash);
    memset(m, 0, sizeof *m);
}

/* Capacity is fixed at init (twice the expected entries), so the table never fills. */
void tok_map_put(tok_map *m, const char *key, uint32_t len, int32_t value) {
    uint64_t h = tok_hash(key, len), mask = m->cap - 1;
    for (uint64_t i = h & mask;; i = (i + 1) & mask) {
        if (!m->key[i]) {
            m->key[i] = key;
            m->key_len[i] = len;
            m->value[i] = value;
            m->hash[i] = h;
            m->n++;
            return;
        }
        if (m->hash[i] == h && m->key_len[i] == len && memcmp(m->key[i], key, len) == 0) {
            m->value[i] = value;
            return;
        }
    }
}

int32_t tok_map_get(const tok_map *m, const char *key, size_t len) {
    if (!m->cap) return -1;
    uint64_t h = tok_hash(key, len), mask = m->cap - 1;
    for (uint64_t i = h & mask; m->key[i]; i = (i + 1) & mask)
        if (m->hash[i] == h && m->key_len[i] == len && memcmp(m->key[i], key, len) == 0)
            return m->value[i];
    return -1;
}

/* ---------------------------------------------------------------------------------------------
 * Buffers
 * ------------------------------------------------------------------------------------------- */

bool tok_buf_reserve(tok_buf *b, size_t extra) {
    if (b->len + extra <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra) cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) return false;
    b->data = p;
    b->cap = cap;
    return true;
}

bool tok_buf_append(tok_buf *b, const void *data, size_t n) {
    if (!tok_buf_reserve(b, n)) return false;
    if (n) memcpy(b->data + b->len, data, n);
    b->len += n;
    return true;
}

bool tok_out_push(tok_out *o, int32_t id) {
    if (o->n == o->cap) {
        int64_t cap = o->cap ? o->cap * 2 : 256;
        int32_t *p = realloc(o->ids, (size_t)cap * sizeof *p);
        if (!p) return false;
        o->ids = p;
        o->cap = cap;
    }
    o->ids[o->n++] = id;
    return true;
}

size_t tok_utf8_encode(uint32_t cpt, char out[4]) {
    if (cpt < 0x80) {
        out[0] = (char)cpt;
        return 1;
    }
    if (cpt < 0x800) {
        out[0] = (char)(0xC0 | (cpt >> 6));
        out[1] = (char)(0x80 | (cpt & 0x3F));
        return 2;
    }
    if (cpt < 0x10000) {
        out[0] = (char)(0xE0 | (cpt >> 12));
        out[1] = (char)(0x80 | ((cpt >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cpt & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cpt >> 18));
    out[1] = (char)(0x80 | ((cpt >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cpt >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cpt & 0x3F));
    return 4;
}

/* ---------------------------------------------------------------------------------------------
 * GPT-2 byte-to-unicode mapping: printable Latin-1 bytes map to themselves, the other 68 bytes
 * to U+0100.. in byte order.
 * ------------------------------------------------------------------------------------------- */

static bool byte_is_printable(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

uint32_t tok_byte_to_cpt(uint8_t b) {
    if (byte_is_printable(b)) return b;
    uint32_t n = 0;
    for (unsigned i = 0; i < b; i++)
        if (!byte_is_printable(i)) n++;
    return 256 + n;
}

int tok_cpt_to_byte(uint32_t cpt) {
    if (cpt < 256) return byte_is_printable(cpt) ? (int)cpt : -1;
    uint32_t n = 256;
    for (unsigned b = 0; b < 256; b++)
        if (!byte_is_printable(b) && n++ == cpt) return (int)b;
    return -1;
}

/* ---------------------------------------------------------------------------------------------
 * Construction
 * ------------------------------------------------------------------------------------------- */

lq_tokenizer *tok_new(const char *source, lq_error *err) {
    lq_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        lq_fail(err, LQ_ERR_NOMEM, "%s: out of memory for a tokenizer", source);
        return NULL;
    }
    snprintf(t->source, sizeof t->source, "%s", source);
    t->bos = t->eos = t->unk = t->pad = -1;
    for (int i = 0; i < 256; i++) t->byte_token[i] = -1;
    snprintf(t->pre, sizeof t->pre, "default");
    return t;
}

lq_status tok_set_vocab(lq_tokenizer *t, const lq_str *tokens, int32_t n, lq_error *err) {
    uint64_t total = 0;
    for (int32_t i = 0; i < n; i++)
        if (!lq_add_u64(total, tokens[i].len, &total) || tokens[i].len > UINT32_MAX)
            return lq_fail(err, LQ_ERR_FORMAT, "%s: token %d: text too long", t->source, i);
    t->text = malloc(total ? total : 1);
    t->text_off = malloc(((size_t)n + 1) * sizeof *t->text_off);
    t->score = calloc((size_t)n + 1, sizeof *t->score);
    t->type = malloc((size_t)n + 1);
    t->flags = calloc((size_t)n + 1, 1);
    if (!t->text || !t->text_off || !t->score || !t->type || !t->flags)
        return lq_fail(err, LQ_ERR_NOMEM, "%s: out of memory for %d tokens", t->source, n);
    uint64_t off = 0;
    for (int32_t i = 0; i < n; i++) {
        t->text_off[i] = off;
        if (tokens[i].len) memcpy(t->text + off, tokens[i].ptr, tokens[i].len);
        off += tokens[i].len;
        t->type[i] = TOK_TYPE_NORMAL;
    }
    t->text_off[n] = off;
    t->n_vocab = n;
    lq_status st = tok_map_init(&t->token_map, (uint64_t)n, err);
    if (st) return st;
    for (int32_t i = 0; i < n; i++) {
        size_t len;
        const char *s = tok_text(t, i, &len);
        tok_map_put(&t->token_map, s, (uint32_t)len, i);
    }
    return LQ_OK;
}

/* Merge keys hold the left length so that "a b" + "c" and "a" + "b c" stay distinct. */
static size_t merge_key(tok_buf *b, const char *l, size_t ll, const char *r, size_t rl) {
    b->len = 0;
    uint32_t n = (uint32_t)ll;
    if (!tok_buf_reserve(b, 4 + ll + rl)) return 0;
    tok_buf_append(b, &n, 4);
    tok_buf_append(b, l, ll);
    tok_buf_append(b, r, rl);
    return b->len;
}

int32_t tok_merge_rank(const lq_tokenizer *t, const char *left, size_t left_len,
                       const char *right, size_t right_len, tok_buf *scratch) {
    size_t n = merge_key(scratch, left, left_len, right, right_len);
    if (!n) return -1;
    return tok_map_get(&t->merge_map, scratch->data, n);
}

lq_status tok_set_merges(lq_tokenizer *t, const lq_str *pairs_or_left, const lq_str *right,
                         int32_t n, lq_error *err) {
    uint64_t total = 0, total_text = 0;
    for (int32_t i = 0; i < n; i++) {
        uint64_t len = pairs_or_left[i].len + (right ? right[i].len : 0);
        if (len > UINT32_MAX / 2)
            return lq_fail(err, LQ_ERR_FORMAT, "%s: merge %d: too long", t->source, i);
        total += len + 4;
        total_text += len + 1;
    }
    t->merge_keys = malloc(total ? total : 1);
    t->merge_text = malloc(total_text ? total_text : 1);
    t->merge_text_off = malloc(((size_t)n + 1) * sizeof *t->merge_text_off);
    t->merge_key_off = malloc(((size_t)n + 1) * sizeof *t->merge_key_off);
    if (!t->merge_keys || !t->merge_text || !t->merge_text_off || !t->merge_key_off)
        return lq_fail(err, LQ_ERR_NOMEM, "%s: out of memory for %d merges", t->source, n);
    lq_status st = tok_map_init(&t->merge_map, (uint64_t)n, err);
    if (st) return st;
    uint64_t off = 0, toff = 0;
    for (int32_t i = 0; i < n; i++) {
        const char *l = pairs_or_left[i].ptr, *r;
        size_t ll, rl;
        if (right) {
            ll = pairs_or_left[i].len;
            r = right[i].ptr;
            rl = right[i].len;
        } else {
            /* "left right": split at the first space after the first byte (llama.cpp); a
             * string without one is the pair ("", "") as there. */
            const char *s = pairs_or_left[i].ptr;
            size_t len = pairs_or_left[i].len, pos = 1;
            while (pos < len && s[pos] != ' ') pos++;
            if (pos < len) {
                ll = pos;
                r = s + pos + 1;
                rl = len - pos - 1;
            } else {
                ll = rl = 0;
                r = s;
            }
        }
        char *key = t->merge_keys + off;
        t->merge_key_off[i] = off;
        uint32_t l32 = (uint32_t)ll;
        memcpy(key, &l32, 4);
        if (ll) memcpy(key + 4, l, ll);
        if (rl) memcpy(key + 4 + ll, r, rl);
        off += 4 + ll + rl;
        /* The first occurrence of a pair keeps its rank (llama.cpp's map emplace). */
        if (tok_map_get(&t->merge_map, key, 4 + ll + rl) < 0)
            tok_map_put(&t->merge_map, key, (uint32_t)(4 + ll + rl), i);
        t->merge_text_off[i] = toff;
        if (ll) memcpy(t->merge_text + toff, l, ll);
        t->merge_text[toff + ll] = ' ';
        if (rl) memcpy(t->merge_text + toff + ll + 1, r, rl);
        toff += ll + 1 + rl;
    }
    t->merge_text_off[n] = toff;
    t->merge_key_off[n] = off;
    t->n_merges = n;
    return LQ_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Finishing: byte tokens, special tokens, pieces
 * ------------------------------------------------------------------------------------------- */

static void find_byte_tokens(lq_tokenizer *t) {
    static const char hex[] = "0123456789ABCDEF";
    for (int b = 0; b < 256; b++) {
        char name[7] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>', 0};
        int32_t id = tok_map_get(&t->token_map, name, 6);
        if (id < 0) {
            char one = (char)b;
            id = tok_map_get(&t->token_map, &one, 1);
        }
        t->byte_token[b] = id;
    }
}

static int cmp_special(const void *a, const void *b, void *ctx) {
    const lq_tokenizer *sort_tok = (const lq_tokenizer *)ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    uint64_t lx = sort_tok->text_off[x + 1] - sort_tok->text_off[x];
    uint64_t ly = sort_tok->text_off[y + 1] - sort_tok->text_off[y];
    if (lx != ly) return lx > ly ? -1 : 1;
    return (x > y) - (x < y);
}

static lq_status collect_special(lq_tokenizer *t, lq_error *err) {
    int32_t n = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        uint8_t ty = t->type[i];
        if ((ty == TOK_TYPE_CONTROL || ty == TOK_TYPE_USER_DEFINED || ty == TOK_TYPE_UNKNOWN) &&
            t->text_off[i + 1] > t->text_off[i])
            n++;
    }
    t->special = malloc(((size_t)n + 1) * sizeof *t->special);
    if (!t->special) return lq_fail(err, LQ_ERR_NOMEM, "%s: out of memory", t->source);
    n = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        uint8_t ty = t->type[i];
        if ((ty == TOK_TYPE_CONTROL || ty == TOK_TYPE_USER_DEFINED || ty == TOK_TYPE_UNKNOWN) &&
            t->text_off[i + 1] > t->text_off[i])
            t->special[n++] = i;
    }
    t->n_special = n;
    /* Longest first; equal lengths by id, so the order never depends on the sort. */
    qsort_r(t->special, (size_t)n, sizeof *t->special, cmp_special, t);
    return LQ_OK;
}

/* The byte of a "<0xXX>" piece (len bytes, not NUL-terminated: no sscanf), or -1. */
static int byte_piece_value(const char *s, size_t len) {
    if (len != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Appends the output bytes of token id: what the token stands for in text. */
static bool append_piece(const lq_tokenizer *t, int32_t id, tok_buf *b) {
    size_t len;
    const char *s = tok_text(t, id, &len);
    uint8_t ty = t->type[id];
    if (ty == TOK_TYPE_CONTROL || ty == TOK_TYPE_UNKNOWN || ty == TOK_TYPE_USER_DEFINED)
        return tok_buf_append(b, s, len);
    if (t->kind == TOK_KIND_SPM) {
        if (ty == TOK_TYPE_BYTE) {
            int v = byte_piece_value(s, len);
            if (v >= 0) {
                char c = (char)v;
                return tok_buf_append(b, &c, 1);
            }
            return tok_buf_append(b, s, len);
        }
        if (ty != TOK_TYPE_NORMAL) return true;
        for (size_t i = 0; i < len; i++) { /* U+2581 → space */
            if (i + 2 < len && (uint8_t)s[i] == 0xE2 && (uint8_t)s[i + 1] == 0x96 &&
                (uint8_t)s[i + 2] == 0x81) {
                if (!tok_buf_append(b, " ", 1)) return false;
                i += 2;
            } else if (!tok_buf_append(b, s + i, 1)) {
                return false;
            }
        }
        return true;
    }
    if (ty != TOK_TYPE_NORMAL) return true;
    /* Byte-level: each character stands for one byte; others are kept as they are. */
    for (size_t i = 0; i < len;) {
        size_t cl = tok_utf8_len((uint8_t)s[i]);
        if (cl > len - i) cl = len - i;
        uint32_t cpt = (uint8_t)s[i];
        if (cl == 2) cpt = ((cpt & 0x1F) << 6) | ((uint8_t)s[i + 1] & 0x3F);
        int byte = (cl <= 2) ? tok_cpt_to_byte(cpt) : -1;
        if (byte >= 0) {
            char c = (char)byte;
            if (!tok_buf_append(b, &c, 1)) return false;
        } else if (!tok_buf_append(b, s + i, cl)) {
            return false;
        }
        i += cl;
    }
    return true;
}

static lq_status build_pieces(lq_tokenizer *t, lq_error *err) {
    tok_buf b = {0};
    t->piece_off = malloc(((size_t)t->n_vocab + 1) * sizeof *t->piece_off);
    if (!t->piece_off) return lq_fail(err, LQ_ERR_NOMEM, "%s: out of memory", t->source);
    for (int32_t i = 0; i < t->n_vocab; i++) {
        t->piece_off[i] = b.len;
        if (!append_piece(t, i, &b)) {
            free(b.data);
            return lq_fail(err, LQ_ERR_NOMEM, "%s: out of memory", t->source);
        }
    }
    t->piece_off[t->n_vocab] = b.len;
    t->piece = b.data ? b.data : malloc(1);
    return t->piece ? LQ_OK : lq_fail(err, LQ_ERR_NOMEM, "%s: out of memory", t->source);
}

lq_status tok_finish(lq_tokenizer *t, lq_error *err) {
    if (t->n_vocab <= 0) return lq_fail(err, LQ_ERR_FORMAT, "%s: empty vocabulary", t->source);
    int32_t *ids[4] = {&t->bos, &t->eos, &t->unk, &t->pad};
    for (int i = 0; i < 4; i++)
        if (*ids[i] >= t->n_vocab) *ids[i] = -1;
    if (t->add_bos && t->bos < 0)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: add_bos_token is true but there is no BOS token",
                       t->source);
    if (t->add_eos && t->eos < 0)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: add_eos_token is true but there is no EOS token",
                       t->source);
    for (int b = 0; b < 256; b++) {
        char one = (char)b;
        t->single_byte_id[b] = tok_map_get(&t->token_map, &one, 1);
    }
    if (t->n_merges) {
        lq_status st = tok_build_pair_table(t, err);
        if (st) return st;
    }
    if (t->kind == TOK_KIND_SPM) {
        find_byte_tokens(t);
        lq_status st = tok_build_char_pairs(t, err);
        if (st) return st;
    }
    for (int b = 0; b < 256; b++) {
        char utf8[4];
        size_t n = tok_utf8_encode(tok_byte_to_cpt((uint8_t)b), utf8);
        memcpy(t->byte_enc[b], utf8, n); /* the mapping stays below U+0800: at most 2 bytes */
        t->byte_enc_len[b] = (uint8_t)n;
    }
    lq_status st = collect_special(t, err);
    if (st) return st;
    return build_pieces(t, err);
}

/* ---------------------------------------------------------------------------------------------
 * Public accessors
 * ------------------------------------------------------------------------------------------- */

void lq_tokenizer_free(lq_tokenizer *t) {
    if (!t) return;
    free(t->text);
    free(t->text_off);
    free(t->score);
    free(t->type);
    free(t->flags);
    tok_map_free(&t->token_map);
    free(t->merge_keys);
    tok_map_free(&t->merge_map);
    free(t->merge_text);
    free(t->merge_text_off);
    free(t->merge_key_off);
    for (int i = 0; i < t->n_regex; i++) pcre2_code_free(t->regex[i]);
    free(t->special);
    free(t->char_pairs);
    free(t->pair_key);
    free(t->pair_rank);
    free(t->pair_product);
    free(t->piece);
    free(t->piece_off);
    free(t);
}

int64_t lq_tokenizer_n_vocab(const lq_tokenizer *t) { return t->n_vocab; }
int32_t lq_tokenizer_bos(const lq_tokenizer *t) { return t->bos; }
int32_t lq_tokenizer_eos(const lq_tokenizer *t) { return t->eos; }
bool lq_tokenizer_add_bos(const lq_tokenizer *t) { return t->add_bos; }

lq_str lq_token_piece(const lq_tokenizer *t, int32_t id) {
    lq_str s = {"", 0};
    if (!t || id < 0 || id >= t->n_vocab) return s;
    s.ptr = t->piece + t->piece_off[id];
    s.len = t->piece_off[id + 1] - t->piece_off[id];
    return s;
}

/* ---------------------------------------------------------------------------------------------
 * Character pairs inside tokens (cut points for long SentencePiece-style texts)
 * ------------------------------------------------------------------------------------------- */

static void char_pairs_add(lq_tokenizer *t, uint64_t key) {
    uint64_t mask = t->char_pairs_cap - 1;
    for (uint64_t i = tok_mix64(key) & mask;; i = (i + 1) & mask) {
        if (t->char_pairs[i] == key) return;
        if (t->char_pairs[i] == 0) {
            t->char_pairs[i] = key;
            return;
        }
    }
}

bool tok_char_pair_known(const lq_tokenizer *t, uint64_t key) {
    if (!t->char_pairs_cap) return true; /* no table: every cut is unsafe */
    uint64_t mask = t->char_pairs_cap - 1;
    for (uint64_t i = tok_mix64(key) & mask; t->char_pairs[i]; i = (i + 1) & mask)
        if (t->char_pairs[i] == key) return true;
    return false;
}

/* Adds the adjacent character pairs of s (characters as the merge engine splits them). */
static void add_pairs_of(lq_tokenizer *t, const char *s, size_t len) {
    size_t prev = 0, prev_len = 0;
    for (size_t i = 0; i < len;) {
        size_t n = tok_utf8_len((uint8_t)s[i]);
        if (n > len - i) n = len - i;
        if (prev_len) char_pairs_add(t, tok_char_pair_key(s + prev, prev_len, s + i, n));
        prev = i;
        prev_len = n;
        i += n;
    }
}

lq_status tok_build_char_pairs(lq_tokenizer *t, lq_error *err) {
    uint64_t bytes = t->text_off[t->n_vocab];
    if (t->n_merges) bytes += t->merge_key_off[t->n_merges];
    uint64_t cap = 64;
    while (cap < 2 * bytes + 64) cap <<= 1; /* pairs ≤ bytes: the table stays half empty */
    t->char_pairs = calloc(cap, sizeof *t->char_pairs);
    if (!t->char_pairs) return lq_fail(err, LQ_ERR_NOMEM, "%s: out of memory", t->source);
    t->char_pairs_cap = cap;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        size_t len;
        const char *s = tok_text(t, i, &len);
        add_pairs_of(t, s, len);
    }
    for (int32_t r = 0; r < t->n_merges; r++) { /* merge products: left + right */
        const char *key = t->merge_keys + t->merge_key_off[r];
        add_pairs_of(t, key + 4, (size_t)(t->merge_key_off[r + 1] - t->merge_key_off[r]) - 4);
    }
    return LQ_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Merges by token ids
 * ------------------------------------------------------------------------------------------- */

lq_status tok_build_pair_table(lq_tokenizer *t, lq_error *err) {
    uint64_t cap = 64;
    while (cap < 2 * (uint64_t)t->n_merges + 64) cap <<= 1;
    t->pair_key = calloc(cap, sizeof *t->pair_key);
    t->pair_rank = malloc(cap * sizeof *t->pair_rank);
    t->pair_product = malloc(cap * sizeof *t->pair_product);
    if (!t->pair_key || !t->pair_rank || !t->pair_product)
        return lq_fail(err, LQ_ERR_NOMEM, "%s: out of memory for the merge table", t->source);
    t->pair_cap = cap;
    for (int32_t r = 0; r < t->n_merges; r++) {
        const char *key = t->merge_keys + t->merge_key_off[r];
        size_t len = (size_t)(t->merge_key_off[r + 1] - t->merge_key_off[r]) - 4;
        uint32_t ll;
        memcpy(&ll, key, 4);
        int32_t l = tok_map_get(&t->token_map, key + 4, ll);
        int32_t rr = tok_map_get(&t->token_map, key + 4 + ll, len - ll);
        if (l < 0 || rr < 0) continue; /* found through the string table instead */
        uint64_t k = ((uint64_t)(uint32_t)l << 32 | (uint32_t)rr) + 1, mask = cap - 1;
        for (uint64_t i = tok_mix64(k) & mask;; i = (i + 1) & mask) {
            if (t->pair_key[i] == k) break; /* the first merge of a pair keeps its rank */
            if (t->pair_key[i] == 0) {
                t->pair_key[i] = k;
                t->pair_rank[i] = r;
                t->pair_product[i] = tok_map_get(&t->token_map, key + 4, len);
                break;
            }
        }
    }
    return LQ_OK;
}
