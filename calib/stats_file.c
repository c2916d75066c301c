/* stats_file.c — statistics files: llama.cpp's GGUF imatrix (plus our extra tensors) and its
 * legacy .dat, read (format detected by content) and written.
 *
 * GGUF imatrix (llama.cpp PR #9400): general.type = "imatrix", imatrix.datasets (string
 * array), imatrix.chunk_count and imatrix.chunk_size (u32); per weight W, F32 tensors
 * W.in_sum2 [n_in, n_mat] (raw Σx²) and W.counts [1, n_mat] (token rows). Ours adds
 * W.in_sum_abs and W.in_max_abs [n_in, n_mat]; llama.cpp's readers ignore tensors whose name
 * ends in neither ".in_sum2", ".counts" nor ".in_sum".
 *
 * Legacy .dat (little-endian): i32 n_entries; per entry i32 name_len, name bytes, i32 ncall,
 * i32 nval, nval f32 = mean x² · ncall; then optionally i32 last_call, i32 len, dataset name. */
#include "calib_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_TYPE "general.type"
#define KEY_DATASETS "imatrix.datasets"
#define KEY_CHUNK_COUNT "imatrix.chunk_count"
#define KEY_CHUNK_SIZE "imatrix.chunk_size"

enum { KIND_SUM2, KIND_COUNTS, KIND_SUM_ABS, KIND_MAX_ABS, KIND_COUNT };
static const char *const kind_suffix[KIND_COUNT] = {".in_sum2", ".counts", ".in_sum_abs", ".in_max_abs"};

/* ---------------------------------------------------------------------------------------
 * GGUF reading
 * ------------------------------------------------------------------------------------- */

typedef struct tensor_ref {
    char base[LQ_MAX_NAME];
    int kind;
    int64_t index;
} tensor_ref;

static int cmp_ref(const void *a, const void *b) {
    const tensor_ref *x = (const tensor_ref *)a, *y = (const tensor_ref *)b;
    int c = strcmp(x->base, y->base);
    return c ? c : x->kind - y->kind;
}

/* Kind of a tensor name by suffix, base name written to base; -1 for other tensors. */
static int classify(const char *name, char base[LQ_MAX_NAME]) {
    size_t n = strlen(name);
    for (int k = 0; k < KIND_COUNT; k++) {
        size_t ls = strlen(kind_suffix[k]);
        if (n > ls && !strcmp(name + n - ls, kind_suffix[k])) {
            memcpy(base, name, n - ls);
            base[n - ls] = '\0';
            return k;
        }
    }
    return -1;
}

/* Finite and >= 0 (maxima, sums of squares and of |x|, counts are never negative). */
static lq_status check_values(const char *path, const lq_gguf_tensor_info *t, lq_error *err) {
    int64_t n = (int64_t)(t->nbytes / sizeof(float));
    const unsigned char *p = (const unsigned char *)t->data;
    for (int64_t i = 0; i < n; i++) {
        float v;
        memcpy(&v, p + (size_t)i * sizeof v, sizeof v);
        if (!isfinite(v) || v < 0)
            return lq_fail(err, LQ_ERR_FORMAT, "%s: tensor '%s': value %g at index %lld (expected finite, >= 0)",
                           path, t->name, (double)v, (long long)i);
    }
    return LQ_OK;
}

static lq_status check_shapes(const char *path, const lq_gguf_tensor_info *const t[KIND_COUNT],
                              lq_error *err) {
    for (int k = 0; k < KIND_COUNT; k++) {
        if (!t[k]) continue;
        if (t[k]->type != LQ_TYPE_F32)
            return lq_fail(err, LQ_ERR_FORMAT, "%s: tensor '%s': type %s, expected f32", path, t[k]->name,
                           lq_type_get(t[k]->type) ? lq_type_get(t[k]->type)->name : "?");
        if (t[k]->ne[2] != 1 || t[k]->ne[3] != 1)
            return lq_fail(err, LQ_ERR_FORMAT, "%s: tensor '%s': more than 2 dimensions", path, t[k]->name);
        if (t[k]->ne[0] < 1 || t[k]->ne[1] < 1)
            return lq_fail(err, LQ_ERR_FORMAT, "%s: tensor '%s': empty shape [%lld, %lld]", path, t[k]->name,
                           (long long)t[k]->ne[0], (long long)t[k]->ne[1]);
    }
    const lq_gguf_tensor_info *sums = t[KIND_SUM2], *counts = t[KIND_COUNTS];
    if (counts->ne[0] * counts->ne[1] != sums->ne[1])
        return lq_fail(err, LQ_ERR_FORMAT, "%s: tensor '%s': %lld counts for %lld matrices in '%s'", path,
                       counts->name, (long long)(counts->ne[0] * counts->ne[1]), (long long)sums->ne[1],
                       sums->name);
    for (int k = KIND_SUM_ABS; k < KIND_COUNT; k++)
        if (t[k] && (t[k]->ne[0] != sums->ne[0] || t[k]->ne[1] != sums->ne[1]))
            return lq_fail(err, LQ_ERR_FORMAT, "%s: tensor '%s': shape [%lld, %lld] differs from '%s' [%lld, %lld]",
                           path, t[k]->name, (long long)t[k]->ne[0], (long long)t[k]->ne[1], sums->name,
                           (long long)sums->ne[0], (long long)sums->ne[1]);
    for (int k = 0; k < KIND_COUNT; k++) {
        lq_status st = t[k] ? check_values(path, t[k], err) : LQ_OK;
        if (st) return st;
    }
    return LQ_OK;
}

/* One weight's group of tensors (refs[0..n), same base, sorted by kind) into an entry. */
static lq_status add_group(lq_stats *s, const lq_gguf *g, const char *path, const tensor_ref *refs,
                           int64_t n, lq_error *err) {
    const lq_gguf_tensor_info *t[KIND_COUNT] = {NULL, NULL, NULL, NULL};
    for (int64_t i = 0; i < n; i++) t[refs[i].kind] = lq_gguf_tensor(g, refs[i].index);
    const char *base = refs[0].base;
    if (!t[KIND_SUM2])
        return lq_fail(err, LQ_ERR_FORMAT, "%s: tensor '%s%s' has no matching '%s.in_sum2'", path, base,
                       kind_suffix[refs[0].kind], base);
    if (!t[KIND_COUNTS])
        return lq_fail(err, LQ_ERR_FORMAT, "%s: tensor '%s.in_sum2' has no matching '%s.counts'", path, base, base);
    lq_status st = check_shapes(path, t, err);
    if (st) return st;
    return stats_add_entry(s, base, t[KIND_SUM2]->ne[0], t[KIND_SUM2]->ne[1], (const float *)t[KIND_SUM2]->data,
                           (const float *)t[KIND_COUNTS]->data,
                           t[KIND_SUM_ABS] ? (const float *)t[KIND_SUM_ABS]->data : NULL,
                           t[KIND_MAX_ABS] ? (const float *)t[KIND_MAX_ABS]->data : NULL, err);
}

static lq_status read_gguf_meta(lq_stats *s, const lq_gguf *g, const char *path, lq_error *err) {
    int64_t k = lq_gguf_find_key(g, KEY_TYPE);
    if (k >= 0) {
        lq_str type = lq_gguf_get_str(g, k);
        if (!type.ptr || type.len != 7 || memcmp(type.ptr, "imatrix", 7) != 0)
            return lq_fail(err, LQ_ERR_FORMAT, "%s: %s is '%.*s', not 'imatrix'", path, KEY_TYPE,
                           type.ptr ? (int)(type.len > 64 ? 64 : type.len) : 0, type.ptr ? type.ptr : "");
    }
    lq_stats_meta meta = {0, NULL, -1, 0};
    const char *names[] = {KEY_CHUNK_COUNT, KEY_CHUNK_SIZE};
    int64_t *values[] = {&meta.chunk_count, &meta.chunk_size};
    for (int i = 0; i < 2; i++) {
        uint64_t v;
        if ((k = lq_gguf_find_key(g, names[i])) < 0) continue;
        lq_status st = lq_gguf_get_u64(g, k, &v, err);
        if (st) return st;
        *values[i] = v > INT64_MAX ? INT64_MAX : (int64_t)v;
    }
    char **list = NULL;
    if ((k = lq_gguf_find_key(g, KEY_DATASETS)) >= 0) {
        if (lq_gguf_kv_type(g, k) != LQ_GGUF_ARRAY || lq_gguf_arr_type(g, k) != LQ_GGUF_STRING)
            return lq_fail(err, LQ_ERR_FORMAT, "%s: %s is not an array of strings", path, KEY_DATASETS);
        meta.n_datasets = (int64_t)lq_gguf_arr_n(g, k);
        list = (char **)lq_calloc((size_t)(meta.n_datasets ? meta.n_datasets : 1), sizeof *list, err, "datasets");
        if (!list) return LQ_ERR_NOMEM;
        for (int64_t j = 0; j < meta.n_datasets; j++) {
            lq_str d = lq_gguf_arr_str(g, k, (uint64_t)j);
            list[j] = strndup(d.ptr ? d.ptr : "", (size_t)d.len);
            if (!list[j]) break;
        }
    }
    meta.datasets = (const char *const *)list;
    bool complete = true;
    for (int64_t j = 0; j < meta.n_datasets; j++) complete = complete && list[j];
    lq_status st = complete ? stats_set_meta(s, &meta, err)
                            : lq_fail(err, LQ_ERR_NOMEM, "%s: no memory for dataset names", path);
    for (int64_t j = 0; j < meta.n_datasets; j++) free(list[j]);
    free(list);
    return st;
}

static lq_status read_gguf(const char *path, lq_stats *s, lq_error *err) {
    lq_gguf *g = NULL;
    lq_status st = lq_gguf_open(path, &g, err);
    if (st) return st;
    int64_t n_t = lq_gguf_n_tensors(g), n_refs = 0;
    tensor_ref *refs = (tensor_ref *)lq_malloc((size_t)(n_t ? n_t : 1) * sizeof *refs, err, "tensor list");
    if (!refs) st = LQ_ERR_NOMEM;
    for (int64_t i = 0; !st && i < n_t; i++) {
        int kind = classify(lq_gguf_tensor(g, i)->name, refs[n_refs].base);
        if (kind < 0) continue; /* other tensors (llama.cpp's .in_sum, ...) are not ours to read */
        refs[n_refs].kind = kind;
        refs[n_refs].index = i;
        n_refs++;
    }
    if (!st) qsort(refs, (size_t)n_refs, sizeof *refs, cmp_ref);
    for (int64_t i = 0; !st && i < n_refs;) {
        int64_t j = i + 1;
        while (j < n_refs && !strcmp(refs[j].base, refs[i].base)) j++;
        st = add_group(s, g, path, refs + i, j - i, err);
        i = j;
    }
    if (!st && lq_stats_n_entries(s) == 0)
        st = lq_fail(err, LQ_ERR_FORMAT, "%s: no imatrix entries (no '<weight>.in_sum2' and '<weight>.counts' tensors)", path);
    if (!st) st = read_gguf_meta(s, g, path, err);
    free(refs);
    lq_gguf_close(g);
    return st;
}

/* ---------------------------------------------------------------------------------------
 * Legacy .dat reading
 * ------------------------------------------------------------------------------------- */

typedef struct dat_cursor {
    const unsigned char *p;
    size_t size, at;
} dat_cursor;

static bool dat_i32(dat_cursor *c, int32_t *v) {
    if (c->size - c->at < 4) return false;
    memcpy(v, c->p + c->at, 4);
    c->at += 4;
    return true;
}

static lq_status read_file_bytes(const char *path, unsigned char **out, size_t *size, lq_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return lq_fail(err, LQ_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char *buf = NULL;
    size_t n = 0, cap = 0;
    lq_status st = LQ_OK;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 1 << 16;
            unsigned char *nb = (unsigned char *)realloc(buf, cap);
            if (!nb) {
                st = lq_fail(err, LQ_ERR_NOMEM, "%s: no memory to read the file", path);
                break;
            }
            buf = nb;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0) {
            if (ferror(f)) st = lq_fail(err, LQ_ERR_IO, "%s: read failed: %s", path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (st) {
        free(buf);
        return st;
    }
    *out = buf;
    *size = n;
    return LQ_OK;
}

static lq_status dat_entry(lq_stats *s, dat_cursor *c, const char *path, int32_t i, lq_error *err) {
    int32_t name_len, ncall, nval;
    size_t at = c->at;
    if (!dat_i32(c, &name_len) || name_len < 1 || name_len >= LQ_MAX_NAME || c->size - c->at < (size_t)name_len)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: legacy imatrix entry %d: bad name length at offset %zu", path, i, at);
    char name[LQ_MAX_NAME];
    memcpy(name, c->p + c->at, (size_t)name_len);
    name[name_len] = '\0';
    c->at += (size_t)name_len;
    if (strlen(name) != (size_t)name_len)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: legacy imatrix entry %d: NUL byte in its name", path, i);
    at = c->at;
    if (!dat_i32(c, &ncall) || !dat_i32(c, &nval) || nval < 1 || (c->size - c->at) / 4 < (size_t)nval)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: legacy imatrix entry %d ('%s'): bad value count at offset %zu",
                       path, i, name, at);
    float *vals = (float *)lq_malloc((size_t)nval * sizeof(float), err, name);
    if (!vals) return LQ_ERR_NOMEM;
    memcpy(vals, c->p + c->at, (size_t)nval * sizeof(float));
    c->at += (size_t)nval * sizeof(float);
    lq_status st = LQ_OK;
    for (int32_t j = 0; j < nval && !st; j++)
        if (!isfinite(vals[j]) || vals[j] < 0)
            st = lq_fail(err, LQ_ERR_FORMAT, "%s: legacy imatrix entry '%s': value %g at index %d (expected finite, >= 0)",
                         path, name, (double)vals[j], (int)j);
    float count = (float)ncall;
    if (!st) st = stats_add_entry(s, name, nval, 1, vals, &count, NULL, NULL, err);
    free(vals);
    return st;
}

/* The trailer (last_call, dataset name) is optional, as in llama.cpp's reader. */
static lq_status dat_trailer(lq_stats *s, dat_cursor *c, const char *path, lq_error *err) {
    lq_stats_meta meta = {0, NULL, -1, 0};
    int32_t last_call, len;
    char *dataset = NULL;
    if (c->at < c->size) {
        if (!dat_i32(c, &last_call))
            return lq_fail(err, LQ_ERR_FORMAT, "%s: legacy imatrix: truncated trailer at offset %zu", path, c->at);
        meta.chunk_count = last_call;
        if (c->at < c->size) {
            size_t at = c->at;
            if (!dat_i32(c, &len) || len < 0 || c->size - c->at < (size_t)len)
                return lq_fail(err, LQ_ERR_FORMAT, "%s: legacy imatrix: bad dataset name length at offset %zu", path, at);
            if (len > 0 && !(dataset = strndup((const char *)c->p + c->at, (size_t)len)))
                return lq_fail(err, LQ_ERR_NOMEM, "%s: no memory", path);
            c->at += (size_t)len;
        }
    }
    if (c->at != c->size) {
        free(dataset);
        return lq_fail(err, LQ_ERR_FORMAT, "%s: legacy imatrix: %zu unexpected bytes at offset %zu", path,
                       c->size - c->at, c->at);
    }
    const char *list[1] = {dataset};
    meta.n_datasets = dataset ? 1 : 0;
    meta.datasets = list;
    lq_status st = stats_set_meta(s, &meta, err);
    free(dataset);
    return st;
}

static lq_status read_dat(const char *path, const unsigned char *bytes, size_t size, lq_stats *s,
                          lq_error *err) {
    dat_cursor c = {bytes, size, 0};
    int32_t n_entries;
    if (!dat_i32(&c, &n_entries) || n_entries < 1 || (size_t)n_entries > size / 17) /* smallest entry: 17 bytes */
        return lq_fail(err, LQ_ERR_FORMAT, "%s: neither a GGUF file nor a legacy imatrix .dat (entry count %d "
                       "does not fit %zu bytes)", path, size >= 4 ? (int)n_entries : -1, size);
    for (int32_t i = 0; i < n_entries; i++) {
        lq_status st = dat_entry(s, &c, path, i, err);
        if (st) return st;
    }
    return dat_trailer(s, &c, path, err);
}

lq_status lq_stats_read(const char *path, lq_stats **out, lq_error *err) {
    *out = NULL;
    unsigned char *bytes = NULL;
    size_t size = 0;
    lq_status st = read_file_bytes(path, &bytes, &size, err);
    if (st) return st;
    bool is_gguf = size >= 4 && memcmp(bytes, "GGUF", 4) == 0;
    lq_stats *s = stats_new(is_gguf ? LQ_STATS_GGUF : LQ_STATS_LEGACY_DAT, err);
    if (!s) st = LQ_ERR_NOMEM;
    else if (is_gguf) {
        free(bytes); /* the GGUF reader maps the file itself */
        bytes = NULL;
        st = read_gguf(path, s, err);
    } else {
        st = read_dat(path, bytes, size, s, err);
    }
    free(bytes);
    if (!st) st = stats_seal(s, path, err);
    if (st) {
        lq_stats_free(s);
        return st;
    }
    *out = s;
    return LQ_OK;
}

/* ---------------------------------------------------------------------------------------
 * Writing
 * ------------------------------------------------------------------------------------- */

static lq_status declare_entry(lq_gguf_writer *w, const lq_stats_entry *e, const char *path,
                               lq_error *err) {
    const float *arrays[KIND_COUNT] = {e->sum_x2, e->counts, e->sum_abs, e->max_abs};
    for (int k = 0; k < KIND_COUNT; k++) {
        if (!arrays[k]) continue;
        char name[LQ_MAX_NAME];
        int n = snprintf(name, sizeof name, "%s%s", e->name, kind_suffix[k]);
        if (n < 0 || n >= LQ_MAX_NAME)
            return lq_fail(err, LQ_ERR_INVALID, "%s: tensor name '%s%s' is %d bytes, GGUF allows %d", path,
                           e->name, kind_suffix[k], n, LQ_MAX_NAME - 1);
        int64_t ne[2] = {k == KIND_COUNTS ? 1 : e->n_in, e->n_experts};
        lq_status st = lq_gguf_writer_add_tensor(w, name, 2, ne, LQ_TYPE_F32, err);
        if (st) return st;
    }
    return LQ_OK;
}

static lq_status write_entry_data(lq_gguf_writer *w, const lq_stats_entry *e, lq_error *err) {
    size_t nv = (size_t)(e->n_in * e->n_experts), ne = (size_t)e->n_experts;
    const float *arrays[KIND_COUNT] = {e->sum_x2, e->counts, e->sum_abs, e->max_abs};
    const size_t lens[KIND_COUNT] = {nv, ne, nv, nv};
    for (int k = 0; k < KIND_COUNT; k++) {
        if (!arrays[k]) continue;
        lq_status st = lq_gguf_writer_write(w, arrays[k], lens[k] * sizeof(float), err);
        if (st) return st;
    }
    return LQ_OK;
}

static lq_status write_gguf_meta(lq_gguf_writer *w, const lq_stats *s, lq_error *err) {
    const lq_stats_meta *m = lq_stats_get_meta(s);
    lq_str *names = (lq_str *)lq_calloc((size_t)(m->n_datasets ? m->n_datasets : 1), sizeof *names, err, "datasets");
    if (!names) return LQ_ERR_NOMEM;
    for (int64_t i = 0; i < m->n_datasets; i++) {
        names[i].ptr = m->datasets[i];
        names[i].len = strlen(m->datasets[i]);
    }
    lq_status st = lq_gguf_writer_set_str(w, KEY_TYPE, "imatrix", 7, err);
    if (!st) st = lq_gguf_writer_set_arr_str(w, KEY_DATASETS, names, (uint64_t)m->n_datasets, err);
    free(names);
    uint32_t count = m->chunk_count < 0 ? 0 : m->chunk_count > UINT32_MAX ? UINT32_MAX : (uint32_t)m->chunk_count;
    uint32_t size = m->chunk_size < 0 ? 0 : m->chunk_size > UINT32_MAX ? UINT32_MAX : (uint32_t)m->chunk_size;
    if (!st) st = lq_gguf_writer_set_u32(w, KEY_CHUNK_COUNT, count, err);
    if (!st) st = lq_gguf_writer_set_u32(w, KEY_CHUNK_SIZE, size, err);
    return st;
}

lq_status lq_stats_write(const lq_stats *s, const char *path, lq_error *err) {
    if (!s || lq_stats_n_entries(s) == 0)
        return lq_fail(err, LQ_ERR_INVALID, "%s: no statistics to write", path);
    lq_gguf_writer *w = NULL;
    lq_status st = lq_gguf_writer_open(path, &w, err);
    if (st) return st;
    st = write_gguf_meta(w, s, err);
    int64_t n = lq_stats_n_entries(s);
    for (int64_t i = 0; !st && i < n; i++) st = declare_entry(w, lq_stats_entry_at(s, i), path, err);
    for (int64_t i = 0; !st && i < n; i++) st = write_entry_data(w, lq_stats_entry_at(s, i), err);
    if (st) {
        lq_gguf_writer_abort(w);
        return st;
    }
    return lq_gguf_writer_finish(w, err);
}

typedef struct byte_buf {
    unsigned char *p;
    size_t n, cap;
    bool failed;
} byte_buf;

static void buf_put(byte_buf *b, const void *data, size_t n) {
    if (b->failed) return;
    if (b->cap - b->n < n) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->n < n) cap *= 2;
        unsigned char *p = (unsigned char *)realloc(b->p, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
}

static void buf_i32(byte_buf *b, int32_t v) { buf_put(b, &v, 4); }

/* ncall as newer llama-imatrix writes it: ceil(max count / chunk_size). */
static int32_t dat_ncall(const lq_stats_entry *e, int64_t chunk_size) {
    if (e->legacy) return (int32_t)e->counts[0];
    double max_count = 0;
    for (int64_t x = 0; x < e->n_experts; x++)
        if (e->counts[x] > max_count) max_count = e->counts[x];
    if (chunk_size <= 0) return 1;
    double ncall = ceil(max_count / (double)chunk_size);
    return ncall < 1 ? 1 : ncall > INT32_MAX ? INT32_MAX : (int32_t)ncall;
}

static void dat_put_entry(byte_buf *b, const lq_stats_entry *e, int64_t chunk_size) {
    int32_t ncall = dat_ncall(e, chunk_size);
    buf_i32(b, (int32_t)strlen(e->name));
    buf_put(b, e->name, strlen(e->name));
    buf_i32(b, ncall);
    buf_i32(b, (int32_t)(e->n_in * e->n_experts));
    for (int64_t x = 0; x < e->n_experts; x++) {
        float count = e->counts[x];
        for (int64_t j = 0; j < e->n_in; j++) {
            float sum = e->sum_x2[x * e->n_in + j];
            /* legacy entries already hold mean·ncall; experts without data store 1 */
            float v = e->legacy ? sum : count > 0 ? sum / count * (float)ncall : 1.0f;
            buf_put(b, &v, sizeof v);
        }
    }
}

lq_status lq_stats_write_dat(const lq_stats *s, const char *path, lq_error *err) {
    int64_t n = lq_stats_n_entries(s);
    if (n == 0 || n > INT32_MAX) return lq_fail(err, LQ_ERR_INVALID, "%s: %lld statistics entries", path, (long long)n);
    const lq_stats_meta *m = lq_stats_get_meta(s);
    for (int64_t i = 0; i < n; i++) {
        const lq_stats_entry *e = lq_stats_entry_at(s, i);
        if (e->n_in * e->n_experts > INT32_MAX)
            return lq_fail(err, LQ_ERR_INVALID, "%s: entry '%s' is too large for the legacy format", path, e->name);
    }
    byte_buf b = {NULL, 0, 0, false};
    buf_i32(&b, (int32_t)n);
    for (int64_t i = 0; i < n; i++) dat_put_entry(&b, lq_stats_entry_at(s, i), m->chunk_size);
    int64_t last = m->chunk_count < 0 ? 0 : m->chunk_count > INT32_MAX ? INT32_MAX : m->chunk_count;
    buf_i32(&b, (int32_t)last);
    const char *dataset = m->n_datasets > 0 ? m->datasets[0] : "";
    buf_i32(&b, (int32_t)strlen(dataset));
    buf_put(&b, dataset, strlen(dataset));
    lq_status st = b.failed ? lq_fail(err, LQ_ERR_NOMEM, "%s: no memory for %zu bytes", path, b.n)
                            : calib_write_file_atomic(path, b.p, b.n, err);
    free(b.p);
    return st;
}
