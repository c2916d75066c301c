/* no_cuda.c — the CUDA entry points of a build without nvcc: no devices, and every call fails
 * with LQ_ERR_UNSUPPORTED, so code that calls the backend compiles and links unchanged. */
#include "lq_cuda.h"

#include <stddef.h>

#define NO_CUDA(err) lq_fail(err, LQ_ERR_UNSUPPORTED, "cuda: libquant was built without CUDA")

int lq_cuda_device_count(void) { return 0; }
const char *lq_cuda_device_name(int index) {
    (void)index;
    return NULL;
}

lq_status lq_cuda_ctx_create(int device, size_t staging_bytes, lq_cuda_ctx **out, lq_error *err) {
    (void)device, (void)staging_bytes;
    *out = NULL;
    return NO_CUDA(err);
}
void lq_cuda_ctx_free(lq_cuda_ctx *ctx) { (void)ctx; }
lq_status lq_cuda_sync(lq_cuda_ctx *ctx, lq_error *err) { (void)ctx; return NO_CUDA(err); }
lq_status lq_cuda_status(const lq_cuda_ctx *ctx, lq_error *err) { (void)ctx; return NO_CUDA(err); }
lq_status lq_cuda_mem_info(lq_cuda_ctx *ctx, size_t *free_bytes, size_t *total_bytes,
                           lq_error *err) {
    (void)ctx;
    *free_bytes = *total_bytes = 0;
    return NO_CUDA(err);
}

lq_status lq_cuda_buf_reserve(lq_cuda_ctx *ctx, lq_cuda_buf *b, size_t bytes, lq_error *err) {
    (void)ctx, (void)b, (void)bytes;
    return NO_CUDA(err);
}
void lq_cuda_buf_free(lq_cuda_buf *b) { b->ptr = NULL, b->bytes = 0; }
void *lq_cuda_host_alloc(size_t bytes, lq_error *err) {
    (void)bytes;
    NO_CUDA(err);
    return NULL;
}
void lq_cuda_host_free(void *p) { (void)p; }
lq_status lq_cuda_upload(lq_cuda_ctx *ctx, void *dev, const void *host, size_t bytes, lq_error *err) {
    (void)ctx, (void)dev, (void)host, (void)bytes;
    return NO_CUDA(err);
}
lq_status lq_cuda_upload_overlapped(lq_cuda_ctx *ctx, void *dev, const void *host, size_t bytes,
                                    lq_error *err) {
    (void)ctx, (void)dev, (void)host, (void)bytes;
    return NO_CUDA(err);
}
lq_status lq_cuda_download(lq_cuda_ctx *ctx, void *host, const void *dev, size_t bytes,
                           lq_error *err) {
    (void)ctx, (void)dev, (void)host, (void)bytes;
    return NO_CUDA(err);
}
lq_status lq_cuda_layer_slots_reserve(lq_cuda_ctx *ctx, lq_cuda_layer_slots *s, size_t bytes,
                                      lq_error *err) {
    (void)ctx, (void)s, (void)bytes;
    return NO_CUDA(err);
}
void *lq_cuda_layer_slot_acquire(lq_cuda_ctx *ctx, lq_cuda_layer_slots *s, int64_t layer,
                                 lq_error *err) {
    (void)ctx, (void)s, (void)layer;
    NO_CUDA(err);
    return NULL;
}
lq_status lq_cuda_layer_slot_release(lq_cuda_ctx *ctx, lq_cuda_layer_slots *s, int64_t layer,
                                     lq_error *err) {
    (void)ctx, (void)s, (void)layer;
    return NO_CUDA(err);
}
void lq_cuda_layer_slots_free(lq_cuda_layer_slots *s) { (void)s; }

lq_status lq_cuda_dequantize_rows_dev(lq_cuda_ctx *ctx, lq_type type, const void *src,
                                      size_t row_stride, float *dst, int64_t n_rows,
                                      int64_t n_per_row, lq_error *err) {
    (void)ctx, (void)type, (void)src, (void)row_stride, (void)dst, (void)n_rows, (void)n_per_row;
    return NO_CUDA(err);
}
lq_status lq_cuda_matvec_q_dev(lq_cuda_ctx *ctx, lq_type type, const void *w, size_t row_stride,
                               int64_t n_rows, const float *x, int64_t n, float *y,
                               lq_error *err) {
    (void)ctx, (void)type, (void)w, (void)row_stride, (void)n_rows, (void)x, (void)n, (void)y;
    return NO_CUDA(err);
}
lq_status lq_cuda_gemm_q_dev(lq_cuda_ctx *ctx, lq_type type, const void *w, size_t row_stride,
                             int64_t n_rows, int64_t n, const float *x, int64_t n_tok, float *y,
                             lq_error *err) {
    (void)ctx, (void)type, (void)w, (void)row_stride, (void)n_rows, (void)n, (void)x, (void)n_tok,
        (void)y;
    return NO_CUDA(err);
}
lq_status lq_cuda_stats_accumulate_dev(lq_cuda_ctx *ctx, const float *x, int64_t n_tokens,
                                       int64_t n_in, double *sum_x2, double *sum_abs,
                                       float *max_abs, lq_error *err) {
    (void)ctx, (void)x, (void)n_tokens, (void)n_in, (void)sum_x2, (void)sum_abs, (void)max_abs;
    return NO_CUDA(err);
}
lq_status lq_cuda_quantize_rows_dev(lq_cuda_ctx *ctx, lq_type type, const float *src,
                                    void *blocks, float *deq, int64_t n_rows, int64_t n_per_row,
                                    const float *imp, uint8_t *status, lq_error *err) {
    (void)ctx, (void)type, (void)src, (void)blocks, (void)deq, (void)n_rows, (void)n_per_row,
        (void)imp, (void)status;
    return NO_CUDA(err);
}
lq_status lq_cuda_awq_fakequant_scaled_dev(lq_cuda_ctx *ctx, lq_type type, const float *w,
                                           const float *s, float *out, void *blocks,
                                           int64_t n_rows, int64_t n_in, uint8_t *status,
                                           lq_error *err) {
    (void)ctx, (void)type, (void)w, (void)s, (void)out, (void)blocks, (void)n_rows, (void)n_in,
        (void)status;
    return NO_CUDA(err);
}
lq_status lq_cuda_silu_mul_dev(lq_cuda_ctx *ctx, float *gate, const float *up, int64_t n,
                               lq_error *err) {
    (void)ctx, (void)gate, (void)up, (void)n;
    return NO_CUDA(err);
}
lq_status lq_cuda_sum_sq_diff_dev(lq_cuda_ctx *ctx, const float *a, const float *b, int64_t n,
                                  double *out, lq_error *err) {
    (void)ctx, (void)a, (void)b, (void)n;
    *out = 0.0;
    return NO_CUDA(err);
}
lq_status lq_cuda_gptq_sweep(lq_cuda_ctx *ctx, const lq_cuda_gptq_in *in, void *dst, float *deq,
                             double *loss, lq_error *err) {
    (void)ctx, (void)in, (void)dst, (void)deq, (void)loss;
    return NO_CUDA(err);
}
lq_status lq_cuda_dequantize_rows(lq_cuda_ctx *ctx, lq_type type, const void *src, float *dst,
                                  int64_t n_rows, int64_t n_per_row, lq_error *err) {
    (void)ctx, (void)type, (void)src, (void)dst, (void)n_rows, (void)n_per_row;
    return NO_CUDA(err);
}
lq_status lq_cuda_quantize_rows(lq_cuda_ctx *ctx, lq_type type, const float *src, void *dst,
                                int64_t n_rows, int64_t n_per_row, const float *importance,
                                lq_error *err) {
    (void)ctx, (void)type, (void)src, (void)dst, (void)n_rows, (void)n_per_row, (void)importance;
    return NO_CUDA(err);
}
lq_status lq_cuda_matvec_q(lq_cuda_ctx *ctx, lq_type type, const void *w, int64_t n_rows,
                           const float *x, int64_t n, float *y, lq_error *err) {
    (void)ctx, (void)type, (void)w, (void)n_rows, (void)x, (void)n, (void)y;
    return NO_CUDA(err);
}
lq_status lq_cuda_gemm_q(lq_cuda_ctx *ctx, lq_type type, const void *w, int64_t n_rows, int64_t n,
                         const float *x, int64_t n_tok, float *y, lq_error *err) {
    (void)ctx, (void)type, (void)w, (void)n_rows, (void)n, (void)x, (void)n_tok, (void)y;
    return NO_CUDA(err);
}
lq_status lq_cuda_stats_accumulate(lq_cuda_ctx *ctx, const float *x, int64_t n_tokens,
                                   int64_t n_in, double *sum_x2, double *sum_abs, float *max_abs,
                                   lq_error *err) {
    (void)ctx, (void)x, (void)n_tokens, (void)n_in, (void)sum_x2, (void)sum_abs, (void)max_abs;
    return NO_CUDA(err);
}
lq_status lq_cuda_awq_clip(lq_cuda_ctx *ctx, lq_type type, float *w, int64_t n_out, int64_t n_in,
                           const float *x, int64_t t, double *mean_ratio, lq_error *err) {
    (void)ctx, (void)type, (void)w, (void)n_out, (void)n_in, (void)x, (void)t, (void)mean_ratio;
    return NO_CUDA(err);
}

void lq_cuda_la_sgemm(lq_cuda_ctx *ctx, bool trans_a, bool trans_b, int64_t m, int64_t n,
                      int64_t k, float alpha, const float *a, int64_t lda, const float *b,
                      int64_t ldb, float beta, float *c, int64_t ldc) {
    (void)ctx, (void)trans_a, (void)trans_b, (void)m, (void)n, (void)k, (void)alpha, (void)a,
        (void)lda, (void)b, (void)ldb, (void)beta, (void)c, (void)ldc;
}
void lq_cuda_la_syrk_acc(lq_cuda_ctx *ctx, int64_t n, int64_t k, const float *x, int64_t ldx,
                         double *h) {
    (void)ctx, (void)n, (void)k, (void)x, (void)ldx, (void)h;
}
int64_t lq_cuda_la_potrf_lower(lq_cuda_ctx *ctx, int64_t n, double *a, int64_t lda) {
    (void)ctx, (void)a, (void)lda;
    return n > 0 ? 1 : 0;
}
int64_t lq_cuda_la_potri_lower(lq_cuda_ctx *ctx, int64_t n, double *a, int64_t lda) {
    (void)ctx, (void)a, (void)lda;
    return n > 0 ? 1 : 0;
}
lq_status lq_cuda_sgemm_dev(lq_cuda_ctx *ctx, bool trans_a, bool trans_b, int64_t m, int64_t n,
                            int64_t k, float alpha, const float *a, int64_t lda, const float *b,
                            int64_t ldb, float beta, float *c, int64_t ldc, lq_error *err) {
    (void)ctx, (void)trans_a, (void)trans_b, (void)m, (void)n, (void)k, (void)alpha, (void)a,
        (void)lda, (void)b, (void)ldb, (void)beta, (void)c, (void)ldc;
    return NO_CUDA(err);
}
lq_status lq_cuda_syrk_acc_dev(lq_cuda_ctx *ctx, int64_t n, int64_t k, const float *x,
                               int64_t ldx, double *h, float *scratch, lq_error *err) {
    (void)ctx, (void)n, (void)k, (void)x, (void)ldx, (void)h, (void)scratch;
    return NO_CUDA(err);
}
lq_status lq_la_ops_cuda(lq_cuda_ctx *ctx, lq_la_ops *out, lq_error *err) {
    (void)ctx, (void)out;
    return NO_CUDA(err);
}
