/* test_gguf_roundtrip.c — the writer writes every kv type (scalars, strings, arrays of every
 * scalar type and of strings, empty ones) and one tensor of every type id lq_type_get accepts;
 * the reader gives back every value and byte, the offsets and the alignment. The expected layout
 * (header size, offsets, padding) is computed here from the GGUF rules, not taken from the
 * writer. */
#include "test.h"

#include <dirent.h>

#define N_SCALAR 11
static const lq_gguf_type scalar_types[N_SCALAR] = {
    LQ_GGUF_UINT8,  LQ_GGUF_INT8,   LQ_GGUF_UINT16, LQ_GGUF_INT16,   LQ_GGUF_UINT32, LQ_GGUF_INT32,
    LQ_GGUF_FLOAT32, LQ_GGUF_BOOL,  LQ_GGUF_UINT64, LQ_GGUF_INT64, LQ_GGUF_FLOAT64};
static const size_t scalar_sizes[N_SCALAR] = {1, 1, 2, 2, 4, 4, 4, 1, 8, 8, 8};

/* Distinct bytes for a scalar of type index k, element j (bools must be 0/1). */
static void scalar_bytes(int k, int j, uint8_t *out) {
    for (size_t b = 0; b < scalar_sizes[k]; b++) out[b] = (uint8_t)(0x11 * (k + 1) + 7 * j + 3 * b + 1);
    if (scalar_types[k] == LQ_GGUF_BOOL) out[0] = (uint8_t)((k + j) & 1);
    if (scalar_types[k] == LQ_GGUF_FLOAT32 || scalar_types[k] == LQ_GGUF_FLOAT64)
        out[scalar_sizes[k] - 1] = 0x3f; /* finite, normal */
}

typedef struct expect_kv {
    char key[64];
    lq_gguf_type type, arr_type;
    uint64_t n;         /* array length */
    uint8_t raw[64];    /* scalar value or scalar array elements */
    size_t raw_len;
    const lq_str *strs; /* string value (n = 1) or string array */
} expect_kv;

static const lq_str str_items[4] = {{"alpha", 5}, {"", 0}, {"\xce\xb2\xce\xb5\xcf\x84\xce\xb1", 8}, {"x y", 3}};
static const lq_str str_value = {"a string value", 14};
static const lq_str empty_value = {"", 0};

static expect_kv kvs[64];
static int n_kvs = 0;

static void set_all_kvs(lq_gguf_writer *w, uint32_t alignment) {
    lq_error err;
    n_kvs = 0;
    if (alignment != LQ_GGUF_DEFAULT_ALIGNMENT) {
        expect_kv *e = &kvs[n_kvs++];
        snprintf(e->key, sizeof e->key, "general.alignment");
        e->type = LQ_GGUF_UINT32, e->arr_type = LQ_GGUF_TYPE_COUNT;
        memcpy(e->raw, &alignment, 4), e->raw_len = 4;
        CHECK_OK(lq_gguf_writer_set_u32(w, e->key, alignment, &err), &err);
    }
    for (int k = 0; k < N_SCALAR; k++) { /* one scalar of each type */
        expect_kv *e = &kvs[n_kvs++];
        snprintf(e->key, sizeof e->key, "test.scalar.%s", lq_gguf_type_name(scalar_types[k]));
        e->type = scalar_types[k], e->arr_type = LQ_GGUF_TYPE_COUNT;
        scalar_bytes(k, 0, e->raw), e->raw_len = scalar_sizes[k];
        CHECK_OK(lq_gguf_writer_set_scalar(w, e->key, e->type, e->raw, &err), &err);
    }
    for (int k = 0; k < N_SCALAR; k++) { /* arrays of each scalar type: 3 elements and empty */
        for (int empty = 0; empty < 2; empty++) {
            expect_kv *e = &kvs[n_kvs++];
            snprintf(e->key, sizeof e->key, "test.array%s.%s", empty ? "_empty" : "",
                     lq_gguf_type_name(scalar_types[k]));
            e->type = LQ_GGUF_ARRAY, e->arr_type = scalar_types[k], e->n = empty ? 0 : 3;
            for (uint64_t j = 0; j < e->n; j++) scalar_bytes(k, (int)j + 1, e->raw + j * scalar_sizes[k]);
            e->raw_len = e->n * scalar_sizes[k];
            CHECK_OK(lq_gguf_writer_set_arr(w, e->key, e->arr_type, e->raw, e->n, &err), &err);
        }
    }
    expect_kv *e = &kvs[n_kvs++];
    snprintf(e->key, sizeof e->key, "test.string");
    e->type = LQ_GGUF_STRING, e->arr_type = LQ_GGUF_TYPE_COUNT, e->strs = &str_value, e->n = 1;
    CHECK_OK(lq_gguf_writer_set_str(w, e->key, "placeholder", 11, &err), &err); /* replaced below */
    e = &kvs[n_kvs++];
    snprintf(e->key, sizeof e->key, "test.string_empty");
    e->type = LQ_GGUF_STRING, e->arr_type = LQ_GGUF_TYPE_COUNT, e->strs = &empty_value, e->n = 1;
    CHECK_OK(lq_gguf_writer_set_str(w, e->key, "", 0, &err), &err);
    e = &kvs[n_kvs++];
    snprintf(e->key, sizeof e->key, "test.array.str");
    e->type = LQ_GGUF_ARRAY, e->arr_type = LQ_GGUF_STRING, e->strs = str_items, e->n = 4;
    CHECK_OK(lq_gguf_writer_set_arr_str(w, e->key, str_items, 4, &err), &err);
    e = &kvs[n_kvs++];
    snprintf(e->key, sizeof e->key, "test.array_empty.str");
    e->type = LQ_GGUF_ARRAY, e->arr_type = LQ_GGUF_STRING, e->strs = NULL, e->n = 0;
    CHECK_OK(lq_gguf_writer_set_arr_str(w, e->key, NULL, 0, &err), &err);
    /* Replacing keeps the first position; removing drops the key. */
    CHECK_OK(lq_gguf_writer_set_str(w, "test.string", str_value.ptr, str_value.len, &err), &err);
    CHECK_OK(lq_gguf_writer_set_u32(w, "test.removed", 5, &err), &err);
    CHECK(lq_gguf_writer_remove_key(w, "test.removed") == LQ_OK);
}

/* Serialized size of a kv as the GGUF rules give it. */
static uint64_t kv_file_bytes(const expect_kv *e) {
    uint64_t n = 8 + strlen(e->key) + 4;
    if (e->type == LQ_GGUF_STRING) return n + 8 + e->strs->len;
    if (e->type != LQ_GGUF_ARRAY) return n + e->raw_len;
    n += 4 + 8;
    if (e->arr_type != LQ_GGUF_STRING) return n + e->raw_len;
    for (uint64_t j = 0; j < e->n; j++) n += 8 + e->strs[j].len;
    return n;
}

static bool str_eq(lq_str a, lq_str b) {
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static void check_kvs(const lq_gguf *g) {
    CHECK(lq_gguf_n_kv(g) == n_kvs);
    CHECK(lq_gguf_find_key(g, "test.removed") < 0);
    for (int i = 0; i < n_kvs && i < lq_gguf_n_kv(g); i++) {
        const expect_kv *e = &kvs[i];
        lq_str key = {e->key, strlen(e->key)};
        CHECKF(str_eq(lq_gguf_key(g, i), key), "kv %d is not %s", i, e->key);
        CHECK(lq_gguf_find_key(g, e->key) == i);
        CHECKF(lq_gguf_kv_type(g, i) == e->type, "%s", e->key);
        CHECKF(lq_gguf_arr_type(g, i) == e->arr_type, "%s", e->key);
        if (e->type == LQ_GGUF_STRING) {
            CHECKF(str_eq(lq_gguf_get_str(g, i), *e->strs), "%s", e->key);
        } else if (e->type == LQ_GGUF_ARRAY && e->arr_type == LQ_GGUF_STRING) {
            CHECK(lq_gguf_arr_n(g, i) == e->n);
            for (uint64_t j = 0; j < e->n; j++) CHECKF(str_eq(lq_gguf_arr_str(g, i, j), e->strs[j]), "%s[%d]", e->key, (int)j);
        } else {
            if (e->type == LQ_GGUF_ARRAY) CHECK(lq_gguf_arr_n(g, i) == e->n);
            const void *d = lq_gguf_kv_data(g, i);
            CHECKF(d && memcmp(d, e->raw, e->raw_len) == 0, "%s", e->key);
        }
    }
}

/* Typed getters widen per the header's rules. */
static void check_getters(const lq_gguf *g) {
    lq_error err;
    uint64_t u;
    int64_t s;
    double f;
    bool b;
    int64_t i8 = lq_gguf_find_key(g, "test.scalar.i8");
    int8_t i8v;
    memcpy(&i8v, lq_gguf_kv_data(g, i8), 1);
    CHECK_OK(lq_gguf_get_i64(g, i8, &s, &err), &err);
    CHECK(s == i8v);
    CHECK_OK(lq_gguf_get_f64(g, i8, &f, &err), &err);
    CHECK(f == (double)i8v);
    /* i8 value 0x23 is positive; u64 accepts non-negative signed values. */
    CHECK(lq_gguf_get_u64(g, i8, &u, &err) == (i8v >= 0 ? LQ_OK : LQ_ERR_FORMAT));
    int64_t u16 = lq_gguf_find_key(g, "test.scalar.u16");
    uint16_t u16v;
    memcpy(&u16v, lq_gguf_kv_data(g, u16), 2);
    CHECK_OK(lq_gguf_get_u64(g, u16, &u, &err), &err);
    CHECK(u == u16v);
    int64_t u64 = lq_gguf_find_key(g, "test.scalar.u64");
    uint64_t u64v;
    memcpy(&u64v, lq_gguf_kv_data(g, u64), 8);
    CHECK_OK(lq_gguf_get_u64(g, u64, &u, &err), &err);
    CHECK(u == u64v);
    /* 0x..99 high byte: above INT64_MAX, so i64 must refuse. */
    CHECK((lq_gguf_get_i64(g, u64, &s, &err) == LQ_OK) == (u64v <= (uint64_t)INT64_MAX));
    int64_t f32 = lq_gguf_find_key(g, "test.scalar.f32");
    float f32v;
    memcpy(&f32v, lq_gguf_kv_data(g, f32), 4);
    CHECK_OK(lq_gguf_get_f64(g, f32, &f, &err), &err);
    CHECK(f == (double)f32v);
    lq_status st = lq_gguf_get_u64(g, f32, &u, &err);
    CHECK(st == LQ_ERR_FORMAT && strstr(err.msg, "test.scalar.f32"));
    int64_t bo = lq_gguf_find_key(g, "test.scalar.bool");
    CHECK_OK(lq_gguf_get_bool(g, bo, &b, &err), &err);
    CHECK(b == (*(const uint8_t *)lq_gguf_kv_data(g, bo) != 0));
    int64_t str = lq_gguf_find_key(g, "test.string");
    st = lq_gguf_get_i64(g, str, &s, &err);
    CHECK(st == LQ_ERR_FORMAT && strstr(err.msg, "test.string") && strstr(err.msg, lq_gguf_path(g)));
    st = lq_gguf_get_bool(g, lq_gguf_find_key(g, "test.array.u8"), &b, &err);
    CHECK(st == LQ_ERR_FORMAT && strstr(err.msg, "test.array.u8"));
    CHECK(lq_gguf_get_bool(g, 100000, &b, &err) != LQ_OK);
}

typedef struct expect_tensor {
    char name[64];
    uint32_t n_dims;
    int64_t ne[4];
    lq_type type;
    uint64_t nbytes;
    uint8_t *data;
} expect_tensor;

static expect_tensor tensors[64];
static int n_tensors = 0;

static void add_all_tensors(lq_gguf_writer *w) {
    lq_error err;
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    n_tensors = 0;
    for (int id = 0; id < 64; id++) {
        const lq_type_traits *tr = lq_type_get(id);
        if (!tr) continue;
        expect_tensor *t = &tensors[n_tensors++];
        snprintf(t->name, sizeof t->name, "t%d.%s.weight", id, tr->name);
        /* Vary the rank: 1-D up to 4-D, rows of 2 blocks. */
        t->n_dims = (uint32_t)(1 + id % 4);
        int64_t dims[4] = {2 * tr->block_size, 3, 2, 1};
        for (int d = 0; d < 4; d++) t->ne[d] = d < (int)t->n_dims ? dims[d] : 1;
        t->type = (lq_type)id;
        t->nbytes = (uint64_t)(2 * tr->block_bytes) * (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3]);
        t->data = (uint8_t *)malloc(t->nbytes);
        for (uint64_t b = 0; b < t->nbytes; b++) t->data[b] = (uint8_t)(test_rand_u64(&seed) >> 56);
        CHECK_OK(lq_gguf_writer_add_tensor(w, t->name, t->n_dims, t->ne, t->type, &err), &err);
    }
    CHECK(n_tensors == 31); /* every id of the notes' table that is not removed (0..35) */
}

static void write_tensor_data(lq_gguf_writer *w) {
    lq_error err;
    for (int i = 0; i < n_tensors; i++) {
        /* Uneven pieces: 1 byte, then a third, then the rest. */
        uint64_t n = tensors[i].nbytes, a = 1, b = n / 3;
        CHECK_OK(lq_gguf_writer_write(w, tensors[i].data, a, &err), &err);
        CHECK_OK(lq_gguf_writer_write(w, tensors[i].data + a, b, &err), &err);
        CHECK_OK(lq_gguf_writer_write(w, tensors[i].data + a + b, n - a - b, &err), &err);
    }
}

static void check_tensors(const lq_gguf *g, const uint8_t *file, uint32_t alignment, uint64_t data_offset) {
    CHECK(lq_gguf_n_tensors(g) == n_tensors);
    uint64_t offset = 0;
    for (int i = 0; i < n_tensors && i < lq_gguf_n_tensors(g); i++) {
        const expect_tensor *e = &tensors[i];
        const lq_gguf_tensor_info *t = lq_gguf_tensor(g, i);
        CHECKF(strcmp(t->name, e->name) == 0, "tensor %d: %s", i, t->name);
        CHECK(lq_gguf_find_tensor(g, e->name) == i);
        CHECK(t->n_dims == e->n_dims && t->type == e->type && t->nbytes == e->nbytes);
        CHECK(memcmp(t->ne, e->ne, sizeof t->ne) == 0);
        CHECKF(t->offset == offset, "%s: offset %" PRIu64 ", expected %" PRIu64, e->name, t->offset, offset);
        CHECK(t->data == file + data_offset + offset);
        CHECKF(memcmp(t->data, e->data, e->nbytes) == 0, "%s: data differs", e->name);
        uint64_t padded = (e->nbytes + alignment - 1) / alignment * alignment;
        for (uint64_t b = e->nbytes; b < padded; b++)
            if (((const uint8_t *)t->data)[b] != 0) {
                CHECKF(0, "%s: padding byte %" PRIu64 " is not zero", e->name, b);
                break;
            }
        offset += padded;
    }
    CHECK(lq_gguf_file_size(g) == data_offset + offset);
}

static void roundtrip(const char *dir, uint32_t alignment) {
    char path[4200];
    snprintf(path, sizeof path, "%s/roundtrip-%u.gguf", dir, alignment);
    lq_gguf_writer *w = NULL;
    lq_error err;
    CHECK_OK(lq_gguf_writer_open(path, &w, &err), &err);
    if (!w) return;
    set_all_kvs(w, alignment);
    add_all_tensors(w);
    write_tensor_data(w);
    CHECK_OK(lq_gguf_writer_finish(w, &err), &err);

    lq_gguf *g = NULL;
    CHECK_OK(lq_gguf_open(path, &g, &err), &err);
    if (!g) return;
    CHECK(lq_gguf_version(g) == 3);
    CHECK(lq_gguf_alignment(g) == alignment);
    uint64_t header = 4 + 4 + 8 + 8;
    for (int i = 0; i < n_kvs; i++) header += kv_file_bytes(&kvs[i]);
    for (int i = 0; i < n_tensors; i++) header += 8 + strlen(tensors[i].name) + 4 + 8 * tensors[i].n_dims + 4 + 8;
    uint64_t data_offset = (header + alignment - 1) / alignment * alignment;
    CHECKF(lq_gguf_data_offset(g) == data_offset, "data offset %" PRIu64 ", expected %" PRIu64,
           lq_gguf_data_offset(g), data_offset);
    size_t size = 0;
    uint8_t *file = (uint8_t *)test_read_file(path, &size);
    CHECK(file && size == lq_gguf_file_size(g));
    CHECK(file && memcmp(file, "GGUF\x03\x00\x00\x00", 8) == 0);
    for (uint64_t b = header; file && b < data_offset; b++) CHECK(file[b] == 0);
    free(file);
    const uint8_t *base = (const uint8_t *)lq_gguf_tensor(g, 0)->data - lq_gguf_tensor(g, 0)->offset - data_offset;
    check_kvs(g);
    check_getters(g);
    check_tensors(g, base, alignment, data_offset);
    lq_gguf_close(g);
    for (int i = 0; i < n_tensors; i++) free(tensors[i].data);
    unlink(path);
}

int main(void) {
    const char *dir = test_tmpdir("gguf-roundtrip");
    roundtrip(dir, LQ_GGUF_DEFAULT_ALIGNMENT);
    roundtrip(dir, 64);
    roundtrip(dir, 1);
    roundtrip(dir, 4096);
    rmdir(dir);
    TEST_DONE();
}
