/* device.c — `--device auto|cpu|cuda[:N]` selection (what the tools call) and the CPU
 * linear-algebra backend object (kernels/cuda/lq_cuda.h's lq_la_ops over linalg.h). The CUDA
 * backend itself is a module loaded on demand (device_loader.c). */
#include "kernels/cuda/lq_cuda.h"
#include "linalg.h"
#include "lq_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool lq_cuda_compiled(void) { return LQ_HAVE_CUDA != 0; }

lq_status lq_device_parse(const char *spec, lq_device_kind *kind, int *index, lq_error *err) {
    *kind = LQ_DEVICE_AUTO;
    *index = -1;
    if (!spec || !*spec || !strcasecmp(spec, "auto")) return LQ_OK;
    if (!strcasecmp(spec, "cpu")) {
        *kind = LQ_DEVICE_CPU;
        return LQ_OK;
    }
    if (!strncasecmp(spec, "cuda", 4)) {
        const char *rest = spec + 4;
        *kind = LQ_DEVICE_CUDA;
        if (!*rest) return LQ_OK;
        char *end = NULL;
        long v = *rest == ':' ? strtol(rest + 1, &end, 10) : -1;
        if (*rest == ':' && end != rest + 1 && !*end && v >= 0 && v < 1024) {
            *index = (int)v;
            return LQ_OK;
        }
    }
    return lq_fail(err, LQ_ERR_INVALID,
                   "--device '%s': expected auto, cpu, cuda or cuda:N", spec);
}

static void select_cpu(lq_device *d, const char *why) {
    d->kind = LQ_DEVICE_CPU;
    d->index = -1;
    snprintf(d->name, sizeof d->name, "cpu");
    snprintf(d->note, sizeof d->note, "device: cpu (%.200s)", why);
}

lq_status lq_device_select(const char *spec, lq_device *out, lq_error *err) {
    memset(out, 0, sizeof *out);
    lq_device_kind kind;
    int index;
    lq_status st = lq_device_parse(spec, &kind, &index, err);
    if (st != LQ_OK) return st;
    if (kind == LQ_DEVICE_CPU) {
        select_cpu(out, "requested");
        return LQ_OK;
    }
    /* the CUDA module is loaded here, on the first request (device_loader.c) */
    const char *why = NULL;
    int n = lq_cuda_backend_probe(&why);
    if (n <= 0) {
        if (kind == LQ_DEVICE_CUDA)
            return lq_fail(err, LQ_ERR_UNSUPPORTED, "--device %s: %s", spec, why);
        char reason[sizeof out->note];
        snprintf(reason, sizeof reason, "auto: %s", why);
        select_cpu(out, reason);
        return LQ_OK;
    }
    if (index < 0) index = 0;
    if (index >= n)
        return lq_fail(err, LQ_ERR_INVALID, "--device %s: there %s only %d CUDA device%s", spec,
                       n == 1 ? "is" : "are", n, n == 1 ? "" : "s");
    const char *name = lq_cuda_device_name(index);
    out->kind = LQ_DEVICE_CUDA;
    out->index = index;
    snprintf(out->name, sizeof out->name, "%s", name ? name : "CUDA device");
    snprintf(out->note, sizeof out->note, "device: cuda:%d (%s; %s, %d CUDA device%s present)",
             index, out->name, kind == LQ_DEVICE_AUTO ? "auto-selected" : "requested", n,
             n == 1 ? "" : "s");
    return LQ_OK;
}

/* ---- CPU linear-algebra backend object ---------------------------------------------------- */

static void cpu_sgemm(void *ctx, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                      const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                      float *c, int64_t ldc) {
    (void)ctx;
    lq_la_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
static void cpu_syrk(void *ctx, int64_t n, int64_t k, const float *x, int64_t ldx, double *h,
                     float *scratch, int n_threads) {
    (void)ctx;
    lq_la_syrk_acc(n, k, x, ldx, h, scratch, n_threads);
}
static int64_t cpu_potrf(void *ctx, int64_t n, double *a, int64_t lda) {
    (void)ctx;
    return lq_la_potrf_lower(n, a, lda);
}
static int64_t cpu_potri(void *ctx, int64_t n, double *a, int64_t lda) {
    (void)ctx;
    return lq_la_potri_lower(n, a, lda);
}

const lq_la_ops *lq_la_ops_cpu(void) {
    static lq_la_ops be = {NULL, NULL, cpu_sgemm, cpu_syrk, cpu_potrf, cpu_potri};
    be.name = lq_la_backend(); /* same string every call: a benign race */
    return &be;
}
