/* lq_cuda.h — the CUDA backend's C interface inside libquant (not installed). Device
 * selection and the device list are public (libquant.h, "CUDA backend / devices"); this header
 * is what the passes, the runtime and the calibration code call once they run on a GPU.
 *
 * libquant does not link CUDA: these functions are calls through the table of the module
 * liblq_cuda.so (lq_cuda_module.h), which libquant/device_loader.c opens on first use. Without a
 * usable module (CPU build, no driver, no device, ABI mismatch) every entry point still exists
 * and fails with LQ_ERR_UNSUPPORTED naming the reason, so callers compile and link unchanged.
 *
 * Correctness by construction: every kernel that touches a block format calls the codecs'
 * own host+device functions through hd_codec.h (one switch on the type), GPTQ's row sweep is
 * hd_gptq.h, AWQ's clip search hd_awq.h, the statistics hd_stats.h; the same headers compiled
 * for the host are tested against the CPU library in tests/cuda/test_cuda_host.c. nvcc compiles
 * with -fmad=false, so those functions round exactly as on the CPU: dequantization, quantized
 * blocks, statistics and in-batch GPTQ sweeps are bit-identical to the CPU. Products that go
 * through cuBLAS (GEMM, the lazy GPTQ update, Hessian sums) agree to float rounding only.
 *
 * Streams and memory plan. A context owns one device, a compute stream, a copy stream,
 * cuBLAS/cuSOLVER handles bound to the compute stream, and two pinned staging buffers. Uploads
 * (lq_cuda_upload) are cut into staging-buffer pieces: the host copies piece i+1 into one
 * pinned buffer while the DMA engine sends piece i from the other, and the compute stream waits
 * on an event of the last piece, so kernels enqueued after an upload see its data while the
 * host thread returns as soon as the last piece is queued. The passes stream a model layer by
 * layer: one layer's weights + its calibration activations resident (lq_cuda_layer_slots: two
 * device arenas, layer i computes in slot i % 2 while layer i+1 uploads into the other).
 * Device pointers ("_dev" functions) are enqueued on the compute stream and return at once;
 * lq_cuda_sync waits and reports asynchronous failures. Host-pointer functions are synchronous.
 *
 * Threads: a context is used by one host thread at a time (its streams, handles and scratch
 * buffers are shared by its calls); use one context per worker thread otherwise.
 *
 * Errors: every function returns an lq_status with a one-line message naming the operation and
 * the CUDA/cuBLAS/cuSOLVER error. A context whose device failed keeps the first error (sticky):
 * later calls return it (lq_cuda_status). */
#ifndef LQ_CUDA_H
#define LQ_CUDA_H

#ifdef __cplusplus
extern "C" { /* internal.h has no C++ guard: its helpers (lq_fail, lq_malloc) are C functions */
#endif

#include "libquant/internal.h"

typedef struct lq_cuda_ctx lq_cuda_ctx;

/* ---- the backend module (libquant/device_loader.c) ---------------------------------------- */
/* Loads the module on the first call (see device_loader.c for the search order) and returns the
 * number of CUDA devices; 0 with *why (static, one line) saying why not, e.g. "no CUDA driver
 * (libcuda.so.1: cannot open shared object file: ...)", "CUDA backend: <path>: ABI 2, expected
 * 1", "built without CUDA". */
int lq_cuda_backend_probe(const char **why);
/* Path of the module in use, NULL when none was loaded. */
const char *lq_cuda_backend_path(void);

/* ---- context ------------------------------------------------------------------------------ */
/* device: index < lq_cuda_device_count(). staging_bytes: size of each pinned staging buffer
 * (0 → 64 MiB). */
lq_status lq_cuda_ctx_create(int device, size_t staging_bytes, lq_cuda_ctx **out, lq_error *err);
void lq_cuda_ctx_free(lq_cuda_ctx *ctx);
/* Waits for the compute and copy streams; returns the first error seen (sticky). */
lq_status lq_cuda_sync(lq_cuda_ctx *ctx, lq_error *err);
lq_status lq_cuda_status(const lq_cuda_ctx *ctx, lq_error *err);
/* Free / total device memory in bytes. */
lq_status lq_cuda_mem_info(lq_cuda_ctx *ctx, size_t *free_bytes, size_t *total_bytes,
                           lq_error *err);

/* ---- memory ------------------------------------------------------------------------------- */
/* A growable device allocation (contents are not kept when it grows). */
typedef struct lq_cuda_buf {
    void *ptr;
    size_t bytes;
} lq_cuda_buf;
lq_status lq_cuda_buf_reserve(lq_cuda_ctx *ctx, lq_cuda_buf *b, size_t bytes, lq_error *err);
void lq_cuda_buf_free(lq_cuda_buf *b);
/* Page-locked host memory (fast DMA, needed for copies that overlap compute). */
void *lq_cuda_host_alloc(size_t bytes, lq_error *err);
void lq_cuda_host_free(void *p);
/* Host → device through the staging buffers (see the top); ordered after the compute work
 * enqueued so far (dev may be a buffer those kernels read) and before later compute work.
 * host may be any memory (mmapped weights included). */
lq_status lq_cuda_upload(lq_cuda_ctx *ctx, void *dev, const void *host, size_t bytes,
                         lq_error *err);
/* The same without waiting for earlier compute work: for destinations no enqueued kernel uses,
 * i.e. a layer arena after lq_cuda_layer_slot_acquire (this is what overlaps copies of layer
 * i+1 with the compute of layer i). */
lq_status lq_cuda_upload_overlapped(lq_cuda_ctx *ctx, void *dev, const void *host, size_t bytes,
                                    lq_error *err);
/* Device → host after all compute work enqueued so far; synchronous. */
lq_status lq_cuda_download(lq_cuda_ctx *ctx, void *host, const void *dev, size_t bytes,
                           lq_error *err);

/* Two device arenas for streaming layers: reserve both to the largest layer, then per layer
 * lq_cuda_layer_slot(s, layer) gives the arena to upload into / compute from. Upload of layer
 * i+1 may be enqueued while layer i's kernels run (different arenas); the copy stream orders it
 * after the compute work that used that arena two layers ago (an event per arena). */
typedef struct lq_cuda_layer_slots {
    lq_cuda_buf arena[2];
    void *done_event[2]; /* cudaEvent_t: compute finished with the arena */
} lq_cuda_layer_slots;
lq_status lq_cuda_layer_slots_reserve(lq_cuda_ctx *ctx, lq_cuda_layer_slots *s, size_t bytes,
                                      lq_error *err);
/* Makes the copy stream wait until compute released the arena of `layer`; returns it. */
void *lq_cuda_layer_slot_acquire(lq_cuda_ctx *ctx, lq_cuda_layer_slots *s, int64_t layer,
                                 lq_error *err);
/* Marks the compute work enqueued so far as the last user of the arena of `layer`. */
lq_status lq_cuda_layer_slot_release(lq_cuda_ctx *ctx, lq_cuda_layer_slots *s, int64_t layer,
                                     lq_error *err);
void lq_cuda_layer_slots_free(lq_cuda_layer_slots *s);

/* ---- kernels on device pointers (compute stream, asynchronous) -------------------------- */
/* Rows of any codec weight type (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K, IQ4_NL, IQ4_XS) or
 * F32/F16/BF16 → floats, bit-identical to lq_dequantize_rows (no finiteness check: the caller
 * validates files; lq_cuda_dequantize_rows below checks like the CPU). row_stride: bytes. */
lq_status lq_cuda_dequantize_rows_dev(lq_cuda_ctx *ctx, lq_type type, const void *src,
                                      size_t row_stride, float *dst, int64_t n_rows,
                                      int64_t n_per_row, lq_error *err);
/* y[r] = Σ_j w[r][j]·x[j] for quantized rows (decode path; fp32 activations, one warp per row,
 * blocks decoded by the codec's decoder). Within float rounding of lq_kernel_dot_f32. */
lq_status lq_cuda_matvec_q_dev(lq_cuda_ctx *ctx, lq_type type, const void *w, size_t row_stride,
                               int64_t n_rows, const float *x, int64_t n, float *y,
                               lq_error *err);
/* Y (n_tok × n_rows, row-major) = X (n_tok × n) · Wᵀ (prompt path): row panels of W are
 * dequantized to an fp32 scratch (bit-exact decoder) and multiplied with cuBLAS sgemm. */
lq_status lq_cuda_gemm_q_dev(lq_cuda_ctx *ctx, lq_type type, const void *w, size_t row_stride,
                             int64_t n_rows, int64_t n, const float *x, int64_t n_tok, float *y,
                             lq_error *err);
/* Per input channel over n_tokens rows of x (n_tokens × n_in): sum_x2 += x², sum_abs += |x| (in
 * double, token order) and max_abs = max(max_abs, |x|): bit-identical to lq_stats_acc_add's
 * sums. Any output pointer may be NULL. */
lq_status lq_cuda_stats_accumulate_dev(lq_cuda_ctx *ctx, const float *x, int64_t n_tokens,
                                       int64_t n_in, double *sum_x2, double *sum_abs,
                                       float *max_abs, lq_error *err);
/* Quantizes rows block by block through fit → round → encode (the row quantizer's steps, per
 * block on one thread): blocks (n_rows × row bytes) bit-identical to lq_quantize_rows for finite
 * input; deq (or NULL): the decoded values (lq_pass_fakequant). imp: n_per_row importance or
 * NULL. status (n_rows × n_blocks bytes, device) gets 1 where a block's scale overflowed fp16. */
lq_status lq_cuda_quantize_rows_dev(lq_cuda_ctx *ctx, lq_type type, const float *src,
                                    void *blocks, float *deq, int64_t n_rows, int64_t n_per_row,
                                    const float *imp, uint8_t *status, lq_error *err);
/* AWQ candidate weights: out = Q(w·s)/s per element (w·s, quantize-dequantize with the codec,
 * divide by s), the same float operations as awq.c. blocks: n_rows × row bytes scratch;
 * status as above. out may equal w. */
lq_status lq_cuda_awq_fakequant_scaled_dev(lq_cuda_ctx *ctx, lq_type type, const float *w,
                                           const float *s, float *out, void *blocks,
                                           int64_t n_rows, int64_t n_in, uint8_t *status,
                                           lq_error *err);
/* x[i] = x[i] / (1 + e^−x[i]) · up[i] (the MLP gate of awq.c's group forward). */
lq_status lq_cuda_silu_mul_dev(lq_cuda_ctx *ctx, float *gate, const float *up, int64_t n,
                               lq_error *err);
/* Σ (a − b)² in double (synchronous: returns the value). */
lq_status lq_cuda_sum_sq_diff_dev(lq_cuda_ctx *ctx, const float *a, const float *b, int64_t n,
                                  double *out, lq_error *err);

/* ---- GPTQ --------------------------------------------------------------------------------- */
/* What lq_gptq_quantize's sweep needs (gptq.c's sweep_job), host pointers. */
typedef struct lq_cuda_gptq_in {
    lq_type type;
    const char *name;       /* for messages */
    const float *w;         /* n_out × n_in */
    int64_t n_out, n_in;
    const float *u;         /* n_in × n_in upper Cholesky factor of H⁻¹ (fp32) */
    const float *imp;       /* n_in importance (0 on dead columns) */
    const uint8_t *dead;    /* n_in flags: columns zeroed before the sweep */
    int64_t lazy;           /* lazy batch width, a multiple of the block size */
    const float *w_dev;     /* or NULL: a device copy of w already there (a staged layer slot,
                             * libquant/device_adapters.h); then w is not uploaded */
} lq_cuda_gptq_in;
/* The whole sweep on the device: rows one per thread (hd_gptq.h: gptq.c's sweep_row per
 * column, propagating inside the whole lazy batch), lazy updates W[:, i2:] −= E·U[i1:i2, i2:]
 * with cuBLAS. dst: n_out row bytes; deq (or NULL): n_out × n_in values used; loss: Σ over rows.
 * gptq.c splits each batch into sub-batches of 32 columns joined by sgemms, so the two agree to
 * float rounding (nearly all values equal), not bit for bit. A row whose propagation blows up or whose block overflows:
 * LQ_ERR_NUMERIC naming row and column (lq_gptq_quantize then falls back to RTN). */
lq_status lq_cuda_gptq_sweep(lq_cuda_ctx *ctx, const lq_cuda_gptq_in *in, void *dst, float *deq,
                             double *loss, lq_error *err);

/* ---- host-pointer conveniences (synchronous; upload, run, download) ----------------------- */
/* lq_dequantize_rows on the device, including its non-finite check (LQ_ERR_FORMAT naming row,
 * block and column). */
lq_status lq_cuda_dequantize_rows(lq_cuda_ctx *ctx, lq_type type, const void *src, float *dst,
                                  int64_t n_rows, int64_t n_per_row, lq_error *err);
/* lq_quantize_rows on the device (codec types): same bytes, same argument / NaN / overflow
 * errors (checked on the host before upload; overflowing blocks after). */
lq_status lq_cuda_quantize_rows(lq_cuda_ctx *ctx, lq_type type, const float *src, void *dst,
                                int64_t n_rows, int64_t n_per_row, const float *importance,
                                lq_error *err);
lq_status lq_cuda_matvec_q(lq_cuda_ctx *ctx, lq_type type, const void *w, int64_t n_rows,
                           const float *x, int64_t n, float *y, lq_error *err);
lq_status lq_cuda_gemm_q(lq_cuda_ctx *ctx, lq_type type, const void *w, int64_t n_rows, int64_t n,
                         const float *x, int64_t n_tok, float *y, lq_error *err);
/* Adds n_tokens rows of x (host) to host double sums / float maxima (any may be NULL). */
lq_status lq_cuda_stats_accumulate(lq_cuda_ctx *ctx, const float *x, int64_t n_tokens,
                                   int64_t n_in, double *sum_x2, double *sum_abs, float *max_abs,
                                   lq_error *err);
/* lq_awq_clip on the device: w (host, n_out × n_in) clipped in place, identical to the CPU;
 * mean_ratio as there. x: t × n_in sampled inputs. */
lq_status lq_cuda_awq_clip(lq_cuda_ctx *ctx, lq_type type, float *w, int64_t n_out, int64_t n_in,
                           const float *x, int64_t t, double *mean_ratio, lq_error *err);

/* ---- linear algebra (linalg.h's calls on cuBLAS / cuSOLVER) ------------------------------- */
/* Host-pointer versions of linalg.h with the same row-major conventions; failures are sticky
 * in the context (the void calls then do nothing; check lq_cuda_status). */
void lq_cuda_la_sgemm(lq_cuda_ctx *ctx, bool trans_a, bool trans_b, int64_t m, int64_t n,
                      int64_t k, float alpha, const float *a, int64_t lda, const float *b,
                      int64_t ldb, float beta, float *c, int64_t ldc);
void lq_cuda_la_syrk_acc(lq_cuda_ctx *ctx, int64_t n, int64_t k, const float *x, int64_t ldx,
                         double *h);
int64_t lq_cuda_la_potrf_lower(lq_cuda_ctx *ctx, int64_t n, double *a, int64_t lda);
int64_t lq_cuda_la_potri_lower(lq_cuda_ctx *ctx, int64_t n, double *a, int64_t lda);
/* Device-pointer versions (compute stream): C = α·op(A)·op(B) + β·C row-major; H (double) +=
 * XᵀX from fp32 products (cublasSsyrk into an fp32 scratch of n² floats, then added in double). */
lq_status lq_cuda_sgemm_dev(lq_cuda_ctx *ctx, bool trans_a, bool trans_b, int64_t m, int64_t n,
                            int64_t k, float alpha, const float *a, int64_t lda, const float *b,
                            int64_t ldb, float beta, float *c, int64_t ldc, lq_error *err);
lq_status lq_cuda_syrk_acc_dev(lq_cuda_ctx *ctx, int64_t n, int64_t k, const float *x,
                               int64_t ldx, double *h, float *scratch, lq_error *err);

/* The linear-algebra backend as an object, so the passes can pick CPU or CUDA at run time
 * (the CPU one wraps linalg.h; device.c). ctx: the backend's state (lq_cuda_ctx for CUDA). */
typedef struct lq_la_ops {
    const char *name; /* "openblas", "builtin" or "cuda" */
    void *ctx;
    void (*sgemm)(void *ctx, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                  float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                  float beta, float *c, int64_t ldc);
    /* h += XᵀX; scratch: n² floats (CPU), unused by CUDA */
    void (*syrk_acc)(void *ctx, int64_t n, int64_t k, const float *x, int64_t ldx, double *h,
                     float *scratch, int n_threads);
    int64_t (*potrf_lower)(void *ctx, int64_t n, double *a, int64_t lda);
    int64_t (*potri_lower)(void *ctx, int64_t n, double *a, int64_t lda);
} lq_la_ops;
const lq_la_ops *lq_la_ops_cpu(void);
/* Fills *out with the CUDA backend over ctx (LQ_ERR_UNSUPPORTED without CUDA). */
lq_status lq_la_ops_cuda(lq_cuda_ctx *ctx, lq_la_ops *out, lq_error *err);

#ifdef __cplusplus
}
#endif
#endif
