/* rt_internal.h — pieces of the reference runtime shared by its files (not installed). */
#ifndef LQ_RT_INTERNAL_H
#define LQ_RT_INTERNAL_H

#include "../internal.h"

/* One weight matrix as the runtime multiplies it: n_out rows of n_in elements. */
typedef struct rt_weight {
    char name[LQ_MAX_NAME];
    lq_type type;
    int64_t n_in, n_out;
    size_t row_bytes;
    const void *data;
} rt_weight;

/* One product y = W x (+ bias) over a batch of n_tok rows of x; several of them that share
 * their input run as one parallel loop over their concatenated output rows. */
typedef struct rt_matmul {
    const rt_weight *w;
    const float *bias; /* n_out or NULL */
    float *y;          /* n_tok × n_out */
} rt_matmul;

/* Scratch for quantized activations, grown on demand. */
typedef struct rt_act_buf {
    void *data;
    size_t cap;
} rt_act_buf;


/* y_k = W_k x for k < n_mm (all W_k have the same n_in); x is n_tok × n_in. Quantizes x once per
 * vec-dot type unless f32_act. Output rows are split over n_threads; deterministic. */
lq_status rt_matmul_run(const rt_matmul *mm, int n_mm, const float *x, int64_t n_tok,
                        bool f32_act, lq_pool *pool, int n_threads, rt_act_buf *act,
                        lq_error *err);

/* Batches of at least RT_SGEMM_MIN_TOKENS tokens multiply float weights (F32/F16/BF16) through
 * BLAS sgemm over fixed chunks of RT_SGEMM_ROWS output rows (OpenBLAS builds only); results are
 * thread-count independent but may differ in the last bits from the one-token dot path.
 * rt_matmul_uses_sgemm: whether rt_matmul_run takes that path for this product. */
#define RT_SGEMM_MIN_TOKENS 8
#define RT_SGEMM_ROWS 128
bool rt_matmul_uses_sgemm(const rt_weight *w, bool f32_act, int64_t n_tok);
/* Switches the sgemm path off (false) or back on, process-wide: for tests and benchmarks that
 * compare it with the dot path. Not thread-safe against products in flight. */
void rt_matmul_set_sgemm(bool enabled);

/* Tiled int8 products for Q4_0 / Q8_0 weights (gemm_avx512.c, AVX-512 VNNI only), n_in a
 * multiple of 128 (Q4_0) or 64 (Q8_0) up to RT_GEMM_MAX_IN. Activations, packed from the
 * kernels' Q8_0 blocks by rt_gemm_pack_act in the weight type's lane order: Q4_0 per
 * superchunk of 128 elements (RT_GEMM_ACT_SC bytes): the codes of elements 0-15 of each of the
 * 4 blocks, those of elements 16-31, 16 int32 lanes of -8·(sum of the lane's 8 codes), 16 float
 * lane scales; Q8_0 per chunk of 64 (RT_GEMM_ACT_CHUNK bytes): 64 codes, 16 lanes of
 * -128·(sum of 4 codes), 16 lane scales. Stride per token: rt_gemm_act_stride. */
#define RT_GEMM_MAX_IN 16384
#define RT_GEMM_ACT_CHUNK 192
#define RT_GEMM_ACT_SC 256
bool rt_gemm_usable(lq_type type, int64_t n_in);
size_t rt_gemm_act_stride(lq_type type, int64_t n_in);
void rt_gemm_pack_act(lq_type type, const void *q8_0_blocks, int64_t n_in, void *dst);
void rt_gemm_rows_avx512(lq_type type, const void *weights, size_t row_bytes, int64_t r0, int64_t r1,
                         const void *act, size_t act_stride, int64_t n_tok, int64_t n_in, float *y,
                         int64_t y_stride, const float *bias);

/* One token: y[r] (+ bias[r]) for rows [r0, r1) of Q4_0 / Q8_0 weights, with the packed
 * activations of that token; bit for bit what rt_gemm_rows_avx512 gives the same token. */
void rt_gemv_rows_avx512(lq_type type, const void *weights, size_t row_bytes, int64_t r0, int64_t r1,
                         const void *act, int64_t n_in, float *y, const float *bias);
/* Whether the Q4_0 single-token kernel may use its AVX-512 VBMI + GFNI copy (the default where
 * the CPU has both); tests switch it off to check the other copy gives the same bits. */
void rt_gemv_use_vbmi(bool enabled);

/* Attention of one query head (gemm_avx512.c; head_dim a multiple of 16): scores[j] =
 * q·k_j · scale for j in [first, last]; out = Σ_j scores[j]·inv_sum · v_j. Keys and values of
 * position j start at j·kv_stride. */
void rt_attn_scores_avx512(const float *q, const float *keys, int64_t kv_stride, int64_t first, int64_t last,
                           int64_t hd, float scale, float *scores);
void rt_attn_values_avx512(const float *scores, float inv_sum, const float *vals, int64_t kv_stride,
                           int64_t first, int64_t last, int64_t hd, float *out);

/* gate[i] = silu(gate[i]) · up[i] for i < n (gemm_avx512.c; a polynomial e^x within float
 * rounding of expf). */
void rt_swiglu_avx512(float *gate, const float *up, int64_t n);

/* lq_runtime_eval without logits, then the logits of the last token alone (lq bench). */
lq_status rt_eval_last_logits(lq_runtime *rt, const int32_t *tokens, int64_t n_tokens, float *logits,
                              lq_error *err);
/* The probe run on the runtime's own pool and threads (lq bench's tg bound). */
lq_bench_rate rt_probe_run(lq_runtime *rt, lq_bw_probe *probe, int passes);

#endif
