/* safetensors.c — safetensors reader: single file, sharded (model.safetensors.index.json), or a
 * directory holding either. Files are mmapped; tensor data is never copied.
 *
 * Layout: u64 LE header length N, N bytes of JSON header, data section. The header maps tensor
 * names to {dtype, shape, data_offsets: [begin, end]} (offsets relative to the data section)
 * plus an optional "__metadata__" object of string → string. Every number is validated against
 * the file size before use. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* A header beyond this is not a real checkpoint (the largest known are a few MB). */
#define ST_MAX_HEADER ((uint64_t)100 * 1024 * 1024)
/* An index.json beyond this is not a real index either. */
#define ST_MAX_INDEX ((uint64_t)64 * 1024 * 1024)

typedef struct st_shard {
    char *path;
    const uint8_t *base; /* whole file */
    uint64_t size;
    bool mapped;         /* munmap on close */
} st_shard;

struct lq_safetensors {
    char *path; /* as opened (file, index or directory) */
    st_shard *shards;
    int n_shards;
    lq_st_tensor *tensors;
    int64_t n_tensors, cap_tensors;
    int64_t *by_name; /* tensor indices sorted by name, for lookup */
    char **meta_keys, **meta_values;
    int64_t n_meta;
};

/* ---------------------------------------------------------------------------------------- */
/* Small helpers                                                                              */

static uint64_t read_le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static char *dup_str(const char *s, lq_error *err) {
    size_t n = strlen(s) + 1;
    char *d = lq_malloc(n, err, "a safetensors string");
    if (d) memcpy(d, s, n);
    return d;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static char *join_path(const char *dir, const char *name, lq_error *err) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = lq_malloc(n, err, "a path");
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Directory part of a path ("." when there is none). */
static char *dir_of(const char *path, lq_error *err) {
    const char *slash = strrchr(path, '/');
    if (!slash) return dup_str(".", err);
    size_t n = (size_t)(slash - path);
    if (n == 0) n = 1; /* "/file" → "/" */
    char *d = lq_malloc(n + 1, err, "a path");
    if (!d) return NULL;
    memcpy(d, path, n);
    d[n] = '\0';
    return d;
}

/* dtype string → lq_type; -1 for anything we do not read. */
static int dtype_from_name(const char *s) {
    if (!strcmp(s, "F32")) return LQ_TYPE_F32;
    if (!strcmp(s, "F16")) return LQ_TYPE_F16;
    if (!strcmp(s, "BF16")) return LQ_TYPE_BF16;
    return -1;
}

/* ---------------------------------------------------------------------------------------- */
/* Handle bookkeeping                                                                         */

static void free_shard(st_shard *s) {
    if (s->mapped && s->base) munmap((void *)s->base, s->size);
    free(s->path);
}

void lq_safetensors_close(lq_safetensors *st) {
    if (!st) return;
    for (int i = 0; i < st->n_shards; i++) free_shard(&st->shards[i]);
    for (int64_t i = 0; i < st->n_tensors; i++) free((char *)st->tensors[i].name);
    for (int64_t i = 0; i < st->n_meta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->shards);
    free(st->tensors);
    free(st->by_name);
    free(st->meta_keys);
    free(st->meta_values);
    free(st->path);
    free(st);
}

static st_shard *add_shard(lq_safetensors *st, const char *path, lq_error *err) {
    st_shard *grown = realloc(st->shards, (size_t)(st->n_shards + 1) * sizeof *grown);
    if (!grown) {
        lq_fail(err, LQ_ERR_NOMEM, "%s: out of memory for the shard list", path);
        return NULL;
    }
    st->shards = grown;
    st_shard *s = &st->shards[st->n_shards];
    memset(s, 0, sizeof *s);
    s->path = dup_str(path, err);
    if (!s->path) return NULL;
    st->n_shards++;
    return s;
}

static lq_st_tensor *add_tensor(lq_safetensors *st, lq_error *err) {
    if (st->n_tensors == st->cap_tensors) {
        int64_t cap = st->cap_tensors ? st->cap_tensors * 2 : 64;
        lq_st_tensor *grown = realloc(st->tensors, (size_t)cap * sizeof *grown);
        if (!grown) {
            lq_fail(err, LQ_ERR_NOMEM, "out of memory for %" PRId64 " tensor entries", cap);
            return NULL;
        }
        st->tensors = grown;
        st->cap_tensors = cap;
    }
    lq_st_tensor *t = &st->tensors[st->n_tensors];
    memset(t, 0, sizeof *t);
    return t;
}

/* Maps a whole file read-only. */
static lq_status map_file(st_shard *s, lq_error *err) {
    int fd = open(s->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return lq_fail(err, LQ_ERR_IO, "%s: cannot open: %s", s->path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return lq_fail(err, LQ_ERR_IO, "%s: cannot stat: %s", s->path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return lq_fail(err, LQ_ERR_IO, "%s: not a regular file", s->path);
    }
    if (sb.st_size < 8) {
        close(fd);
        return lq_fail(err, LQ_ERR_FORMAT, "%s: file of %lld bytes is too small for a safetensors header",
                       s->path, (long long)sb.st_size);
    }
    void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) return lq_fail(err, LQ_ERR_IO, "%s: cannot mmap: %s", s->path, strerror(e));
    s->base = p;
    s->size = (uint64_t)sb.st_size;
    s->mapped = true;
    return LQ_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Header parsing                                                                             */

static lq_status parse_metadata(lq_safetensors *st, const st_shard *s, json_t *meta, bool keep,
                                lq_error *err) {
    if (!json_is_object(meta))
        return lq_fail(err, LQ_ERR_FORMAT, "%s: __metadata__ is not a JSON object", s->path);
    const char *key;
    json_t *value;
    size_t n = json_object_size(meta);
    if (keep && n > 0) {
        st->meta_keys = lq_calloc(n, sizeof *st->meta_keys, err, "safetensors metadata");
        st->meta_values = lq_calloc(n, sizeof *st->meta_values, err, "safetensors metadata");
        if (!st->meta_keys || !st->meta_values) return LQ_ERR_NOMEM;
    }
    json_object_foreach(meta, key, value) {
        if (!json_is_string(value))
            return lq_fail(err, LQ_ERR_FORMAT, "%s: __metadata__ entry '%s' is not a string", s->path, key);
        if (!keep) continue;
        char *k = dup_str(key, err), *v = k ? dup_str(json_string_value(value), err) : NULL;
        if (!v) {
            free(k);
            return LQ_ERR_NOMEM;
        }
        st->meta_keys[st->n_meta] = k;
        st->meta_values[st->n_meta] = v;
        st->n_meta++;
    }
    return LQ_OK;
}

/* Reads a JSON integer ≥ 0 (safetensors numbers are non-negative integers). */
static bool get_count(json_t *v, uint64_t *out) {
    if (!json_is_integer(v) || json_integer_value(v) < 0) return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

/* Parses one tensor entry; offsets are checked against data_size here, overlaps later. */
static lq_status parse_tensor(lq_safetensors *st, const st_shard *s, const char *name, json_t *entry,
                              const uint8_t *data, uint64_t data_size, lq_error *err) {
    const char *path = s->path;
    if (!json_is_object(entry))
        return lq_fail(err, LQ_ERR_FORMAT, "%s: tensor '%s': entry is not a JSON object", path, name);
    if (name[0] == '\0')
        return lq_fail(err, LQ_ERR_FORMAT, "%s: tensor with an empty name", path);
    json_t *dtype = json_object_get(entry, "dtype");
    json_t *shape = json_object_get(entry, "shape");
    json_t *offsets = json_object_get(entry, "data_offsets");
    if (!json_is_string(dtype))
        return lq_fail(err, LQ_ERR_FORMAT, "%s: tensor '%s': missing or non-string dtype", path, name);
    if (!json_is_array(shape))
        return lq_fail(err, LQ_ERR_FORMAT, "%s: tensor '%s': missing or non-array shape", path, name);
    if (!json_is_array(offsets) || json_array_size(offsets) != 2)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: tensor '%s': data_offsets must be an array of 2 integers",
                       path, name);
    int type = dtype_from_name(json_string_value(dtype));
    if (type < 0)
        return lq_fail(err, LQ_ERR_UNSUPPORTED, "%s: unsupported dtype %s for tensor %s (F32, F16, BF16 are read)",
                       path, json_string_value(dtype), name);
    size_t n_dims = json_array_size(shape);
    if (n_dims > LQ_MAX_DIMS)
        return lq_fail(err, LQ_ERR_UNSUPPORTED, "%s: tensor '%s': %zu dimensions (at most %d supported)",
                       path, name, n_dims, LQ_MAX_DIMS);

    lq_st_tensor *t = add_tensor(st, err);
    if (!t) return LQ_ERR_NOMEM;
    uint64_t nbytes = lq_type_get(type)->block_bytes;
    for (size_t d = 0; d < LQ_MAX_DIMS; d++) t->shape[d] = 1;
    for (size_t d = 0; d < n_dims; d++) {
        uint64_t dim;
        if (!get_count(json_array_get(shape, d), &dim) || dim > (uint64_t)INT64_MAX)
            return lq_fail(err, LQ_ERR_FORMAT, "%s: tensor '%s': shape[%zu] is not a non-negative integer",
                           path, name, d);
        if (!lq_mul_u64(nbytes, dim, &nbytes))
            return lq_fail(err, LQ_ERR_FORMAT, "%s: tensor '%s': shape product overflows", path, name);
        t->shape[d] = (int64_t)dim;
    }
    uint64_t begin, end;
    if (!get_count(json_array_get(offsets, 0), &begin) || !get_count(json_array_get(offsets, 1), &end))
        return lq_fail(err, LQ_ERR_FORMAT, "%s: tensor '%s': data_offsets must be non-negative integers",
                       path, name);
    if (begin > end)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: tensor '%s': data_offsets begin %" PRIu64 " > end %" PRIu64,
                       path, name, begin, end);
    if (end > data_size)
        return lq_fail(err, LQ_ERR_FORMAT,
                       "%s: tensor '%s': data_offsets end %" PRIu64 " beyond the data section (%" PRIu64 " bytes)",
                       path, name, end, data_size);
    if (end - begin != nbytes)
        return lq_fail(err, LQ_ERR_FORMAT,
                       "%s: tensor '%s': %" PRIu64 " bytes in data_offsets but shape × %s needs %" PRIu64,
                       path, name, end - begin, json_string_value(dtype), nbytes);
    t->name = dup_str(name, err);
    if (!t->name) return LQ_ERR_NOMEM;
    st->n_tensors++; /* owns name from here on */
    t->file = s->path;
    t->type = (lq_type)type;
    t->n_dims = (uint32_t)n_dims;
    t->nbytes = nbytes;
    t->data = data + begin;
    return LQ_OK;
}

static int cmp_by_data(const void *a, const void *b) {
    const lq_st_tensor *x = a, *y = b; /* both from the same shard */
    const uint8_t *px = x->data, *py = y->data;
    if (px != py) return px < py ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

/* Tensors of one shard (from index first) must not share bytes. Zero-byte tensors overlap
 * nothing. */
static lq_status check_overlaps(lq_safetensors *st, int64_t first, const st_shard *s, lq_error *err) {
    lq_st_tensor *ts = st->tensors + first;
    int64_t n = st->n_tensors - first;
    qsort(ts, (size_t)n, sizeof *ts, cmp_by_data);
    const lq_st_tensor *prev = NULL;
    for (int64_t i = 0; i < n; i++) {
        if (ts[i].nbytes == 0) continue;
        if (prev && (const uint8_t *)prev->data + prev->nbytes > (const uint8_t *)ts[i].data)
            return lq_fail(err, LQ_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap in the data section",
                           s->path, prev->name, ts[i].name);
        prev = &ts[i];
    }
    return LQ_OK;
}

/* Parses the header of shard s (already in memory) and appends its tensors. */
static lq_status parse_shard(lq_safetensors *st, st_shard *s, bool keep_metadata, lq_error *err) {
    if (s->size < 8)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: file of %" PRIu64 " bytes is too small for a safetensors header",
                       s->path, s->size);
    uint64_t header_len = read_le64(s->base);
    if (header_len > s->size - 8)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: header length %" PRIu64 " exceeds the file size (%" PRIu64 " bytes)",
                       s->path, header_len, s->size);
    if (header_len > ST_MAX_HEADER)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: header length %" PRIu64 " exceeds the %" PRIu64 "-byte limit",
                       s->path, header_len, ST_MAX_HEADER);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)s->base + 8, (size_t)header_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: header is not valid JSON: %s (at byte %d)", s->path, jerr.text,
                       jerr.position);
    lq_status rc = LQ_OK;
    if (!json_is_object(root)) {
        rc = lq_fail(err, LQ_ERR_FORMAT, "%s: header is not a JSON object", s->path);
        goto done;
    }
    const uint8_t *data = s->base + 8 + header_len;
    uint64_t data_size = s->size - 8 - header_len;
    int64_t first = st->n_tensors;
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value) {
        if (!strcmp(key, "__metadata__"))
            rc = parse_metadata(st, s, value, keep_metadata, err);
        else
            rc = parse_tensor(st, s, key, value, data, data_size, err);
        if (rc != LQ_OK) goto done;
    }
    rc = check_overlaps(st, first, s, err);
done:
    json_decref(root);
    return rc;
}

static const char *st_name_of(const void *ctx, int64_t i) {
    return ((const lq_safetensors *)ctx)->tensors[i].name;
}

/* Builds the name index and rejects duplicate names (within or across shards). */
static lq_status index_names(lq_safetensors *st, lq_error *err) {
    int64_t dup[2];
    lq_status rc = lq_name_index_build(st->n_tensors, st_name_of, st, &st->by_name, dup, err);
    if (rc != LQ_OK) return rc;
    if (dup[0] >= 0) {
        const lq_st_tensor *a = &st->tensors[dup[0]], *b = &st->tensors[dup[1]];
        return lq_fail(err, LQ_ERR_FORMAT, "%s: duplicate tensor '%s' (also in %s)", b->file, b->name, a->file);
    }
    return LQ_OK;
}

static lq_safetensors *new_handle(const char *path, lq_error *err) {
    lq_safetensors *st = lq_calloc(1, sizeof *st, err, "a safetensors handle");
    if (!st) return NULL;
    st->path = dup_str(path, err);
    if (!st->path) {
        free(st);
        return NULL;
    }
    return st;
}

/* ---------------------------------------------------------------------------------------- */
/* Sharded checkpoints                                                                        */

/* A shard name from an index must stay inside the index's directory. */
static bool safe_shard_name(const char *name) {
    if (name[0] == '\0' || name[0] == '/') return false;
    for (const char *p = name; *p;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') return false;
        p += n + (slash ? 1 : 0);
    }
    return true;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Distinct shard file names of a weight_map, sorted (so shard order is deterministic). */
static lq_status shard_names(const char *index_path, json_t *weight_map, const char ***out, size_t *n_out,
                             lq_error *err) {
    size_t n = json_object_size(weight_map), k = 0;
    const char **names = lq_calloc(n, sizeof *names, err, "the shard list");
    if (!names) return LQ_ERR_NOMEM;
    const char *key;
    json_t *value;
    json_object_foreach(weight_map, key, value) {
        if (!json_is_string(value) || !safe_shard_name(json_string_value(value))) {
            free(names);
            return lq_fail(err, LQ_ERR_FORMAT, "%s: weight_map entry '%s' is not a file name in this directory",
                           index_path, key);
        }
        names[k++] = json_string_value(value);
    }
    qsort(names, k, sizeof *names, cmp_str);
    size_t distinct = 0;
    for (size_t i = 0; i < k; i++)
        if (distinct == 0 || strcmp(names[distinct - 1], names[i]) != 0) names[distinct++] = names[i];
    *out = names;
    *n_out = distinct;
    return LQ_OK;
}

/* Every weight_map entry must name a tensor that the named shard holds. */
static lq_status check_weight_map(const lq_safetensors *st, const char *index_path, const char *dir,
                                  json_t *weight_map, lq_error *err) {
    const char *key;
    json_t *value;
    json_object_foreach(weight_map, key, value) {
        const lq_st_tensor *t = lq_safetensors_find(st, key);
        char *want = join_path(dir, json_string_value(value), err);
        if (!want) return LQ_ERR_NOMEM;
        bool ok = t && !strcmp(t->file, want);
        free(want);
        if (!ok)
            return lq_fail(err, LQ_ERR_FORMAT, "%s: tensor '%s' is not in shard %s as weight_map says", index_path,
                           key, json_string_value(value));
    }
    return LQ_OK;
}

static lq_status load_index_json(const char *index_path, json_t **out, lq_error *err) {
    st_shard idx = {.path = (char *)index_path};
    lq_status rc = map_file(&idx, err);
    if (rc != LQ_OK) return rc;
    if (idx.size > ST_MAX_INDEX) {
        munmap((void *)idx.base, idx.size);
        return lq_fail(err, LQ_ERR_FORMAT, "%s: index of %" PRIu64 " bytes is implausibly large", index_path,
                       idx.size);
    }
    json_error_t jerr;
    json_t *root = json_loadb((const char *)idx.base, (size_t)idx.size, JSON_REJECT_DUPLICATES, &jerr);
    munmap((void *)idx.base, idx.size);
    if (!root)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: not valid JSON: %s (line %d)", index_path, jerr.text, jerr.line);
    if (!json_is_object(json_object_get(root, "weight_map")) || json_object_size(json_object_get(root, "weight_map")) == 0) {
        json_decref(root);
        return lq_fail(err, LQ_ERR_FORMAT, "%s: missing or empty weight_map object", index_path);
    }
    *out = root;
    return LQ_OK;
}

static lq_status open_index(const char *index_path, lq_safetensors *st, lq_error *err) {
    json_t *root = NULL;
    const char **names = NULL;
    char *dir = NULL;
    size_t n_names = 0;
    lq_status rc = load_index_json(index_path, &root, err);
    if (rc != LQ_OK) return rc;
    json_t *weight_map = json_object_get(root, "weight_map");
    rc = shard_names(index_path, weight_map, &names, &n_names, err);
    if (rc != LQ_OK) goto done;
    dir = dir_of(index_path, err);
    if (!dir) {
        rc = LQ_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < n_names && rc == LQ_OK; i++) {
        char *shard_path = join_path(dir, names[i], err);
        if (!shard_path) {
            rc = LQ_ERR_NOMEM;
            break;
        }
        st_shard *s = add_shard(st, shard_path, err);
        free(shard_path);
        if (!s) {
            rc = LQ_ERR_NOMEM;
            break;
        }
        rc = map_file(s, err);
        if (rc == LQ_OK) rc = parse_shard(st, s, i == 0, err);
        if (rc != LQ_OK) lq_fail_wrap(err, "%s", index_path);
    }
    if (rc == LQ_OK) rc = index_names(st, err);
    if (rc == LQ_OK) rc = check_weight_map(st, index_path, dir, weight_map, err);
done:
    free(names);
    free(dir);
    json_decref(root);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Public entry points                                                                        */

/* Picks the file to read in a directory: model.safetensors, else its index. */
static lq_status resolve_dir(const char *dir, char **out, lq_error *err) {
    static const char *const candidates[] = {"model.safetensors", "model.safetensors.index.json"};
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
        char *p = join_path(dir, candidates[i], err);
        if (!p) return LQ_ERR_NOMEM;
        struct stat sb;
        if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode)) {
            *out = p;
            return LQ_OK;
        }
        free(p);
    }
    return lq_fail(err, LQ_ERR_IO, "%s: no model.safetensors or model.safetensors.index.json in this directory",
                   dir);
}

lq_status lq_safetensors_open(const char *path, lq_safetensors **out, lq_error *err) {
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0) return lq_fail(err, LQ_ERR_IO, "%s: %s", path, strerror(errno));
    char *file = NULL;
    lq_status rc = S_ISDIR(sb.st_mode) ? resolve_dir(path, &file, err) : LQ_OK;
    if (rc != LQ_OK) return rc;
    const char *target = file ? file : path;
    lq_safetensors *st = new_handle(path, err);
    if (!st) {
        free(file);
        return LQ_ERR_NOMEM;
    }
    if (ends_with(target, ".json")) {
        rc = open_index(target, st, err);
    } else {
        st_shard *s = add_shard(st, target, err);
        rc = s ? map_file(s, err) : LQ_ERR_NOMEM;
        if (rc == LQ_OK) rc = parse_shard(st, s, true, err);
        if (rc == LQ_OK) rc = index_names(st, err);
    }
    free(file);
    if (rc != LQ_OK) {
        lq_safetensors_close(st);
        return rc;
    }
    *out = st;
    return LQ_OK;
}

lq_status lq_safetensors_open_memory(const void *data, size_t size, const char *name, lq_safetensors **out,
                                     lq_error *err) {
    *out = NULL;
    if (!name) name = "<memory>";
    lq_safetensors *st = new_handle(name, err);
    if (!st) return LQ_ERR_NOMEM;
    st_shard *s = add_shard(st, name, err);
    lq_status rc = LQ_ERR_NOMEM;
    if (s) {
        s->base = data;
        s->size = size;
        rc = parse_shard(st, s, true, err);
    }
    if (rc == LQ_OK) rc = index_names(st, err);
    if (rc != LQ_OK) {
        lq_safetensors_close(st);
        return rc;
    }
    *out = st;
    return LQ_OK;
}

int64_t lq_safetensors_n_tensors(const lq_safetensors *st) { return st->n_tensors; }

const lq_st_tensor *lq_safetensors_tensor(const lq_safetensors *st, int64_t i) {
    return i >= 0 && i < st->n_tensors ? &st->tensors[i] : NULL;
}

const lq_st_tensor *lq_safetensors_find(const lq_safetensors *st, const char *name) {
    int64_t i = lq_name_index_find(st->by_name, st->n_tensors, st_name_of, st, name);
    return i < 0 ? NULL : &st->tensors[i];
}

int64_t lq_safetensors_n_metadata(const lq_safetensors *st) { return st->n_meta; }

const char *lq_safetensors_metadata_key(const lq_safetensors *st, int64_t i) {
    return i >= 0 && i < st->n_meta ? st->meta_keys[i] : NULL;
}

const char *lq_safetensors_metadata_value(const lq_safetensors *st, int64_t i) {
    return i >= 0 && i < st->n_meta ? st->meta_values[i] : NULL;
}
