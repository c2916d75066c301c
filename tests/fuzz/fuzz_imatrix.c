/* fuzz_imatrix.c — libFuzzer harness for the statistics readers (GGUF imatrix, ours or llama.cpp's,
 * and the legacy .dat, chosen by content): an accepted file has sorted, unique, finite,
 * non-negative entries whose importance rows can be computed; a rejected one gives a one-line
 * error naming the file. */
#include "libquant.h"

#include <math.h>

#include "fuzz_file.h"

static void check_entry(const lq_stats *s, const lq_stats_entry *e, const lq_stats_entry *prev) {
    if (!e || !e->name || !e->sum_x2 || !e->counts || e->n_in < 1 || e->n_experts < 1) abort();
    if (prev && strcmp(prev->name, e->name) >= 0) abort(); /* sorted, unique */
    if (lq_stats_find(s, e->name) != e) abort();
    int64_t n = e->n_in * e->n_experts;
    for (int64_t j = 0; j < n; j++) {
        if (!isfinite(e->sum_x2[j]) || e->sum_x2[j] < 0) abort();
        if (e->sum_abs && (!isfinite(e->sum_abs[j]) || e->sum_abs[j] < 0)) abort();
        if (e->max_abs && (!isfinite(e->max_abs[j]) || e->max_abs[j] < 0)) abort();
    }
    for (int64_t x = 0; x < e->n_experts; x++)
        if (!isfinite(e->counts[x]) || (!e->legacy && e->counts[x] < 0)) abort();
    float *row = (float *)malloc((size_t)n * sizeof(float));
    if (!row) return;
    lq_error err;
    if (lq_stats_importance(e, row, &err) == LQ_OK)
        for (int64_t j = 0; j < n; j++)
            if (isnan(row[j]) || row[j] < 0) abort();
    if (lq_stats_mean_abs(e, row, &err) == LQ_OK)
        for (int64_t j = 0; j < n; j++)
            if (isnan(row[j]) || row[j] < 0) abort();
    free(row);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file("imatrix", data, size);
    lq_stats *s = NULL;
    lq_error err;
    lq_error_clear(&err);
    if (lq_stats_read(path, &s, &err) == LQ_OK) {
        const lq_stats_entry *prev = NULL;
        for (int64_t i = 0; i < lq_stats_n_entries(s); i++) {
            const lq_stats_entry *e = lq_stats_entry_at(s, i);
            check_entry(s, e, prev);
            prev = e;
        }
        const lq_stats_meta *m = lq_stats_get_meta(s);
        if (m)
            for (int64_t i = 0; i < m->n_datasets; i++)
                if (m->datasets[i] && strlen(m->datasets[i]) > size) abort();
        lq_stats_free(s);
    } else {
        if (s) abort();
        fuzz_check_error(err.msg, path);
    }
    return 0;
}
