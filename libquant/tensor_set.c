/* tensor_set.c — replacement tensors a calibrated pass (GPTQ, AWQ, SmoothQuant) hands to the
 * GGUF writer, keyed by canonical name. A handful to a few hundred entries: a linear scan is
 * enough and keeps insertion order. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lq_tensor_set {
    lq_tensor *items;
    int64_t n, cap;
};

lq_tensor_set *lq_tensor_set_new(void) { return calloc(1, sizeof(lq_tensor_set)); }

void lq_tensor_set_free(lq_tensor_set *s) {
    if (!s) return;
    for (int64_t i = 0; i < s->n; i++) free((void *)s->items[i].data);
    free(s->items);
    free(s);
}

static lq_tensor *find_mut(const lq_tensor_set *s, const char *name) {
    for (int64_t i = 0; i < s->n; i++)
        if (!strcmp(s->items[i].name, name)) return &s->items[i];
    return NULL;
}

/* nbytes must be what the type and shape imply, so the writer can trust it. */
static lq_status check_put(const char *name, lq_type type, const int64_t ne[LQ_MAX_DIMS],
                           size_t nbytes, lq_error *err) {
    if (!name || strlen(name) >= LQ_MAX_NAME)
        return lq_fail(err, LQ_ERR_INVALID, "tensor set: name missing or longer than %d bytes",
                       LQ_MAX_NAME - 1);
    const lq_type_traits *tr = lq_type_get(type);
    if (!tr || tr->activation_only)
        return lq_fail(err, LQ_ERR_INVALID, "tensor set: %s: type %d cannot be stored", name, (int)type);
    uint64_t rows = 1;
    for (int d = 1; d < LQ_MAX_DIMS; d++)
        if (ne[d] < 1 || !lq_mul_u64(rows, (uint64_t)ne[d], &rows))
            return lq_fail(err, LQ_ERR_INVALID, "tensor set: %s: bad dimension ne[%d] = %lld", name, d,
                           (long long)ne[d]);
    size_t row = ne[0] > 0 ? lq_row_size(type, ne[0]) : 0;
    uint64_t want;
    if (!row || !lq_mul_u64(rows, row, &want) || want != nbytes)
        return lq_fail(err, LQ_ERR_INVALID,
                       "tensor set: %s: %zu bytes do not match %s with rows of %lld elements", name,
                       nbytes, tr->name, (long long)ne[0]);
    return LQ_OK;
}

lq_status lq_tensor_set_put(lq_tensor_set *s, const char *name, lq_type type,
                            const int64_t ne[LQ_MAX_DIMS], void *data, size_t nbytes,
                            lq_error *err) {
    if (!s || !data) return lq_fail(err, LQ_ERR_INVALID, "tensor set: NULL argument");
    lq_status st = check_put(name, type, ne, nbytes, err);
    if (st != LQ_OK) return st;
    lq_tensor *t = find_mut(s, name);
    if (t) {
        free((void *)t->data);
    } else {
        if (s->n == s->cap) {
            int64_t cap = s->cap ? s->cap * 2 : 16;
            lq_tensor *items = realloc(s->items, (size_t)cap * sizeof *items);
            if (!items) return lq_fail(err, LQ_ERR_NOMEM, "tensor set: out of memory adding %s", name);
            s->items = items;
            s->cap = cap;
        }
        t = &s->items[s->n++];
    }
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->source_name = t->name;
    t->file = "(tensor set)";
    t->type = type;
    t->n_dims = 1;
    for (int d = 0; d < LQ_MAX_DIMS; d++) {
        t->ne[d] = ne[d];
        if (ne[d] > 1) t->n_dims = (uint32_t)d + 1;
    }
    t->nbytes = nbytes;
    t->data = data;
    t->layer = -1;
    if (!strncmp(name, "blk.", 4)) t->layer = atoi(name + 4);
    return LQ_OK;
}

const lq_tensor *lq_tensor_set_find(const lq_tensor_set *s, const char *name) {
    return s && name ? find_mut(s, name) : NULL;
}

int64_t lq_tensor_set_count(const lq_tensor_set *s) { return s ? s->n : 0; }
