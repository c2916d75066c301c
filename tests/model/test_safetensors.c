/* test_safetensors.c — the safetensors reader on generated files: a valid file round-trips
 * (names, dtypes, shapes, bytes, metadata), and a corpus of malformed files (every truncation,
 * lying header lengths, bad JSON, bad offsets, overlaps, size mismatches, unsupported dtypes,
 * duplicates, a sharded index naming a missing shard) each gives an error naming the file. */
#include "st_build.h"

static const char *tmp;

/* Opens an image from a buffer of exactly its size (so ASan sees any over-read). */
static lq_status open_image(const unsigned char *img, size_t size, const char *name, lq_error *err) {
    unsigned char *copy = malloc(size ? size : 1);
    if (size) memcpy(copy, img, size);
    lq_safetensors *st = NULL;
    lq_status rc = lq_safetensors_open_memory(copy, size, name, &st, err);
    CHECK((rc == LQ_OK) == (st != NULL));
    lq_safetensors_close(st);
    free(copy);
    return rc;
}

/* Expects code, a one-line message containing the file name and the given fragment. */
static void expect_error(lq_status rc, const lq_error *err, lq_status code, const char *file, const char *fragment) {
    CHECKF(rc == code, "%s: got %s, want %s: %s", file, lq_status_name(rc), lq_status_name(code), err->msg);
    CHECKF(strstr(err->msg, file) != NULL, "message does not name %s: %s", file, err->msg);
    CHECKF(!fragment || strstr(err->msg, fragment) != NULL, "message lacks '%s': %s", fragment, err->msg);
    CHECK(strchr(err->msg, '\n') == NULL);
}

static void make_small(stb_file *f) {
    uint64_t seed = 7;
    memset(f, 0, sizeof *f);
    stb_add(f, "a.weight", "F32", 2, (int64_t[]){3, 5}, &seed);
    stb_add(f, "b.weight", "F16", 1, (int64_t[]){7}, &seed);
    stb_add(f, "c.weight", "BF16", 3, (int64_t[]){2, 2, 3}, &seed);
    stb_add(f, "scalar", "F32", 0, NULL, &seed);
    snprintf(f->metadata, sizeof f->metadata, "{\"format\": \"pt\", \"note\": \"x\"}");
}

static void test_valid(void) {
    stb_file f;
    make_small(&f);
    size_t size;
    unsigned char *img = stb_image(&f, 0, f.n, &size);
    lq_error err;
    lq_safetensors *st = NULL;
    CHECK_OK(lq_safetensors_open_memory(img, size, "small.safetensors", &st, &err), &err);
    if (st) {
        CHECK(lq_safetensors_n_tensors(st) == 4);
        for (int i = 0; i < f.n; i++) {
            const lq_st_tensor *t = lq_safetensors_find(st, f.t[i].name);
            CHECKF(t != NULL, "%s not found", f.t[i].name);
            if (!t) continue;
            CHECK(t->n_dims == (uint32_t)f.t[i].n_dims);
            for (int d = 0; d < f.t[i].n_dims; d++) CHECK(t->shape[d] == f.t[i].shape[d]);
            CHECK(t->nbytes == f.t[i].nbytes);
            CHECK(memcmp(t->data, f.t[i].data, t->nbytes) == 0);
            CHECK((const unsigned char *)t->data >= img && (const unsigned char *)t->data + t->nbytes <= img + size);
        }
        CHECK(lq_safetensors_find(st, "a.weight")->type == LQ_TYPE_F32);
        CHECK(lq_safetensors_find(st, "b.weight")->type == LQ_TYPE_F16);
        CHECK(lq_safetensors_find(st, "c.weight")->type == LQ_TYPE_BF16);
        CHECK(lq_safetensors_find(st, "missing") == NULL);
        CHECK(lq_safetensors_n_metadata(st) == 2);
        CHECK(!strcmp(lq_safetensors_metadata_key(st, 0), "format"));
        CHECK(!strcmp(lq_safetensors_metadata_value(st, 0), "pt"));
        CHECK(!strcmp(lq_safetensors_metadata_value(st, 1), "x"));
        lq_safetensors_close(st);
    }
    /* Every proper prefix of the file is malformed (the last tensor ends at the end). */
    int failures_named = 0;
    for (size_t len = 0; len < size; len++) {
        lq_error e;
        lq_error_clear(&e);
        lq_status rc = open_image(img, len, "trunc.safetensors", &e);
        if (rc == LQ_ERR_FORMAT && strstr(e.msg, "trunc.safetensors")) failures_named++;
    }
    CHECKF(failures_named == (int)size, "%d of %zu truncations gave a named format error", failures_named, size);
    /* The same on disk, at the boundaries: header length, header, data. */
    char path[4096];
    size_t cuts[] = {0, 4, 8, 9, size / 2, size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        snprintf(path, sizeof path, "%s/cut%zu.safetensors", tmp, cuts[i]);
        stb_write_bytes(path, img, cuts[i]);
        lq_error e;
        lq_safetensors *s2 = NULL;
        lq_status rc = lq_safetensors_open(path, &s2, &e);
        expect_error(rc, &e, LQ_ERR_FORMAT, path, NULL);
        CHECK(s2 == NULL);
    }
    free(img);
    stb_free(&f);
}

/* One malformed header → the expected code and fragment. */
typedef struct bad_case {
    const char *header;
    size_t data_len;
    lq_status code;
    const char *fragment;
} bad_case;

static void test_bad_headers(void) {
    static const bad_case cases[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]", 8, LQ_ERR_FORMAT, "JSON"},
        {"[1,2,3]", 0, LQ_ERR_FORMAT, "not a JSON object"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", 8, LQ_ERR_FORMAT, "beyond the data"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, LQ_ERR_FORMAT, "begin"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 16, LQ_ERR_FORMAT, "overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, LQ_ERR_FORMAT, "'a'"},
        {"{\"a\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,4]}}", 8, LQ_ERR_FORMAT, "needs 8"},
        {"{\"a\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, LQ_ERR_UNSUPPORTED,
         "unsupported dtype I64 for tensor a"},
        {"{\"a\":{\"dtype\":\"Q9\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, LQ_ERR_UNSUPPORTED, "dtype Q9"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, LQ_ERR_FORMAT, "duplicate"},
        {"{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, LQ_ERR_FORMAT, "dtype"},
        {"{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, LQ_ERR_FORMAT, "shape"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, LQ_ERR_FORMAT, "data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, LQ_ERR_FORMAT, "shape[0]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4, LQ_ERR_FORMAT, "data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,4]}}", 4,
         LQ_ERR_FORMAT, "overflow"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, LQ_ERR_UNSUPPORTED,
         "dimensions"},
        {"{\"__metadata__\":{\"k\":1}}", 0, LQ_ERR_FORMAT, "__metadata__"},
        {"{\"a\":\"x\"}", 0, LQ_ERR_FORMAT, "'a'"},
    };
    unsigned char data[64] = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "bad%zu.safetensors", i);
        size_t size;
        unsigned char *img = stb_image_raw(cases[i].header, strlen(cases[i].header), data, cases[i].data_len, &size);
        lq_error err;
        lq_error_clear(&err);
        lq_status rc = open_image(img, size, name, &err);
        expect_error(rc, &err, cases[i].code, name, cases[i].fragment);
        free(img);
    }
}

static void test_bad_lengths(void) {
    unsigned char img[64];
    memset(img, ' ', sizeof img);
    memcpy(img + 8, "{}", 2);
    lq_error err;
    /* Header length beyond the file. */
    uint64_t lens[] = {57, 1000, UINT64_MAX, (uint64_t)1 << 63};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        for (int b = 0; b < 8; b++) img[b] = (unsigned char)(lens[i] >> (8 * b));
        lq_status rc = open_image(img, sizeof img, "len.safetensors", &err);
        expect_error(rc, &err, LQ_ERR_FORMAT, "len.safetensors", "exceeds the file size");
    }
    /* A header length above the sanity limit inside a (sparse) file that is large enough. */
    char path[4096];
    snprintf(path, sizeof path, "%s/huge.safetensors", tmp);
    FILE *fp = fopen(path, "wb");
    uint64_t big = (uint64_t)200 << 20;
    unsigned char lenbytes[8];
    for (int b = 0; b < 8; b++) lenbytes[b] = (unsigned char)(big >> (8 * b));
    fwrite(lenbytes, 1, 8, fp);
    fclose(fp);
    CHECK(truncate(path, (off_t)(big + 8)) == 0);
    lq_safetensors *st = NULL;
    lq_status rc = lq_safetensors_open(path, &st, &err);
    expect_error(rc, &err, LQ_ERR_FORMAT, path, "limit");
    unlink(path);
    /* Zero-length header is bad JSON, not a crash. */
    memset(img, 0, 8);
    rc = open_image(img, 8, "empty.safetensors", &err);
    expect_error(rc, &err, LQ_ERR_FORMAT, "empty.safetensors", "JSON");
    /* Missing file and a directory without weights: I/O errors naming the path. */
    snprintf(path, sizeof path, "%s/absent.safetensors", tmp);
    rc = lq_safetensors_open(path, &st, &err);
    expect_error(rc, &err, LQ_ERR_IO, path, NULL);
    rc = lq_safetensors_open(tmp, &st, &err);
    expect_error(rc, &err, LQ_ERR_IO, tmp, "model.safetensors");
}

/* Sharded: the union of two shards equals the single file; index errors are named. */
static void test_sharded(void) {
    stb_file f;
    make_small(&f);
    stb_llama c = {0};
    char dir[4096], path[4096];
    snprintf(dir, sizeof dir, "%s/sharded", tmp);
    CHECK(stb_write_sharded_dir(dir, &f, 2, &c) == 0);
    lq_error err;
    lq_safetensors *st = NULL;
    CHECK_OK(lq_safetensors_open(dir, &st, &err), &err);
    if (st) {
        CHECK(lq_safetensors_n_tensors(st) == f.n);
        for (int i = 0; i < f.n; i++) {
            const lq_st_tensor *t = lq_safetensors_find(st, f.t[i].name);
            CHECK(t && t->nbytes == f.t[i].nbytes && memcmp(t->data, f.t[i].data, t->nbytes) == 0);
            CHECK(t && strstr(t->file, i < 2 ? "00001-of" : "00002-of") != NULL);
        }
        CHECK(lq_safetensors_n_metadata(st) == 2); /* of the first shard */
        lq_safetensors_close(st);
    }
    /* Index naming a shard that is not there. */
    stb_write_text(stb_path(path, sizeof path, dir, "model.safetensors.index.json"),
                   "{\"weight_map\": {\"a.weight\": \"model-00001-of-00002.safetensors\", "
                   "\"zzz\": \"model-00003-of-00002.safetensors\"}}");
    lq_status rc = lq_safetensors_open(dir, &st, &err);
    expect_error(rc, &err, LQ_ERR_IO, "model-00003-of-00002.safetensors", "model.safetensors.index.json");
    /* Index naming a tensor the shard lacks. */
    stb_write_text(path, "{\"weight_map\": {\"nope\": \"model-00001-of-00002.safetensors\"}}");
    rc = lq_safetensors_open(path, &st, &err);
    expect_error(rc, &err, LQ_ERR_FORMAT, path, "nope");
    /* Escaping the directory, bad JSON, no weight_map. */
    stb_write_text(path, "{\"weight_map\": {\"a.weight\": \"../x.safetensors\"}}");
    rc = lq_safetensors_open(path, &st, &err);
    expect_error(rc, &err, LQ_ERR_FORMAT, path, "a.weight");
    stb_write_text(path, "{\"weight_map\": ");
    rc = lq_safetensors_open(path, &st, &err);
    expect_error(rc, &err, LQ_ERR_FORMAT, path, "JSON");
    stb_write_text(path, "{\"metadata\": {}}");
    rc = lq_safetensors_open(path, &st, &err);
    expect_error(rc, &err, LQ_ERR_FORMAT, path, "weight_map");
    /* The same tensor in both shards. */
    stb_file g;
    make_small(&g);
    snprintf(g.t[2].name, sizeof g.t[2].name, "a.weight");
    stb_write_sharded_dir(dir, &g, 2, &c);
    stb_write_text(path, "{\"weight_map\": {\"a.weight\": \"model-00001-of-00002.safetensors\", "
                         "\"b.weight\": \"model-00001-of-00002.safetensors\", "
                         "\"scalar\": \"model-00002-of-00002.safetensors\"}}");
    rc = lq_safetensors_open(dir, &st, &err);
    expect_error(rc, &err, LQ_ERR_FORMAT, "model-0000", "duplicate tensor 'a.weight'");
    stb_free(&f);
    stb_free(&g);
}

int main(void) {
    tmp = test_tmpdir("safetensors");
    test_valid();
    test_bad_headers();
    test_bad_lengths();
    test_sharded();
    stb_rmtree(tmp);
    TEST_DONE();
}
