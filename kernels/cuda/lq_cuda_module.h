/* lq_cuda_module.h — the table of functions between libquant and its CUDA module.
 *
 * The CUDA backend (the .cu files of kernels/cuda with cudart, cuBLAS and cuSOLVER) is built as a
 * shared module, liblq_cuda.so, installed in <libdir>/libquant/. libquant itself never links
 * CUDA: linking cuBLAS/cuSOLVER costs ~255 MiB of resident memory at start-up for every command,
 * `lq inspect` included. libquant/device_loader.c opens the module with dlopen only when a
 * device is requested (or `--device auto` looks for one), takes this table with ONE dlsym of
 * LQ_CUDA_MODULE_SYMBOL, checks its ABI number, and implements every lq_cuda_* function of
 * lq_cuda.h as a call through the table. Callers therefore use lq_cuda.h unchanged.
 *
 * ABI: bump LQ_CUDA_MODULE_ABI whenever this list, a signature in lq_cuda.h, or a struct that
 * crosses the boundary (lq_error, lq_cuda_buf, lq_cuda_layer_slots, lq_cuda_gptq_in, lq_la_ops,
 * lq_type numbering) changes. A module with another ABI is refused with
 * "CUDA backend: <path>: ABI N, expected M".
 *
 * The list is an X-macro so the table, the module's filler (module.c) and the loader's
 * trampolines cannot disagree. Entries:
 *   S(name, params, args)          returns lq_status, last parameter `lq_error *err`
 *   V(name, params, args)          returns void
 *   P(name, params, args)          returns void *, last parameter `lq_error *err`
 *   I(name, params, args)          returns int64_t (linalg status: nonzero = failure)
 * Plain C (not compiled by nvcc). */
#ifndef LQ_CUDA_MODULE_H
#define LQ_CUDA_MODULE_H

#include "lq_cuda.h"

#define LQ_CUDA_MODULE_ABI 1
#define LQ_CUDA_MODULE_SYMBOL "lq_cuda_module_api"
#define LQ_CUDA_MODULE_FILE "liblq_cuda.so"

#define LQ_CUDA_API_LIST(S, V, P, I)                                                              \
    S(ctx_create, (int device, size_t staging_bytes, lq_cuda_ctx **out, lq_error *err),            \
      (device, staging_bytes, out, err))                                                          \
    V(ctx_free, (lq_cuda_ctx *ctx), (ctx))                                                         \
    S(sync, (lq_cuda_ctx *ctx, lq_error *err), (ctx, err))                                         \
    S(status, (const lq_cuda_ctx *ctx, lq_error *err), (ctx, err))                                 \
    S(mem_info, (lq_cuda_ctx *ctx, size_t *free_bytes, size_t *total_bytes, lq_error *err),        \
      (ctx, free_bytes, total_bytes, err))                                                        \
    S(buf_reserve, (lq_cuda_ctx *ctx, lq_cuda_buf *b, size_t bytes, lq_error *err),                \
      (ctx, b, bytes, err))                                                                       \
    V(buf_free, (lq_cuda_buf *b), (b))                                                             \
    P(host_alloc, (size_t bytes, lq_error *err), (bytes, err))                                     \
    V(host_free, (void *p), (p))                                                                   \
    S(upload, (lq_cuda_ctx *ctx, void *dev, const void *host, size_t bytes, lq_error *err),        \
      (ctx, dev, host, bytes, err))                                                               \
    S(upload_overlapped,                                                                          \
      (lq_cuda_ctx *ctx, void *dev, const void *host, size_t bytes, lq_error *err),               \
      (ctx, dev, host, bytes, err))                                                               \
    S(download, (lq_cuda_ctx *ctx, void *host, const void *dev, size_t bytes, lq_error *err),      \
      (ctx, host, dev, bytes, err))                                                               \
    S(layer_slots_reserve,                                                                        \
      (lq_cuda_ctx *ctx, lq_cuda_layer_slots *s, size_t bytes, lq_error *err),                    \
      (ctx, s, bytes, err))                                                                       \
    P(layer_slot_acquire, (lq_cuda_ctx *ctx, lq_cuda_layer_slots *s, int64_t layer, lq_error *err),\
      (ctx, s, layer, err))                                                                       \
    S(layer_slot_release, (lq_cuda_ctx *ctx, lq_cuda_layer_slots *s, int64_t layer, lq_error *err),\
      (ctx, s, layer, err))                                                                       \
    V(layer_slots_free, (lq_cuda_layer_slots *s), (s))                                             \
    S(dequantize_rows_dev,                                                                        \
      (lq_cuda_ctx *ctx, lq_type type, const void *src, size_t row_stride, float *dst,            \
       int64_t n_rows, int64_t n_per_row, lq_error *err),                                         \
      (ctx, type, src, row_stride, dst, n_rows, n_per_row, err))                                  \
    S(matvec_q_dev,                                                                               \
      (lq_cuda_ctx *ctx, lq_type type, const void *w, size_t row_stride, int64_t n_rows,          \
       const float *x, int64_t n, float *y, lq_error *err),                                       \
      (ctx, type, w, row_stride, n_rows, x, n, y, err))                                           \
    S(gemm_q_dev,                                                                                 \
      (lq_cuda_ctx *ctx, lq_type type, const void *w, size_t row_stride, int64_t n_rows,          \
       int64_t n, const float *x, int64_t n_tok, float *y, lq_error *err),                        \
      (ctx, type, w, row_stride, n_rows, n, x, n_tok, y, err))                                    \
    S(stats_accumulate_dev,                                                                       \
      (lq_cuda_ctx *ctx, const float *x, int64_t n_tokens, int64_t n_in, double *sum_x2,          \
       double *sum_abs, float *max_abs, lq_error *err),                                           \
      (ctx, x, n_tokens, n_in, sum_x2, sum_abs, max_abs, err))                                    \
    S(quantize_rows_dev,                                                                          \
      (lq_cuda_ctx *ctx, lq_type type, const float *src, void *blocks, float *deq,                \
       int64_t n_rows, int64_t n_per_row, const float *imp, uint8_t *status, lq_error *err),      \
      (ctx, type, src, blocks, deq, n_rows, n_per_row, imp, status, err))                         \
    S(awq_fakequant_scaled_dev,                                                                   \
      (lq_cuda_ctx *ctx, lq_type type, const float *w, const float *s, float *out, void *blocks,  \
       int64_t n_rows, int64_t n_in, uint8_t *status, lq_error *err),                             \
      (ctx, type, w, s, out, blocks, n_rows, n_in, status, err))                                  \
    S(silu_mul_dev, (lq_cuda_ctx *ctx, float *gate, const float *up, int64_t n, lq_error *err),    \
      (ctx, gate, up, n, err))                                                                    \
    S(sum_sq_diff_dev,                                                                            \
      (lq_cuda_ctx *ctx, const float *a, const float *b, int64_t n, double *out, lq_error *err),  \
      (ctx, a, b, n, out, err))                                                                   \
    S(gptq_sweep,                                                                                 \
      (lq_cuda_ctx *ctx, const lq_cuda_gptq_in *in, void *dst, float *deq, double *loss,          \
       lq_error *err),                                                                            \
      (ctx, in, dst, deq, loss, err))                                                             \
    S(dequantize_rows,                                                                            \
      (lq_cuda_ctx *ctx, lq_type type, const void *src, float *dst, int64_t n_rows,               \
       int64_t n_per_row, lq_error *err),                                                         \
      (ctx, type, src, dst, n_rows, n_per_row, err))                                              \
    S(quantize_rows,                                                                              \
      (lq_cuda_ctx *ctx, lq_type type, const float *src, void *dst, int64_t n_rows,               \
       int64_t n_per_row, const float *importance, lq_error *err),                                \
      (ctx, type, src, dst, n_rows, n_per_row, importance, err))                                  \
    S(matvec_q,                                                                                   \
      (lq_cuda_ctx *ctx, lq_type type, const void *w, int64_t n_rows, const float *x, int64_t n,  \
       float *y, lq_error *err),                                                                  \
      (ctx, type, w, n_rows, x, n, y, err))                                                       \
    S(gemm_q,                                                                                     \
      (lq_cuda_ctx *ctx, lq_type type, const void *w, int64_t n_rows, int64_t n, const float *x,  \
       int64_t n_tok, float *y, lq_error *err),                                                   \
      (ctx, type, w, n_rows, n, x, n_tok, y, err))                                                \
    S(stats_accumulate,                                                                           \
      (lq_cuda_ctx *ctx, const float *x, int64_t n_tokens, int64_t n_in, double *sum_x2,          \
       double *sum_abs, float *max_abs, lq_error *err),                                           \
      (ctx, x, n_tokens, n_in, sum_x2, sum_abs, max_abs, err))                                    \
    S(awq_clip,                                                                                   \
      (lq_cuda_ctx *ctx, lq_type type, float *w, int64_t n_out, int64_t n_in, const float *x,     \
       int64_t t, double *mean_ratio, lq_error *err),                                             \
      (ctx, type, w, n_out, n_in, x, t, mean_ratio, err))                                         \
    V(la_sgemm,                                                                                   \
      (lq_cuda_ctx *ctx, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,             \
       float alpha, const float *a, int64_t lda, const float *b, int64_t ldb, float beta,         \
       float *c, int64_t ldc),                                                                    \
      (ctx, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc))                      \
    V(la_syrk_acc,                                                                                \
      (lq_cuda_ctx *ctx, int64_t n, int64_t k, const float *x, int64_t ldx, double *h),           \
      (ctx, n, k, x, ldx, h))                                                                     \
    I(la_potrf_lower, (lq_cuda_ctx *ctx, int64_t n, double *a, int64_t lda), (ctx, n, a, lda))     \
    I(la_potri_lower, (lq_cuda_ctx *ctx, int64_t n, double *a, int64_t lda), (ctx, n, a, lda))     \
    S(sgemm_dev,                                                                                  \
      (lq_cuda_ctx *ctx, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,             \
       float alpha, const float *a, int64_t lda, const float *b, int64_t ldb, float beta,         \
       float *c, int64_t ldc, lq_error *err),                                                     \
      (ctx, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, err))                 \
    S(syrk_acc_dev,                                                                               \
      (lq_cuda_ctx *ctx, int64_t n, int64_t k, const float *x, int64_t ldx, double *h,            \
       float *scratch, lq_error *err),                                                            \
      (ctx, n, k, x, ldx, h, scratch, err))

#define LQ_CUDA_API_FIELD(name, params, args) __typeof__(lq_cuda_##name) *name;

typedef struct lq_cuda_api {
    uint32_t abi;        /* LQ_CUDA_MODULE_ABI the module was built with */
    uint32_t size;       /* sizeof(lq_cuda_api) there */
    uint32_t error_size; /* sizeof(lq_error) there */
    const char *version; /* libquant version the module was built from */
    /* Number of devices the runtime sees; 0 with the reason in why (e.g. the cudart error). */
    int (*probe)(char *why, size_t why_size);
    const char *(*device_name)(int index);
    LQ_CUDA_API_LIST(LQ_CUDA_API_FIELD, LQ_CUDA_API_FIELD, LQ_CUDA_API_FIELD, LQ_CUDA_API_FIELD)
    /* lq_la_ops over a context (the CUDA linear-algebra backend object) */
    lq_status (*la_ops)(lq_cuda_ctx *ctx, lq_la_ops *out, lq_error *err);
} lq_cuda_api;

/* The module's one exported function. */
typedef const lq_cuda_api *(*lq_cuda_module_fn)(void);

#endif
