/* gguf_write.c — GGUF v3 writer. Metadata is kept in memory (already encoded); tensor data is
 * streamed in declaration order and never held. Output goes to "<path>.tmp.XXXXXX" in the
 * destination directory and is fsynced and renamed into place only when every declared byte was
 * written, so a failed or aborted write never leaves a partial file behind. */
#include "gguf_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define OUT_BUF_BYTES (1u << 20)
/* Keys copied from a reader are not NUL-terminated: print them with "%.*s". */
#define KEY_ARG(k, n) (int)((n) < 100 ? (n) : 100), (k)

typedef struct bytes {
    uint8_t *p;
    size_t n, cap;
} bytes;

typedef struct wkv {
    char *key; /* may hold any bytes when copied from a reader; key_len is authoritative */
    uint64_t key_len;
    lq_gguf_type type;
    bytes value; /* encoded value as it follows the type id in the file */
} wkv;

typedef struct wtensor {
    char name[LQ_MAX_NAME];
    uint32_t n_dims;
    int64_t ne[LQ_MAX_DIMS];
    lq_type type;
    uint64_t nbytes;
    uint64_t offset; /* assigned when the header is written */
} wtensor;

struct lq_gguf_writer {
    char *path;
    char *tmp_path;
    int fd;
    wkv *kv;
    int64_t n_kv, cap_kv;
    wtensor *tensors;
    int64_t n_tensors, cap_tensors;
    uint64_t data_bytes; /* padded data section size at the default alignment, overflow guard */
    bool header_written;
    lq_error failure; /* first error after which the output is unusable (code LQ_OK if none) */
    uint32_t alignment;
    int64_t cur;          /* tensor being streamed */
    uint64_t cur_written; /* bytes of it written so far */
    bytes out;            /* output buffer */
};

/* ---------------------------------------------------------------------------------------------
 * Byte buffers
 * ------------------------------------------------------------------------------------------- */
static bool bytes_reserve(bytes *b, size_t extra) {
    if (extra <= b->cap - b->n) return true;
    if (extra > SIZE_MAX / 2 - b->n) return false;
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->n < extra) cap *= 2;
    uint8_t *p = (uint8_t *)realloc(b->p, cap);
    if (!p) return false;
    b->p = p;
    b->cap = cap;
    return true;
}

static bool bytes_put(bytes *b, const void *data, size_t n) {
    if (!bytes_reserve(b, n)) return false;
    if (n) memcpy(b->p + b->n, data, n);
    b->n += n;
    return true;
}

static bool bytes_u64(bytes *b, uint64_t v) { return bytes_put(b, &v, 8); }
static bool bytes_i32(bytes *b, int32_t v) { return bytes_put(b, &v, 4); }
static bool bytes_str(bytes *b, const char *s, uint64_t len) {
    return len <= SIZE_MAX && bytes_u64(b, len) && bytes_put(b, s, (size_t)len);
}

/* ---------------------------------------------------------------------------------------------
 * Output: buffered writes to the temporary file; any failure poisons the writer.
 * ------------------------------------------------------------------------------------------- */
static lq_status poison(lq_gguf_writer *w, lq_error *err, lq_status code, const char *fmt, ...)
    LQ_PRINTF(4, 5);

static lq_status poison(lq_gguf_writer *w, lq_error *err, lq_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    lq_vfail(&w->failure, code, fmt, ap);
    va_end(ap);
    if (err) *err = w->failure;
    /* The temporary file is useless now: remove it at once. */
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
        unlink(w->tmp_path);
    }
    return code;
}

static lq_status write_all(lq_gguf_writer *w, const void *data, size_t n, lq_error *err) {
    const uint8_t *p = (const uint8_t *)data;
    while (n > 0) {
        ssize_t k = write(w->fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0)
            return poison(w, err, LQ_ERR_IO, "%s: write to %s failed: %s", w->path, w->tmp_path,
                          k < 0 ? strerror(errno) : "no progress");
        p += k;
        n -= (size_t)k;
    }
    return LQ_OK;
}

static lq_status flush_out(lq_gguf_writer *w, lq_error *err) {
    lq_status st = write_all(w, w->out.p, w->out.n, err);
    w->out.n = 0;
    return st;
}

static lq_status emit(lq_gguf_writer *w, const void *data, size_t n, lq_error *err) {
    if (n <= w->out.cap - w->out.n) {
        memcpy(w->out.p + w->out.n, data, n);
        w->out.n += n;
        return LQ_OK;
    }
    lq_status st = flush_out(w, err);
    if (st) return st;
    if (n >= w->out.cap) return write_all(w, data, n, err); /* large pieces go straight out */
    memcpy(w->out.p, data, n);
    w->out.n = n;
    return LQ_OK;
}

static lq_status emit_zeros(lq_gguf_writer *w, uint64_t n, lq_error *err) {
    static const uint8_t zeros[256];
    while (n > 0) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        lq_status st = emit(w, zeros, k, err);
        if (st) return st;
        n -= k;
    }
    return LQ_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Open / abort
 * ------------------------------------------------------------------------------------------- */
lq_status lq_gguf_writer_open(const char *path, lq_gguf_writer **out, lq_error *err) {
    if (!path || !out) return lq_fail(err, LQ_ERR_INVALID, "lq_gguf_writer_open: path or out is NULL");
    *out = NULL;
    lq_gguf_writer *w = (lq_gguf_writer *)lq_calloc(1, sizeof *w, err, "GGUF writer");
    if (!w) return LQ_ERR_NOMEM;
    w->fd = -1;
    w->alignment = LQ_GGUF_DEFAULT_ALIGNMENT;
    size_t plen = strlen(path);
    w->path = strdup(path);
    w->tmp_path = (char *)malloc(plen + sizeof ".tmp.XXXXXX");
    w->out.p = (uint8_t *)malloc(OUT_BUF_BYTES);
    w->out.cap = OUT_BUF_BYTES;
    if (!w->path || !w->tmp_path || !w->out.p) {
        lq_gguf_writer_abort(w);
        return lq_fail(err, LQ_ERR_NOMEM, "%s: out of memory creating the GGUF writer", path);
    }
    memcpy(w->tmp_path, path, plen);
    memcpy(w->tmp_path + plen, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");
    w->fd = mkostemp(w->tmp_path, O_CLOEXEC);
    if (w->fd < 0) {
        lq_status st = lq_fail(err, LQ_ERR_IO, "%s: cannot create temporary file %s: %s", path,
                               w->tmp_path, strerror(errno));
        lq_gguf_writer_abort(w);
        return st;
    }
    *out = w;
    return LQ_OK;
}

void lq_gguf_writer_abort(lq_gguf_writer *w) {
    if (!w) return;
    if (w->fd >= 0) {
        close(w->fd);
        unlink(w->tmp_path);
    }
    for (int64_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].value.p);
    }
    free(w->kv);
    free(w->tensors);
    free(w->out.p);
    free(w->tmp_path);
    free(w->path);
    free(w);
}

/* ---------------------------------------------------------------------------------------------
 * Metadata
 * ------------------------------------------------------------------------------------------- */
static lq_status check_open_for_metadata(lq_gguf_writer *w, lq_error *err) {
    if (!w) return lq_fail(err, LQ_ERR_INVALID, "GGUF writer is NULL");
    if (w->failure.code) {
        if (err) *err = w->failure;
        return w->failure.code;
    }
    if (w->header_written)
        return lq_fail(err, LQ_ERR_INVALID, "%s: metadata and tensors cannot change after data was written",
                       w->path);
    return LQ_OK;
}

static int64_t find_kv(const lq_gguf_writer *w, const char *key, uint64_t len) {
    for (int64_t i = 0; i < w->n_kv; i++)
        if (w->kv[i].key_len == len && memcmp(w->kv[i].key, key, (size_t)len) == 0) return i;
    return -1;
}

/* Stores an encoded value under key: replaces the value of an existing key in place (keeping
 * its position), else appends. Takes ownership of value->p in both success and failure. */
static lq_status put_kv(lq_gguf_writer *w, const char *key, uint64_t key_len, lq_gguf_type type,
                        bytes *value, lq_error *err) {
    int64_t i = find_kv(w, key, key_len);
    if (i >= 0) {
        free(w->kv[i].value.p);
        w->kv[i].type = type;
        w->kv[i].value = *value;
        return LQ_OK;
    }
    if (w->n_kv == w->cap_kv) {
        int64_t cap = w->cap_kv ? w->cap_kv * 2 : 32;
        wkv *kv = (wkv *)realloc(w->kv, (size_t)cap * sizeof *kv);
        if (!kv) {
            free(value->p);
            return lq_fail(err, LQ_ERR_NOMEM, "%s: out of memory for metadata", w->path);
        }
        w->kv = kv;
        w->cap_kv = cap;
    }
    char *k = (char *)malloc((size_t)key_len + 1);
    if (!k) {
        free(value->p);
        return lq_fail(err, LQ_ERR_NOMEM, "%s: out of memory for metadata", w->path);
    }
    memcpy(k, key, (size_t)key_len);
    k[key_len] = '\0';
    w->kv[w->n_kv++] = (wkv){k, key_len, type, *value};
    return LQ_OK;
}

static lq_status check_key(lq_gguf_writer *w, const char *key, uint64_t len, lq_error *err) {
    lq_status st = check_open_for_metadata(w, err);
    if (st) return st;
    if (!key || len == 0) return lq_fail(err, LQ_ERR_INVALID, "%s: empty metadata key", w->path);
    return LQ_OK;
}

static bool is_scalar(lq_gguf_type t) { return lq_gguf_type_size(t) > 0; }

/* general.alignment decides the file layout: only a valid u32 power of two is accepted. */
static lq_status check_alignment_kv(lq_gguf_writer *w, const char *key, uint64_t len,
                                    lq_gguf_type type, const void *value, lq_error *err) {
    if (len != strlen(GGUF_KEY_ALIGNMENT) || memcmp(key, GGUF_KEY_ALIGNMENT, (size_t)len) != 0)
        return LQ_OK;
    uint32_t a = 0;
    if (type == LQ_GGUF_UINT32) memcpy(&a, value, 4);
    if (type != LQ_GGUF_UINT32 || !gguf_alignment_ok(a))
        return lq_fail(err, LQ_ERR_INVALID, "%s: %s must be a u32 nonzero power of two (got %s %" PRIu32 ")",
                       w->path, GGUF_KEY_ALIGNMENT, lq_gguf_type_name(type), a);
    return LQ_OK;
}

static lq_status set_scalar_n(lq_gguf_writer *w, const char *key, uint64_t len, lq_gguf_type type,
                              const void *value, lq_error *err) {
    lq_status st = check_key(w, key, len, err);
    if (st) return st;
    if (!is_scalar(type) || !value)
        return lq_fail(err, LQ_ERR_INVALID, "%s: key '%.*s': %s is not a scalar value type", w->path,
                       KEY_ARG(key, len), lq_gguf_type_name(type));
    if ((st = check_alignment_kv(w, key, len, type, value, err))) return st;
    bytes b = {NULL, 0, 0};
    uint8_t flag;
    if (type == LQ_GGUF_BOOL) { /* store bools as 0/1 */
        flag = *(const uint8_t *)value != 0;
        value = &flag;
    }
    if (!bytes_put(&b, value, lq_gguf_type_size(type)))
        return lq_fail(err, LQ_ERR_NOMEM, "%s: out of memory for metadata", w->path);
    return put_kv(w, key, len, type, &b, err);
}

lq_status lq_gguf_writer_set_scalar(lq_gguf_writer *w, const char *key, lq_gguf_type type,
                                    const void *value, lq_error *err) {
    return set_scalar_n(w, key, key ? strlen(key) : 0, type, value, err);
}

lq_status lq_gguf_writer_set_u32(lq_gguf_writer *w, const char *key, uint32_t v, lq_error *err) {
    return lq_gguf_writer_set_scalar(w, key, LQ_GGUF_UINT32, &v, err);
}

lq_status lq_gguf_writer_set_f32(lq_gguf_writer *w, const char *key, float v, lq_error *err) {
    return lq_gguf_writer_set_scalar(w, key, LQ_GGUF_FLOAT32, &v, err);
}

lq_status lq_gguf_writer_set_bool(lq_gguf_writer *w, const char *key, bool v, lq_error *err) {
    uint8_t b = v ? 1 : 0;
    return lq_gguf_writer_set_scalar(w, key, LQ_GGUF_BOOL, &b, err);
}

static lq_status set_str_n(lq_gguf_writer *w, const char *key, uint64_t key_len, const char *s,
                           uint64_t len, lq_error *err) {
    lq_status st = check_key(w, key, key_len, err);
    if (st) return st;
    if (!s && len)
        return lq_fail(err, LQ_ERR_INVALID, "%s: key '%.*s': NULL string", w->path, KEY_ARG(key, key_len));
    bytes b = {NULL, 0, 0};
    if (!bytes_str(&b, s, len)) {
        free(b.p);
        return lq_fail(err, LQ_ERR_NOMEM, "%s: out of memory for metadata", w->path);
    }
    return put_kv(w, key, key_len, LQ_GGUF_STRING, &b, err);
}

lq_status lq_gguf_writer_set_str(lq_gguf_writer *w, const char *key, const char *s, uint64_t len,
                                 lq_error *err) {
    return set_str_n(w, key, key ? strlen(key) : 0, s, len, err);
}

static lq_status set_arr_n(lq_gguf_writer *w, const char *key, uint64_t key_len,
                           lq_gguf_type elem_type, const void *data, uint64_t n, lq_error *err) {
    lq_status st = check_key(w, key, key_len, err);
    if (st) return st;
    if (!is_scalar(elem_type))
        return lq_fail(err, LQ_ERR_INVALID, "%s: key '%.*s': arrays of %s are not allowed here",
                       w->path, KEY_ARG(key, key_len), lq_gguf_type_name(elem_type));
    uint64_t size;
    if (!lq_mul_u64(n, lq_gguf_type_size(elem_type), &size) || size > SIZE_MAX / 2 || (!data && n))
        return lq_fail(err, LQ_ERR_INVALID, "%s: key '%.*s': bad array of %" PRIu64 " elements", w->path,
                       KEY_ARG(key, key_len), n);
    bytes b = {NULL, 0, 0};
    if (!bytes_i32(&b, (int32_t)elem_type) || !bytes_u64(&b, n) || !bytes_put(&b, data, (size_t)size)) {
        free(b.p);
        return lq_fail(err, LQ_ERR_NOMEM, "%s: out of memory for metadata", w->path);
    }
    if (elem_type == LQ_GGUF_BOOL) /* bools as 0/1 */
        for (size_t j = 12; j < b.n; j++) b.p[j] = b.p[j] != 0;
    return put_kv(w, key, key_len, LQ_GGUF_ARRAY, &b, err);
}

lq_status lq_gguf_writer_set_arr(lq_gguf_writer *w, const char *key, lq_gguf_type elem_type,
                                 const void *data, uint64_t n, lq_error *err) {
    return set_arr_n(w, key, key ? strlen(key) : 0, elem_type, data, n, err);
}

/* String arrays come either from lq_str items (strs) or from a reader's kv (src, i). */
static lq_status set_arr_str_n(lq_gguf_writer *w, const char *key, uint64_t key_len,
                               const lq_str *strs, const lq_gguf *src, int64_t src_i, uint64_t n,
                               lq_error *err) {
    lq_status st = check_key(w, key, key_len, err);
    if (st) return st;
    if (!strs && !src && n)
        return lq_fail(err, LQ_ERR_INVALID, "%s: key '%.*s': NULL string array", w->path, KEY_ARG(key, key_len));
    bytes b = {NULL, 0, 0};
    bool ok = bytes_i32(&b, LQ_GGUF_STRING) && bytes_u64(&b, n);
    for (uint64_t j = 0; ok && j < n; j++) {
        lq_str s = strs ? strs[j] : lq_gguf_arr_str(src, src_i, j);
        if (!s.ptr && s.len) {
            free(b.p);
            return lq_fail(err, LQ_ERR_INVALID, "%s: key '%.*s': element %" PRIu64 " is NULL", w->path,
                           KEY_ARG(key, key_len), j);
        }
        ok = bytes_str(&b, s.ptr, s.len);
    }
    if (!ok) {
        free(b.p);
        return lq_fail(err, LQ_ERR_NOMEM, "%s: out of memory for metadata", w->path);
    }
    return put_kv(w, key, key_len, LQ_GGUF_ARRAY, &b, err);
}

lq_status lq_gguf_writer_set_arr_str(lq_gguf_writer *w, const char *key, const lq_str *strs,
                                     uint64_t n, lq_error *err) {
    return set_arr_str_n(w, key, key ? strlen(key) : 0, strs, NULL, 0, n, err);
}

lq_status lq_gguf_writer_copy_kv(lq_gguf_writer *w, const lq_gguf *src, int64_t i, lq_error *err) {
    lq_status st = check_open_for_metadata(w, err);
    if (st) return st;
    if (!src || i < 0 || i >= lq_gguf_n_kv(src))
        return lq_fail(err, LQ_ERR_INVALID, "%s: copy_kv: kv index %" PRId64 " out of range", w->path, i);
    lq_str key = lq_gguf_key(src, i);
    lq_gguf_type type = lq_gguf_kv_type(src, i);
    switch (type) {
    case LQ_GGUF_STRING: {
        lq_str s = lq_gguf_get_str(src, i);
        return set_str_n(w, key.ptr, key.len, s.ptr, s.len, err);
    }
    case LQ_GGUF_ARRAY:
        if (lq_gguf_arr_type(src, i) == LQ_GGUF_STRING)
            return set_arr_str_n(w, key.ptr, key.len, NULL, src, i, lq_gguf_arr_n(src, i), err);
        return set_arr_n(w, key.ptr, key.len, lq_gguf_arr_type(src, i), lq_gguf_kv_data(src, i),
                         lq_gguf_arr_n(src, i), err);
    default:
        return set_scalar_n(w, key.ptr, key.len, type, lq_gguf_kv_data(src, i), err);
    }
}

lq_status lq_gguf_writer_remove_key(lq_gguf_writer *w, const char *key) {
    if (!w || !key) return LQ_ERR_INVALID;
    if (w->header_written || w->failure.code) return LQ_ERR_INVALID;
    int64_t i = find_kv(w, key, strlen(key));
    if (i < 0) return LQ_OK;
    free(w->kv[i].key);
    free(w->kv[i].value.p);
    memmove(&w->kv[i], &w->kv[i + 1], (size_t)(w->n_kv - i - 1) * sizeof *w->kv);
    w->n_kv--;
    return LQ_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Tensors
 * ------------------------------------------------------------------------------------------- */
lq_status lq_gguf_writer_add_tensor(lq_gguf_writer *w, const char *name, uint32_t n_dims,
                                    const int64_t *ne, lq_type type, lq_error *err) {
    lq_status st = check_open_for_metadata(w, err);
    if (st) return st;
    if (!name) return lq_fail(err, LQ_ERR_INVALID, "%s: tensor name is NULL", w->path);
    const char *problem = gguf_tensor_name_problem(name, strlen(name));
    if (problem) return lq_fail(err, LQ_ERR_INVALID, "%s: tensor '%.80s': %s", w->path, name, problem);
    if (n_dims < 1 || n_dims > LQ_MAX_DIMS || !ne)
        return lq_fail(err, LQ_ERR_INVALID, "%s: tensor '%s': n_dims %" PRIu32 " is not in 1..%d", w->path,
                       name, n_dims, LQ_MAX_DIMS);
    for (int64_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return lq_fail(err, LQ_ERR_INVALID, "%s: duplicate tensor name '%s'", w->path, name);
    wtensor t;
    memset(&t, 0, sizeof t);
    memcpy(t.name, name, strlen(name) + 1);
    t.n_dims = n_dims;
    for (int d = 0; d < LQ_MAX_DIMS; d++) t.ne[d] = (uint32_t)d < n_dims ? ne[d] : 1;
    t.type = type;
    if ((problem = gguf_tensor_nbytes(type, n_dims, t.ne, &t.nbytes)))
        return lq_fail(err, LQ_ERR_INVALID, "%s: tensor '%s': type id %d, shape [%" PRId64 ", %" PRId64
                       ", %" PRId64 ", %" PRId64 "]: %s",
                       w->path, name, (int)type, t.ne[0], t.ne[1], t.ne[2], t.ne[3], problem);
    /* Guard the data section size so offsets cannot overflow whatever the alignment. */
    uint64_t total;
    if (!lq_add_u64(w->data_bytes, t.nbytes, &total) || !lq_add_u64(total, UINT32_MAX, &total) ||
        total > (uint64_t)INT64_MAX)
        return lq_fail(err, LQ_ERR_INVALID, "%s: tensor '%s': data section too large", w->path, name);
    if (w->n_tensors == w->cap_tensors) {
        int64_t cap = w->cap_tensors ? w->cap_tensors * 2 : 64;
        wtensor *p = (wtensor *)realloc(w->tensors, (size_t)cap * sizeof *p);
        if (!p) return lq_fail(err, LQ_ERR_NOMEM, "%s: out of memory for tensor infos", w->path);
        w->tensors = p;
        w->cap_tensors = cap;
    }
    w->data_bytes = total; /* an upper bound: each tensor padded by less than UINT32_MAX */
    w->tensors[w->n_tensors++] = t;
    return LQ_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Header and data
 * ------------------------------------------------------------------------------------------- */
static void choose_alignment_and_offsets(lq_gguf_writer *w) {
    int64_t i = find_kv(w, GGUF_KEY_ALIGNMENT, strlen(GGUF_KEY_ALIGNMENT));
    w->alignment = LQ_GGUF_DEFAULT_ALIGNMENT;
    if (i >= 0 && w->kv[i].type == LQ_GGUF_UINT32) memcpy(&w->alignment, w->kv[i].value.p, 4);
    uint64_t offset = 0; /* cannot overflow: bounded by data_bytes (checked in add_tensor) */
    for (int64_t t = 0; t < w->n_tensors; t++) {
        w->tensors[t].offset = offset;
        offset += lq_pad_u64(w->tensors[t].nbytes, w->alignment);
    }
}

static lq_status emit_str(lq_gguf_writer *w, const char *s, uint64_t len, lq_error *err) {
    lq_status st = emit(w, &len, 8, err);
    return st ? st : emit(w, s, (size_t)len, err);
}

static lq_status emit_header(lq_gguf_writer *w, lq_error *err) {
    choose_alignment_and_offsets(w);
    uint32_t version = GGUF_VERSION;
    int64_t counts[2] = {w->n_tensors, w->n_kv};
    uint64_t pos = 4 + 4 + 16;
    lq_status st = emit(w, GGUF_MAGIC, 4, err);
    if (!st) st = emit(w, &version, 4, err);
    if (!st) st = emit(w, counts, sizeof counts, err);
    for (int64_t i = 0; i < w->n_kv && !st; i++) {
        const wkv *kv = &w->kv[i];
        int32_t type = (int32_t)kv->type;
        st = emit_str(w, kv->key, kv->key_len, err);
        if (!st) st = emit(w, &type, 4, err);
        if (!st) st = emit(w, kv->value.p, kv->value.n, err);
        pos += 8 + kv->key_len + 4 + kv->value.n;
    }
    for (int64_t i = 0; i < w->n_tensors && !st; i++) {
        const wtensor *t = &w->tensors[i];
        int32_t type = (int32_t)t->type;
        uint64_t name_len = strlen(t->name);
        st = emit_str(w, t->name, name_len, err);
        if (!st) st = emit(w, &t->n_dims, 4, err);
        if (!st) st = emit(w, t->ne, 8 * (size_t)t->n_dims, err);
        if (!st) st = emit(w, &type, 4, err);
        if (!st) st = emit(w, &t->offset, 8, err);
        pos += 8 + name_len + 4 + 8 * (uint64_t)t->n_dims + 4 + 8;
    }
    if (!st) st = emit_zeros(w, lq_pad_u64(pos, w->alignment) - pos, err);
    w->header_written = true;
    return st;
}

/* Pads finished tensors and moves to the next one that still expects bytes. */
static lq_status advance(lq_gguf_writer *w, lq_error *err) {
    while (w->cur < w->n_tensors && w->cur_written == w->tensors[w->cur].nbytes) {
        uint64_t n = w->tensors[w->cur].nbytes;
        lq_status st = emit_zeros(w, lq_pad_u64(n, w->alignment) - n, err);
        if (st) return st;
        w->cur++;
        w->cur_written = 0;
    }
    return LQ_OK;
}

static lq_status check_writable(lq_gguf_writer *w, lq_error *err) {
    if (!w) return lq_fail(err, LQ_ERR_INVALID, "GGUF writer is NULL");
    if (w->failure.code) {
        if (err) *err = w->failure;
        return w->failure.code;
    }
    if (w->header_written) return LQ_OK;
    lq_status st = emit_header(w, err);
    return st ? st : advance(w, err);
}

lq_status lq_gguf_writer_write(lq_gguf_writer *w, const void *data, size_t n, lq_error *err) {
    lq_status st = check_writable(w, err);
    if (st) return st;
    if (!data && n) return lq_fail(err, LQ_ERR_INVALID, "%s: write of %zu bytes from NULL", w->path, n);
    const uint8_t *p = (const uint8_t *)data;
    while (n > 0) {
        if (w->cur >= w->n_tensors)
            return poison(w, err, LQ_ERR_INVALID,
                          "%s: %zu bytes written beyond the last declared tensor", w->path, n);
        uint64_t want = w->tensors[w->cur].nbytes - w->cur_written;
        size_t k = n < want ? n : (size_t)want;
        if ((st = emit(w, p, k, err))) return st;
        w->cur_written += k;
        p += k;
        n -= k;
        if ((st = advance(w, err))) return st;
    }
    return LQ_OK;
}

/* fsync of the directory makes the rename itself durable. */
static void sync_dir_of(const char *path) {
    char *copy = strdup(path);
    if (!copy) return;
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(copy);
}

static lq_status commit_file(lq_gguf_writer *w, lq_error *err) {
    lq_status st = flush_out(w, err);
    if (st) return st;
    if (fchmod(w->fd, 0644) != 0 || fsync(w->fd) != 0)
        return poison(w, err, LQ_ERR_IO, "%s: fsync of %s failed: %s", w->path, w->tmp_path, strerror(errno));
    int fd = w->fd;
    w->fd = -1;
    if (close(fd) != 0) {
        int e = errno;
        unlink(w->tmp_path);
        return poison(w, err, LQ_ERR_IO, "%s: close of %s failed: %s", w->path, w->tmp_path, strerror(e));
    }
    if (rename(w->tmp_path, w->path) != 0) {
        int e = errno;
        unlink(w->tmp_path);
        return poison(w, err, LQ_ERR_IO, "%s: rename from %s failed: %s", w->path, w->tmp_path, strerror(e));
    }
    sync_dir_of(w->path);
    return LQ_OK;
}

lq_status lq_gguf_writer_finish(lq_gguf_writer *w, lq_error *err) {
    if (!w) return lq_fail(err, LQ_ERR_INVALID, "GGUF writer is NULL");
    lq_status st = check_writable(w, err);
    if (!st && w->cur < w->n_tensors) {
        const wtensor *t = &w->tensors[w->cur];
        st = poison(w, err, LQ_ERR_INVALID,
                    "%s: tensor '%s' is incomplete: %" PRIu64 " of %" PRIu64 " bytes written "
                    "(%" PRId64 " of %" PRId64 " tensors complete); output discarded",
                    w->path, t->name, w->cur_written, t->nbytes, w->cur, w->n_tensors);
    }
    if (!st) st = commit_file(w, err);
    lq_gguf_writer_abort(w); /* frees; the temporary file is already gone or renamed */
    return st;
}
