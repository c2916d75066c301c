/* device_adapters.h — the device paths of the passes, the calibration statistics and the
 * runtime, each callable in one line from the CPU code it replaces (libquant/device_ctx.c).
 *
 * Every function takes the lq_device_ctx the caller got in its options (NULL = CPU; the
 * functions then return LQ_ERR_UNSUPPORTED, so `if (dev) ... else <CPU>` is the pattern).
 * Results: codec bytes, dequantized values and statistics are bit-identical to the CPU; GEMM,
 * Hessian and GPTQ lazy updates go through cuBLAS and agree to float rounding (lq_cuda.h).
 * Failures of the device itself (CUDA errors, device memory) are LQ_ERR_IO / LQ_ERR_NOMEM with
 * the CUDA message; they are errors, not silent CPU fallbacks. */
#ifndef LQ_DEVICE_ADAPTERS_H
#define LQ_DEVICE_ADAPTERS_H

#include "kernels/cuda/lq_cuda.h"
#include "passes_internal.h"

/* The CUDA context inside (NULL for NULL). */
lq_cuda_ctx *lq_device_cuda(const lq_device_ctx *d);

/* ---- GPTQ (gptq.c) -------------------------------------------------------------------------- */
/* The sweep of lq_gptq_quantize_prepared on the device: same inputs as its sweep_job, same
 * outputs and the same LQ_ERR_NUMERIC (row, column) on a blown-up row or overflowing block, so
 * the caller's RTN fallback stays as it is. Uses the layer's staged copy of w when
 * lq_device_layer_stage put one there. */
lq_status lq_device_gptq_sweep(lq_device_ctx *d, lq_type type, const char *name, const float *w,
                               int64_t n_out, int64_t n_in, const float *u, const float *imp,
                               const uint8_t *dead, int64_t lazy, void *dst, float *deq,
                               double *loss, lq_error *err);
/* The linear-algebra backend for the factorisation (cuSOLVER potrf/potri in fp64, same contract
 * as linalg.h); the CPU backend for d == NULL or when the module cannot give one. */
const lq_la_ops *lq_device_la_ops(lq_device_ctx *d);

/* ---- Hessians (passes.c's capture hook) ------------------------------------------------------ */
/* hs += x (n_tokens × hs->n_in) on the device: the sum stays there (fp32 batch products into an
 * fp64 sum, as lq_hessian_add) and hs->n_tokens counts the tokens. A failure is kept in d and
 * returned by lq_device_hessian_collect (the hook has no status). */
void lq_device_hessian_add(lq_device_ctx *d, lq_hessian *hs, const float *x, int64_t n_tokens);
/* Adds the device sum into hs->h and frees its device memory; call before lq_hessian_finish.
 * LQ_OK with nothing to do when hs has no device sum. */
lq_status lq_device_hessian_collect(lq_device_ctx *d, lq_hessian *hs, lq_error *err);

/* ---- layer streaming (passes.c's per-layer loop) --------------------------------------------- */
/* Two device arenas of layer_bytes each (the largest layer's weights). */
lq_status lq_device_layers_reserve(lq_device_ctx *d, size_t layer_bytes, lq_error *err);
/* Uploads the n final weight matrices of `layer` (host pointers, bytes each) into the layer's
 * arena, overlapped with the compute still running on the other arena; the GPTQ sweep then
 * copies them on the device instead of uploading. The weights must not change on the host
 * until lq_device_layer_done(layer) (stage after AWQ/SmoothQuant changed them). */
lq_status lq_device_layer_stage(lq_device_ctx *d, int64_t layer, int n, const float *const *w,
                                const size_t *bytes, lq_error *err);
/* The same for a layer's float matrices given by shape (n of them, n_out[i] × n_in[i]; NULL
 * entries skipped), reserving (or growing) the arenas to fit: the one-line form for passes.c. */
lq_status lq_device_stage_matrices(lq_device_ctx *d, int64_t layer, int n, float *const *w,
                                   const int64_t *n_out, const int64_t *n_in, lq_error *err);
/* The compute enqueued so far is the arena's last user; its staged weights are forgotten. */
lq_status lq_device_layer_done(lq_device_ctx *d, int64_t layer, lq_error *err);

/* ---- AWQ (awq.c) ----------------------------------------------------------------------------- */
/* lq_awq_clip on the device (identical clamps and ratio). */
lq_status lq_device_awq_clip(lq_device_ctx *d, lq_type type, float *w, int64_t n_out,
                             int64_t n_in, const float *x, int64_t t, double *mean_ratio,
                             lq_error *err);
/* lq_awq_search_scale on the device: weights, inputs and the reference output uploaded once,
 * then per candidate Q(W·s)/s (bit-identical to the CPU's fake quantization), the group forward
 * with cuBLAS and Σ(ref − out)² in double. Same selection rules (min_gain, NUMERIC skips).
 * LQ_ERR_UNSUPPORTED for AWQ+GPTQ groups (g->h): that search runs GPTQ per candidate on the CPU. */
lq_status lq_device_awq_search_scale(lq_device_ctx *d, const awq_group *g, int64_t n_in,
                                     const float *x, int64_t t, const float *x_mean, int n_grid,
                                     float *s, double *alpha, double *loss_plain,
                                     double *loss_best, lq_error *err);

/* ---- runtime (runtime/matmul.c) -------------------------------------------------------------- */
/* y (n_tok × n_out) = x (n_tok × n_in) · Wᵀ (+ bias) for one stored weight matrix (F32, F16,
 * BF16 or a codec type; row_bytes apart): W is uploaded on first use and kept on the device
 * (keyed by its host address and size: lq_device_weight_changed when they change); one token
 * runs the GEMV kernel, more the dequantized-panel GEMM. fp32 activations: compare with the
 * CPU's f32_activations path. LQ_ERR_UNSUPPORTED for other types (the caller keeps the CPU). */
lq_status lq_device_matmul(lq_device_ctx *d, lq_type type, const void *w, size_t row_bytes,
                           int64_t n_out, int64_t n_in, const float *x, int64_t n_tok,
                           const float *bias, float *y, lq_error *err);
/* Forgets the device copy of the weight at host (if any): call whenever the bytes there change
 * or the runtime swaps a weight (lq_runtime_set_weight: for the old and the new data). */
void lq_device_weight_changed(lq_device_ctx *d, const void *host);
/* Bytes of weights the runtime keeps on the device. */
size_t lq_device_weights_bytes(const lq_device_ctx *d);

#endif
