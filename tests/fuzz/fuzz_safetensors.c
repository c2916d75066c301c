/* fuzz_safetensors.c — libFuzzer harness for the safetensors reader: parse an arbitrary image;
 * when it is accepted, touch every tensor's bytes and metadata string through the public
 * accessors (ASan catches reads outside the image) and check the invariants the reader promises;
 * when it is rejected, the one-line message must name the image. */
#include "libquant.h"

#include <stdlib.h>
#include <string.h>

#define NAME "fuzz.safetensors"

static volatile uint8_t sink;

static void touch(const void *p, uint64_t n) {
    if (!n) return;
    const uint8_t *b = (const uint8_t *)p;
    sink ^= b[0];
    sink ^= b[n - 1];
}

static void check_tensor(const lq_safetensors *st, const lq_st_tensor *t, const uint8_t *img, size_t size) {
    if (lq_safetensors_find(st, t->name) != t) abort(); /* names are unique and found again */
    if (t->type != LQ_TYPE_F32 && t->type != LQ_TYPE_F16 && t->type != LQ_TYPE_BF16) abort();
    if (t->n_dims > LQ_MAX_DIMS) abort();
    uint64_t elems = 1;
    for (uint32_t d = 0; d < LQ_MAX_DIMS; d++) {
        if (t->shape[d] < 0) abort();
        elems *= (uint64_t)t->shape[d];
    }
    if (elems * lq_type_get(t->type)->block_bytes != t->nbytes) abort();
    const uint8_t *p = (const uint8_t *)t->data;
    if (p < img + 8 || t->nbytes > size || p + t->nbytes > img + size) abort();
    touch(t->data, t->nbytes);
    char gguf_name[LQ_MAX_NAME];
    lq_error err;
    (void)lq_hf_to_gguf_name(t->name, gguf_name, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* An exact-size heap copy, so ASan sees reads past the end of the image. */
    uint8_t *copy = (uint8_t *)malloc(size ? size : 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    lq_safetensors *st = NULL;
    lq_error err;
    lq_status rc = lq_safetensors_open_memory(copy, size, NAME, &st, &err);
    if (rc == LQ_OK) {
        for (int64_t i = 0; i < lq_safetensors_n_tensors(st); i++)
            check_tensor(st, lq_safetensors_tensor(st, i), copy, size);
        if (lq_safetensors_tensor(st, lq_safetensors_n_tensors(st)) != NULL) abort();
        for (int64_t i = 0; i < lq_safetensors_n_metadata(st); i++)
            sink ^= (uint8_t)(strlen(lq_safetensors_metadata_key(st, i)) + strlen(lq_safetensors_metadata_value(st, i)));
        (void)lq_safetensors_find(st, "model.embed_tokens.weight");
        lq_safetensors_close(st);
    } else if (st != NULL || !strstr(err.msg, NAME) || strchr(err.msg, '\n')) {
        abort(); /* every error names the file, on one line, and leaves no handle */
    }
    free(copy);
    return 0;
}
