/* fake_module.c — stand-ins for liblq_cuda.so, so that the loader and every device path of the
 * library and the tools can be tested on machines without a GPU (LQ_CUDA_MODULE=<this .so>).
 *
 * FAKE_ABI: a module of another ABI (the loader must refuse it by number).
 * FAKE_EMULATED: one "device" whose memory is host memory and whose kernels are the CPU
 * library's functions (the codecs, the shared host+device statistics of hd_stats.h, linalg.h),
 * so device paths must give exactly the CPU's results through it. That tests the plumbing —
 * selection, contexts, buffers, uploads, the adapters' bookkeeping — not the CUDA kernels
 * (test_cuda_gpu does that on a GPU). The GPTQ sweep is the device's algorithm (hd_gptq.h per
 * row over whole lazy batches, then one sgemm), run on the host. */
#include "kernels/cuda/hd_gptq.h"
#include "kernels/cuda/hd_stats.h"
#include "kernels/cuda/lq_cuda_module.h"
#include "libquant/linalg.h"
#include "libquant/passes_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const lq_cuda_api *lq_cuda_module_api(void);

static lq_status not_emulated(lq_error *err, const char *what) {
    return lq_fail(err, LQ_ERR_UNSUPPORTED, "cuda: %s: not emulated by the test module", what);
}

/* ---- defaults: everything unsupported ------------------------------------------------------ */
#define STUB_S(name, params, args)                                                                \
    static lq_status fake_##name params { return not_emulated(err, #name); }
#define STUB_V(name, params, args)                                                                \
    static void fake_##name params {}
#define STUB_P(name, params, args)                                                                \
    static void *fake_##name params {                                                             \
        not_emulated(err, #name);                                                                 \
        return NULL;                                                                              \
    }
#define STUB_I(name, params, args)                                                                \
    static int64_t fake_##name params { return 1; }
LQ_CUDA_API_LIST(STUB_S, STUB_V, STUB_P, STUB_I)

#define ENTRY(name, params, args) fake_##name,

static int probe_none(char *why, size_t n) {
    snprintf(why, n, "fake module without devices");
    return 0;
}

#ifdef FAKE_EMULATED
/* ---- the emulated device ------------------------------------------------------------------- */
struct lq_cuda_ctx {
    int device;
};

static int probe_one(char *why, size_t n) { return 1; }
static const char *emu_name(int index) { return "emulated device (test module)"; }

static lq_status emu_ctx_create(int device, size_t staging, lq_cuda_ctx **out, lq_error *err) {
    *out = (lq_cuda_ctx *)calloc(1, sizeof **out);
    return *out ? LQ_OK : lq_fail(err, LQ_ERR_NOMEM, "emulated context");
}
static void emu_ctx_free(lq_cuda_ctx *ctx) { free(ctx); }
static lq_status emu_ok(const lq_cuda_ctx *ctx, lq_error *err) { return LQ_OK; }
static lq_status emu_sync(lq_cuda_ctx *ctx, lq_error *err) { return LQ_OK; }
static lq_status emu_buf_reserve(lq_cuda_ctx *ctx, lq_cuda_buf *b, size_t bytes, lq_error *err) {
    if (b->ptr && b->bytes >= bytes) return LQ_OK;
    free(b->ptr);
    b->ptr = malloc(bytes ? bytes : 1);
    b->bytes = b->ptr ? bytes : 0;
    return b->ptr ? LQ_OK : lq_fail(err, LQ_ERR_NOMEM, "emulated buffer of %zu bytes", bytes);
}
static void emu_buf_free(lq_cuda_buf *b) {
    free(b->ptr);
    b->ptr = NULL;
    b->bytes = 0;
}
static lq_status emu_copy(lq_cuda_ctx *ctx, void *dst, const void *src, size_t bytes, lq_error *err) {
    if (bytes) memcpy(dst, src, bytes);
    return LQ_OK;
}
static lq_status emu_slots_reserve(lq_cuda_ctx *ctx, lq_cuda_layer_slots *s, size_t bytes,
                                   lq_error *err) {
    for (int i = 0; i < 2; i++) {
        lq_status st = emu_buf_reserve(ctx, &s->arena[i], bytes, err);
        if (st != LQ_OK) return st;
        s->done_event[i] = s;
    }
    return LQ_OK;
}
static void *emu_slot_acquire(lq_cuda_ctx *ctx, lq_cuda_layer_slots *s, int64_t layer, lq_error *err) {
    return s->arena[layer & 1].ptr;
}
static lq_status emu_slot_release(lq_cuda_ctx *ctx, lq_cuda_layer_slots *s, int64_t layer,
                                  lq_error *err) {
    return LQ_OK;
}
static void emu_slots_free(lq_cuda_layer_slots *s) {
    for (int i = 0; i < 2; i++) emu_buf_free(&s->arena[i]);
}

static lq_status emu_dequantize_dev(lq_cuda_ctx *ctx, lq_type type, const void *src, size_t stride,
                                    float *dst, int64_t n_rows, int64_t n, lq_error *err) {
    for (int64_t r = 0; r < n_rows; r++) {
        lq_status st = lq_dequantize_rows(type, (const char *)src + r * stride, dst + r * n, 1, n, err);
        if (st != LQ_OK) return st;
    }
    return LQ_OK;
}
static lq_status emu_matvec_dev(lq_cuda_ctx *ctx, lq_type type, const void *w, size_t stride,
                                int64_t n_rows, const float *x, int64_t n, float *y, lq_error *err) {
    for (int64_t r = 0; r < n_rows; r++) y[r] = lq_kernel_dot_f32(type, (const char *)w + r * stride, x, n);
    return LQ_OK;
}
static lq_status emu_gemm_dev(lq_cuda_ctx *ctx, lq_type type, const void *w, size_t stride,
                              int64_t n_rows, int64_t n, const float *x, int64_t n_tok, float *y,
                              lq_error *err) {
    for (int64_t t = 0; t < n_tok; t++) emu_matvec_dev(ctx, type, w, stride, n_rows, x + t * n, n, y + t * n_rows, err);
    return LQ_OK;
}
static lq_status emu_stats_dev(lq_cuda_ctx *ctx, const float *x, int64_t n_tokens, int64_t n_in,
                               double *sum_x2, double *sum_abs, float *max_abs, lq_error *err) {
    for (int64_t j = 0; j < n_in; j++) {
        double s2 = sum_x2 ? sum_x2[j] : 0.0, sa = sum_abs ? sum_abs[j] : 0.0;
        float mx = max_abs ? max_abs[j] : 0.0f;
        lq_hd_stats_channel(x, n_tokens, n_in, j, &s2, &sa, &mx);
        if (sum_x2) sum_x2[j] = s2;
        if (sum_abs) sum_abs[j] = sa;
        if (max_abs) max_abs[j] = mx;
    }
    return LQ_OK;
}
/* Row by row so an overflowing row only flags its own blocks. */
static lq_status emu_quantize_dev(lq_cuda_ctx *ctx, lq_type type, const float *src, void *blocks,
                                  float *deq, int64_t n_rows, int64_t n, const float *imp,
                                  uint8_t *status, lq_error *err) {
    size_t rb = lq_row_size(type, n);
    int64_t nb = n / lq_type_get(type)->block_size;
    for (int64_t r = 0; r < n_rows; r++) {
        lq_error e;
        char *row = (char *)blocks + (size_t)r * rb;
        lq_status st = lq_quantize_rows(type, src + r * n, row, 1, n, imp, &e);
        if (status) memset(status + r * nb, st == LQ_ERR_NUMERIC, (size_t)nb);
        if (st != LQ_OK && st != LQ_ERR_NUMERIC) return lq_fail(err, st, "%s", e.msg);
        if (st == LQ_OK && deq && (st = lq_dequantize_rows(type, row, deq + r * n, 1, n, err)) != LQ_OK)
            return st;
    }
    return LQ_OK;
}
static lq_status emu_awq_fakequant_dev(lq_cuda_ctx *ctx, lq_type type, const float *w, const float *s,
                                       float *out, void *blocks, int64_t n_rows, int64_t n_in,
                                       uint8_t *status, lq_error *err) {
    float *ws = (float *)calloc((size_t)(n_rows * n_in) + 1, sizeof(float));
    if (!ws) return lq_fail(err, LQ_ERR_NOMEM, "emulated awq");
    for (int64_t r = 0; r < n_rows; r++)
        for (int64_t j = 0; j < n_in; j++) ws[r * n_in + j] = w[r * n_in + j] * s[j];
    /* out may be w: ws is a copy already */
    lq_status st = emu_quantize_dev(ctx, type, ws, blocks, out, n_rows, n_in, NULL, status, err);
    for (int64_t r = 0; r < n_rows && st == LQ_OK; r++)
        for (int64_t j = 0; j < n_in; j++) out[r * n_in + j] /= s[j];
    free(ws);
    return st;
}
static lq_status emu_silu_mul(lq_cuda_ctx *ctx, float *gate, const float *up, int64_t n, lq_error *err) {
    for (int64_t i = 0; i < n; i++) gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
    return LQ_OK;
}
static lq_status emu_sum_sq_diff(lq_cuda_ctx *ctx, const float *a, const float *b, int64_t n, double *out,
                                 lq_error *err) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        s += d * d;
    }
    *out = s;
    return LQ_OK;
}
static lq_status emu_dequantize(lq_cuda_ctx *ctx, lq_type type, const void *src, float *dst, int64_t n_rows,
                                int64_t n, lq_error *err) {
    return lq_dequantize_rows(type, src, dst, n_rows, n, err);
}
static lq_status emu_quantize(lq_cuda_ctx *ctx, lq_type type, const float *src, void *dst, int64_t n_rows,
                              int64_t n, const float *imp, lq_error *err) {
    return lq_quantize_rows(type, src, dst, n_rows, n, imp, err);
}
static lq_status emu_awq_clip(lq_cuda_ctx *ctx, lq_type type, float *w, int64_t n_out, int64_t n_in,
                              const float *x, int64_t t, double *mean_ratio, lq_error *err) {
    return lq_awq_clip(type, w, n_out, n_in, x, t, 1, mean_ratio, err);
}
static lq_status emu_sgemm_dev(lq_cuda_ctx *ctx, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                               float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                               float beta, float *c, int64_t ldc, lq_error *err) {
    lq_la_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return LQ_OK;
}
static lq_status emu_syrk_dev(lq_cuda_ctx *ctx, int64_t n, int64_t k, const float *x, int64_t ldx,
                              double *h, float *scratch, lq_error *err) {
    lq_la_syrk_acc(n, k, x, ldx, h, scratch, 1);
    return LQ_OK;
}
/* gptq.cu's sweep on the host: the shared per-row function over each lazy batch, then the
 * lazy update of every row by one sgemm; the first failing row reported in gptq.cu's words. */
static lq_status emu_gptq_sweep(lq_cuda_ctx *ctx, const lq_cuda_gptq_in *in, void *dst, float *deq,
                                double *loss, lq_error *err) {
    int64_t n = in->n_in, m = in->n_out, lazy = in->lazy;
    int bs = lq_hd_block_size(in->type);
    if (!bs || n % bs || lazy <= 0 || lazy % bs)
        return lq_fail(err, LQ_ERR_INVALID, "%s: emulated gptq: bad shape", in->name);
    lq_hd_gptq_args a = {(int)in->type, bs, lq_hd_block_bytes(in->type), n, in->u, in->imp};
    size_t rb = lq_row_size(in->type, n);
    float *w = (float *)malloc((size_t)(m * n) * 4), *e = (float *)calloc((size_t)(m * lazy), 4);
    lq_grid *g = (lq_grid *)malloc((size_t)m * sizeof(lq_grid));
    int32_t *codes = (int32_t *)malloc((size_t)m * 256 * sizeof(int32_t));
    float *sigma2 = (float *)malloc((size_t)m * sizeof(float));
    lq_status st = w && e && g && codes && sigma2 ? LQ_OK : lq_fail(err, LQ_ERR_NOMEM, "emulated gptq");
    if (st == LQ_OK) memcpy(w, in->w_dev ? in->w_dev : in->w, (size_t)(m * n) * 4);
    for (int64_t r = 0; r < m && st == LQ_OK; r++) sigma2[r] = lq_hd_gptq_load_row(w + r * n, in->dead, n);
    double total = 0.0;
    for (int64_t i1 = 0; i1 < n && st == LQ_OK; i1 += lazy) {
        int64_t i2 = i1 + lazy < n ? i1 + lazy : n;
        for (int64_t r = 0; r < m && st == LQ_OK; r++) {
            int64_t fail = -1;
            int rs = lq_hd_gptq_sweep_row(&a, w + r * n, sigma2[r], &g[r], codes + r * 256, i1, i2,
                                          e + r * lazy, &total, (uint8_t *)dst + (size_t)r * rb,
                                          deq ? deq + r * n : NULL, &fail);
            if (rs == LQ_HD_GPTQ_NONFINITE)
                st = lq_fail(err, LQ_ERR_NUMERIC, "%s: row %lld, column %lld: error propagation produced a "
                             "non-finite value", in->name, (long long)r, (long long)fail);
            else if (rs == LQ_HD_GPTQ_OVERFLOW)
                st = lq_fail(err, LQ_ERR_NUMERIC, "%s: row %lld, block at column %lld: the block scale "
                             "overflows fp16", in->name, (long long)r, (long long)fail);
        }
        if (st == LQ_OK && i2 < n)
            lq_la_sgemm(false, false, m, n - i2, i2 - i1, -1.0f, e, lazy, in->u + i1 * n + i2, n, 1.0f, w + i2, n);
    }
    if (st == LQ_OK && loss) *loss = total;
    free(w), free(e), free(g), free(codes), free(sigma2);
    return st;
}
#endif

const lq_cuda_api *lq_cuda_module_api(void) {
    static lq_cuda_api api = {
        LQ_CUDA_MODULE_ABI, (uint32_t)sizeof(lq_cuda_api), (uint32_t)sizeof(lq_error), "test",
        probe_none, NULL,
        LQ_CUDA_API_LIST(ENTRY, ENTRY, ENTRY, ENTRY)
        NULL,
    };
#ifdef FAKE_ABI
    api.abi = 999;
#endif
#ifdef FAKE_EMULATED
    api.probe = probe_one;
    api.device_name = emu_name;
    api.ctx_create = emu_ctx_create;
    api.ctx_free = emu_ctx_free;
    api.sync = emu_sync;
    api.status = emu_ok;
    api.buf_reserve = emu_buf_reserve;
    api.buf_free = emu_buf_free;
    api.upload = emu_copy;
    api.upload_overlapped = emu_copy;
    api.download = emu_copy;
    api.layer_slots_reserve = emu_slots_reserve;
    api.layer_slot_acquire = emu_slot_acquire;
    api.layer_slot_release = emu_slot_release;
    api.layer_slots_free = emu_slots_free;
    api.dequantize_rows_dev = emu_dequantize_dev;
    api.matvec_q_dev = emu_matvec_dev;
    api.gemm_q_dev = emu_gemm_dev;
    api.stats_accumulate_dev = emu_stats_dev;
    api.stats_accumulate = emu_stats_dev;
    api.quantize_rows_dev = emu_quantize_dev;
    api.awq_fakequant_scaled_dev = emu_awq_fakequant_dev;
    api.silu_mul_dev = emu_silu_mul;
    api.sum_sq_diff_dev = emu_sum_sq_diff;
    api.dequantize_rows = emu_dequantize;
    api.quantize_rows = emu_quantize;
    api.awq_clip = emu_awq_clip;
    api.sgemm_dev = emu_sgemm_dev;
    api.syrk_acc_dev = emu_syrk_dev;
    api.gptq_sweep = emu_gptq_sweep;
#endif
    return &api;
}
