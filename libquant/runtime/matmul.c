/* matmul.c — batched products of stored (possibly quantized) weights with fp32 activations.
 *
 * Weights are never dequantized as a whole: each output row is dotted with every token of the
 * batch through the codec kernels while it is hot in cache, so a weight row is read from memory
 * once per batch (that is what makes prompt processing faster than token generation). The
 * activations are quantized once per batch to the weight type's vec-dot type, as llama.cpp
 * does, unless the caller asks for exact fp32 products.
 *
 * Float weights (F32/F16/BF16) in batches of RT_SGEMM_MIN_TOKENS tokens or more go through BLAS
 * sgemm instead (see "The sgemm path" below): a per-row dot product cannot reuse the weights
 * from registers across tokens the way a GEMM kernel does. */
#include "rt_internal.h"

#include "../codecs/blocks.h"
#include "../linalg.h"
#include "lq_config.h"

#include <stdlib.h>
#include <string.h>

#define RT_MAX_MATMUL 4
#define RT_ROW_TILE 16 /* rows kept in L1 while the batch's tokens stream past */
#define RT_TILED_MIN_TOKENS 4

typedef struct mm_job {
    const rt_matmul *mm;
    int n_mm;
    const float *x;
    int64_t n_tok, n_in;
    int64_t row_start[RT_MAX_MATMUL + 1]; /* offsets of each product in the joint row space */
    const void *act[RT_MAX_MATMUL];       /* quantized x per product, NULL = fp32 dot */
    size_t act_row_bytes[RT_MAX_MATMUL];
    bool tiled[RT_MAX_MATMUL];            /* act is packed for rt_gemm_rows_avx512 */
} mm_job;

/* ---------------------------------------------------------------------------------------
 * The tiled path (Q4_0 / Q8_0 on AVX-512 VNNI)
 * ------------------------------------------------------------------------------------- */

bool rt_gemm_usable(lq_type type, int64_t n_in) {
    static int vnni = -1; /* CPU support, probed once */
    if (vnni < 0) vnni = strcmp(lq_cpu_simd_level(), "avx512vnni") == 0;
    int64_t step = type == LQ_TYPE_Q4_0 ? 128 : 64; /* a superchunk or a chunk */
    return vnni && lq_kernels_simd() == LQ_SIMD_AVX512 && (type == LQ_TYPE_Q4_0 || type == LQ_TYPE_Q8_0) &&
           n_in % step == 0 && n_in <= RT_GEMM_MAX_IN;
}

size_t rt_gemm_act_stride(lq_type type, int64_t n_in) {
    return type == LQ_TYPE_Q4_0 ? (size_t)(n_in / 128) * RT_GEMM_ACT_SC : (size_t)(n_in / 64) * RT_GEMM_ACT_CHUNK;
}

/* Q8_0: per chunk of two blocks, the 64 codes, then per lane (lanes 0-7 block 0, 8-15 block 1)
 * -128·(sum of its 4 codes) and d_x. */
static void pack_act_q8(const lq_block_q8_0 *b, int64_t n_in, char *dst) {
    for (int64_t c = 0; c < n_in / 64; c++) {
        char *chunk = dst + c * RT_GEMM_ACT_CHUNK;
        int32_t base[16];
        float scale[16];
        memcpy(chunk, b[2 * c].qs, 32);
        memcpy(chunk + 32, b[2 * c + 1].qs, 32);
        for (int lane = 0; lane < 16; lane++) {
            const lq_block_q8_0 *blk = &b[2 * c + lane / 8];
            int32_t sum = 0;
            for (int k = 0; k < 4; k++) sum += blk->qs[4 * (lane % 8) + k];
            base[lane] = -128 * sum;
            scale[lane] = lq_fp16_to_fp32(blk->d);
        }
        memcpy(chunk + 64, base, sizeof base);
        memcpy(chunk + 128, scale, sizeof scale);
    }
}

/* Q4_0: per superchunk of four blocks, the codes of elements 0-15 of each block (xlo), those of
 * 16-31 (xhi), then per lane (lanes 4k..4k+3 block k; lane 4k+m holds elements 4m..4m+3 of
 * both halves) -8·(sum of its 8 codes) and d_x. */
static void pack_act_q4(const lq_block_q8_0 *b, int64_t n_in, char *dst) {
    for (int64_t s = 0; s < n_in / 128; s++) {
        char *sc = dst + s * RT_GEMM_ACT_SC;
        int32_t base[16];
        float scale[16];
        for (int k = 0; k < 4; k++) {
            const lq_block_q8_0 *blk = &b[4 * s + k];
            memcpy(sc + 16 * k, blk->qs, 16);
            memcpy(sc + 64 + 16 * k, blk->qs + 16, 16);
            for (int m = 0; m < 4; m++) {
                int32_t sum = 0;
                for (int j = 0; j < 4; j++) sum += blk->qs[4 * m + j] + blk->qs[16 + 4 * m + j];
                base[4 * k + m] = -8 * sum;
                scale[4 * k + m] = lq_fp16_to_fp32(blk->d);
            }
        }
        memcpy(sc + 128, base, sizeof base);
        memcpy(sc + 192, scale, sizeof scale);
    }
}

void rt_gemm_pack_act(lq_type type, const void *q8_0_blocks, int64_t n_in, void *dst) {
    if (type == LQ_TYPE_Q4_0) pack_act_q4((const lq_block_q8_0 *)q8_0_blocks, n_in, (char *)dst);
    else pack_act_q8((const lq_block_q8_0 *)q8_0_blocks, n_in, (char *)dst);
}

/* Rows [lo, hi) of product k, all tokens. */
static void mm_rows(const mm_job *job, int k, int64_t lo, int64_t hi) {
    const rt_weight *w = job->mm[k].w;
    const float *bias = job->mm[k].bias;
    float *y = job->mm[k].y;
    const char *wdata = (const char *)w->data;
    const char *act = (const char *)job->act[k];
    if (job->tiled[k] && job->n_tok == 1) {
        rt_gemv_rows_avx512(w->type, w->data, w->row_bytes, lo, hi, act, w->n_in, y, bias);
        return;
    }
    if (act && job->n_tok == 1) { /* one token: whole row ranges through the kernels' matvec */
        lq_kernel_matvec_q_rows(w->type, wdata, w->row_bytes, lo, hi, act, w->n_in, y);
        if (bias)
            for (int64_t r = lo; r < hi; r++) y[r] += bias[r];
        return;
    }
    if (job->tiled[k]) {
        rt_gemm_rows_avx512(w->type, w->data, w->row_bytes, lo, hi, act, job->act_row_bytes[k], job->n_tok,
                            w->n_in, y, w->n_out, bias);
        return;
    }
    if (act) { /* the kernels' batch product: tiles of rows unpacked once for several tokens */
        lq_kernel_gemm_q(w->type, wdata + (size_t)lo * w->row_bytes, w->row_bytes, hi - lo, act,
                         job->act_row_bytes[k], job->n_tok, w->n_in, y + lo, w->n_out);
        if (bias)
            for (int64_t t = 0; t < job->n_tok; t++)
                for (int64_t r = lo; r < hi; r++) y[t * w->n_out + r] += bias[r];
        return;
    }
    for (int64_t r0 = lo; r0 < hi; r0 += RT_ROW_TILE) {
        int64_t r1 = r0 + RT_ROW_TILE < hi ? r0 + RT_ROW_TILE : hi;
        for (int64_t t = 0; t < job->n_tok; t++) {
            float *yt = y + t * w->n_out;
            const float *xt = job->x + t * job->n_in;
            for (int64_t r = r0; r < r1; r++)
                yt[r] = lq_kernel_dot_f32(w->type, wdata + (size_t)r * w->row_bytes, xt, w->n_in);
            if (bias)
                for (int64_t r = r0; r < r1; r++) yt[r] += bias[r];
        }
    }
}

static void mm_worker(void *ctx, int64_t begin, int64_t end, int thread_index) {
    (void)thread_index;
    const mm_job *job = (const mm_job *)ctx;
    for (int k = 0; k < job->n_mm; k++) {
        int64_t lo = job->row_start[k] > begin ? job->row_start[k] : begin;
        int64_t hi = job->row_start[k + 1] < end ? job->row_start[k + 1] : end;
        if (lo < hi) mm_rows(job, k, lo - job->row_start[k], hi - job->row_start[k]);
    }
}

/* ---------------------------------------------------------------------------------------
 * The sgemm path (float weights, batches)
 *
 * Output rows are cut into chunks of RT_SGEMM_ROWS rows counted from each product's row 0, a
 * constant, so every chunk is the same single-threaded sgemm call whatever the thread count
 * and whichever thread takes it: results are identical at any thread count. F16/BF16 rows are
 * widened into the taking thread's scratch first (F32 rows are read in place).
 * ------------------------------------------------------------------------------------- */

/* Quantized weights with f32 activations take this path too (the chunk dequantized into the
 * scratch, then sgemm): Q4_K 2048 × 8192, 512 tokens, 2 threads ran at 32 GFLOP/s (OpenBLAS's
 * generic kernels) to 104 (SkylakeX kernels) against 10.6 on the fp32 dot kernels. */
#define RT_SGEMM_QUANTIZED 1

static bool sgemm_enabled = true; /* only tests and benchmarks switch it off */

void rt_matmul_set_sgemm(bool enabled) { __atomic_store_n(&sgemm_enabled, enabled, __ATOMIC_RELAXED); }

bool rt_matmul_uses_sgemm(const rt_weight *w, bool f32_act, int64_t n_tok) {
#if LQ_HAVE_BLAS
    if (n_tok < RT_SGEMM_MIN_TOKENS || !__atomic_load_n(&sgemm_enabled, __ATOMIC_RELAXED)) return false;
    if (w->type == LQ_TYPE_F32 || w->type == LQ_TYPE_F16 || w->type == LQ_TYPE_BF16) return true;
    const lq_type_traits *tr = lq_type_get(w->type);
    return RT_SGEMM_QUANTIZED && f32_act && tr && tr->is_quantized && w->n_in % tr->block_size == 0;
#else
    /* the built-in sgemm's transposed-B loop is slower than the dot kernels */
    (void)w, (void)f32_act, (void)n_tok;
    return false;
#endif
}

typedef struct sg_job {
    const rt_matmul *mm;
    int n_mm;
    const float *x;
    int64_t n_tok, n_in;
    int64_t chunk_start[RT_MAX_MATMUL + 1]; /* offsets of each product's chunks in the joint list */
    float *scratch;                         /* RT_SGEMM_ROWS × n_in floats per thread */
} sg_job;

/* Rows [r0, r1) of product k for every token: Y[:, r0:r1] = X · W[r0:r1]ᵀ (+ bias). */
static void sg_chunk(const sg_job *job, int k, int64_t r0, int64_t r1, float *scratch) {
    const rt_weight *w = job->mm[k].w;
    const char *rows = (const char *)w->data + (size_t)r0 * w->row_bytes;
    const float *wf = scratch;
    int64_t ldw = job->n_in;
    if (w->type == LQ_TYPE_F32 && (uintptr_t)rows % sizeof(float) == 0 && w->row_bytes % sizeof(float) == 0) {
        wf = (const float *)(const void *)rows;
        ldw = (int64_t)(w->row_bytes / sizeof(float));
    } else {
        for (int64_t r = r0; r < r1; r++)
            lq_kernel_dequant_row(w->type, rows + (size_t)(r - r0) * w->row_bytes, scratch + (r - r0) * job->n_in,
                                  job->n_in);
    }
    float *y = job->mm[k].y;
    int64_t n_out = w->n_out;
    lq_la_sgemm(false, true, job->n_tok, r1 - r0, job->n_in, 1.0f, job->x, job->n_in, wf, ldw, 0.0f, y + r0, n_out);
    const float *bias = job->mm[k].bias;
    if (bias)
        for (int64_t t = 0; t < job->n_tok; t++)
            for (int64_t r = r0; r < r1; r++) y[t * n_out + r] += bias[r];
}

static void sg_worker(void *ctx, int64_t begin, int64_t end, int thread_index) {
    const sg_job *job = (const sg_job *)ctx;
    float *scratch = job->scratch + (size_t)thread_index * RT_SGEMM_ROWS * (size_t)job->n_in;
    for (int64_t c = begin; c < end; c++) {
        int k = 0;
        while (c >= job->chunk_start[k + 1]) k++;
        int64_t r0 = (c - job->chunk_start[k]) * RT_SGEMM_ROWS;
        int64_t n_out = job->mm[k].w->n_out;
        sg_chunk(job, k, r0, r0 + RT_SGEMM_ROWS < n_out ? r0 + RT_SGEMM_ROWS : n_out, scratch);
    }
}

static lq_status grow(rt_act_buf *b, size_t need, lq_error *err);

static lq_status sgemm_run(const rt_matmul *mm, int n_mm, const float *x, int64_t n_tok, lq_pool *pool,
                           int n_threads, rt_act_buf *scratch, lq_error *err) {
    lq_la_init(); /* BLAS pinned to one thread per call: the chunks are the parallelism */
    sg_job job;
    memset(&job, 0, sizeof job);
    job.mm = mm;
    job.n_mm = n_mm;
    job.x = x;
    job.n_tok = n_tok;
    job.n_in = mm[0].w->n_in;
    for (int k = 0; k < n_mm; k++)
        job.chunk_start[k + 1] = job.chunk_start[k] + (mm[k].w->n_out + RT_SGEMM_ROWS - 1) / RT_SGEMM_ROWS;
    int64_t n_chunks = job.chunk_start[n_mm];
    int threads = n_chunks < n_threads ? (int)n_chunks : n_threads;
    if (threads < 1) threads = 1;
    size_t per_thread = (size_t)RT_SGEMM_ROWS * (size_t)job.n_in;
    if (job.n_in > 0 && per_thread / (size_t)job.n_in != (size_t)RT_SGEMM_ROWS)
        return lq_fail(err, LQ_ERR_INVALID, "runtime: %lld inputs overflow the sgemm scratch", (long long)job.n_in);
    lq_status st = grow(scratch, per_thread * (size_t)threads * sizeof(float), err);
    if (st) return st;
    job.scratch = (float *)scratch->data;
    lq_pool_run_chunks(pool, n_chunks, 1, threads, sg_worker, &job);
    return LQ_OK;
}

/* How product w takes its activations: -1 fp32, else the vec-dot type; 1000 + weight type for
 * the tiled path's packing (its lane order depends on the weight type). */
#define ACT_TILED 1000
static int act_type_for(const rt_weight *w, bool f32_act, int64_t n_tok) {
    const lq_type_traits *tr = lq_type_get(w->type);
    if (f32_act || !tr || !tr->is_quantized) return -1;
    /* tiles pay off once several tokens share each unpacked weight block */
    if ((n_tok >= RT_TILED_MIN_TOKENS || n_tok == 1) && rt_gemm_usable(w->type, w->n_in)) return ACT_TILED + (int)w->type;
    lq_type at = lq_kernel_vec_dot_type(w->type);
    const lq_type_traits *atr = lq_type_get(at);
    if (!atr || !atr->is_quantized || w->n_in % atr->block_size != 0) return -1;
    return (int)at;
}

static lq_status grow(rt_act_buf *b, size_t need, lq_error *err) {
    if (b->cap >= need) return LQ_OK;
    void *p = realloc(b->data, need);
    if (!p) return lq_fail(err, LQ_ERR_NOMEM, "runtime: out of memory for %zu bytes of activations", need);
    b->data = p;
    b->cap = need;
    return LQ_OK;
}

/* Quantizing the activations of a batch, token by token, over the pool (serial, it would keep
 * the other threads idle for a few percent of prompt processing). */
typedef struct act_job {
    lq_type act_type; /* vec-dot type, or Q8_0 then repacked for tiles of weight type w_type */
    bool tiled;
    lq_type w_type;
    const float *x;
    int64_t n_in;
    char *dst;
    size_t stride;
} act_job;

static void act_worker(void *ctx, int64_t begin, int64_t end, int thread_index) {
    (void)thread_index;
    const act_job *j = (const act_job *)ctx;
    _Alignas(64) char q8[RT_GEMM_MAX_IN / 32 * sizeof(lq_block_q8_0)]; /* one token's Q8_0 blocks */
    for (int64_t t = begin; t < end; t++) {
        const float *xt = j->x + t * j->n_in;
        char *out = j->dst + (size_t)t * j->stride;
        if (!j->tiled) {
            lq_kernel_quantize_act(j->act_type, xt, out, j->n_in);
            continue;
        }
        /* the kernels' Q8_0 (llama.cpp's activation rounding), repacked for the tiles */
        lq_kernel_quantize_act(LQ_TYPE_Q8_0, xt, q8, j->n_in);
        rt_gemm_pack_act(j->w_type, q8, j->n_in, out);
    }
}

static lq_status quantize_batch(act_job *job, int64_t n_tok, rt_act_buf *buf, lq_pool *pool, int n_threads,
                                lq_error *err) {
    lq_status st = grow(buf, job->stride * (size_t)n_tok, err);
    if (st) return st;
    job->dst = (char *)buf->data;
    int threads = n_tok >= 8 ? n_threads : 1;
    lq_pool_run_chunks(pool, n_tok, (n_tok + 4 * threads - 1) / (4 * threads), threads, act_worker, job);
    return LQ_OK;
}

static lq_status dot_run(const rt_matmul *mm, int n_mm, const float *x, int64_t n_tok, bool f32_act,
                         lq_pool *pool, int n_threads, rt_act_buf *act, lq_error *err) {
    mm_job job;
    memset(&job, 0, sizeof job);
    job.mm = mm;
    job.n_mm = n_mm;
    job.x = x;
    job.n_tok = n_tok;
    job.n_in = mm[0].w->n_in;
    int act_types[RT_MAX_MATMUL];
    double work = 0;
    for (int k = 0; k < n_mm; k++) {
        job.row_start[k + 1] = job.row_start[k] + mm[k].w->n_out;
        work += (double)mm[k].w->n_out * (double)job.n_in * (double)n_tok;
        act_types[k] = act_type_for(mm[k].w, f32_act, n_tok);
        if (act_types[k] < 0) continue;
        /* products with the same activation type share one quantized copy of x */
        int same = -1;
        for (int j = 0; j < k; j++)
            if (act_types[j] == act_types[k]) same = j;
        if (same >= 0) {
            job.act[k] = job.act[same];
            job.act_row_bytes[k] = job.act_row_bytes[same];
            job.tiled[k] = job.tiled[same];
            continue;
        }
        bool tiled = act_types[k] >= ACT_TILED;
        act_job aj = {tiled ? LQ_TYPE_Q8_0 : (lq_type)act_types[k], tiled, mm[k].w->type, x, job.n_in, NULL,
                      tiled ? rt_gemm_act_stride(mm[k].w->type, job.n_in) : lq_row_size((lq_type)act_types[k], job.n_in)};
        lq_status st = quantize_batch(&aj, n_tok, &act[k], pool, n_threads, err);
        if (st) return st;
        job.tiled[k] = tiled;
        job.act[k] = act[k].data;
        job.act_row_bytes[k] = aj.stride;
    }
    /* starting threads costs tens of microseconds: not worth it for tiny products */
    int threads = work < 65536.0 ? 1 : n_threads;
    /* rows are handed out in chunks to whichever thread is free: a thread held up (another
     * process on its core) no longer holds up the product. The chunks shrink as the rows run
     * out, so the threads finish together (with 8 equal chunks per thread, Q8_0 decode of the
     * 1.1B model spent 4.7 % of its thread time waiting at the end of products; now 2.0 %,
     * most of it the serial steps between them). They are multiples of 16 rows, the
     * single-token kernels' row groups; each row's result is the same whichever chunk and
     * thread it falls in. */
    lq_pool_run_guided(pool, job.row_start[n_mm], 16, threads, mm_worker, &job);
    return LQ_OK;
}

lq_status rt_matmul_run(const rt_matmul *mm, int n_mm, const float *x, int64_t n_tok,
                        bool f32_act, lq_pool *pool, int n_threads, rt_act_buf *act,
                        lq_error *err) {
    if (n_mm < 1 || n_mm > RT_MAX_MATMUL)
        return lq_fail(err, LQ_ERR_INVALID, "runtime: %d products in one matmul", n_mm);
    rt_matmul dot[RT_MAX_MATMUL], sg[RT_MAX_MATMUL];
    int n_dot = 0, n_sg = 0;
    for (int k = 0; k < n_mm; k++) {
        if (rt_matmul_uses_sgemm(mm[k].w, f32_act, n_tok))
            sg[n_sg++] = mm[k];
        else
            dot[n_dot++] = mm[k];
    }
    /* the dot products use act[0, n_dot) for their quantized activations; the sgemm products
     * take the next buffer (there is one since n_dot < n_mm) as their weight scratch */
    if (n_dot > 0) {
        lq_status st = dot_run(dot, n_dot, x, n_tok, f32_act, pool, n_threads, act, err);
        if (st) return st;
    }
    if (n_sg > 0) return sgemm_run(sg, n_sg, x, n_tok, pool, n_threads, &act[n_dot], err);
    return LQ_OK;
}
