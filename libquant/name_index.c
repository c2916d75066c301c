/* name_index.c — tensor name indices shared by the safetensors reader and the model view:
 * item indices sorted by name, duplicate detection, binary search. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct name_cmp_ctx {
    lq_name_of_fn name_of;
    const void *ctx;
} name_cmp_ctx;

static int cmp_by_name(const void *a, const void *b, void *arg) {
    const name_cmp_ctx *c = (const name_cmp_ctx *)arg;
    return strcmp(c->name_of(c->ctx, *(const int64_t *)a), c->name_of(c->ctx, *(const int64_t *)b));
}

lq_status lq_name_index_build(int64_t n, lq_name_of_fn name_of, const void *ctx, int64_t **sorted,
                              int64_t dup[2], lq_error *err) {
    dup[0] = dup[1] = -1;
    int64_t *idx = (int64_t *)lq_calloc((size_t)n, sizeof *idx, err, "the tensor name index");
    if (!idx) return LQ_ERR_NOMEM;
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    name_cmp_ctx c = {name_of, ctx};
    qsort_r(idx, (size_t)n, sizeof *idx, cmp_by_name, &c);
    for (int64_t i = 1; i < n && dup[0] < 0; i++) {
        if (!strcmp(name_of(ctx, idx[i - 1]), name_of(ctx, idx[i]))) {
            dup[0] = idx[i - 1];
            dup[1] = idx[i];
        }
    }
    *sorted = idx;
    return LQ_OK;
}

int64_t lq_name_index_find(const int64_t *sorted, int64_t n, lq_name_of_fn name_of, const void *ctx,
                           const char *key) {
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name_of(ctx, sorted[mid]), key);
        if (c == 0) return sorted[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}
