/* tok_internal.h — the tokenizer's shared state and helpers (not installed).
 *
 * One lq_tokenizer serves every source. A vocabulary (token texts, scores, types) and an
 * optional merge table are loaded from GGUF keys or tokenizer.json, then one of two "shells"
 * runs on each piece of text between special tokens:
 *   - SPM shell (tokenizer.ggml.model "llama", tokenizer.json BPE with byte_fallback): spaces
 *     become U+2581, an optional U+2581 prefix, merges over UTF-8 characters, byte fallback;
 *   - byte-level shell (tokenizer.ggml.model "gpt2", tokenizer.json ByteLevel): pre-tokenizer
 *     regexes (PCRE2), the GPT-2 byte-to-unicode mapping, merges per word.
 * Both shells share one merge engine (tok_merge.c): a linked list of symbols and a binary heap
 * of candidate pairs. A pair's priority comes either from the score of the merged token
 * (SentencePiece, GGUF "llama") or from the rank of the pair in the merge list (BPE). */
#ifndef LQ_TOK_INTERNAL_H
#define LQ_TOK_INTERNAL_H

#include "internal.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* GGUF tokenizer.ggml.token_type values (llama.cpp's llama_token_type). */
enum {
    TOK_TYPE_UNDEFINED = 0,
    TOK_TYPE_NORMAL = 1,
    TOK_TYPE_UNKNOWN = 2,
    TOK_TYPE_CONTROL = 3,
    TOK_TYPE_USER_DEFINED = 4,
    TOK_TYPE_UNUSED = 5,
    TOK_TYPE_BYTE = 6,
};

/* Per-token flags besides the type. */
enum { TOK_FLAG_LSTRIP = 1, TOK_FLAG_RSTRIP = 2 };

typedef enum tok_kind { TOK_KIND_SPM = 0, TOK_KIND_BPE = 1 } tok_kind;

/* Byte string → int32 map, open addressing; keys point into memory owned elsewhere. */
typedef struct tok_map {
    const char **key;
    uint32_t *key_len;
    int32_t *value;
    uint64_t *hash;
    uint64_t cap; /* power of two, 0 when empty */
    uint64_t n;
} tok_map;

uint64_t tok_hash(const void *data, size_t len);
lq_status tok_map_init(tok_map *m, uint64_t expected, lq_error *err);
void tok_map_free(tok_map *m);
/* Inserts or replaces (the last insertion of a key wins, as in llama.cpp's token_to_id). */
void tok_map_put(tok_map *m, const char *key, uint32_t len, int32_t value);
/* -1 when absent. */
int32_t tok_map_get(const tok_map *m, const char *key, size_t len);

/* Growable byte buffer (arenas, output assembly). */
typedef struct tok_buf {
    char *data;
    size_t len, cap;
} tok_buf;
bool tok_buf_reserve(tok_buf *b, size_t extra);
bool tok_buf_append(tok_buf *b, const void *data, size_t n);

#define TOK_MAX_REGEX 8

struct lq_tokenizer {
    tok_kind kind;
    char source[256]; /* file name for messages */

    int32_t n_vocab;
    char *text;        /* all token texts, back to back */
    uint64_t *text_off; /* n_vocab + 1 offsets into text */
    float *score;
    uint8_t *type;
    uint8_t *flags;
    tok_map token_map; /* text → id */

    /* Merge table: key = u32 length of the left part, left bytes, right bytes → rank. */
    bool use_merges;  /* pair priority from merge rank instead of token score */
    int32_t n_merges;
    char *merge_keys;
    uint64_t *merge_key_off; /* n_merges + 1 */
    tok_map merge_map;
    /* (left id, right id) → rank and product id, for merges whose parts are tokens. */
    uint64_t *pair_key; /* (left << 32 | right) + 1, 0 = empty */
    int32_t *pair_rank, *pair_product;
    uint64_t pair_cap;
    char *merge_text;       /* "left right" strings for export */
    uint64_t *merge_text_off; /* n_merges + 1 */

    int32_t bos, eos, unk, pad; /* -1 when absent */
    bool add_bos, add_eos, add_space_prefix;
    bool ignore_merges;  /* byte-level: a whole word that is a token is taken as is (llama3) */
    bool fuse_unk;       /* consecutive unknown characters give one <unk> (tokenizer.json) */
    bool byte_fallback;  /* unknown characters become <0xXX> tokens when possible */

    /* Pre-tokenizer (byte-level shell). */
    char pre[64];
    int n_regex;
    pcre2_code *regex[TOK_MAX_REGEX];
    bool prefix_space;   /* ByteLevel add_prefix_space from tokenizer.json */
    char byte_enc[256][2]; /* UTF-8 of each byte's GPT-2 character (1 or 2 bytes) */
    uint8_t byte_enc_len[256];

    /* Pairs of adjacent characters found inside some token or merge product: text can be cut
     * between two characters whose pair is not here, since no merge can ever join them. */
    uint64_t *char_pairs; /* open addressing, 0 = empty */
    uint64_t char_pairs_cap;

    int32_t single_byte_id[256]; /* id of each 1-byte string, -1 if none */
    int32_t byte_token[256]; /* SPM: id of "<0xXX>" (or of the 1-byte string), -1 if none */

    /* Tokens matched before tokenization (control, user-defined, unknown), longest first. */
    int32_t *special;
    int32_t n_special;

    /* Output text of every token (lq_token_piece). */
    char *piece;
    uint64_t *piece_off;
};

static inline const char *tok_text(const lq_tokenizer *t, int32_t id, size_t *len) {
    *len = (size_t)(t->text_off[id + 1] - t->text_off[id]);
    return t->text + t->text_off[id];
}

/* Allocates an empty tokenizer named after its source. */
lq_tokenizer *tok_new(const char *source, lq_error *err);

/* Sets the vocabulary from n token strings (copied); allocates score/type/flags (zeroed,
 * type NORMAL) and fills the token map. */
lq_status tok_set_vocab(lq_tokenizer *t, const lq_str *tokens, int32_t n, lq_error *err);
/* Sets the merge table from n "left right" strings or from separate (left, right) pairs
 * (right == NULL: each left[i] is "left right", split at the first space after byte 0). */
lq_status tok_set_merges(lq_tokenizer *t, const lq_str *pairs_or_left, const lq_str *right,
                         int32_t n, lq_error *err);
/* Rank of the pair (left, right), -1 if it is not a merge. */
int32_t tok_merge_rank(const lq_tokenizer *t, const char *left, size_t left_len,
                       const char *right, size_t right_len, tok_buf *scratch);

/* Completes a loaded tokenizer: byte tokens, special-token list, pieces, pre-tokenizer regexes
 * (byte-level kind). Called by both loaders after ids, types and flags are set. */
lq_status tok_finish(lq_tokenizer *t, lq_error *err);

/* Pre-tokenizer regexes for a tokenizer.ggml.pre name; LQ_ERR_UNSUPPORTED if unknown. */
lq_status tok_set_pre(lq_tokenizer *t, const char *pre, lq_error *err);
/* Adds one regex (PCRE2 syntax with \s meaning llama.cpp's whitespace set). */
lq_status tok_add_regex(lq_tokenizer *t, const char *pattern, lq_error *err);

static inline uint64_t tok_mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDull;
    x ^= x >> 33;
    return x;
}

/* Builds char_pairs from the token texts and merge products. */
lq_status tok_build_char_pairs(lq_tokenizer *t, lq_error *err);
/* Key of the two characters a[0..la) and b[0..lb) (each 1..4 bytes). */
static inline uint64_t tok_char_pair_key(const char *a, size_t la, const char *b, size_t lb) {
    uint32_t x = 0, y = 0;
    for (size_t i = 0; i < la; i++) x = x << 8 | (uint8_t)a[i];
    for (size_t i = 0; i < lb; i++) y = y << 8 | (uint8_t)b[i];
    /* lengths keep "\x00" distinct from nothing; the high bit keeps keys non-zero */
    return (uint64_t)(x | (uint32_t)la << 29) << 32 | (y | (uint32_t)lb << 29) | 1ull << 63;
}
bool tok_char_pair_known(const lq_tokenizer *t, uint64_t key);

/* Output accumulator for lq_tokenize. */
typedef struct tok_out {
    int32_t *ids;
    int64_t n, cap;
} tok_out;
bool tok_out_push(tok_out *o, int32_t id);

/* Merge engine (tok_merge.c). */
typedef struct tok_sym {
    int32_t prev, next;
    uint32_t off, len; /* bytes of the text */
    int32_t id;        /* token with this text, -1 if none */
} tok_sym;

typedef struct tok_pair {
    uint32_t priority; /* higher first: an order-preserving image of a score, or ~rank */
    int32_t left, right;
    uint32_t size;   /* left.len + right.len when pushed: a changed size means a stale pair */
    int32_t product; /* id of the merged text, -1 if none, -2 if not looked up */
} tok_pair;

/* Builds the id-pair merge table (called by tok_finish). */
lq_status tok_build_pair_table(lq_tokenizer *t, lq_error *err);

typedef struct tok_work {
    tok_sym *sym;
    int64_t n_sym, cap_sym;
    tok_pair *heap;
    int64_t n_heap, cap_heap;
    tok_buf scratch;
    tok_buf text;  /* escaped / byte-encoded text being tokenized */
    pcre2_match_data *md;
} tok_work;

void tok_work_free(tok_work *w);
/* Splits text[0..len) of w->text into UTF-8 characters (a lead byte's length, clipped at the
 * end) and merges pairs until none applies. Symbols left are chained from index 0. */
lq_status tok_merge(const lq_tokenizer *t, tok_work *w, const char *text, size_t len,
                    lq_error *err);

/* Shells: tokenize one piece of text (no special tokens inside). */
lq_status tok_spm_piece(const lq_tokenizer *t, tok_work *w, const char *text, size_t len,
                        bool space_prefix, tok_out *out, lq_error *err);
lq_status tok_bpe_piece(const lq_tokenizer *t, tok_work *w, const char *text, size_t len,
                        tok_out *out, lq_error *err);

/* GPT-2 byte ↔ unicode mapping. */
uint32_t tok_byte_to_cpt(uint8_t b);
int tok_cpt_to_byte(uint32_t cpt); /* -1 if cpt is not in the mapping */
/* UTF-8 helpers: length of a character from its lead byte (1 for continuation bytes). */
static inline size_t tok_utf8_len(uint8_t c) {
    static const uint8_t lut[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lut[c >> 4];
}
size_t tok_utf8_encode(uint32_t cpt, char out[4]);

#endif
