/* test_gguf_malformed.c — a small valid GGUF is built here byte by byte (recording where each
 * field lies), then broken in every way the reader must catch: truncation at every byte, lying
 * lengths and counts, bad offsets, overlaps, bad names, duplicates, unknown types, bad dims and
 * alignment. Each must give a non-OK status whose message names the file, and no crash: images
 * are copied into exactly-sized heap buffers so ASan sees any read past the end. */
#include "test.h"

#define NAME "malformed.gguf"

typedef struct spec {
    const char *t0_name, *t1_name, *key1;
    uint32_t t0_n_dims;
    int64_t t0_ne1, t1_ne0;
    int32_t t1_type, kv3_type, kv3_elem_type, align_type;
    uint64_t align_value;
    uint32_t version;
} spec;

static spec default_spec(void) {
    spec s = {"tok.weight", "blk.0.w", "general.alignment", 2, 2, 32, LQ_TYPE_Q4_0,
              LQ_GGUF_ARRAY, LQ_GGUF_INT32, LQ_GGUF_UINT32, 32, 3};
    return s;
}

/* Offsets of the fields the mutations patch. */
typedef struct image {
    uint8_t p[4096];
    size_t n;
    size_t n_tensors_at, n_kv_at, key0_len_at, str_val_len_at, align_val_at, tok_count_at,
        tok_elem1_len_at, kv3_type_at, arr_count_at, t0_name_len_at, t0_name_at, t0_ne1_at,
        t0_offset_at, t1_type_at, t1_offset_at, end_infos, data_offset, data_end;
} image;

static size_t put(image *im, const void *d, size_t n) {
    size_t at = im->n;
    memcpy(im->p + im->n, d, n);
    im->n += n;
    return at;
}
static size_t put_u32(image *im, uint32_t v) { return put(im, &v, 4); }
static size_t put_i32(image *im, int32_t v) { return put(im, &v, 4); }
static size_t put_u64(image *im, uint64_t v) { return put(im, &v, 8); }
static size_t put_str(image *im, const char *s) {
    size_t at = put_u64(im, strlen(s));
    put(im, s, strlen(s));
    return at;
}

/* kvs: general.architecture (str), <key1> = alignment, tokens (str array of 3), x.arr
 * (i32 array of 3); tensors: t0 F32 [4, ne1] at 0, t1 <type> [ne0] at 32. */
static void build(const spec *s, image *im) {
    memset(im, 0, sizeof *im);
    put(im, "GGUF", 4);
    put_u32(im, s->version);
    im->n_tensors_at = put_u64(im, 2);
    im->n_kv_at = put_u64(im, 4);
    im->key0_len_at = put_str(im, "general.architecture");
    put_i32(im, LQ_GGUF_STRING);
    im->str_val_len_at = put_str(im, "llama");
    put_str(im, s->key1);
    put_i32(im, s->align_type);
    if (s->align_type == LQ_GGUF_STRING) im->align_val_at = put_str(im, "32");
    else if (lq_gguf_type_size((lq_gguf_type)s->align_type) == 8) im->align_val_at = put_u64(im, s->align_value);
    else im->align_val_at = put_u32(im, (uint32_t)s->align_value);
    put_str(im, "tokenizer.ggml.tokens");
    put_i32(im, LQ_GGUF_ARRAY);
    put_i32(im, LQ_GGUF_STRING);
    im->tok_count_at = put_u64(im, 3);
    put_str(im, "a");
    im->tok_elem1_len_at = put_str(im, "bc");
    put_str(im, "");
    put_str(im, "x.arr");
    im->kv3_type_at = put_i32(im, s->kv3_type);
    put_i32(im, s->kv3_elem_type);
    im->arr_count_at = put_u64(im, 3);
    for (int32_t v = 1; v <= 3; v++) put_i32(im, v);
    im->t0_name_len_at = put_str(im, s->t0_name);
    im->t0_name_at = im->t0_name_len_at + 8;
    put_u32(im, s->t0_n_dims);
    for (uint32_t d = 0; d < s->t0_n_dims; d++) {
        size_t at = put_u64(im, d == 0 ? 4 : d == 1 ? (uint64_t)s->t0_ne1 : 1);
        if (d == 1) im->t0_ne1_at = at;
    }
    put_i32(im, LQ_TYPE_F32);
    im->t0_offset_at = put_u64(im, 0);
    put_str(im, s->t1_name);
    put_u32(im, 1);
    put_u64(im, (uint64_t)s->t1_ne0);
    im->t1_type_at = put_i32(im, s->t1_type);
    im->t1_offset_at = put_u64(im, 32);
    im->end_infos = im->n;
    im->data_offset = (im->n + 31) / 32 * 32;
    im->n = im->data_offset;
    for (int b = 0; b < 32 + 18; b++) im->p[im->n++] = (uint8_t)(b * 7 + 1); /* t0 + t1 bytes */
    im->data_end = im->n;
    while (im->n % 32) im->p[im->n++] = 0;
}

static void patch_u64(image *im, size_t at, uint64_t v) { memcpy(im->p + at, &v, 8); }
static void patch_u32(image *im, size_t at, uint32_t v) { memcpy(im->p + at, &v, 4); }

static int n_rejected = 0;

/* Opens an exact-size heap copy of the first len bytes; returns the status. */
static lq_status open_copy(const uint8_t *p, size_t len, lq_error *err) {
    uint8_t *copy = (uint8_t *)malloc(len ? len : 1);
    if (len) memcpy(copy, p, len);
    lq_gguf *g = NULL;
    lq_status st = lq_gguf_open_memory(copy, len, NAME, &g, err);
    if (st == LQ_OK) {
        /* Touch everything a caller could touch. */
        for (int64_t i = 0; i < lq_gguf_n_kv(g); i++) {
            lq_str k = lq_gguf_key(g, i);
            volatile char sink = k.len ? k.ptr[k.len - 1] : 0;
            for (uint64_t j = 0; j < lq_gguf_arr_n(g, i); j++) {
                lq_str s = lq_gguf_arr_str(g, i, j);
                if (s.len) sink = s.ptr[s.len - 1];
            }
            (void)sink;
        }
        for (int64_t i = 0; i < lq_gguf_n_tensors(g); i++) {
            const lq_gguf_tensor_info *t = lq_gguf_tensor(g, i);
            volatile uint8_t sink = t->nbytes ? ((const uint8_t *)t->data)[t->nbytes - 1] : 0;
            (void)sink;
        }
    }
    lq_gguf_close(g);
    free(copy);
    return st;
}

/* The image must be rejected with code (any non-OK when code == LQ_OK) and a message naming
 * the file and, when given, containing `hint`. */
static void expect_reject(const char *what, const uint8_t *p, size_t len, lq_status code, const char *hint) {
    lq_error err;
    lq_error_clear(&err);
    lq_status st = open_copy(p, len, &err);
    CHECKF(st != LQ_OK, "%s: accepted", what);
    if (st == LQ_OK) return;
    n_rejected++;
    if (getenv("LQ_TEST_VERBOSE")) fprintf(stderr, "%-32s -> %s\n", what, err.msg);
    CHECKF(code == LQ_OK || st == code, "%s: status %d, expected %d (%s)", what, st, code, err.msg);
    CHECKF(strncmp(err.msg, NAME ": ", strlen(NAME) + 2) == 0, "%s: message '%s'", what, err.msg);
    CHECKF(!hint || strstr(err.msg, hint), "%s: message '%s' lacks '%s'", what, err.msg, hint);
    CHECKF(!strchr(err.msg, '\n'), "%s: message has a newline", what);
}

static void expect_accept(const char *what, const uint8_t *p, size_t len) {
    lq_error err;
    lq_error_clear(&err);
    CHECKF(open_copy(p, len, &err) == LQ_OK, "%s: rejected: %s", what, err.msg);
}

static void reject_spec(const char *what, spec s, lq_status code, const char *hint) {
    image im;
    build(&s, &im);
    expect_reject(what, im.p, im.n, code, hint);
}

static void test_valid_base(void) {
    spec s = default_spec();
    image im;
    build(&s, &im);
    lq_gguf *g = NULL;
    lq_error err;
    uint8_t *copy = (uint8_t *)malloc(im.n);
    memcpy(copy, im.p, im.n);
    CHECK_OK(lq_gguf_open_memory(copy, im.n, NAME, &g, &err), &err);
    if (!g) return;
    CHECK(lq_gguf_n_kv(g) == 4 && lq_gguf_n_tensors(g) == 2);
    CHECK(lq_gguf_data_offset(g) == im.data_offset);
    CHECK(lq_gguf_arr_n(g, 2) == 3 && lq_gguf_arr_str(g, 2, 1).len == 2);
    CHECK(lq_gguf_tensor(g, 1)->nbytes == 18 && lq_gguf_tensor(g, 0)->nbytes == 32);
    CHECK(lq_gguf_tensor(g, 1)->data == copy + im.data_offset + 32);
    lq_gguf_close(g);
    free(copy);
    /* Version 2 has the same layout and is accepted. */
    s.version = 2;
    build(&s, &im);
    expect_accept("version 2", im.p, im.n);
}

static void test_truncation(void) {
    spec s = default_spec();
    image im;
    build(&s, &im);
    /* Every prefix that cuts the header or any tensor's bytes is an error... */
    for (size_t len = 0; len < im.data_end; len++) {
        char what[64];
        snprintf(what, sizeof what, "truncated to %zu bytes", len);
        expect_reject(what, im.p, len, LQ_OK, NULL);
    }
    /* ...and at the field boundaries the message says "truncated". */
    size_t bounds[] = {4, 8, 16, 24, im.key0_len_at + 8, im.str_val_len_at + 8, im.tok_count_at + 8,
                       im.arr_count_at + 8, im.t0_name_len_at + 8, im.t1_offset_at};
    for (size_t k = 0; k < sizeof bounds / sizeof bounds[0]; k++) {
        char what[64];
        snprintf(what, sizeof what, "truncated at boundary %zu", bounds[k]);
        expect_reject(what, im.p, bounds[k], LQ_ERR_FORMAT, NULL);
    }
    expect_reject("truncated after infos", im.p, im.end_infos, LQ_ERR_FORMAT, "beyond the end");
    /* Trailing padding of the last tensor is optional. */
    for (size_t len = im.data_end; len <= im.n; len++) expect_accept("without final padding", im.p, len);
}

static void test_lying_lengths(void) {
    spec s = default_spec();
    image im, bad;
    build(&s, &im);
    const size_t fields[] = {im.key0_len_at, im.str_val_len_at, im.tok_elem1_len_at, im.t0_name_len_at};
    const uint64_t values[] = {UINT64_MAX, (uint64_t)1 << 63, 4096, 1000};
    for (size_t f = 0; f < 4; f++)
        for (size_t v = 0; v < 4; v++) {
            bad = im;
            patch_u64(&bad, fields[f], values[v]);
            char what[96];
            snprintf(what, sizeof what, "length field at %zu = %" PRIu64, fields[f], values[v]);
            expect_reject(what, bad.p, bad.n, LQ_ERR_FORMAT, NULL);
        }
    bad = im;
    patch_u64(&bad, im.key0_len_at, 5000);
    expect_reject("key length", bad.p, bad.n, LQ_ERR_FORMAT, "exceeds");
}

static void test_counts(void) {
    spec s = default_spec();
    image im, bad;
    build(&s, &im);
    const int64_t counts[] = {-1, INT64_MIN, INT64_MAX, 1 << 20, 5};
    for (size_t k = 0; k < 5; k++) {
        bad = im;
        patch_u64(&bad, im.n_tensors_at, (uint64_t)counts[k]);
        expect_reject("tensor count", bad.p, bad.n, LQ_ERR_FORMAT, NULL);
        bad = im;
        patch_u64(&bad, im.n_kv_at, (uint64_t)counts[k]);
        expect_reject("kv count", bad.p, bad.n, LQ_ERR_FORMAT, NULL);
    }
    bad = im;
    patch_u64(&bad, im.n_kv_at, (uint64_t)-1);
    expect_reject("negative kv count", bad.p, bad.n, LQ_ERR_FORMAT, "kv count");
    /* Array counts: beyond the file, and counts whose byte size wraps around 2^64. */
    const uint64_t tok[] = {4, 1000, (uint64_t)1 << 61, UINT64_MAX};
    for (size_t k = 0; k < 4; k++) {
        bad = im;
        patch_u64(&bad, im.tok_count_at, tok[k]);
        expect_reject("string array count", bad.p, bad.n, LQ_ERR_FORMAT, NULL);
    }
    const uint64_t arr[] = {4, 1000, (uint64_t)1 << 62, UINT64_MAX};
    for (size_t k = 0; k < 4; k++) {
        bad = im;
        patch_u64(&bad, im.arr_count_at, arr[k]);
        expect_reject("i32 array count", bad.p, bad.n, LQ_ERR_FORMAT, NULL);
    }
}

static void test_offsets(void) {
    spec s = default_spec();
    image im, bad;
    build(&s, &im);
    const uint64_t beyond[] = {64, 4096, (uint64_t)1 << 62, UINT64_MAX - 31};
    for (size_t k = 0; k < 4; k++) {
        bad = im;
        patch_u64(&bad, im.t1_offset_at, beyond[k]);
        expect_reject("offset beyond EOF", bad.p, bad.n, LQ_ERR_FORMAT, "blk.0.w");
    }
    bad = im;
    patch_u64(&bad, im.t1_offset_at, 33);
    expect_reject("misaligned offset", bad.p, bad.n, LQ_ERR_FORMAT, "alignment");
    bad = im;
    patch_u64(&bad, im.t1_offset_at, 0);
    expect_reject("overlap at same offset", bad.p, bad.n, LQ_ERR_FORMAT, "overlap");
    bad = im;
    patch_u64(&bad, im.t0_offset_at, 32);
    patch_u64(&bad, im.t1_offset_at, 32);
    expect_reject("overlap both at 32", bad.p, bad.n, LQ_ERR_FORMAT, "overlap");
    /* t0 spans 32 bytes: t1 at 0 and t0 at 32 do not overlap (any order is fine). */
    bad = im;
    patch_u64(&bad, im.t0_offset_at, 32);
    patch_u64(&bad, im.t1_offset_at, 0);
    expect_accept("reversed order", bad.p, bad.n);
    /* A larger t0 (ne1 = 16: 256 bytes) overlaps t1 at 32. */
    spec big = default_spec();
    big.t0_ne1 = 16;
    build(&big, &bad);
    size_t grown = bad.n + 256;
    uint8_t *p = (uint8_t *)calloc(1, grown);
    memcpy(p, bad.p, bad.n);
    expect_reject("overlapping span", p, grown, LQ_ERR_FORMAT, "overlap");
    free(p);
}

static void test_names(void) {
    spec s = default_spec();
    image im, bad;
    build(&s, &im);
    bad = im;
    bad.p[im.t0_name_at + 1] = 0xFF;
    expect_reject("invalid UTF-8 name", bad.p, bad.n, LQ_ERR_FORMAT, "UTF-8");
    bad = im;
    bad.p[im.t0_name_at + 1] = 0xC0; /* overlong encoding of '/' */
    bad.p[im.t0_name_at + 2] = 0xAF;
    expect_reject("overlong UTF-8 name", bad.p, bad.n, LQ_ERR_FORMAT, "UTF-8");
    bad = im;
    bad.p[im.t0_name_at + 3] = 0xE2; /* truncated 3-byte sequence at the end of the name */
    patch_u64(&bad, im.t0_name_len_at, 4);
    expect_reject("cut UTF-8 sequence", bad.p, bad.n, LQ_ERR_FORMAT, NULL);
    bad = im;
    bad.p[im.t0_name_at + 2] = 0;
    expect_reject("NUL in name", bad.p, bad.n, LQ_ERR_FORMAT, "NUL");
    spec t = default_spec();
    t.t0_name = "a.name.that.is.exactly.sixty.four.bytes.long.xxxxxxxxxxxxxxxxxxx";
    CHECK(strlen(t.t0_name) == 64);
    reject_spec("name of 64 bytes", t, LQ_ERR_FORMAT, "too long");
    t.t0_name = "a.name.that.is.exactly.sixty.three.bytes.long.xxxxxxxxxxxxxxxxx";
    CHECK(strlen(t.t0_name) == 63);
    build(&t, &bad);
    expect_accept("name of 63 bytes", bad.p, bad.n);
    t = default_spec();
    t.t1_name = t.t0_name;
    reject_spec("duplicate tensor name", t, LQ_ERR_FORMAT, "duplicate tensor name 'tok.weight'");
    t = default_spec();
    t.key1 = "general.architecture";
    reject_spec("duplicate key", t, LQ_ERR_FORMAT, "duplicate key 'general.architecture'");
}

static void test_types(void) {
    const int32_t kv_types[] = {13, 99, -1, INT32_MIN};
    for (size_t k = 0; k < 4; k++) {
        spec s = default_spec();
        s.kv3_type = kv_types[k];
        reject_spec("unknown kv type", s, LQ_ERR_FORMAT, "unknown value type");
        s = default_spec();
        s.kv3_elem_type = kv_types[k];
        reject_spec("unknown array element type", s, LQ_ERR_FORMAT, "unknown array element type");
    }
    spec s = default_spec();
    s.kv3_elem_type = LQ_GGUF_ARRAY;
    reject_spec("nested array", s, LQ_ERR_FORMAT, "nested");
    const int32_t tensor_types[] = {4, 5, 31, 32, 33, 36, 37, 38, 39, 1000, -1};
    for (size_t k = 0; k < sizeof tensor_types / sizeof tensor_types[0]; k++) {
        s = default_spec();
        s.t1_type = tensor_types[k];
        char hint[64];
        snprintf(hint, sizeof hint, "tensor 'blk.0.w': unknown or removed ggml type id %d", tensor_types[k]);
        reject_spec("bad tensor type", s, LQ_ERR_FORMAT, hint);
    }
    s = default_spec();
    s.t1_ne0 = 33; /* not a multiple of Q4_0's 32 */
    reject_spec("ne0 not a multiple of the block", s, LQ_ERR_FORMAT, "block size");
    s = default_spec();
    s.t0_ne1 = -1;
    reject_spec("negative dimension", s, LQ_ERR_FORMAT, "negative");
    s = default_spec();
    s.t0_ne1 = INT64_MAX / 2;
    reject_spec("element count overflow", s, LQ_ERR_FORMAT, "overflow");
}

static void test_dims(void) {
    const uint32_t dims[] = {0, 5};
    for (size_t k = 0; k < 2; k++) {
        spec s = default_spec();
        s.t0_n_dims = dims[k];
        reject_spec("n_dims", s, LQ_ERR_FORMAT, "n_dims");
    }
    spec s = default_spec();
    image im;
    build(&s, &im);
    /* t0's n_dims field lies right after its name. */
    patch_u32(&im, im.t0_name_at + strlen(s.t0_name), UINT32_MAX);
    expect_reject("n_dims huge", im.p, im.n, LQ_ERR_FORMAT, "n_dims");
}

static void test_alignment(void) {
    const uint64_t values[] = {0, 3, 48, 0x80000001u};
    for (size_t k = 0; k < 4; k++) {
        spec s = default_spec();
        s.align_value = values[k];
        reject_spec("bad alignment", s, LQ_ERR_FORMAT, "general.alignment");
    }
    const int32_t types[] = {LQ_GGUF_UINT64, LQ_GGUF_INT32, LQ_GGUF_STRING};
    for (size_t k = 0; k < 3; k++) {
        spec s = default_spec();
        s.align_type = types[k];
        reject_spec("alignment of wrong type", s, LQ_ERR_FORMAT, "general.alignment");
    }
    /* Alignment 64: t1 at 32 becomes misaligned. */
    spec s = default_spec();
    s.align_value = 64;
    reject_spec("offset misaligned for 64", s, LQ_ERR_FORMAT, "alignment");
}

static void test_header(void) {
    spec s = default_spec();
    image im, bad;
    build(&s, &im);
    bad = im;
    bad.p[0] = 'X';
    expect_reject("bad magic", bad.p, bad.n, LQ_ERR_FORMAT, "not a GGUF file");
    const uint32_t versions[] = {0, 1, 4, 0x03000000};
    for (size_t k = 0; k < 4; k++) {
        bad = im;
        patch_u32(&bad, 4, versions[k]);
        expect_reject("version", bad.p, bad.n, LQ_ERR_UNSUPPORTED, "version");
    }
}

/* Random byte changes in the header region: any outcome but a crash or a nameless error. */
static void test_random_mutations(void) {
    spec s = default_spec();
    image im, bad;
    build(&s, &im);
    uint64_t seed = 12345;
    for (int k = 0; k < 20000; k++) {
        bad = im;
        int n_changes = 1 + (int)(test_rand_u64(&seed) % 4);
        for (int c = 0; c < n_changes; c++) {
            size_t at = (size_t)(test_rand_u64(&seed) % im.data_offset);
            bad.p[at] = (uint8_t)test_rand_u64(&seed);
        }
        lq_error err;
        lq_error_clear(&err);
        if (open_copy(bad.p, bad.n, &err) != LQ_OK)
            CHECKF(strncmp(err.msg, NAME ": ", strlen(NAME) + 2) == 0, "mutation %d: '%s'", k, err.msg);
    }
}

/* The file path appears in messages of lq_gguf_open too, and I/O problems are LQ_ERR_IO. */
static void test_files(void) {
    const char *dir = test_tmpdir("gguf-malformed");
    char path[4200];
    snprintf(path, sizeof path, "%s/cut.gguf", dir);
    spec s = default_spec();
    image im;
    build(&s, &im);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    fwrite(im.p, 1, im.end_infos - 3, f);
    fclose(f);
    lq_gguf *g = NULL;
    lq_error err;
    CHECK(lq_gguf_open(path, &g, &err) == LQ_ERR_FORMAT && g == NULL);
    CHECK(strncmp(err.msg, path, strlen(path)) == 0);
    unlink(path);
    CHECK(lq_gguf_open(path, &g, &err) == LQ_ERR_IO && strstr(err.msg, path));
    CHECK(lq_gguf_open(dir, &g, &err) == LQ_ERR_IO && strstr(err.msg, dir));
    f = fopen(path, "wb");
    if (f) fclose(f);
    CHECK(lq_gguf_open(path, &g, &err) == LQ_ERR_FORMAT && strstr(err.msg, path));
    unlink(path);
    rmdir(dir);
}

int main(void) {
    test_valid_base();
    test_truncation();
    test_lying_lengths();
    test_counts();
    test_offsets();
    test_names();
    test_types();
    test_dims();
    test_alignment();
    test_header();
    test_random_mutations();
    test_files();
    fprintf(stderr, "%d malformed images rejected\n", n_rejected);
    TEST_DONE();
}
