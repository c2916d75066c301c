/* device_ctx.c — lq_device_ctx (an opened device for the library) and the device paths of the
 * passes, the statistics and the runtime (device_adapters.h). Plain C over lq_cuda.h: the CUDA
 * module is loaded on demand (device_loader.c), so this file is the same in every build. */
#include "device_adapters.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HESSIANS 8   /* inputs of one layer group the passes accumulate at once (4 today) */

typedef struct dev_hessian {
    const lq_hessian *owner; /* NULL: free slot */
    int64_t n_in, n_tokens;  /* n_tokens: owner's count after the last add (detects reuse) */
    lq_cuda_buf h, scratch, x;
} dev_hessian;

typedef struct dev_weight {
    const void *host;
    size_t bytes;
    lq_cuda_buf buf;
} dev_weight;

typedef struct staged {
    const void *host;
    const void *dev;
    size_t bytes;
    int64_t layer;
} staged;

struct lq_device_ctx {
    lq_cuda_ctx *cuda;
    lq_la_ops la;
    bool la_ok;
    lq_error first_err; /* first failure of a call without a status (hessian adds) */
    dev_hessian hess[MAX_HESSIANS];
    lq_cuda_layer_slots slots;
    size_t slot_bytes, slot_used[2];
    staged *staged;
    int n_staged, cap_staged;
    dev_weight *weights; /* runtime weights, in order of first use */
    int n_weights, cap_weights;
    size_t weights_bytes;
    lq_cuda_buf mm_x, mm_y;
    lq_cuda_buf awq[8];
};

lq_status lq_device_open(const lq_device *dev, lq_device_ctx **out, lq_error *err) {
    *out = NULL;
    if (!dev || dev->kind != LQ_DEVICE_CUDA) return LQ_OK;
    lq_device_ctx *d = (lq_device_ctx *)lq_calloc(1, sizeof *d, err, "device context");
    if (!d) return LQ_ERR_NOMEM;
    lq_status st = lq_cuda_ctx_create(dev->index, 0, &d->cuda, err);
    if (st != LQ_OK) {
        free(d);
        return st;
    }
    d->la_ok = lq_la_ops_cuda(d->cuda, &d->la, NULL) == LQ_OK;
    *out = d;
    return LQ_OK;
}

void lq_device_close(lq_device_ctx *d) {
    if (!d) return;
    lq_cuda_sync(d->cuda, NULL);
    for (int i = 0; i < MAX_HESSIANS; i++) {
        lq_cuda_buf_free(&d->hess[i].h);
        lq_cuda_buf_free(&d->hess[i].scratch);
        lq_cuda_buf_free(&d->hess[i].x);
    }
    lq_cuda_layer_slots_free(&d->slots);
    for (int i = 0; i < d->n_weights; i++) lq_cuda_buf_free(&d->weights[i].buf);
    lq_cuda_buf_free(&d->mm_x);
    lq_cuda_buf_free(&d->mm_y);
    for (int i = 0; i < 8; i++) lq_cuda_buf_free(&d->awq[i]);
    free(d->weights);
    free(d->staged);
    lq_cuda_ctx_free(d->cuda);
    free(d);
}

lq_cuda_ctx *lq_device_cuda(const lq_device_ctx *d) { return d ? d->cuda : NULL; }

static lq_status no_device(lq_error *err, const char *what) {
    return lq_fail(err, LQ_ERR_UNSUPPORTED, "%s: no device context", what);
}

/* ---- GPTQ ----------------------------------------------------------------------------------- */

static const void *staged_copy(const lq_device_ctx *d, const void *host, size_t bytes) {
    for (int i = 0; i < d->n_staged; i++)
        if (d->staged[i].host == host && d->staged[i].bytes == bytes) return d->staged[i].dev;
    return NULL;
}

lq_status lq_device_gptq_sweep(lq_device_ctx *d, lq_type type, const char *name, const float *w,
                               int64_t n_out, int64_t n_in, const float *u, const float *imp,
                               const uint8_t *dead, int64_t lazy, void *dst, float *deq,
                               double *loss, lq_error *err) {
    if (!d) return no_device(err, "gptq");
    size_t w_bytes = (size_t)n_out * (size_t)n_in * sizeof(float);
    lq_cuda_gptq_in in = {type, name, w, n_out, n_in, u, imp, dead, lazy,
                          (const float *)staged_copy(d, w, w_bytes)};
    return lq_cuda_gptq_sweep(d->cuda, &in, dst, deq, loss, err);
}

const lq_la_ops *lq_device_la_ops(lq_device_ctx *d) {
    return d && d->la_ok ? &d->la : lq_la_ops_cpu();
}

/* ---- Hessians ------------------------------------------------------------------------------- */

static void keep_first(lq_device_ctx *d, const lq_error *e) {
    if (d->first_err.code == LQ_OK) d->first_err = *e;
}

static dev_hessian *hessian_slot(lq_device_ctx *d, const lq_hessian *hs, lq_error *err) {
    dev_hessian *free_slot = NULL;
    for (int i = 0; i < MAX_HESSIANS; i++) {
        dev_hessian *s = &d->hess[i];
        /* a slot whose owner restarted (a new lq_hessian at the same address) is stale */
        if (s->owner == hs && s->n_in == hs->n_in && s->n_tokens == hs->n_tokens) return s;
        if (s->owner == hs) s->owner = NULL;
        if (!s->owner && !free_slot) free_slot = s;
    }
    if (!free_slot) {
        lq_fail(err, LQ_ERR_INVALID, "device hessian: more than %d accumulating at once", MAX_HESSIANS);
        return NULL;
    }
    size_t n2 = (size_t)hs->n_in * (size_t)hs->n_in;
    lq_status st = lq_cuda_buf_reserve(d->cuda, &free_slot->h, n2 * sizeof(double), err);
    if (st == LQ_OK) st = lq_cuda_buf_reserve(d->cuda, &free_slot->scratch, n2 * sizeof(float), err);
    if (st != LQ_OK) return NULL;
    /* the host sum keeps what it had: the device sum starts at 0 and is added at collect */
    double *zeros = (double *)lq_calloc(n2, sizeof(double), err, "device hessian");
    if (!zeros) return NULL;
    st = lq_cuda_upload(d->cuda, free_slot->h.ptr, zeros, n2 * sizeof(double), err);
    free(zeros);
    if (st != LQ_OK) return NULL;
    free_slot->owner = hs;
    free_slot->n_in = hs->n_in;
    free_slot->n_tokens = hs->n_tokens;
    return free_slot;
}

void lq_device_hessian_add(lq_device_ctx *d, lq_hessian *hs, const float *x, int64_t n_tokens) {
    if (!d || n_tokens <= 0 || d->first_err.code != LQ_OK) return;
    lq_error e;
    lq_error_clear(&e);
    dev_hessian *s = hessian_slot(d, hs, &e);
    size_t x_bytes = (size_t)n_tokens * (size_t)hs->n_in * sizeof(float);
    lq_status st = s ? LQ_OK : e.code;
    if (st == LQ_OK) st = lq_cuda_buf_reserve(d->cuda, &s->x, x_bytes, &e);
    if (st == LQ_OK) st = lq_cuda_upload(d->cuda, s->x.ptr, x, x_bytes, &e);
    if (st == LQ_OK)
        st = lq_cuda_syrk_acc_dev(d->cuda, hs->n_in, n_tokens, (const float *)s->x.ptr, hs->n_in,
                                  (double *)s->h.ptr, (float *)s->scratch.ptr, &e);
    if (st != LQ_OK) {
        keep_first(d, &e);
        return;
    }
    hs->n_tokens += n_tokens;
    s->n_tokens = hs->n_tokens;
}

lq_status lq_device_hessian_collect(lq_device_ctx *d, lq_hessian *hs, lq_error *err) {
    if (!d) return LQ_OK;
    if (d->first_err.code != LQ_OK) {
        if (err) *err = d->first_err;
        return d->first_err.code;
    }
    for (int i = 0; i < MAX_HESSIANS; i++) {
        dev_hessian *s = &d->hess[i];
        if (s->owner != hs) continue;
        s->owner = NULL;
        if (s->n_in != hs->n_in || s->n_tokens != hs->n_tokens) continue; /* stale */
        size_t n2 = (size_t)hs->n_in * (size_t)hs->n_in;
        double *sum = (double *)lq_malloc(n2 * sizeof(double), err, "device hessian");
        if (!sum) return LQ_ERR_NOMEM;
        lq_status st = lq_cuda_download(d->cuda, sum, s->h.ptr, n2 * sizeof(double), err);
        if (st == LQ_OK)
            for (size_t k = 0; k < n2; k++) hs->h[k] += sum[k];
        free(sum);
        /* device memory goes back now: the next group may have other widths */
        lq_cuda_buf_free(&s->h);
        lq_cuda_buf_free(&s->scratch);
        lq_cuda_buf_free(&s->x);
        return st;
    }
    return LQ_OK;
}

/* ---- layer streaming ------------------------------------------------------------------------ */

lq_status lq_device_layers_reserve(lq_device_ctx *d, size_t layer_bytes, lq_error *err) {
    if (!d) return no_device(err, "layer slots");
    lq_status st = lq_cuda_layer_slots_reserve(d->cuda, &d->slots, layer_bytes, err);
    if (st == LQ_OK) d->slot_bytes = layer_bytes;
    return st;
}

static void forget_layer(lq_device_ctx *d, int64_t layer) {
    int k = 0;
    for (int i = 0; i < d->n_staged; i++)
        if (d->staged[i].layer != layer) d->staged[k++] = d->staged[i];
    d->n_staged = k;
}

lq_status lq_device_layer_stage(lq_device_ctx *d, int64_t layer, int n, const float *const *w,
                                const size_t *bytes, lq_error *err) {
    if (!d) return no_device(err, "layer slots");
    size_t total = 0;
    for (int i = 0; i < n; i++) total += (bytes[i] + 255) / 256 * 256;
    if (total > d->slot_bytes)
        return lq_fail(err, LQ_ERR_INVALID, "layer %" PRId64 ": %zu bytes of weights, slots of %zu reserved",
                       layer, total, d->slot_bytes);
    if (d->n_staged + n > d->cap_staged) {
        int cap = (d->n_staged + n) * 2;
        staged *p = (staged *)realloc(d->staged, (size_t)cap * sizeof *p);
        if (!p) return lq_fail(err, LQ_ERR_NOMEM, "layer slots: out of memory");
        d->staged = p;
        d->cap_staged = cap;
    }
    forget_layer(d, layer - 2); /* the arena it used is the one reused now */
    forget_layer(d, layer);
    char *arena = (char *)lq_cuda_layer_slot_acquire(d->cuda, &d->slots, layer, err);
    if (!arena) return err ? err->code : LQ_ERR_IO;
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        lq_status st = lq_cuda_upload_overlapped(d->cuda, arena + off, w[i], bytes[i], err);
        if (st != LQ_OK) return st;
        d->staged[d->n_staged++] = (staged){w[i], arena + off, bytes[i], layer};
        off += (bytes[i] + 255) / 256 * 256;
    }
    d->slot_used[layer & 1] = off;
    return LQ_OK;
}

lq_status lq_device_stage_matrices(lq_device_ctx *d, int64_t layer, int n, float *const *w,
                                   const int64_t *n_out, const int64_t *n_in, lq_error *err) {
    if (!d) return no_device(err, "layer slots");
    enum { MAX_STAGED = 16 };
    const float *ptr[MAX_STAGED];
    size_t bytes[MAX_STAGED], total = 0;
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (!w[i]) continue;
        if (k == MAX_STAGED) return lq_fail(err, LQ_ERR_INVALID, "layer %" PRId64 ": more than %d matrices", layer, MAX_STAGED);
        ptr[k] = w[i];
        bytes[k] = (size_t)n_out[i] * (size_t)n_in[i] * sizeof(float);
        total += (bytes[k] + 255) / 256 * 256;
        k++;
    }
    if (total > d->slot_bytes) {
        /* growing frees the arenas: nothing may still read them */
        lq_status st = lq_cuda_sync(d->cuda, err);
        if (st == LQ_OK) st = lq_device_layers_reserve(d, total, err);
        if (st != LQ_OK) return st;
        d->n_staged = 0;
    }
    return lq_device_layer_stage(d, layer, k, ptr, bytes, err);
}

lq_status lq_device_layer_done(lq_device_ctx *d, int64_t layer, lq_error *err) {
    if (!d) return no_device(err, "layer slots");
    forget_layer(d, layer);
    return lq_cuda_layer_slot_release(d->cuda, &d->slots, layer, err);
}

/* ---- AWQ ------------------------------------------------------------------------------------ */

lq_status lq_device_awq_clip(lq_device_ctx *d, lq_type type, float *w, int64_t n_out,
                             int64_t n_in, const float *x, int64_t t, double *mean_ratio,
                             lq_error *err) {
    if (!d) return no_device(err, "awq clip");
    return lq_cuda_awq_clip(d->cuda, type, w, n_out, n_in, x, t, mean_ratio, err);
}

enum { AWQ_X, AWQ_W, AWQ_WQ, AWQ_BLOCKS, AWQ_STATUS, AWQ_S, AWQ_OUT, AWQ_TMP };

typedef struct awq_dev {
    lq_cuda_ctx *c;
    const awq_group *g;
    int64_t n_in, t, width;
    float *x, *w, *wq, *s, *ref, *out, *tmp, *down;
    void *blocks;
    uint8_t *status;
} awq_dev;

/* group_forward of awq.c on the device: concatenated outputs (ldc = width) or the MLP. */
static lq_status awq_forward(const awq_dev *a, const float *w, float *out, lq_error *err) {
    const awq_group *g = a->g;
    lq_status st = LQ_OK;
    if (!g->down) {
        int64_t col = 0;
        for (int l = 0; l < g->n_lin && st == LQ_OK; l++) {
            st = lq_cuda_sgemm_dev(a->c, false, true, a->t, g->n_out[l], a->n_in, 1.0f, a->x, a->n_in,
                                   w, a->n_in, 0.0f, out + col, a->width, err);
            w += g->n_out[l] * a->n_in;
            col += g->n_out[l];
        }
        return st;
    }
    int64_t n_ff = g->n_out[0];
    float *gate = a->tmp, *up = a->tmp + a->t * n_ff;
    st = lq_cuda_sgemm_dev(a->c, false, true, a->t, n_ff, a->n_in, 1.0f, a->x, a->n_in, w, a->n_in,
                           0.0f, gate, n_ff, err);
    if (st == LQ_OK)
        st = lq_cuda_sgemm_dev(a->c, false, true, a->t, n_ff, a->n_in, 1.0f, a->x, a->n_in,
                               w + n_ff * a->n_in, a->n_in, 0.0f, up, n_ff, err);
    if (st == LQ_OK) st = lq_cuda_silu_mul_dev(a->c, gate, up, a->t * n_ff, err);
    if (st == LQ_OK)
        st = lq_cuda_sgemm_dev(a->c, false, true, a->t, g->n_down_out, n_ff, 1.0f, gate, n_ff,
                               a->down, n_ff, 0.0f, out, g->n_down_out, err);
    return st;
}

/* Q(W·s)/s of every linear into a->wq; LQ_ERR_NUMERIC when a block overflowed fp16 (the CPU's
 * lq_quantize_rows refuses such a candidate the same way). */
static lq_status awq_fakequant(const awq_dev *a, uint8_t *status_host, size_t status_cap,
                               lq_error *err) {
    const awq_group *g = a->g;
    int64_t off = 0;
    for (int l = 0; l < g->n_lin; l++) {
        int64_t n_blocks = a->n_in / lq_type_get(g->type[l])->block_size;
        size_t n_status = (size_t)(g->n_out[l] * n_blocks);
        lq_status st = lq_cuda_awq_fakequant_scaled_dev(a->c, g->type[l], a->w + off, a->s,
                                                        a->wq + off, a->blocks, g->n_out[l],
                                                        a->n_in, a->status, err);
        if (st == LQ_OK && n_status <= status_cap)
            st = lq_cuda_download(a->c, status_host, a->status, n_status, err);
        if (st != LQ_OK) return st;
        for (size_t i = 0; i < n_status; i++)
            if (status_host[i])
                return lq_fail(err, LQ_ERR_NUMERIC, "awq: candidate overflows %s",
                               lq_type_get(g->type[l])->name);
        off += g->n_out[l] * a->n_in;
    }
    return LQ_OK;
}

static lq_status awq_alloc(lq_device_ctx *d, awq_dev *a, int64_t total_w, size_t blocks_bytes,
                           size_t n_status, int64_t max_out, lq_error *err) {
    const awq_group *g = a->g;
    size_t down_n = g->down ? (size_t)(g->n_down_out * g->n_out[0]) : 0;
    size_t out_n = (size_t)(a->t * a->width);
    size_t sizes[8] = {(size_t)(a->t * a->n_in) * 4, (size_t)total_w * 4 + down_n * 4,
                       (size_t)total_w * 4, blocks_bytes, n_status, (size_t)a->n_in * 4,
                       2 * out_n * 4, (size_t)(a->t * max_out) * 2 * 4};
    for (int i = 0; i < 8; i++) {
        lq_status st = lq_cuda_buf_reserve(d->cuda, &d->awq[i], sizes[i] ? sizes[i] : 1, err);
        if (st != LQ_OK) return st;
    }
    a->x = (float *)d->awq[AWQ_X].ptr;
    a->w = (float *)d->awq[AWQ_W].ptr;
    a->down = g->down ? a->w + total_w : NULL;
    a->wq = (float *)d->awq[AWQ_WQ].ptr;
    a->blocks = d->awq[AWQ_BLOCKS].ptr;
    a->status = (uint8_t *)d->awq[AWQ_STATUS].ptr;
    a->s = (float *)d->awq[AWQ_S].ptr;
    a->ref = (float *)d->awq[AWQ_OUT].ptr;
    a->out = a->ref + out_n;
    a->tmp = (float *)d->awq[AWQ_TMP].ptr;
    return LQ_OK;
}

static lq_status awq_upload(lq_device_ctx *d, awq_dev *a, const float *x, lq_error *err) {
    const awq_group *g = a->g;
    lq_status st = lq_cuda_upload(d->cuda, a->x, x, (size_t)(a->t * a->n_in) * 4, err);
    float *w = a->w;
    for (int l = 0; l < g->n_lin && st == LQ_OK; l++) {
        st = lq_cuda_upload(d->cuda, w, g->w[l], (size_t)(g->n_out[l] * a->n_in) * 4, err);
        w += g->n_out[l] * a->n_in;
    }
    if (st == LQ_OK && g->down)
        st = lq_cuda_upload(d->cuda, a->down, g->down, (size_t)(g->n_down_out * g->n_out[0]) * 4, err);
    return st;
}

lq_status lq_device_awq_search_scale(lq_device_ctx *d, const awq_group *g, int64_t n_in,
                                     const float *x, int64_t t, const float *x_mean, int n_grid,
                                     float *s, double *alpha, double *loss_plain,
                                     double *loss_best, lq_error *err) {
    if (!d) return no_device(err, "awq search");
    if (g->h) return lq_fail(err, LQ_ERR_UNSUPPORTED, "awq: the GPTQ-in-the-loop search runs on the CPU");
    awq_dev a = {d->cuda, g, n_in, t, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    int64_t max_out = 0, total_w = 0;
    size_t blocks_bytes = 0, n_status = 0;
    for (int l = 0; l < g->n_lin; l++) {
        const lq_type_traits *tr = lq_type_get(g->type[l]);
        if (!tr || !tr->has_codec || n_in % tr->block_size)
            return lq_fail(err, LQ_ERR_UNSUPPORTED, "awq: type %d has no device codec", (int)g->type[l]);
        a.width += g->n_out[l];
        if (g->n_out[l] > max_out) max_out = g->n_out[l];
        total_w += g->n_out[l] * n_in;
        size_t bb = lq_row_size(g->type[l], n_in) * (size_t)g->n_out[l];
        size_t ns = (size_t)(g->n_out[l] * (n_in / tr->block_size));
        if (bb > blocks_bytes) blocks_bytes = bb;
        if (ns > n_status) n_status = ns;
    }
    if (g->down) a.width = g->n_down_out;
    size_t out_n = (size_t)(t * a.width);
    float *cand = (float *)lq_malloc((size_t)n_in * sizeof(float), err, "awq");
    uint8_t *status = (uint8_t *)lq_malloc(n_status ? n_status : 1, err, "awq");
    lq_status st = cand && status ? LQ_OK : LQ_ERR_NOMEM;
    if (st == LQ_OK) st = awq_alloc(d, &a, total_w, blocks_bytes, n_status, max_out, err);
    if (st == LQ_OK) st = awq_upload(d, &a, x, err);
    if (st == LQ_OK) st = awq_forward(&a, a.w, a.ref, err);
    *loss_best = INFINITY;
    *loss_plain = NAN;
    *alpha = 0.0;
    for (int k = 0; k < n_grid && st == LQ_OK; k++) {
        double al = (double)k / n_grid, sum = 0.0;
        lq_awq_scales(x_mean, n_in, al, cand);
        st = lq_cuda_upload(d->cuda, a.s, cand, (size_t)n_in * sizeof(float), err);
        if (st == LQ_OK) st = awq_fakequant(&a, status, n_status, err);
        if (st == LQ_ERR_NUMERIC) { /* a scale that overflows the format: not a candidate */
            st = LQ_OK;
            continue;
        }
        if (st == LQ_OK) st = awq_forward(&a, a.wq, a.out, err);
        if (st == LQ_OK) st = lq_cuda_sum_sq_diff_dev(d->cuda, a.ref, a.out, (int64_t)out_n, &sum, err);
        if (st != LQ_OK) break;
        double loss = sum / (double)(out_n ? out_n : 1);
        if (k == 0) *loss_plain = loss;
        if (isfinite(loss) && loss < *loss_best) {
            *loss_best = loss;
            *alpha = al;
            memcpy(s, cand, (size_t)n_in * sizeof(float));
        }
    }
    if (st == LQ_OK && !isfinite(*loss_best))
        st = lq_fail(err, LQ_ERR_NUMERIC, "awq: no finite loss over %d scale candidates", n_grid);
    else if (st == LQ_OK && g->min_gain > 0.0 && isfinite(*loss_plain) &&
             *loss_best > (1.0 - g->min_gain) * *loss_plain) {
        lq_awq_scales(x_mean, n_in, 0.0, s);
        *alpha = 0.0;
        *loss_best = *loss_plain;
    }
    free(cand);
    free(status);
    return st;
}

/* ---- runtime -------------------------------------------------------------------------------- */

static bool device_type(lq_type type) {
    const lq_type_traits *t = lq_type_get(type);
    if (!t || t->activation_only) return false;
    return t->has_codec || type == LQ_TYPE_F32 || type == LQ_TYPE_F16 || type == LQ_TYPE_BF16;
}

/* The device copy of a weight, uploaded on first use. */
static const void *cached_weight(lq_device_ctx *d, const void *w, size_t bytes, lq_error *err) {
    for (int i = d->n_weights - 1; i >= 0; i--)
        if (d->weights[i].host == w && d->weights[i].bytes == bytes) return d->weights[i].buf.ptr;
    if (d->n_weights == d->cap_weights) {
        int cap = d->cap_weights ? 2 * d->cap_weights : 64;
        dev_weight *p = (dev_weight *)realloc(d->weights, (size_t)cap * sizeof *p);
        if (!p) {
            lq_fail(err, LQ_ERR_NOMEM, "device weights: out of memory");
            return NULL;
        }
        d->weights = p;
        d->cap_weights = cap;
    }
    dev_weight *e = &d->weights[d->n_weights];
    memset(e, 0, sizeof *e);
    if (lq_cuda_buf_reserve(d->cuda, &e->buf, bytes, err) != LQ_OK) return NULL;
    if (lq_cuda_upload(d->cuda, e->buf.ptr, w, bytes, err) != LQ_OK) {
        lq_cuda_buf_free(&e->buf);
        return NULL;
    }
    e->host = w;
    e->bytes = bytes;
    d->n_weights++;
    d->weights_bytes += bytes;
    return e->buf.ptr;
}

lq_status lq_device_matmul(lq_device_ctx *d, lq_type type, const void *w, size_t row_bytes,
                           int64_t n_out, int64_t n_in, const float *x, int64_t n_tok,
                           const float *bias, float *y, lq_error *err) {
    if (!d) return no_device(err, "matmul");
    if (!device_type(type))
        return lq_fail(err, LQ_ERR_UNSUPPORTED, "matmul: type %d has no device kernel", (int)type);
    if (n_out <= 0 || n_tok <= 0) return LQ_OK;
    size_t x_bytes = (size_t)(n_tok * n_in) * sizeof(float);
    size_t y_bytes = (size_t)(n_tok * n_out) * sizeof(float);
    const void *wd = cached_weight(d, w, row_bytes * (size_t)n_out, err);
    if (!wd) return err ? err->code : LQ_ERR_IO;
    lq_status st = lq_cuda_buf_reserve(d->cuda, &d->mm_x, x_bytes, err);
    if (st == LQ_OK) st = lq_cuda_buf_reserve(d->cuda, &d->mm_y, y_bytes, err);
    if (st == LQ_OK) st = lq_cuda_upload(d->cuda, d->mm_x.ptr, x, x_bytes, err);
    if (st == LQ_OK)
        st = n_tok == 1 ? lq_cuda_matvec_q_dev(d->cuda, type, wd, row_bytes, n_out,
                                               (const float *)d->mm_x.ptr, n_in,
                                               (float *)d->mm_y.ptr, err)
                        : lq_cuda_gemm_q_dev(d->cuda, type, wd, row_bytes, n_out, n_in,
                                             (const float *)d->mm_x.ptr, n_tok,
                                             (float *)d->mm_y.ptr, err);
    if (st == LQ_OK) st = lq_cuda_download(d->cuda, y, d->mm_y.ptr, y_bytes, err);
    if (st == LQ_OK && bias)
        for (int64_t t = 0; t < n_tok; t++)
            for (int64_t r = 0; r < n_out; r++) y[t * n_out + r] += bias[r];
    return st;
}

void lq_device_weight_changed(lq_device_ctx *d, const void *host) {
    if (!d || !host) return;
    for (int i = 0; i < d->n_weights; i++) {
        if (d->weights[i].host != host) continue;
        /* the buffer may still be read by enqueued kernels: wait before freeing */
        lq_cuda_sync(d->cuda, NULL);
        d->weights_bytes -= d->weights[i].bytes;
        lq_cuda_buf_free(&d->weights[i].buf);
        d->weights[i] = d->weights[--d->n_weights];
        return;
    }
}

size_t lq_device_weights_bytes(const lq_device_ctx *d) { return d ? d->weights_bytes : 0; }
