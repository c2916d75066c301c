/* test_gguf_copy.c — a GGUF written by our writer with F32 and F16 tensors plus every kv of
 * llama.cpp's ggml-vocab-llama-spm.gguf (copied with lq_gguf_writer_copy_kv) reads back
 * identical: every kv value and every tensor byte. */
#include "test.h"

static bool str_eq(lq_str a, lq_str b) {
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* Same key, type and value (raw bytes for scalars and scalar arrays, each string otherwise). */
static void check_same_kv(const lq_gguf *a, int64_t i, const lq_gguf *b, int64_t j, uint64_t *n_compared) {
    lq_str key = lq_gguf_key(a, i);
    CHECK(str_eq(key, lq_gguf_key(b, j)));
    lq_gguf_type t = lq_gguf_kv_type(a, i);
    CHECKF(lq_gguf_kv_type(b, j) == t, "%.*s", (int)key.len, key.ptr);
    CHECK(lq_gguf_arr_type(b, j) == lq_gguf_arr_type(a, i));
    CHECK(lq_gguf_arr_n(b, j) == lq_gguf_arr_n(a, i));
    if (t == LQ_GGUF_STRING) {
        CHECK(str_eq(lq_gguf_get_str(a, i), lq_gguf_get_str(b, j)));
        (*n_compared)++;
    } else if (t == LQ_GGUF_ARRAY && lq_gguf_arr_type(a, i) == LQ_GGUF_STRING) {
        uint64_t n = lq_gguf_arr_n(a, i), bad = 0;
        for (uint64_t k = 0; k < n; k++) bad += !str_eq(lq_gguf_arr_str(a, i, k), lq_gguf_arr_str(b, j, k));
        CHECKF(bad == 0, "%.*s: %" PRIu64 " strings differ", (int)key.len, key.ptr, bad);
        *n_compared += n;
    } else {
        size_t size = lq_gguf_type_size(t == LQ_GGUF_ARRAY ? lq_gguf_arr_type(a, i) : t);
        uint64_t n = t == LQ_GGUF_ARRAY ? lq_gguf_arr_n(a, i) : 1;
        CHECK(memcmp(lq_gguf_kv_data(a, i), lq_gguf_kv_data(b, j), size * n) == 0);
        *n_compared += n;
    }
}

int main(void) {
    const char *src_path = test_shared_path("testvectors/vocab/ggml-vocab-llama-spm.gguf");
    const char *dir = test_tmpdir("gguf-copy");
    char path[4200];
    snprintf(path, sizeof path, "%s/copy.gguf", dir);
    lq_error err;
    lq_gguf *src = NULL;
    CHECK_OK(lq_gguf_open(src_path, &src, &err), &err);
    if (!src) TEST_DONE();

    lq_gguf_writer *w = NULL;
    CHECK_OK(lq_gguf_writer_open(path, &w, &err), &err);
    if (!w) TEST_DONE();
    for (int64_t i = 0; i < lq_gguf_n_kv(src); i++) CHECK_OK(lq_gguf_writer_copy_kv(w, src, i, &err), &err);
    CHECK_OK(lq_gguf_writer_set_u32(w, "general.quantization_version", 2, &err), &err);
    /* F32 [96, 5] and F16 [64, 3] with values that are exact in their types. */
    enum { F32_COLS = 96, F32_ROWS = 5, F16_COLS = 64, F16_ROWS = 3 };
    static float f32[F32_ROWS * F32_COLS];
    static uint16_t f16[F16_ROWS * F16_COLS];
    uint64_t seed = 7;
    for (int k = 0; k < F32_ROWS * F32_COLS; k++) f32[k] = test_rand_normal(&seed);
    for (int k = 0; k < F16_ROWS * F16_COLS; k++) f16[k] = lq_fp32_to_fp16(test_rand_normal(&seed));
    const int64_t ne32[2] = {F32_COLS, F32_ROWS}, ne16[2] = {F16_COLS, F16_ROWS};
    CHECK_OK(lq_gguf_writer_add_tensor(w, "token_embd.weight", 2, ne32, LQ_TYPE_F32, &err), &err);
    CHECK_OK(lq_gguf_writer_add_tensor(w, "blk.0.attn_q.weight", 2, ne16, LQ_TYPE_F16, &err), &err);
    for (int r = 0; r < F32_ROWS; r++) /* row by row, as a quantizer streams */
        CHECK_OK(lq_gguf_writer_write(w, f32 + r * F32_COLS, sizeof(float) * F32_COLS, &err), &err);
    CHECK_OK(lq_gguf_writer_write(w, f16, sizeof f16, &err), &err);
    CHECK_OK(lq_gguf_writer_finish(w, &err), &err);

    lq_gguf *g = NULL;
    CHECK_OK(lq_gguf_open(path, &g, &err), &err);
    if (g) {
        CHECK(lq_gguf_n_kv(g) == lq_gguf_n_kv(src) + 1);
        uint64_t n_compared = 0;
        for (int64_t i = 0; i < lq_gguf_n_kv(src); i++) check_same_kv(src, i, g, i, &n_compared);
        /* tokens, scores, token_type: 3 x 32000 elements, plus the scalars */
        CHECK(n_compared > 3 * 32000);
        fprintf(stderr, "%" PRId64 " kvs, %" PRIu64 " values compared\n", lq_gguf_n_kv(src), n_compared);
        int64_t qv = lq_gguf_find_key(g, "general.quantization_version");
        uint64_t v = 0;
        CHECK_OK(lq_gguf_get_u64(g, qv, &v, &err), &err);
        CHECK(v == 2);
        CHECK(lq_gguf_n_tensors(g) == 2);
        const lq_gguf_tensor_info *t0 = lq_gguf_tensor(g, 0), *t1 = lq_gguf_tensor(g, 1);
        CHECK(t0 && strcmp(t0->name, "token_embd.weight") == 0 && t0->type == LQ_TYPE_F32);
        CHECK(t1 && strcmp(t1->name, "blk.0.attn_q.weight") == 0 && t1->type == LQ_TYPE_F16);
        CHECK(t0 && t0->ne[0] == F32_COLS && t0->ne[1] == F32_ROWS && t0->nbytes == sizeof f32);
        CHECK(t1 && t1->ne[0] == F16_COLS && t1->ne[1] == F16_ROWS && t1->nbytes == sizeof f16);
        CHECK(t0 && memcmp(t0->data, f32, sizeof f32) == 0);
        CHECK(t1 && memcmp(t1->data, f16, sizeof f16) == 0);
        CHECK(t1 && t1->offset == (sizeof f32 + 31) / 32 * 32);
        lq_gguf_close(g);
    }
    /* The source has no tensors, so its kv block runs from byte 24 to its end: our copy must
     * encode the same kvs to the same bytes (the header counts differ: one kv and 2 tensors more). */
    size_t src_size = 0, out_size = 0;
    uint8_t *a = (uint8_t *)test_read_file(src_path, &src_size);
    uint8_t *b = (uint8_t *)test_read_file(path, &out_size);
    CHECK(a && b && out_size > src_size);
    if (a && b && out_size > src_size) {
        CHECK(memcmp(a, b, 8) == 0);
        CHECK(memcmp(a + 24, b + 24, src_size - 24) == 0);
    }
    free(a);
    free(b);
    {
    }
    lq_gguf_close(src);
    unlink(path);
    rmdir(dir);
    TEST_DONE();
}
