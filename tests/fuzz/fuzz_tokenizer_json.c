/* fuzz_tokenizer_json.c — libFuzzer harness for the tokenizer.json loader: any bytes either load
 * a tokenizer that tokenizes (ids in range, pieces readable, BOS/EOS in range) or give a one-line
 * error naming the file. The first input byte picks the probe text's flags. */
#include "libquant.h"

#include "fuzz_file.h"

static const char *const probes[] = {
    "Hello world", " once upon a time, 123 tokens\n\n", "\xe2\x96\x81\xc3\xa9\xf0\x9f\x98\x80", "\xff\xfe\x80 bad utf8",
    "<s></s><|endoftext|><unk>", "",
};

static void check_tokens(const lq_tokenizer *t, const int32_t *ids, int64_t n) {
    int64_t n_vocab = lq_tokenizer_n_vocab(t);
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= n_vocab) abort();
        lq_str p = lq_token_piece(t, ids[i]);
        if (p.len && !p.ptr) abort();
        volatile char sink = p.len ? p.ptr[p.len - 1] : 0;
        (void)sink;
    }
}

static void exercise(const lq_tokenizer *t, uint8_t flags) {
    int64_t n_vocab = lq_tokenizer_n_vocab(t);
    if (n_vocab < 1) abort();
    int32_t bos = lq_tokenizer_bos(t), eos = lq_tokenizer_eos(t);
    if (bos < -1 || bos >= n_vocab || eos < -1 || eos >= n_vocab) abort();
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        int32_t *ids = NULL;
        int64_t n = 0;
        lq_error err;
        lq_status st = lq_tokenize(t, probes[i], strlen(probes[i]), flags & 1, (flags >> 1) & 1, &ids, &n, &err);
        if (st == LQ_OK) {
            if (!ids || n < 0) abort();
            check_tokens(t, ids, n);
        }
        free(ids);
    }
    lq_str last = lq_token_piece(t, (int32_t)n_vocab); /* out of range: empty */
    if (last.len != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t flags = size ? data[0] : 0;
    const char *path = fuzz_file("tokenizer.json", data + (size ? 1 : 0), size ? size - 1 : 0);
    lq_tokenizer *t = NULL;
    lq_error err;
    lq_error_clear(&err);
    if (lq_tokenizer_from_json(path, &t, &err) == LQ_OK) {
        exercise(t, flags);
        lq_tokenizer_free(t);
    } else {
        if (t) abort();
        fuzz_check_error(err.msg, path);
    }
    return 0;
}
