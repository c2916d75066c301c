/* fuzz_gguf.c — libFuzzer harness for the GGUF reader: parse an arbitrary image, and when it is
 * accepted touch every kv and tensor through the public accessors (ASan catches any read
 * outside the image); when it is rejected, the message must name the image. */
#include "libquant.h"

#include <stdlib.h>
#include <string.h>

#define NAME "fuzz.gguf"

static volatile uint8_t sink;

static void touch(const void *p, uint64_t n) {
    if (!n) return;
    const uint8_t *b = (const uint8_t *)p;
    sink ^= b[0];
    sink ^= b[n - 1];
}

static void touch_kvs(const lq_gguf *g) {
    lq_error err;
    for (int64_t i = 0; i < lq_gguf_n_kv(g); i++) {
        lq_str key = lq_gguf_key(g, i);
        touch(key.ptr, key.len);
        /* Keys without NUL bytes must be found again by name. */
        if (key.len < 4096 && !memchr(key.ptr, 0, key.len)) {
            char buf[4096];
            memcpy(buf, key.ptr, key.len);
            buf[key.len] = '\0';
            int64_t j = lq_gguf_find_key(g, buf);
            if (j != i) abort(); /* keys are unique */
        }
        lq_gguf_type t = lq_gguf_kv_type(g, i);
        lq_gguf_type at = lq_gguf_arr_type(g, i);
        uint64_t n = lq_gguf_arr_n(g, i);
        const void *data = lq_gguf_kv_data(g, i);
        if (t == LQ_GGUF_STRING) {
            lq_str s = lq_gguf_get_str(g, i);
            touch(s.ptr, s.len);
        } else if (t == LQ_GGUF_ARRAY && at == LQ_GGUF_STRING) {
            for (uint64_t j = 0; j < n; j++) {
                lq_str s = lq_gguf_arr_str(g, i, j);
                touch(s.ptr, s.len);
            }
        } else if (t == LQ_GGUF_ARRAY) {
            touch(data, n * lq_gguf_type_size(at));
        } else {
            touch(data, lq_gguf_type_size(t));
        }
        uint64_t u;
        int64_t s64;
        double f;
        bool b;
        (void)lq_gguf_get_u64(g, i, &u, &err);
        (void)lq_gguf_get_i64(g, i, &s64, &err);
        (void)lq_gguf_get_f64(g, i, &f, &err);
        (void)lq_gguf_get_bool(g, i, &b, &err);
        (void)lq_gguf_type_name(t);
    }
}

static void touch_tensors(const lq_gguf *g) {
    for (int64_t i = 0; i < lq_gguf_n_tensors(g); i++) {
        const lq_gguf_tensor_info *t = lq_gguf_tensor(g, i);
        if (!t || lq_gguf_find_tensor(g, t->name) != i) abort();
        if (t->offset % lq_gguf_alignment(g) != 0) abort();
        touch(t->data, t->nbytes);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* An exact-size heap copy, so ASan sees reads past the end of the image. */
    uint8_t *copy = (uint8_t *)malloc(size ? size : 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    lq_gguf *g = NULL;
    lq_error err;
    lq_status st = lq_gguf_open_memory(copy, size, NAME, &g, &err);
    if (st == LQ_OK) {
        (void)lq_gguf_path(g);
        (void)lq_gguf_version(g);
        (void)lq_gguf_data_offset(g);
        (void)lq_gguf_file_size(g);
        touch_kvs(g);
        touch_tensors(g);
        (void)lq_gguf_find_key(g, "general.architecture");
        (void)lq_gguf_find_tensor(g, "token_embd.weight");
        lq_gguf_close(g);
    } else if (strncmp(err.msg, NAME ": ", strlen(NAME) + 2) != 0 || strchr(err.msg, '\n')) {
        abort(); /* every error names the file, on one line */
    }
    free(copy);
    return 0;
}
