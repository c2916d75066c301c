/* check_finite.c — decodes every tensor of a GGUF file and fails unless each value is finite
 * (a non-finite stored scale would make lq_dequantize_rows report the row and block).
 *   check_finite FILE.gguf   → prints "N tensors, M values finite" or the first problem. */
#include "libquant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int check_tensor(const lq_gguf_tensor_info *t, const char *path) {
    int64_t ne0 = t->ne[0], rows = t->ne[1] * t->ne[2] * t->ne[3];
    float *row = malloc((size_t)ne0 * sizeof(float));
    size_t row_bytes = lq_row_size(t->type, ne0);
    lq_error err;
    int bad = 0;
    for (int64_t r = 0; r < rows && !bad; r++) {
        if (lq_dequantize_rows(t->type, (const unsigned char *)t->data + (size_t)r * row_bytes, row, 1, ne0, &err)) {
            fprintf(stderr, "%s: %s row %lld: %s\n", path, t->name, (long long)r, err.msg);
            bad = 1;
        }
        for (int64_t c = 0; c < ne0 && !bad; c++)
            if (!isfinite(row[c])) {
                fprintf(stderr, "%s: %s row %lld column %lld is not finite\n", path, t->name, (long long)r, (long long)c);
                bad = 1;
            }
    }
    free(row);
    return bad;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: check_finite FILE.gguf\n");
        return 2;
    }
    lq_gguf *g = NULL;
    lq_error err;
    if (lq_gguf_open(argv[1], &g, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    int bad = 0;
    uint64_t values = 0;
    for (int64_t i = 0; i < lq_gguf_n_tensors(g) && !bad; i++) {
        const lq_gguf_tensor_info *t = lq_gguf_tensor(g, i);
        bad = check_tensor(t, argv[1]);
        values += (uint64_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
    }
    if (!bad) printf("%lld tensors, %llu values finite\n", (long long)lq_gguf_n_tensors(g), (unsigned long long)values);
    lq_gguf_close(g);
    return bad;
}
