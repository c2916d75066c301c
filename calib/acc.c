/* acc.c — accumulating calibration statistics from linear-layer inputs.
 *
 * Per weight and input channel j: Σ x_j² and Σ |x_j| in double, max |x_j| in float (exact),
 * and the number of token rows seen. Large additions split the channels over threads; every
 * channel is still summed in token order, so the result does not depend on the thread count.
 * On a device (lq_stats_acc_set_device) the statistics kernel sums each channel in the same
 * order and precision (kernels/cuda/hd_stats.h), so the sums are bit-identical. */
#include "calib_internal.h"
#include "device_adapters.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct acc_entry {
    char name[LQ_MAX_NAME];
    int64_t n_in;
    double count;
    double *sum_x2, *sum_abs;
    float *max_abs;
} acc_entry;

struct lq_stats_acc {
    int n_threads;
    bool include_output;
    acc_entry **entries; /* in order of first appearance */
    int64_t n, cap;
    int64_t hint;        /* where the next lookup starts: hooks arrive in the same order */
    lq_status status;    /* first failure seen by the hook */
    lq_error first_err;
    lq_device_ctx *device; /* sums on the device (lq_stats_acc_set_device), NULL: CPU */
};

/* Channel splits only pay for themselves on large additions (thread start ~ tens of µs). */
#define PARALLEL_MIN_VALUES (1 << 20)

lq_status lq_stats_acc_new(int n_threads, bool include_output, lq_stats_acc **out, lq_error *err) {
    lq_stats_acc *a = (lq_stats_acc *)lq_calloc(1, sizeof *a, err, "statistics accumulator");
    if (!a) return LQ_ERR_NOMEM;
    a->n_threads = n_threads;
    a->include_output = include_output;
    *out = a;
    return LQ_OK;
}

static void entry_free(acc_entry *e) {
    if (!e) return;
    free(e->sum_x2);
    free(e->sum_abs);
    free(e->max_abs);
    free(e);
}

void lq_stats_acc_free(lq_stats_acc *a) {
    if (!a) return;
    for (int64_t i = 0; i < a->n; i++) entry_free(a->entries[i]);
    free(a->entries);
    free(a);
}

int64_t lq_stats_acc_n_entries(const lq_stats_acc *a) { return a ? a->n : 0; }
bool calib_acc_wants_output(const lq_stats_acc *a) { return a->include_output; }

static acc_entry *find_entry(lq_stats_acc *a, const char *name) {
    for (int64_t k = 0; k < a->n; k++) {
        int64_t i = (a->hint + k) % a->n;
        if (!strcmp(a->entries[i]->name, name)) {
            a->hint = (i + 1) % a->n;
            return a->entries[i];
        }
    }
    return NULL;
}

static lq_status new_entry(lq_stats_acc *a, const char *name, int64_t n_in, acc_entry **out,
                           lq_error *err) {
    if (a->n == a->cap) {
        int64_t cap = a->cap ? 2 * a->cap : 64;
        acc_entry **entries = (acc_entry **)realloc(a->entries, (size_t)cap * sizeof *entries);
        if (!entries) return lq_fail(err, LQ_ERR_NOMEM, "statistics: no memory for %lld entries", (long long)cap);
        a->entries = entries;
        a->cap = cap;
    }
    acc_entry *e = (acc_entry *)calloc(1, sizeof *e);
    if (e) {
        e->sum_x2 = (double *)calloc((size_t)n_in, sizeof(double));
        e->sum_abs = (double *)calloc((size_t)n_in, sizeof(double));
        e->max_abs = (float *)calloc((size_t)n_in, sizeof(float));
    }
    if (!e || !e->sum_x2 || !e->sum_abs || !e->max_abs) {
        entry_free(e);
        return lq_fail(err, LQ_ERR_NOMEM, "statistics '%s': no memory for %lld channels", name, (long long)n_in);
    }
    snprintf(e->name, sizeof e->name, "%s", name);
    e->n_in = n_in;
    a->entries[a->n++] = e;
    *out = e;
    return LQ_OK;
}

/* llama-imatrix collects blk.* weights, and output.weight only when asked. */
static bool wanted(const lq_stats_acc *a, const char *name) {
    if (!strncmp(name, "blk.", 4)) return true;
    return a->include_output && !strcmp(name, "output.weight");
}

typedef struct add_job {
    acc_entry *e;
    const float *x;
    int64_t n_tokens;
} add_job;

static void add_columns(void *ctx, int64_t begin, int64_t end, int thread_index) {
    (void)thread_index;
    const add_job *job = (const add_job *)ctx;
    acc_entry *e = job->e;
    for (int64_t t = 0; t < job->n_tokens; t++) {
        const float *row = job->x + t * e->n_in;
        for (int64_t j = begin; j < end; j++) {
            double v = row[j];
            float m = fabsf(row[j]);
            e->sum_x2[j] += v * v;
            e->sum_abs[j] += fabs(v);
            if (m > e->max_abs[j]) e->max_abs[j] = m;
        }
    }
}

static lq_status check_finite(const char *name, const float *x, int64_t n_tokens, int64_t n_in,
                              lq_error *err) {
    for (int64_t t = 0; t < n_tokens; t++)
        for (int64_t j = 0; j < n_in; j++)
            if (!isfinite(x[t * n_in + j]))
                return lq_fail(err, LQ_ERR_NUMERIC, "statistics '%s': input of token row %lld, channel %lld is %g",
                               name, (long long)t, (long long)j, (double)x[t * n_in + j]);
    return LQ_OK;
}

/* The entry of weight_name for n_in channels (created on first use); *e = NULL for weights the
 * accumulator does not collect. */
static lq_status entry_for(lq_stats_acc *a, const char *weight_name, int64_t n_in, acc_entry **e,
                           lq_error *err) {
    *e = NULL;
    if (strlen(weight_name) >= LQ_MAX_NAME)
        return lq_fail(err, LQ_ERR_INVALID, "statistics: weight name '%.80s...' is %zu bytes (at most %d)",
                       weight_name, strlen(weight_name), LQ_MAX_NAME - 1);
    if (!wanted(a, weight_name)) return LQ_OK;
    acc_entry *found = find_entry(a, weight_name);
    lq_status st;
    if (!found && (st = new_entry(a, weight_name, n_in, &found, err))) return st;
    if (found->n_in != n_in)
        return lq_fail(err, LQ_ERR_INVALID, "statistics '%s': %lld input channels, earlier %lld", weight_name,
                       (long long)n_in, (long long)found->n_in);
    *e = found;
    return LQ_OK;
}

lq_status lq_stats_acc_add(lq_stats_acc *a, const char *weight_name, const float *x,
                           int64_t n_tokens, int64_t n_in, lq_error *err) {
    if (!a || !weight_name || (!x && n_tokens > 0) || n_tokens < 0 || n_in <= 0)
        return lq_fail(err, LQ_ERR_INVALID, "statistics: bad addition for '%s'", weight_name ? weight_name : "(null)");
    acc_entry *e;
    lq_status st = entry_for(a, weight_name, n_in, &e, err);
    if (st || !e) return st;
    if ((st = check_finite(weight_name, x, n_tokens, n_in, err))) return st;
    if (a->device) {
        st = lq_cuda_stats_accumulate(lq_device_cuda(a->device), x, n_tokens, n_in, e->sum_x2,
                                      e->sum_abs, e->max_abs, err);
        if (st) return lq_fail_wrap(err, "statistics '%s'", weight_name);
    } else {
        add_job job = {e, x, n_tokens};
        int threads = n_tokens * n_in >= PARALLEL_MIN_VALUES ? a->n_threads : 1;
        lq_parallel_for(n_in, threads, add_columns, &job);
    }
    e->count += (double)n_tokens;
    return LQ_OK;
}

void lq_stats_acc_set_device(lq_stats_acc *a, lq_device_ctx *d) { a->device = d; }

lq_status lq_stats_acc_add_sums(lq_stats_acc *a, const char *weight_name, int64_t n_in,
                                int64_t n_tokens, const double *sum_x2, const double *sum_abs,
                                const float *max_abs, lq_error *err) {
    if (!a || !weight_name || n_tokens < 0 || n_in <= 0)
        return lq_fail(err, LQ_ERR_INVALID, "statistics: bad sums for '%s'", weight_name ? weight_name : "(null)");
    acc_entry *e;
    lq_status st = entry_for(a, weight_name, n_in, &e, err);
    if (st || !e) return st;
    for (int64_t j = 0; j < n_in; j++) {
        if ((sum_x2 && !isfinite(sum_x2[j])) || (sum_abs && !isfinite(sum_abs[j])) ||
            (max_abs && !isfinite(max_abs[j])))
            return lq_fail(err, LQ_ERR_NUMERIC, "statistics '%s': sums of channel %lld are not finite",
                           weight_name, (long long)j);
    }
    for (int64_t j = 0; j < n_in; j++) {
        if (sum_x2) e->sum_x2[j] += sum_x2[j];
        if (sum_abs) e->sum_abs[j] += sum_abs[j];
        if (max_abs && max_abs[j] > e->max_abs[j]) e->max_abs[j] = max_abs[j];
    }
    e->count += (double)n_tokens;
    return LQ_OK;
}

void lq_stats_acc_hook(void *ctx, const char *weight_name, const float *x, int64_t n_tokens,
                       int64_t n_in) {
    lq_stats_acc *a = (lq_stats_acc *)ctx;
    if (a->status) return;
    a->status = lq_stats_acc_add(a, weight_name, x, n_tokens, n_in, &a->first_err);
}

lq_status lq_stats_acc_status(const lq_stats_acc *a, lq_error *err) {
    if (!a->status) return LQ_OK;
    if (err) *err = a->first_err;
    return a->status;
}

lq_status lq_stats_acc_merge(lq_stats_acc *dst, const lq_stats_acc *src, lq_error *err) {
    for (int64_t i = 0; i < src->n; i++) {
        const acc_entry *s = src->entries[i];
        acc_entry *d = find_entry(dst, s->name);
        lq_status st;
        if (!d && (st = new_entry(dst, s->name, s->n_in, &d, err))) return st;
        if (d->n_in != s->n_in)
            return lq_fail(err, LQ_ERR_INVALID, "statistics '%s': cannot merge %lld channels into %lld", s->name,
                           (long long)s->n_in, (long long)d->n_in);
        for (int64_t j = 0; j < s->n_in; j++) {
            d->sum_x2[j] += s->sum_x2[j];
            d->sum_abs[j] += s->sum_abs[j];
            if (s->max_abs[j] > d->max_abs[j]) d->max_abs[j] = s->max_abs[j];
        }
        d->count += s->count;
    }
    return LQ_OK;
}

static lq_status add_frozen_entry(lq_stats *s, const acc_entry *e, lq_error *err) {
    size_t n = (size_t)e->n_in;
    float *buf = (float *)lq_malloc(2 * n * sizeof(float), err, e->name);
    if (!buf) return LQ_ERR_NOMEM;
    for (size_t j = 0; j < n; j++) {
        buf[j] = (float)e->sum_x2[j];
        buf[n + j] = (float)e->sum_abs[j];
    }
    float count = (float)e->count;
    lq_status st = stats_add_entry(s, e->name, e->n_in, 1, buf, &count, buf + n, e->max_abs, err);
    free(buf);
    return st;
}

lq_status lq_stats_from_acc(const lq_stats_acc *a, const lq_stats_meta *meta, lq_stats **out,
                            lq_error *err) {
    *out = NULL;
    lq_stats *s = stats_new(LQ_STATS_GGUF, err);
    if (!s) return LQ_ERR_NOMEM;
    lq_status st = LQ_OK;
    for (int64_t i = 0; !st && i < a->n; i++) st = add_frozen_entry(s, a->entries[i], err);
    if (!st && meta) st = stats_set_meta(s, meta, err);
    if (!st) st = stats_seal(s, "statistics", err);
    if (st) {
        lq_stats_free(s);
        return st;
    }
    *out = s;
    return LQ_OK;
}
