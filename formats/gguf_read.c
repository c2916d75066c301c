/* gguf_read.c — GGUF v3 reader. The file is mmapped (or given as a memory image) and never
 * copied; every count, length and offset is checked against the bytes that remain before it is
 * trusted, so a truncated or lying file gives an error naming the file, the item and the offset. */
#include "gguf_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct gguf_kv {
    lq_str key;
    uint64_t offset;        /* file offset of the key, for messages */
    lq_gguf_type type;
    lq_gguf_type arr_type;  /* LQ_GGUF_TYPE_COUNT unless type == ARRAY */
    uint64_t arr_n;
    const uint8_t *data;    /* scalar value, array elements, or the bytes of a STRING */
    uint64_t str_len;       /* STRING */
    uint64_t *str_at;       /* string arrays: file offset of each element's u64 length */
} gguf_kv;

/* Name → index, sorted by bytes, for duplicate detection and O(log n) lookups. */
typedef struct name_ref {
    const char *ptr;
    uint64_t len;
    int64_t index;
} name_ref;

struct lq_gguf {
    char *path;
    const uint8_t *base;
    uint64_t size;
    void *map; /* non-NULL when we mmapped the file */
    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset;
    int64_t n_kv;
    gguf_kv *kv;
    name_ref *kv_sorted;
    int64_t n_tensors;
    lq_gguf_tensor_info *tensors;
    name_ref *tensor_sorted;
};

/* ---------------------------------------------------------------------------------------------
 * Cursor over the image with the context ("key 'x'", "tensor 'y'") used in messages.
 * ------------------------------------------------------------------------------------------- */
typedef struct cursor {
    const uint8_t *base;
    uint64_t size, pos;
    const char *path;
    lq_error *err;
    char ctx[160];
} cursor;

/* Copies up to 100 bytes of s into out for a message: control bytes become '?' so messages stay
 * one line, and non-ASCII bytes too when s is not valid UTF-8, so messages stay valid text. */
static void printable(char *out, size_t cap, const char *s, uint64_t len) {
    size_t n = len < 100 ? (size_t)len : 100;
    if (n >= cap) n = cap - 1;
    while (n > 0 && n < len && ((unsigned char)s[n] & 0xC0) == 0x80) n--; /* whole characters */
    bool utf8 = gguf_utf8_valid(s, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8)) ? '?' : (char)c;
    }
    out[n] = '\0';
    if (len > n && n >= 3) memcpy(out + n - 3, "...", 3);
}

static void set_ctx_named(cursor *c, const char *what, const char *s, uint64_t len) {
    char buf[104];
    printable(buf, sizeof buf, s, len);
    snprintf(c->ctx, sizeof c->ctx, "%s '%s'", what, buf);
}

static lq_status truncated(cursor *c, const char *what, uint64_t need) {
    return lq_fail(c->err, LQ_ERR_FORMAT,
                   "%s: %s: truncated: %s needs %" PRIu64 " bytes at offset %" PRIu64
                   " but only %" PRIu64 " remain",
                   c->path, c->ctx, what, need, c->pos, c->size - c->pos);
}

static uint64_t left(const cursor *c) { return c->size - c->pos; }

static lq_status take(cursor *c, uint64_t n, const char *what, const uint8_t **p) {
    if (n > left(c)) return truncated(c, what, n);
    *p = c->base + c->pos;
    c->pos += n;
    return LQ_OK;
}

static lq_status rd_u32(cursor *c, const char *what, uint32_t *v) {
    const uint8_t *p = NULL;
    lq_status st = take(c, 4, what, &p);
    if (st == LQ_OK) memcpy(v, p, 4);
    return st;
}

static lq_status rd_i32(cursor *c, const char *what, int32_t *v) {
    const uint8_t *p = NULL;
    lq_status st = take(c, 4, what, &p);
    if (st == LQ_OK) memcpy(v, p, 4);
    return st;
}

static lq_status rd_u64(cursor *c, const char *what, uint64_t *v) {
    const uint8_t *p = NULL;
    lq_status st = take(c, 8, what, &p);
    if (st == LQ_OK) memcpy(v, p, 8);
    return st;
}

static lq_status rd_i64(cursor *c, const char *what, int64_t *v) {
    const uint8_t *p = NULL;
    lq_status st = take(c, 8, what, &p);
    if (st == LQ_OK) memcpy(v, p, 8);
    return st;
}

/* A string: u64 length then the bytes; the length is checked against what remains. */
static lq_status rd_str(cursor *c, const char *what, lq_str *s) {
    uint64_t at = c->pos, len;
    lq_status st = rd_u64(c, what, &len);
    if (st) return st;
    if (len > left(c))
        return lq_fail(c->err, LQ_ERR_FORMAT,
                       "%s: %s: %s length %" PRIu64 " at offset %" PRIu64
                       " exceeds the %" PRIu64 " bytes left in the file",
                       c->path, c->ctx, what, len, at, left(c));
    s->ptr = (const char *)(c->base + c->pos);
    s->len = len;
    c->pos += len;
    return LQ_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Type tables
 * ------------------------------------------------------------------------------------------- */
size_t lq_gguf_type_size(lq_gguf_type t) {
    switch (t) {
    case LQ_GGUF_UINT8: case LQ_GGUF_INT8: case LQ_GGUF_BOOL: return 1;
    case LQ_GGUF_UINT16: case LQ_GGUF_INT16: return 2;
    case LQ_GGUF_UINT32: case LQ_GGUF_INT32: case LQ_GGUF_FLOAT32: return 4;
    case LQ_GGUF_UINT64: case LQ_GGUF_INT64: case LQ_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

const char *lq_gguf_type_name(lq_gguf_type t) {
    static const char *const names[LQ_GGUF_TYPE_COUNT] = {
        "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "arr", "u64", "i64", "f64"};
    if ((int)t < 0 || t >= LQ_GGUF_TYPE_COUNT) return "invalid";
    return names[t];
}

/* ---------------------------------------------------------------------------------------------
 * Sorted name index
 * ------------------------------------------------------------------------------------------- */
static int cmp_bytes(const char *a, uint64_t alen, const char *b, uint64_t blen) {
    uint64_t n = alen < blen ? alen : blen;
    int r = n ? memcmp(a, b, (size_t)n) : 0;
    if (r) return r;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

static int cmp_name_ref(const void *pa, const void *pb) {
    const name_ref *a = (const name_ref *)pa, *b = (const name_ref *)pb;
    int r = cmp_bytes(a->ptr, a->len, b->ptr, b->len);
    if (r) return r;
    return a->index < b->index ? -1 : a->index > b->index; /* stable: first occurrence first */
}

/* Sorts refs and returns the index of the later item of the first duplicate pair, or -1. */
static int64_t sort_and_find_dup(name_ref *refs, int64_t n) {
    if (n > 1) qsort(refs, (size_t)n, sizeof *refs, cmp_name_ref);
    int64_t dup = -1;
    for (int64_t i = 1; i < n; i++)
        if (cmp_bytes(refs[i - 1].ptr, refs[i - 1].len, refs[i].ptr, refs[i].len) == 0 &&
            (dup < 0 || refs[i].index < dup))
            dup = refs[i].index;
    return dup;
}

static int64_t lookup(const name_ref *refs, int64_t n, const char *name) {
    if (!refs || !name) return -1;
    uint64_t len = strlen(name);
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int r = cmp_bytes(refs[mid].ptr, refs[mid].len, name, len);
        if (r < 0) lo = mid + 1;
        else hi = mid;
    }
    if (lo < n && cmp_bytes(refs[lo].ptr, refs[lo].len, name, len) == 0) return refs[lo].index;
    return -1;
}

/* ---------------------------------------------------------------------------------------------
 * Parsing
 * ------------------------------------------------------------------------------------------- */
static lq_status parse_header(cursor *c, lq_gguf *g, int64_t *n_tensors, int64_t *n_kv) {
    snprintf(c->ctx, sizeof c->ctx, "header");
    if (c->size < 4 || memcmp(c->base, GGUF_MAGIC, 4) != 0) {
        char magic[8];
        printable(magic, sizeof magic, (const char *)c->base, c->size < 4 ? c->size : 4);
        return lq_fail(c->err, LQ_ERR_FORMAT, "%s: not a GGUF file (magic '%s' at offset 0)",
                       c->path, magic);
    }
    c->pos = 4;
    lq_status st = rd_u32(c, "version", &g->version);
    if (st) return st;
    if (g->version != 2 && g->version != 3) {
        bool swapped = (g->version & 0xFFFFu) == 0 && g->version != 0;
        return lq_fail(c->err, LQ_ERR_UNSUPPORTED,
                       "%s: unsupported GGUF version %" PRIu32 " at offset 4%s "
                       "(this reader supports versions 2 and 3)",
                       c->path, g->version, swapped ? " (a big-endian file?)" : "");
    }
    uint64_t at = c->pos;
    if ((st = rd_i64(c, "tensor count", n_tensors)) || (st = rd_i64(c, "kv count", n_kv)))
        return st;
    /* Bound both counts by the bytes left before anything is allocated from them. */
    uint64_t rest = left(c);
    if (*n_tensors < 0 || (uint64_t)*n_tensors > rest / GGUF_MIN_TENSOR_INFO_BYTES)
        return lq_fail(c->err, LQ_ERR_FORMAT,
                       "%s: tensor count %" PRId64 " at offset %" PRIu64
                       " is impossible for the %" PRIu64 " bytes that follow",
                       c->path, *n_tensors, at, rest);
    if (*n_kv < 0 || (uint64_t)*n_kv > rest / GGUF_MIN_KV_BYTES ||
        (uint64_t)*n_kv * GGUF_MIN_KV_BYTES + (uint64_t)*n_tensors * GGUF_MIN_TENSOR_INFO_BYTES > rest)
        return lq_fail(c->err, LQ_ERR_FORMAT,
                       "%s: kv count %" PRId64 " at offset %" PRIu64
                       " is impossible for the %" PRIu64 " bytes that follow",
                       c->path, *n_kv, at + 8, rest);
    return LQ_OK;
}

/* Array value: element type, count, elements. String arrays get an offset table so that
 * element j is found in O(1). */
static lq_status parse_array(cursor *c, gguf_kv *kv) {
    int32_t et;
    lq_status st = rd_i32(c, "array element type", &et);
    if (st) return st;
    if (et == LQ_GGUF_ARRAY)
        return lq_fail(c->err, LQ_ERR_FORMAT, "%s: %s: nested arrays are not supported (offset %" PRIu64 ")",
                       c->path, c->ctx, c->pos - 4);
    if (et < 0 || et >= LQ_GGUF_TYPE_COUNT)
        return lq_fail(c->err, LQ_ERR_FORMAT,
                       "%s: %s: unknown array element type %" PRId32 " at offset %" PRIu64, c->path,
                       c->ctx, et, c->pos - 4);
    kv->arr_type = (lq_gguf_type)et;
    uint64_t at = c->pos;
    if ((st = rd_u64(c, "array count", &kv->arr_n))) return st;
    uint64_t min_elem = et == LQ_GGUF_STRING ? 8 : lq_gguf_type_size(kv->arr_type);
    uint64_t need;
    if (!lq_mul_u64(kv->arr_n, min_elem, &need) || need > left(c))
        return lq_fail(c->err, LQ_ERR_FORMAT,
                       "%s: %s: array count %" PRIu64 " at offset %" PRIu64
                       " needs more than the %" PRIu64 " bytes left",
                       c->path, c->ctx, kv->arr_n, at, left(c));
    if (et != LQ_GGUF_STRING) {
        kv->data = c->base + c->pos;
        c->pos += need;
        return LQ_OK;
    }
    kv->str_at = (uint64_t *)lq_malloc((size_t)kv->arr_n * sizeof *kv->str_at, c->err,
                                       "GGUF string array offsets");
    if (!kv->str_at) return LQ_ERR_NOMEM;
    for (uint64_t j = 0; j < kv->arr_n; j++) {
        kv->str_at[j] = c->pos;
        lq_str s;
        if ((st = rd_str(c, "array string", &s))) return st;
    }
    return LQ_OK;
}

static lq_status parse_kv(cursor *c, gguf_kv *kv, int64_t i) {
    snprintf(c->ctx, sizeof c->ctx, "kv #%" PRId64, i);
    kv->offset = c->pos;
    kv->arr_type = LQ_GGUF_TYPE_COUNT;
    lq_status st = rd_str(c, "key", &kv->key);
    if (st) return st;
    set_ctx_named(c, "key", kv->key.ptr, kv->key.len);
    int32_t type;
    if ((st = rd_i32(c, "value type", &type))) return st;
    if (type < 0 || type >= LQ_GGUF_TYPE_COUNT)
        return lq_fail(c->err, LQ_ERR_FORMAT, "%s: %s: unknown value type %" PRId32 " at offset %" PRIu64,
                       c->path, c->ctx, type, c->pos - 4);
    kv->type = (lq_gguf_type)type;
    if (kv->type == LQ_GGUF_ARRAY) return parse_array(c, kv);
    if (kv->type == LQ_GGUF_STRING) {
        lq_str s;
        if ((st = rd_str(c, "string value", &s))) return st;
        kv->data = (const uint8_t *)s.ptr;
        kv->str_len = s.len;
        return LQ_OK;
    }
    return take(c, lq_gguf_type_size(kv->type), "value", &kv->data);
}

/* Grows a parsed-items array by doubling: memory follows what the file really contains. */
static lq_status grow(void **items, int64_t *cap, int64_t need, int64_t max, size_t size,
                      lq_error *err) {
    if (need <= *cap) return LQ_OK;
    int64_t ncap = *cap ? *cap * 2 : 16;
    if (ncap > max) ncap = max;
    if (ncap < need) ncap = need;
    void *p = realloc(*items, (size_t)ncap * size);
    if (!p) return lq_fail(err, LQ_ERR_NOMEM, "out of memory for %" PRId64 " GGUF items", ncap);
    memset((char *)p + (size_t)*cap * size, 0, (size_t)(ncap - *cap) * size);
    *items = p;
    *cap = ncap;
    return LQ_OK;
}

static lq_status build_kv_index(cursor *c, lq_gguf *g) {
    g->kv_sorted = (name_ref *)lq_malloc((size_t)g->n_kv * sizeof *g->kv_sorted, c->err, "GGUF key index");
    if (!g->kv_sorted) return LQ_ERR_NOMEM;
    for (int64_t i = 0; i < g->n_kv; i++)
        g->kv_sorted[i] = (name_ref){g->kv[i].key.ptr, g->kv[i].key.len, i};
    int64_t dup = sort_and_find_dup(g->kv_sorted, g->n_kv);
    if (dup >= 0) {
        char name[104];
        printable(name, sizeof name, g->kv[dup].key.ptr, g->kv[dup].key.len);
        return lq_fail(c->err, LQ_ERR_FORMAT, "%s: duplicate key '%s' (kv #%" PRId64 " at offset %" PRIu64 ")",
                       c->path, name, dup, g->kv[dup].offset);
    }
    return LQ_OK;
}

static lq_status parse_kvs(cursor *c, lq_gguf *g, int64_t n_kv) {
    int64_t cap = 0;
    for (int64_t i = 0; i < n_kv; i++) {
        void *items = g->kv;
        lq_status st = grow(&items, &cap, i + 1, n_kv, sizeof *g->kv, c->err);
        g->kv = (gguf_kv *)items;
        if (st) return st;
        g->n_kv = i + 1; /* counted before parsing so a half-parsed entry is freed */
        if ((st = parse_kv(c, &g->kv[i], i))) return st;
    }
    return build_kv_index(c, g);
}

static lq_status read_alignment(cursor *c, lq_gguf *g) {
    g->alignment = LQ_GGUF_DEFAULT_ALIGNMENT;
    int64_t i = lookup(g->kv_sorted, g->n_kv, GGUF_KEY_ALIGNMENT);
    if (i < 0) return LQ_OK;
    const gguf_kv *kv = &g->kv[i];
    if (kv->type != LQ_GGUF_UINT32)
        return lq_fail(c->err, LQ_ERR_FORMAT, "%s: key '%s' at offset %" PRIu64 " has type %s, expected u32",
                       c->path, GGUF_KEY_ALIGNMENT, kv->offset, lq_gguf_type_name(kv->type));
    uint32_t a;
    memcpy(&a, kv->data, 4);
    if (!gguf_alignment_ok(a))
        return lq_fail(c->err, LQ_ERR_FORMAT,
                       "%s: key '%s' at offset %" PRIu64 ": alignment %" PRIu32
                       " is not a nonzero power of two",
                       c->path, GGUF_KEY_ALIGNMENT, kv->offset, a);
    g->alignment = a;
    return LQ_OK;
}

static lq_status parse_tensor_info(cursor *c, lq_gguf_tensor_info *t, int64_t i) {
    snprintf(c->ctx, sizeof c->ctx, "tensor info #%" PRId64, i);
    uint64_t at = c->pos;
    lq_str name;
    lq_status st = rd_str(c, "tensor name", &name);
    if (st) return st;
    const char *problem = gguf_tensor_name_problem(name.ptr, name.len);
    if (problem) {
        set_ctx_named(c, "tensor", name.ptr, name.len);
        return lq_fail(c->err, LQ_ERR_FORMAT, "%s: %s at offset %" PRIu64 ": %s (%" PRIu64 " bytes)",
                       c->path, c->ctx, at, problem, name.len);
    }
    memcpy(t->name, name.ptr, (size_t)name.len);
    t->name[name.len] = '\0';
    snprintf(c->ctx, sizeof c->ctx, "tensor '%s'", t->name);
    if ((st = rd_u32(c, "n_dims", &t->n_dims))) return st;
    if (t->n_dims < 1 || t->n_dims > LQ_MAX_DIMS)
        return lq_fail(c->err, LQ_ERR_FORMAT, "%s: %s: n_dims %" PRIu32 " at offset %" PRIu64 " is not in 1..%d",
                       c->path, c->ctx, t->n_dims, c->pos - 4, LQ_MAX_DIMS);
    for (int d = 0; d < LQ_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if ((st = rd_i64(c, "dimension", &t->ne[d]))) return st;
        if (t->ne[d] < 0)
            return lq_fail(c->err, LQ_ERR_FORMAT, "%s: %s: ne[%" PRIu32 "] = %" PRId64 " at offset %" PRIu64 " is negative",
                           c->path, c->ctx, d, t->ne[d], c->pos - 8);
    }
    int32_t type;
    if ((st = rd_i32(c, "type", &type))) return st;
    t->type = (lq_type)type;
    if (!lq_type_get(type))
        return lq_fail(c->err, LQ_ERR_FORMAT,
                       "%s: %s: unknown or removed ggml type id %" PRId32 " at offset %" PRIu64,
                       c->path, c->ctx, type, c->pos - 4);
    if ((problem = gguf_tensor_nbytes(t->type, t->n_dims, t->ne, &t->nbytes)))
        return lq_fail(c->err, LQ_ERR_FORMAT,
                       "%s: %s: shape [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 "] of type %s: %s",
                       c->path, c->ctx, t->ne[0], t->ne[1], t->ne[2], t->ne[3],
                       lq_type_get(type)->name, problem);
    return rd_u64(c, "offset", &t->offset);
}

/* Places each tensor: aligned offset, inside the file. */
static lq_status place_tensors(cursor *c, lq_gguf *g) {
    for (int64_t i = 0; i < g->n_tensors; i++) {
        lq_gguf_tensor_info *t = &g->tensors[i];
        if (t->offset % g->alignment != 0)
            return lq_fail(c->err, LQ_ERR_FORMAT,
                           "%s: tensor '%s': offset %" PRIu64 " is not a multiple of the alignment %" PRIu32,
                           c->path, t->name, t->offset, g->alignment);
        uint64_t start, end;
        if (!lq_add_u64(g->data_offset, t->offset, &start) || !lq_add_u64(start, t->nbytes, &end) ||
            end > g->size)
            return lq_fail(c->err, LQ_ERR_FORMAT,
                           "%s: tensor '%s': %" PRIu64 " bytes at data offset %" PRIu64
                           " (data section at file offset %" PRIu64 ") extend beyond the end of the file"
                           " (%" PRIu64 " bytes)",
                           c->path, t->name, t->nbytes, t->offset, g->data_offset, g->size);
        t->data = g->base + start;
    }
    return LQ_OK;
}

typedef struct span {
    uint64_t start, end;
    int64_t index;
} span;

static int cmp_span(const void *pa, const void *pb) {
    const span *a = (const span *)pa, *b = (const span *)pb;
    if (a->start != b->start) return a->start < b->start ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* Tensors may be stored in any order, but no two may share bytes. */
static lq_status check_overlaps(cursor *c, lq_gguf *g) {
    if (g->n_tensors < 2) return LQ_OK;
    span *spans = (span *)lq_malloc((size_t)g->n_tensors * sizeof *spans, c->err, "GGUF tensor spans");
    if (!spans) return LQ_ERR_NOMEM;
    int64_t n = 0;
    for (int64_t i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].nbytes > 0)
            spans[n++] = (span){g->tensors[i].offset, g->tensors[i].offset + g->tensors[i].nbytes, i};
    qsort(spans, (size_t)n, sizeof *spans, cmp_span);
    lq_status st = LQ_OK;
    for (int64_t k = 1; k < n && !st; k++)
        if (spans[k].start < spans[k - 1].end) /* sorted by start: a neighbour overlap suffices */
            st = lq_fail(c->err, LQ_ERR_FORMAT,
                         "%s: tensors '%s' (data offset %" PRIu64 ", %" PRIu64 " bytes) and '%s' "
                         "(data offset %" PRIu64 ") overlap",
                         c->path, g->tensors[spans[k - 1].index].name, spans[k - 1].start,
                         spans[k - 1].end - spans[k - 1].start, g->tensors[spans[k].index].name,
                         spans[k].start);
    free(spans);
    return st;
}

static lq_status build_tensor_index(cursor *c, lq_gguf *g) {
    g->tensor_sorted = (name_ref *)lq_malloc((size_t)g->n_tensors * sizeof *g->tensor_sorted, c->err,
                                             "GGUF tensor index");
    if (!g->tensor_sorted) return LQ_ERR_NOMEM;
    for (int64_t i = 0; i < g->n_tensors; i++)
        g->tensor_sorted[i] = (name_ref){g->tensors[i].name, strlen(g->tensors[i].name), i};
    int64_t dup = sort_and_find_dup(g->tensor_sorted, g->n_tensors);
    if (dup >= 0)
        return lq_fail(c->err, LQ_ERR_FORMAT, "%s: duplicate tensor name '%s' (tensor info #%" PRId64 ")",
                       c->path, g->tensors[dup].name, dup);
    return LQ_OK;
}

static lq_status parse_tensors(cursor *c, lq_gguf *g, int64_t n_tensors) {
    int64_t cap = 0;
    for (int64_t i = 0; i < n_tensors; i++) {
        void *items = g->tensors;
        lq_status st = grow(&items, &cap, i + 1, n_tensors, sizeof *g->tensors, c->err);
        g->tensors = (lq_gguf_tensor_info *)items;
        if (st) return st;
        g->n_tensors = i + 1;
        if ((st = parse_tensor_info(c, &g->tensors[i], i))) return st;
    }
    lq_status st = build_tensor_index(c, g);
    if (st) return st;
    g->data_offset = lq_pad_u64(c->pos, g->alignment); /* pos <= size: cannot overflow */
    if ((st = place_tensors(c, g))) return st;
    return check_overlaps(c, g);
}

static lq_status parse(lq_gguf *g, lq_error *err) {
    cursor c = {g->base, g->size, 0, g->path, err, ""};
    int64_t n_tensors = 0, n_kv = 0;
    lq_status st = parse_header(&c, g, &n_tensors, &n_kv);
    if (!st) st = parse_kvs(&c, g, n_kv);
    if (!st) st = read_alignment(&c, g);
    if (!st) st = parse_tensors(&c, g, n_tensors);
    return st;
}

/* ---------------------------------------------------------------------------------------------
 * Open / close
 * ------------------------------------------------------------------------------------------- */
static lq_gguf *new_handle(const char *name, lq_error *err) {
    lq_gguf *g = (lq_gguf *)lq_calloc(1, sizeof *g, err, "GGUF handle");
    if (!g) return NULL;
    g->path = strdup(name ? name : "<memory>");
    if (!g->path) {
        free(g);
        lq_fail(err, LQ_ERR_NOMEM, "out of memory opening %s", name ? name : "<memory>");
        return NULL;
    }
    return g;
}

static lq_status finish_open(lq_gguf *g, lq_gguf **out, lq_error *err) {
    lq_status st = parse(g, err);
    if (st) {
        lq_gguf_close(g);
        return st;
    }
    *out = g;
    return LQ_OK;
}

lq_status lq_gguf_open_memory(const void *data, size_t size, const char *name, lq_gguf **out,
                              lq_error *err) {
    if (!out) return lq_fail(err, LQ_ERR_INVALID, "lq_gguf_open_memory: out is NULL");
    *out = NULL;
    if (!data && size) return lq_fail(err, LQ_ERR_INVALID, "lq_gguf_open_memory: data is NULL");
    lq_gguf *g = new_handle(name, err);
    if (!g) return LQ_ERR_NOMEM;
    g->base = (const uint8_t *)(data ? data : "");
    g->size = size;
    return finish_open(g, out, err);
}

lq_status lq_gguf_open(const char *path, lq_gguf **out, lq_error *err) {
    if (!out || !path) return lq_fail(err, LQ_ERR_INVALID, "lq_gguf_open: path or out is NULL");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return lq_fail(err, LQ_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return lq_fail(err, LQ_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return lq_fail(err, LQ_ERR_IO, "%s: not a regular file", path);
    }
    if (sb.st_size < 8) {
        close(fd);
        return lq_fail(err, LQ_ERR_FORMAT, "%s: not a GGUF file (%lld bytes, too short for a header)",
                       path, (long long)sb.st_size);
    }
    void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd); /* the mapping keeps the file */
    if (map == MAP_FAILED) return lq_fail(err, LQ_ERR_IO, "%s: mmap failed: %s", path, strerror(e));
    lq_gguf *g = new_handle(path, err);
    if (!g) {
        munmap(map, (size_t)sb.st_size);
        return LQ_ERR_NOMEM;
    }
    g->map = map;
    g->base = (const uint8_t *)map;
    g->size = (uint64_t)sb.st_size;
    return finish_open(g, out, err);
}

void lq_gguf_close(lq_gguf *g) {
    if (!g) return;
    for (int64_t i = 0; i < g->n_kv; i++) free(g->kv[i].str_at);
    free(g->kv);
    free(g->kv_sorted);
    free(g->tensors);
    free(g->tensor_sorted);
    if (g->map) munmap(g->map, (size_t)g->size);
    free(g->path);
    free(g);
}

/* ---------------------------------------------------------------------------------------------
 * Accessors
 * ------------------------------------------------------------------------------------------- */
const char *lq_gguf_path(const lq_gguf *g) { return g ? g->path : NULL; }
uint32_t lq_gguf_version(const lq_gguf *g) { return g ? g->version : 0; }
uint32_t lq_gguf_alignment(const lq_gguf *g) { return g ? g->alignment : 0; }
uint64_t lq_gguf_data_offset(const lq_gguf *g) { return g ? g->data_offset : 0; }
uint64_t lq_gguf_file_size(const lq_gguf *g) { return g ? g->size : 0; }
int64_t lq_gguf_n_kv(const lq_gguf *g) { return g ? g->n_kv : 0; }
int64_t lq_gguf_n_tensors(const lq_gguf *g) { return g ? g->n_tensors : 0; }

static const gguf_kv *kv_at(const lq_gguf *g, int64_t i) {
    return (g && i >= 0 && i < g->n_kv) ? &g->kv[i] : NULL;
}

int64_t lq_gguf_find_key(const lq_gguf *g, const char *key) {
    return g ? lookup(g->kv_sorted, g->n_kv, key) : -1;
}

lq_str lq_gguf_key(const lq_gguf *g, int64_t i) {
    const gguf_kv *kv = kv_at(g, i);
    lq_str none = {NULL, 0};
    return kv ? kv->key : none;
}

lq_gguf_type lq_gguf_kv_type(const lq_gguf *g, int64_t i) {
    const gguf_kv *kv = kv_at(g, i);
    return kv ? kv->type : LQ_GGUF_TYPE_COUNT;
}

lq_gguf_type lq_gguf_arr_type(const lq_gguf *g, int64_t i) {
    const gguf_kv *kv = kv_at(g, i);
    return kv ? kv->arr_type : LQ_GGUF_TYPE_COUNT;
}

uint64_t lq_gguf_arr_n(const lq_gguf *g, int64_t i) {
    const gguf_kv *kv = kv_at(g, i);
    return kv && kv->type == LQ_GGUF_ARRAY ? kv->arr_n : 0;
}

const void *lq_gguf_kv_data(const lq_gguf *g, int64_t i) {
    const gguf_kv *kv = kv_at(g, i);
    if (!kv || kv->type == LQ_GGUF_STRING || (kv->type == LQ_GGUF_ARRAY && kv->arr_type == LQ_GGUF_STRING))
        return NULL;
    return kv->data;
}

lq_str lq_gguf_get_str(const lq_gguf *g, int64_t i) {
    const gguf_kv *kv = kv_at(g, i);
    lq_str s = {NULL, 0};
    if (kv && kv->type == LQ_GGUF_STRING) {
        s.ptr = (const char *)kv->data;
        s.len = kv->str_len;
    }
    return s;
}

lq_str lq_gguf_arr_str(const lq_gguf *g, int64_t i, uint64_t j) {
    const gguf_kv *kv = kv_at(g, i);
    lq_str s = {NULL, 0};
    if (kv && kv->type == LQ_GGUF_ARRAY && kv->arr_type == LQ_GGUF_STRING && j < kv->arr_n) {
        memcpy(&s.len, g->base + kv->str_at[j], 8);
        s.ptr = (const char *)(g->base + kv->str_at[j] + 8);
    }
    return s;
}

const lq_gguf_tensor_info *lq_gguf_tensor(const lq_gguf *g, int64_t i) {
    return (g && i >= 0 && i < g->n_tensors) ? &g->tensors[i] : NULL;
}

int64_t lq_gguf_find_tensor(const lq_gguf *g, const char *name) {
    return g ? lookup(g->tensor_sorted, g->n_tensors, name) : -1;
}

/* ---------------------------------------------------------------------------------------------
 * Typed getters: a scalar is read as a signed or unsigned 64-bit integer or a double, then
 * checked to fit the requested type.
 * ------------------------------------------------------------------------------------------- */
typedef enum { NUM_NONE, NUM_SIGNED, NUM_UNSIGNED, NUM_FLOAT } num_kind;

typedef struct num {
    num_kind kind;
    int64_t i;
    uint64_t u;
    double f;
} num;

static num read_num(const gguf_kv *kv) {
    num n = {NUM_NONE, 0, 0, 0.0};
    const uint8_t *p = kv->data;
    switch (kv->type) {
    case LQ_GGUF_UINT8: n.kind = NUM_UNSIGNED, n.u = p[0]; break;
    case LQ_GGUF_BOOL: n.kind = NUM_UNSIGNED, n.u = p[0] != 0; break;
    case LQ_GGUF_INT8: { int8_t v; memcpy(&v, p, 1); n.kind = NUM_SIGNED, n.i = v; break; }
    case LQ_GGUF_UINT16: { uint16_t v; memcpy(&v, p, 2); n.kind = NUM_UNSIGNED, n.u = v; break; }
    case LQ_GGUF_INT16: { int16_t v; memcpy(&v, p, 2); n.kind = NUM_SIGNED, n.i = v; break; }
    case LQ_GGUF_UINT32: { uint32_t v; memcpy(&v, p, 4); n.kind = NUM_UNSIGNED, n.u = v; break; }
    case LQ_GGUF_INT32: { int32_t v; memcpy(&v, p, 4); n.kind = NUM_SIGNED, n.i = v; break; }
    case LQ_GGUF_UINT64: memcpy(&n.u, p, 8), n.kind = NUM_UNSIGNED; break;
    case LQ_GGUF_INT64: memcpy(&n.i, p, 8), n.kind = NUM_SIGNED; break;
    case LQ_GGUF_FLOAT32: { float v; memcpy(&v, p, 4); n.kind = NUM_FLOAT, n.f = v; break; }
    case LQ_GGUF_FLOAT64: memcpy(&n.f, p, 8), n.kind = NUM_FLOAT; break;
    default: break;
    }
    return n;
}

static lq_status getter_kv(const lq_gguf *g, int64_t i, const char *want, const gguf_kv **out,
                           num *n, lq_error *err) {
    const gguf_kv *kv = kv_at(g, i);
    if (!kv)
        return lq_fail(err, LQ_ERR_INVALID, "%s: kv index %" PRId64 " out of range (%" PRId64 " kvs)",
                       g ? g->path : "<null>", i, g ? g->n_kv : 0);
    *out = kv;
    *n = read_num(kv);
    if (n->kind == NUM_NONE) {
        char key[104];
        printable(key, sizeof key, kv->key.ptr, kv->key.len);
        return lq_fail(err, LQ_ERR_FORMAT, "%s: key '%s' has type %s, expected %s", g->path, key,
                       lq_gguf_type_name(kv->type), want);
    }
    return LQ_OK;
}

static lq_status not_fit(const lq_gguf *g, const gguf_kv *kv, const char *want, lq_error *err) {
    char key[104];
    printable(key, sizeof key, kv->key.ptr, kv->key.len);
    return lq_fail(err, LQ_ERR_FORMAT, "%s: key '%s': %s value does not fit %s", g->path, key,
                   lq_gguf_type_name(kv->type), want);
}

lq_status lq_gguf_get_u64(const lq_gguf *g, int64_t i, uint64_t *v, lq_error *err) {
    const gguf_kv *kv = NULL;
    num n;
    lq_status st = getter_kv(g, i, "an unsigned integer", &kv, &n, err);
    if (st) return st;
    if (n.kind == NUM_UNSIGNED) *v = n.u;
    else if (n.kind == NUM_SIGNED && n.i >= 0) *v = (uint64_t)n.i;
    else return not_fit(g, kv, "an unsigned integer", err);
    return LQ_OK;
}

lq_status lq_gguf_get_i64(const lq_gguf *g, int64_t i, int64_t *v, lq_error *err) {
    const gguf_kv *kv = NULL;
    num n;
    lq_status st = getter_kv(g, i, "an integer", &kv, &n, err);
    if (st) return st;
    if (n.kind == NUM_SIGNED) *v = n.i;
    else if (n.kind == NUM_UNSIGNED && n.u <= (uint64_t)INT64_MAX) *v = (int64_t)n.u;
    else return not_fit(g, kv, "int64", err);
    return LQ_OK;
}

lq_status lq_gguf_get_f64(const lq_gguf *g, int64_t i, double *v, lq_error *err) {
    const gguf_kv *kv = NULL;
    num n;
    lq_status st = getter_kv(g, i, "a number", &kv, &n, err);
    if (st) return st;
    *v = n.kind == NUM_FLOAT ? n.f : n.kind == NUM_SIGNED ? (double)n.i : (double)n.u;
    return LQ_OK;
}

lq_status lq_gguf_get_bool(const lq_gguf *g, int64_t i, bool *v, lq_error *err) {
    const gguf_kv *kv = NULL;
    num n;
    lq_status st = getter_kv(g, i, "a bool", &kv, &n, err);
    if (st) return st;
    if (n.kind == NUM_UNSIGNED && n.u <= 1) *v = n.u != 0;
    else if (n.kind == NUM_SIGNED && (n.i == 0 || n.i == 1)) *v = n.i != 0;
    else return not_fit(g, kv, "a bool", err);
    return LQ_OK;
}
