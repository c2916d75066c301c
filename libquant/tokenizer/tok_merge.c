/* tok_merge.c — the merge engine shared by the SentencePiece and byte-level shells.
 *
 * The text is split into UTF-8 characters, kept as a doubly linked list of symbols. Every
 * adjacent pair that may merge goes into a binary heap; the best pair is merged (the right
 * symbol is absorbed into the left one) and the two new neighbour pairs are pushed. Pairs made
 * stale by an earlier merge are recognised by their recorded size and skipped when popped.
 * Order: higher priority first, then the leftmost pair — the order llama.cpp's tokenizers use
 * (SentencePiece: score of the merged token; BPE: lower merge rank). */
#include "tok_internal.h"

#include <stdlib.h>
#include <string.h>

void tok_work_free(tok_work *w) {
    free(w->sym);
    free(w->heap);
    free(w->scratch.data);
    free(w->text.data);
    if (w->md) pcre2_match_data_free(w->md);
    memset(w, 0, sizeof *w);
}

static bool pair_better(const tok_pair *a, const tok_pair *b) {
    if (a->priority != b->priority) return a->priority > b->priority;
    return a->left < b->left;
}

static bool heap_append(tok_work *w, const tok_pair *p) {
    if (w->n_heap == w->cap_heap) {
        int64_t cap = w->cap_heap ? w->cap_heap * 2 : 1024;
        tok_pair *h = realloc(w->heap, (size_t)cap * sizeof *h);
        if (!h) return false;
        w->heap = h;
        w->cap_heap = cap;
    }
    w->heap[w->n_heap++] = *p;
    return true;
}

static bool heap_push(tok_work *w, const tok_pair *p) {
    if (!heap_append(w, p)) return false;
    int64_t i = w->n_heap - 1;
    while (i > 0) {
        int64_t parent = (i - 1) / 2;
        if (!pair_better(p, &w->heap[parent])) break;
        w->heap[i] = w->heap[parent];
        i = parent;
    }
    w->heap[i] = *p;
    return true;
}

/* Moves item down from slot i of a heap of n entries. */
static void sift_down(tok_pair *heap, int64_t n, int64_t i, tok_pair item) {
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && pair_better(&heap[c + 1], &heap[c])) c++;
        if (!pair_better(&heap[c], &item)) break;
        heap[i] = heap[c];
        i = c;
    }
    heap[i] = item;
}

static tok_pair heap_pop(tok_work *w) {
    tok_pair top = w->heap[0];
    tok_pair last = w->heap[--w->n_heap];
    if (w->n_heap > 0) sift_down(w->heap, w->n_heap, 0, last);
    return top;
}

/* Floyd's bottom-up construction: the initial pairs in O(n). */
static void heapify(tok_work *w) {
    for (int64_t i = w->n_heap / 2 - 1; i >= 0; i--) sift_down(w->heap, w->n_heap, i, w->heap[i]);
}

/* Order-preserving map of a float score to uint32 (NaN never occurs: scores are checked). */
static uint32_t score_key(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/* Rank and product of the merge of tokens l and r; false if they do not merge. */
static bool id_pair_rank(const lq_tokenizer *t, int32_t l, int32_t r, int32_t *rank,
                         int32_t *product) {
    uint64_t k = ((uint64_t)(uint32_t)l << 32 | (uint32_t)r) + 1, mask = t->pair_cap - 1;
    for (uint64_t i = tok_mix64(k) & mask; t->pair_key[i]; i = (i + 1) & mask)
        if (t->pair_key[i] == k) {
            *rank = t->pair_rank[i];
            *product = t->pair_product[i];
            return true;
        }
    return false;
}

/* Pushes the pair (left, right) when it may merge (appends without ordering when seeding).
 * Returns false only when out of memory. */
static bool try_pair(const lq_tokenizer *t, tok_work *w, const char *text, int32_t left,
                     int32_t right, bool seeding) {
    if (left < 0 || right < 0) return true;
    const tok_sym *l = &w->sym[left], *r = &w->sym[right];
    tok_pair p;
    if (t->use_merges) {
        int32_t rank;
        if (l->id >= 0 && r->id >= 0) {
            /* Both are tokens: the id table holds every merge of two tokens. */
            if (!t->pair_cap || !id_pair_rank(t, l->id, r->id, &rank, &p.product)) return true;
        } else {
            rank = tok_merge_rank(t, text + l->off, l->len, text + r->off, r->len, &w->scratch);
            if (rank < 0) return true;
            p.product = -2;
        }
        p.priority = ~(uint32_t)rank;
    } else {
        /* Adjacent symbols are contiguous in the text: look the merged bytes up directly. */
        int32_t id = tok_map_get(&t->token_map, text + l->off, (size_t)l->len + r->len);
        if (id < 0) return true;
        p.priority = score_key(t->score[id]);
        p.product = id;
    }
    p.left = left;
    p.right = right;
    p.size = l->len + r->len;
    return seeding ? heap_append(w, &p) : heap_push(w, &p);
}

lq_status tok_merge(const lq_tokenizer *t, tok_work *w, const char *text, size_t len,
                    lq_error *err) {
    if (len > UINT32_MAX / 2)
        return lq_fail(err, LQ_ERR_INVALID, "%s: text piece of %zu bytes is too long",
                       t->source, len);
    w->n_sym = 0;
    w->n_heap = 0;
    if (w->cap_sym < (int64_t)len) {
        tok_sym *s = realloc(w->sym, (len ? len : 1) * sizeof *s);
        if (!s) return lq_fail(err, LQ_ERR_NOMEM, "%s: out of memory", t->source);
        w->sym = s;
        w->cap_sym = (int64_t)len;
    }
    for (size_t off = 0; off < len;) {
        size_t n = tok_utf8_len((uint8_t)text[off]);
        if (n > len - off) n = len - off;
        tok_sym *s = &w->sym[w->n_sym];
        s->off = (uint32_t)off;
        s->len = (uint32_t)n;
        s->prev = (int32_t)w->n_sym - 1;
        s->id = n == 1 ? t->single_byte_id[(uint8_t)text[off]]
                       : tok_map_get(&t->token_map, text + off, n);
        off += n;
        s->next = off == len ? -1 : (int32_t)w->n_sym + 1;
        w->n_sym++;
    }
    for (int64_t i = 1; i < w->n_sym; i++)
        if (!try_pair(t, w, text, (int32_t)i - 1, (int32_t)i, true))
            return lq_fail(err, LQ_ERR_NOMEM, "%s: out of memory", t->source);
    heapify(w);
    while (w->n_heap > 0) {
        tok_pair p = heap_pop(w);
        tok_sym *l = &w->sym[p.left], *r = &w->sym[p.right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != p.size) continue;
        l->len += r->len;
        l->id = p.product != -2 ? p.product : tok_map_get(&t->token_map, text + l->off, l->len);
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0) w->sym[r->next].prev = p.left;
        if (!try_pair(t, w, text, l->prev, p.left, false) ||
            !try_pair(t, w, text, p.left, l->next, false))
            return lq_fail(err, LQ_ERR_NOMEM, "%s: out of memory", t->source);
    }
    return LQ_OK;
}
