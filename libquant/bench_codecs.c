/* bench_codecs.c — throughput of the codecs and CPU kernels (`lq bench codecs`).
 *
 * Method: every figure is the best of a few timed passes after one untimed pass. Weights for
 * the dot products are random blocks with sane scales (the kernels' speed does not depend on
 * the values), weight_bytes of them, far larger than the caches, so the dot product streams
 * them from memory exactly as a matrix-vector product in token generation does; the read
 * bandwidth is measured the same way over a buffer of the same size. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <immintrin.h>
#include <time.h>

#define BENCH_ROW 4096 /* elements per row: a common hidden size, a multiple of 256 */

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Best (fastest) wall and CPU times over timed passes. */
typedef struct pass_timer {
    double t0, c0, best_wall, best_cpu;
} pass_timer;

static void timer_start(pass_timer *t) {
    t->t0 = clock_s(CLOCK_MONOTONIC);
    t->c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
}
static void timer_stop(pass_timer *t, bool timed) {
    double wall = clock_s(CLOCK_MONOTONIC) - t->t0, cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - t->c0;
    if (!timed) return;
    if (t->best_wall == 0.0 || wall < t->best_wall) t->best_wall = wall;
    if (t->best_cpu == 0.0 || cpu < t->best_cpu) t->best_cpu = cpu;
}
/* bytes over the best times; CPU time is divided by the threads that shared the work */
static lq_bench_rate timer_rate(const pass_timer *t, double bytes, int threads) {
    lq_bench_rate r;
    r.wall = t->best_wall > 0 ? bytes / t->best_wall : 0.0;
    r.cpu = t->best_cpu > 0 ? bytes * threads / t->best_cpu : 0.0;
    return r;
}

/* Large buffers on 2 MiB boundaries with transparent huge pages requested: fewer TLB misses
 * for the streaming passes (the same for the bandwidth probe and the kernels). */
static void *big_alloc(size_t bytes, lq_error *err, const char *what) {
    size_t align = (size_t)2 << 20;
    size_t padded = (bytes + align - 1) / align * align;
    void *p = aligned_alloc(align, padded);
    if (!p) {
        lq_fail(err, LQ_ERR_NOMEM, "bench: cannot allocate %zu MiB for %s", padded >> 20, what);
        return NULL;
    }
#ifdef MADV_HUGEPAGE
    madvise(p, padded, MADV_HUGEPAGE);
#endif
    return p;
}

static uint64_t xorshift(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* ---- read bandwidth ------------------------------------------------------------------------ */
typedef struct read_job {
    const uint64_t *buf;
    uint64_t sums[64];
} read_job;

/* The probe must not be slower than memory: one core has to keep enough lines in flight to
 * reach its share of the bandwidth, which plain loads (the hardware prefetchers alone) do
 * not on the machines measured (a scalar xor loop: ~19 GB/s on 2 cores of a VM that streams
 * ~33 GB/s). So: the widest loads the CPU has, four independent accumulators, and software
 * prefetch as far ahead as the weight kernels prefetch (simd256.h's LQ_PF_DIST). */
#define READ_PF_LINES 128 /* 8 KiB ahead */

__attribute__((target("avx512f"))) static uint64_t read_lines_avx512(const uint64_t *p, int64_t first, int64_t end) {
    const char *b = (const char *)p;
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = first;
    for (; i + 4 <= end; i += 4) { /* four 64-byte lines per step */
        const char *line = b + i * 64;
        for (int k = 0; k < 4; k++)
            if (i + READ_PF_LINES + k < end) _mm_prefetch(line + (READ_PF_LINES + k) * 64, _MM_HINT_T0);
        a0 = _mm512_add_epi64(a0, _mm512_load_si512((const void *)line));
        a1 = _mm512_add_epi64(a1, _mm512_load_si512((const void *)(line + 64)));
        a2 = _mm512_add_epi64(a2, _mm512_load_si512((const void *)(line + 128)));
        a3 = _mm512_add_epi64(a3, _mm512_load_si512((const void *)(line + 192)));
    }
    for (; i < end; i++) a0 = _mm512_add_epi64(a0, _mm512_load_si512((const void *)(b + i * 64)));
    __m512i s = _mm512_xor_si512(_mm512_xor_si512(a0, a1), _mm512_xor_si512(a2, a3));
    return (uint64_t)_mm512_reduce_add_epi64(s);
}

__attribute__((target("avx2"))) static uint64_t read_lines_avx2(const uint64_t *p, int64_t first, int64_t end) {
    const char *b = (const char *)p;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = first;
    for (; i + 2 <= end; i += 2) { /* two 64-byte lines per step */
        const char *line = b + i * 64;
        for (int k = 0; k < 2; k++)
            if (i + READ_PF_LINES + k < end) _mm_prefetch(line + (READ_PF_LINES + k) * 64, _MM_HINT_T0);
        a0 = _mm256_add_epi64(a0, _mm256_load_si256((const __m256i *)line));
        a1 = _mm256_add_epi64(a1, _mm256_load_si256((const __m256i *)(line + 32)));
        a2 = _mm256_add_epi64(a2, _mm256_load_si256((const __m256i *)(line + 64)));
        a3 = _mm256_add_epi64(a3, _mm256_load_si256((const __m256i *)(line + 96)));
    }
    for (; i < end; i++) a0 = _mm256_add_epi64(a0, _mm256_load_si256((const __m256i *)(b + i * 64)));
    a0 = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
    return (uint64_t)_mm256_extract_epi64(a0, 0) ^ (uint64_t)_mm256_extract_epi64(a0, 3);
}

static uint64_t read_lines_scalar(const uint64_t *p, int64_t first, int64_t end) {
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (int64_t i = first * 8; i < end * 8; i += 8) {
        a0 += p[i] + p[i + 4];
        a1 += p[i + 1] + p[i + 5];
        a2 += p[i + 2] + p[i + 6];
        a3 += p[i + 3] + p[i + 7];
    }
    return a0 ^ a1 ^ a2 ^ a3;
}

/* Lines [begin, end) of job->buf, through the widest loads the kernels themselves use. */
static void read_chunk(void *ctx, int64_t begin, int64_t end, int t) {
    read_job *job = (read_job *)ctx;
    lq_simd level = lq_kernels_simd();
    job->sums[t & 63] = level == LQ_SIMD_AVX512 ? read_lines_avx512(job->buf, begin, end)
                        : level == LQ_SIMD_AVX2 ? read_lines_avx2(job->buf, begin, end)
                                                : read_lines_scalar(job->buf, begin, end);
}

struct lq_bw_probe {
    uint64_t *buf;
    size_t bytes;
};

lq_status lq_bw_probe_create(size_t bytes, lq_bw_probe **out, lq_error *err) {
    *out = NULL;
    lq_bw_probe *p = (lq_bw_probe *)lq_calloc(1, sizeof *p, err, "the read-bandwidth probe");
    if (!p) return err ? err->code : LQ_ERR_NOMEM;
    p->bytes = bytes / 64 * 64;
    if (p->bytes == 0) {
        free(p);
        return lq_fail(err, LQ_ERR_INVALID, "bench: a read-bandwidth buffer of %zu bytes", bytes);
    }
    p->buf = (uint64_t *)big_alloc(p->bytes, err, "the read-bandwidth buffer");
    if (!p->buf) {
        free(p);
        return LQ_ERR_NOMEM;
    }
    memset(p->buf, 1, p->bytes); /* every page present before the first timed pass */
    *out = p;
    return LQ_OK;
}

void lq_bw_probe_free(lq_bw_probe *p) {
    if (!p) return;
    free(p->buf);
    free(p);
}

lq_bench_rate lq_bw_probe_run(lq_bw_probe *p, lq_pool *pool, int n_threads, int passes) {
    if (passes < 1) passes = 1;
    read_job job;
    memset(&job, 0, sizeof job);
    job.buf = p->buf;
    pass_timer t = {0};
    for (int i = 0; i < passes; i++) {
        timer_start(&t);
        lq_pool_run(pool, (int64_t)(p->bytes / 64), n_threads, read_chunk, &job);
        timer_stop(&t, true);
    }
    return timer_rate(&t, (double)p->bytes, n_threads);
}

lq_status lq_bench_read_bandwidth(size_t bytes, int n_threads, int passes, lq_bench_rate *rate,
                                  lq_error *err) {
    if (n_threads <= 0) n_threads = lq_n_cpus();
    lq_bw_probe *p;
    lq_status st = lq_bw_probe_create(bytes, &p, err);
    if (st) return st;
    lq_pool *pool = lq_pool_create(n_threads);
    (void)lq_bw_probe_run(p, pool, n_threads, 1); /* untimed: page tables and TLB warm up */
    *rate = lq_bw_probe_run(p, pool, n_threads, passes);
    lq_pool_free(pool);
    lq_bw_probe_free(p);
    return LQ_OK;
}

/* ---- one type ------------------------------------------------------------------------------ */
typedef struct dot_job {
    lq_type type;
    const uint8_t *w;
    size_t row_bytes;
    const void *act;
    float *out;
} dot_job;

static void dot_rows(void *ctx, int64_t begin, int64_t end, int t) {
    (void)t;
    dot_job *job = (dot_job *)ctx;
    for (int64_t r = begin; r < end; r++)
        job->out[r] = lq_kernel_dot_q(job->type, job->w + (size_t)r * job->row_bytes, job->act, BENCH_ROW);
}

/* Random blocks: random bytes, then every fp16 field of the block set to a sane scale. */
static void fill_weights(lq_type type, uint8_t *w, size_t bytes) {
    uint64_t s = 0x243F6A8885A308D3ull ^ (uint64_t)type;
    size_t i = 0;
    for (; i + 8 <= bytes; i += 8) {
        uint64_t v = xorshift(&s);
        memcpy(w + i, &v, 8);
    }
    for (; i < bytes; i++) w[i] = (uint8_t)xorshift(&s);
    const lq_type_traits *t = lq_type_get(type);
    uint16_t scale = lq_fp32_to_fp16(0.01f);
    if (!t->is_quantized) { /* plain types: make every element a small finite number */
        if (type == LQ_TYPE_F32)
            for (size_t k = 0; k + 4 <= bytes; k += 4) {
                float v = 0.01f * (float)(w[k] & 15);
                memcpy(w + k, &v, 4);
            }
        else
            for (size_t k = 0; k + 2 <= bytes; k += 2) w[k + 1] = 0x3C; /* fp16 ~[1, 2), bf16 ~1e-2 */
        return;
    }
    static const struct { lq_type type; int off[2]; } fields[] = {
        {LQ_TYPE_Q4_0, {0, -1}}, {LQ_TYPE_Q4_1, {0, 2}},    {LQ_TYPE_Q5_0, {0, -1}},
        {LQ_TYPE_Q5_1, {0, 2}},  {LQ_TYPE_Q8_0, {0, -1}},   {LQ_TYPE_IQ4_NL, {0, -1}},
        {LQ_TYPE_Q2_K, {80, 82}}, {LQ_TYPE_Q3_K, {108, -1}}, {LQ_TYPE_Q4_K, {0, 2}},
        {LQ_TYPE_Q5_K, {0, 2}},  {LQ_TYPE_Q6_K, {208, -1}}, {LQ_TYPE_IQ4_XS, {0, -1}},
    };
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
        if (fields[f].type != type) continue;
        for (size_t b = 0; b + t->block_bytes <= bytes; b += t->block_bytes)
            for (int k = 0; k < 2; k++)
                if (fields[f].off[k] >= 0) memcpy(w + b + fields[f].off[k], &scale, 2);
    }
}

static int threads_used(int n_threads, int64_t n_items) {
    if (n_threads <= 0) n_threads = lq_n_cpus();
    return n_items < n_threads ? (int)n_items : n_threads;
}

/* Encoding through the row quantizers: 1 thread and n_threads. */
static lq_status bench_encode(lq_type type, const lq_bench_opts *o, lq_codec_bench *out, lq_error *err) {
    const int64_t n_rows = o->encode_rows > 0 ? o->encode_rows : 64;
    size_t n = (size_t)n_rows * BENCH_ROW;
    float *x = (float *)lq_malloc(n * sizeof(float), err, "bench input");
    void *q = x ? lq_malloc((size_t)n_rows * lq_row_size(type, BENCH_ROW), err, "bench output") : NULL;
    if (!x || !q) {
        free(x);
        return LQ_ERR_NOMEM;
    }
    uint64_t s = 12345;
    for (size_t i = 0; i < n; i++) x[i] = (float)((int64_t)(xorshift(&s) >> 41) - (1 << 22)) * 4e-9f;
    lq_status st = LQ_OK;
    for (int mt = 0; mt <= 1 && st == LQ_OK; mt++) {
        int threads = mt ? threads_used(o->n_threads, n_rows) : 1;
        pass_timer t = {0};
        for (int p = 0; p <= o->passes && st == LQ_OK; p++) {
            timer_start(&t);
            st = lq_quantize_rows_mt(type, x, q, n_rows, BENCH_ROW, NULL, threads, err);
            timer_stop(&t, p > 0);
        }
        lq_bench_rate r = timer_rate(&t, (double)(n * sizeof(float)), threads);
        if (mt) out->encode_mt = r;
        else out->encode_1t = r;
    }
    free(x);
    free(q);
    return st;
}

lq_status lq_bench_codec(lq_type type, const lq_bench_opts *o, lq_codec_bench *out, lq_error *err) {
    memset(out, 0, sizeof *out);
    out->type = type;
    lq_type act_type = lq_kernel_vec_dot_type(type);
    size_t row_bytes = lq_row_size(type, BENCH_ROW);
    if (act_type == LQ_TYPE_COUNT || row_bytes == 0)
        return lq_fail(err, LQ_ERR_UNSUPPORTED, "bench: no CPU kernels for type %d", (int)type);

    if (o->encode) {
        lq_error enc_err;
        lq_error_clear(&enc_err);
        if (bench_encode(type, o, out, &enc_err) != LQ_OK) {
            out->encode_1t.wall = out->encode_mt.wall = -1.0; /* not available: reported, not fatal */
            snprintf(out->note, sizeof out->note, "encode: %s", enc_err.msg);
        }
    }

    int64_t n_rows = (int64_t)(o->weight_bytes / row_bytes);
    if (n_rows < 1) n_rows = 1;
    size_t bytes = (size_t)n_rows * row_bytes;
    uint8_t *w = (uint8_t *)big_alloc(bytes, err, "the benchmark weights");
    float *outv = w ? (float *)lq_malloc((size_t)n_rows * sizeof(float), err, "bench results") : NULL;
    void *act = outv ? lq_malloc(lq_row_size(act_type, BENCH_ROW), err, "bench activations") : NULL;
    float *x = act ? (float *)lq_malloc(BENCH_ROW * sizeof(float), err, "bench activations") : NULL;
    if (!x) {
        free(w);
        free(outv);
        free(act);
        return LQ_ERR_NOMEM;
    }
    fill_weights(type, w, bytes);
    uint64_t s = 777;
    for (int i = 0; i < BENCH_ROW; i++) x[i] = (float)((int)(xorshift(&s) % 2001) - 1000) * 1e-3f;
    lq_kernel_quantize_act(act_type, x, act, BENCH_ROW);

    /* decode: rows streamed from the weights into one cache-resident row (1 thread) */
    int64_t dec_rows = n_rows < 4096 ? n_rows : 4096;
    pass_timer t = {0};
    for (int p = 0; p <= o->passes; p++) {
        timer_start(&t);
        for (int64_t r = 0; r < dec_rows; r++) lq_kernel_dequant_row(type, w + (size_t)r * row_bytes, x, BENCH_ROW);
        timer_stop(&t, p > 0);
    }
    out->decode = timer_rate(&t, (double)dec_rows * BENCH_ROW * sizeof(float), 1);

    /* Dot products over all rows, row by row and as a matrix-vector product, first on one
     * thread, then on n_threads (rows split into contiguous ranges). On n_threads every pass
     * is preceded by a plain streaming read of the same weights with the same threads, so
     * the bandwidth the ratio is taken against saw the same machine load as the kernels. */
    dot_job job = {type, w, row_bytes, act, outv};
    read_job rj;
    memset(&rj, 0, sizeof rj);
    rj.buf = (const uint64_t *)w;
    const int64_t lines = (int64_t)(bytes / 64);
    for (int mt = 0; mt <= 1; mt++) {
        int threads = mt ? threads_used(o->n_threads, n_rows) : 1;
        pass_timer td = {0}, tm = {0}, tr = {0};
        for (int p = 0; p <= o->passes; p++) {
            if (mt) {
                timer_start(&tr);
                lq_parallel_for(lines, threads, read_chunk, &rj);
                timer_stop(&tr, p > 0);
            }
            timer_start(&td);
            lq_parallel_for(n_rows, threads, dot_rows, &job);
            timer_stop(&td, p > 0);
            timer_start(&tm);
            lq_kernel_matvec_q(type, w, row_bytes, n_rows, act, BENCH_ROW, outv, threads);
            timer_stop(&tm, p > 0);
        }
        if (mt) {
            out->dot_mt = timer_rate(&td, (double)bytes, threads);
            out->matvec_mt = timer_rate(&tm, (double)bytes, threads);
            out->read_bw = timer_rate(&tr, (double)(lines * 64), threads);
        } else {
            out->dot_1t = timer_rate(&td, (double)bytes, threads);
            out->matvec_1t = timer_rate(&tm, (double)bytes, threads);
        }
    }
    out->weight_bytes = bytes;
    free(w);
    free(outv);
    free(act);
    free(x);
    return LQ_OK;
}
