/* fuzz_config.c — libFuzzer harness for config.json parsing: any text either gives hyperparameters
 * that satisfy the invariants the model view relies on, or a one-line error naming the file. */
#include "libquant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NAME "fuzz/config.json"

static void check(const lq_hparams *hp) {
    if (hp->n_embd < 1 || hp->n_layer < 1 || hp->n_head < 1 || hp->n_head_kv < 1 || hp->head_dim < 1) abort();
    if (hp->n_ff < 1 || hp->n_vocab < 1 || hp->n_ctx_train < 1) abort();
    if (hp->n_head % hp->n_head_kv != 0 || hp->head_dim % 2 != 0) abort();
    if (!(hp->rope_theta > 0.0f) || !isfinite(hp->rope_theta) || !(hp->rms_eps > 0.0f) || !isfinite(hp->rms_eps))
        abort();
    if (hp->arch != LQ_ARCH_LLAMA && hp->arch != LQ_ARCH_MISTRAL && hp->arch != LQ_ARCH_QWEN2) abort();
    if (!memchr(hp->arch_name, '\0', sizeof hp->arch_name)) abort();
    /* Shape products used by the model view stay far from overflow. */
    if (hp->n_head * hp->head_dim > ((int64_t)1 << 34) || hp->n_embd * hp->n_vocab > ((int64_t)1 << 44)) abort();
    if (hp->rope_scaling == LQ_ROPE_SCALING_LLAMA3 && (hp->rope_orig_ctx < 1 || !(hp->rope_factor >= 1.0f))) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *copy = (char *)malloc(size ? size : 1); /* exact size: ASan sees over-reads */
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    lq_hparams hp;
    lq_error err;
    lq_status rc = lq_hparams_from_config_json(copy, size, NAME, &hp, &err);
    if (rc == LQ_OK)
        check(&hp);
    else if (!strstr(err.msg, NAME) || strchr(err.msg, '\n'))
        abort();
    free(copy);
    return 0;
}
