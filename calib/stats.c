/* stats.c — calibration statistics in memory: lookup, importance rows, metadata.
 *
 * An lq_stats owns every byte it exposes (names, arrays, dataset strings), whatever file it
 * came from, so callers may close the file at once. Entries are sorted by name for bsearch. */
#include "calib_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct stats_item {
    lq_stats_entry e;
    char *name;
    float *data; /* sum_x2 | counts | sum_abs | max_abs, one allocation */
} stats_item;

struct lq_stats {
    lq_stats_format format;
    int64_t n, cap;
    stats_item *items;
    lq_stats_entry *entries; /* built by stats_seal, in name order */
    lq_stats_meta meta;
    char **dataset_copies;
};

lq_stats *stats_new(lq_stats_format format, lq_error *err) {
    lq_stats *s = (lq_stats *)lq_calloc(1, sizeof *s, err, "statistics");
    if (!s) return NULL;
    s->format = format;
    s->meta.chunk_count = -1;
    return s;
}

void lq_stats_free(lq_stats *s) {
    if (!s) return;
    for (int64_t i = 0; i < s->n; i++) {
        free(s->items[i].name);
        free(s->items[i].data);
    }
    free(s->items);
    free(s->entries);
    for (int64_t i = 0; i < s->meta.n_datasets; i++) free(s->dataset_copies[i]);
    free(s->dataset_copies);
    free(s);
}

lq_status stats_add_entry(lq_stats *s, const char *name, int64_t n_in, int64_t n_experts,
                          const float *sum_x2, const float *counts, const float *sum_abs,
                          const float *max_abs, lq_error *err) {
    uint64_t n_vals, n_floats;
    if (n_in <= 0 || n_experts <= 0 || !lq_mul_u64((uint64_t)n_in, (uint64_t)n_experts, &n_vals) ||
        !lq_mul_u64(n_vals, 3, &n_floats) || !lq_add_u64(n_floats, (uint64_t)n_experts, &n_floats) ||
        n_floats > SIZE_MAX / sizeof(float))
        return lq_fail(err, LQ_ERR_INVALID, "statistics entry '%s': bad shape %lld x %lld", name,
                       (long long)n_in, (long long)n_experts);
    if (s->n == s->cap) {
        int64_t cap = s->cap ? 2 * s->cap : 64;
        stats_item *items = (stats_item *)realloc(s->items, (size_t)cap * sizeof *items);
        if (!items) return lq_fail(err, LQ_ERR_NOMEM, "statistics: no memory for %lld entries", (long long)cap);
        s->items = items;
        s->cap = cap;
    }
    stats_item *it = &s->items[s->n];
    memset(it, 0, sizeof *it);
    it->name = strdup(name);
    it->data = (float *)malloc((size_t)n_floats * sizeof(float));
    if (!it->name || !it->data) {
        free(it->name);
        free(it->data);
        return lq_fail(err, LQ_ERR_NOMEM, "statistics entry '%s': no memory for %llu values", name,
                       (unsigned long long)n_floats);
    }
    size_t nv = (size_t)n_vals;
    float *p = it->data;
    memcpy(p, sum_x2, nv * sizeof(float));
    memcpy(p + nv, counts, (size_t)n_experts * sizeof(float));
    it->e.name = it->name;
    it->e.n_in = n_in;
    it->e.n_experts = n_experts;
    it->e.legacy = s->format == LQ_STATS_LEGACY_DAT;
    it->e.sum_x2 = p;
    it->e.counts = p + nv;
    float *extra = p + nv + n_experts;
    if (sum_abs) {
        memcpy(extra, sum_abs, nv * sizeof(float));
        it->e.sum_abs = extra;
    }
    if (max_abs) {
        memcpy(extra + nv, max_abs, nv * sizeof(float));
        it->e.max_abs = extra + nv;
    }
    s->n++;
    return LQ_OK;
}

lq_status stats_set_meta(lq_stats *s, const lq_stats_meta *meta, lq_error *err) {
    s->meta.chunk_count = meta->chunk_count;
    s->meta.chunk_size = meta->chunk_size;
    if (meta->n_datasets <= 0) return LQ_OK;
    s->dataset_copies = (char **)lq_calloc((size_t)meta->n_datasets, sizeof(char *), err, "dataset names");
    if (!s->dataset_copies) return LQ_ERR_NOMEM;
    for (int64_t i = 0; i < meta->n_datasets; i++) {
        s->dataset_copies[i] = strdup(meta->datasets[i] ? meta->datasets[i] : "");
        if (!s->dataset_copies[i]) return lq_fail(err, LQ_ERR_NOMEM, "statistics: no memory for dataset names");
        s->meta.n_datasets = i + 1;
    }
    s->meta.datasets = (const char *const *)s->dataset_copies;
    return LQ_OK;
}

static int cmp_entry_name(const void *a, const void *b) {
    return strcmp(((const lq_stats_entry *)a)->name, ((const lq_stats_entry *)b)->name);
}

lq_status stats_seal(lq_stats *s, const char *origin, lq_error *err) {
    free(s->entries);
    s->entries = (lq_stats_entry *)lq_malloc((size_t)(s->n ? s->n : 1) * sizeof *s->entries, err, "statistics index");
    if (!s->entries) return LQ_ERR_NOMEM;
    for (int64_t i = 0; i < s->n; i++) s->entries[i] = s->items[i].e;
    qsort(s->entries, (size_t)s->n, sizeof *s->entries, cmp_entry_name);
    for (int64_t i = 1; i < s->n; i++)
        if (!strcmp(s->entries[i - 1].name, s->entries[i].name))
            return lq_fail(err, LQ_ERR_FORMAT, "%s: entry '%s' appears twice", origin, s->entries[i].name);
    return LQ_OK;
}

int64_t lq_stats_n_entries(const lq_stats *s) { return s ? s->n : 0; }

const lq_stats_entry *lq_stats_entry_at(const lq_stats *s, int64_t i) {
    if (!s || i < 0 || i >= s->n) return NULL;
    return &s->entries[i];
}

const lq_stats_entry *lq_stats_find(const lq_stats *s, const char *weight_name) {
    if (!s || !weight_name || s->n == 0) return NULL;
    lq_stats_entry key;
    memset(&key, 0, sizeof key);
    key.name = weight_name;
    return (const lq_stats_entry *)bsearch(&key, s->entries, (size_t)s->n, sizeof key, cmp_entry_name);
}

lq_stats_format lq_stats_file_format(const lq_stats *s) { return s->format; }
const lq_stats_meta *lq_stats_get_meta(const lq_stats *s) { return &s->meta; }

static lq_status check_entry(const lq_stats_entry *e, float *out, lq_error *err) {
    if (!e || !out || e->n_in <= 0 || e->n_experts <= 0)
        return lq_fail(err, LQ_ERR_INVALID, "statistics: bad entry or output buffer");
    return LQ_OK;
}

lq_status lq_stats_importance(const lq_stats_entry *e, float *out, lq_error *err) {
    lq_status st = check_entry(e, out, err);
    if (st) return st;
    for (int64_t x = 0; x < e->n_experts; x++) {
        const float count = e->counts[x];
        const float *sums = e->sum_x2 + x * e->n_in;
        float *dst = out + x * e->n_in;
        for (int64_t j = 0; j < e->n_in; j++) {
            /* The legacy .dat stores mean·ncall with counts = {ncall}: dividing by the count
             * gives the mean for both layouts; only the fallbacks differ, as in llama-quantize. */
            if (count > 0.0f)
                dst[j] = sums[j] / count;
            else
                dst[j] = e->legacy ? sums[j] : 1.0f;
        }
    }
    return LQ_OK;
}

lq_status lq_stats_mean_abs(const lq_stats_entry *e, float *out, lq_error *err) {
    lq_status st = check_entry(e, out, err);
    if (st) return st;
    if (!e->sum_abs)
        return lq_fail(err, LQ_ERR_UNSUPPORTED, "statistics entry '%s' has no mean |x| (a llama.cpp imatrix "
                       "holds only sums of squares; run lq calibrate)", e->name);
    for (int64_t x = 0; x < e->n_experts; x++) {
        const float count = e->counts[x];
        for (int64_t j = 0; j < e->n_in; j++)
            out[x * e->n_in + j] = count > 0.0f ? e->sum_abs[x * e->n_in + j] / count : 0.0f;
    }
    return LQ_OK;
}

/* ---------------------------------------------------------------------------------------
 * Atomic small-file writes (the legacy .dat; GGUF goes through the GGUF writer)
 * ------------------------------------------------------------------------------------- */

static void sync_parent_dir(const char *path) {
    char *copy = strdup(path);
    if (!copy) return;
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(copy);
}

lq_status calib_write_file_atomic(const char *path, const void *data, size_t len, lq_error *err) {
    size_t plen = strlen(path);
    char *tmp = (char *)malloc(plen + sizeof ".tmp.XXXXXX");
    if (!tmp) return lq_fail(err, LQ_ERR_NOMEM, "%s: no memory", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        lq_status st = lq_fail(err, LQ_ERR_IO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
        free(tmp);
        return st;
    }
    const char *p = (const char *)data;
    size_t left = len;
    int e = 0;
    while (left > 0 && !e) {
        ssize_t k = write(fd, p, left);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) e = k < 0 ? errno : EIO;
        else {
            p += k;
            left -= (size_t)k;
        }
    }
    if (!e && (fchmod(fd, 0644) != 0 || fsync(fd) != 0)) e = errno;
    if (close(fd) != 0 && !e) e = errno;
    if (!e && rename(tmp, path) != 0) e = errno;
    if (e) {
        unlink(tmp);
        free(tmp);
        return lq_fail(err, LQ_ERR_IO, "%s: write failed: %s", path, strerror(e));
    }
    free(tmp);
    sync_parent_dir(path);
    return LQ_OK;
}
