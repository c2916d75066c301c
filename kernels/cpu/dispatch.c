/* dispatch.c — CPU feature detection and the choice of kernel paths.
 *
 * Three tables are built once (scalar, AVX2, AVX-512/VNNI; each SIMD table starts as a copy
 * of the one below it, so a path only overrides what it implements). The public entry points
 * check types and lengths, then call the active table. */
#include "kernels.h"

#include <math.h>
#include <pthread.h>

const char *lq_cpu_simd_level(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl")) {
        if (__builtin_cpu_supports("avx512vnni")) return "avx512vnni";
        return "avx512";
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("f16c"))
        return "avx2";
    return "scalar";
}

/* The best kernel level this CPU runs. The AVX-512 kernels use VNNI (and DQ), so a CPU with
 * AVX-512 but without VNNI gets the AVX2 kernels. */
static lq_simd cpu_best_level(void) {
    __builtin_cpu_init();
    bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                __builtin_cpu_supports("f16c");
    bool avx512 = avx2 && __builtin_cpu_supports("avx512f") &&
                  __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                  __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni");
    return avx512 ? LQ_SIMD_AVX512 : avx2 ? LQ_SIMD_AVX2 : LQ_SIMD_SCALAR;
}

static lq_kernel_table tables[3];
static lq_simd best_level, active_level;
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void build_tables(void) {
    best_level = cpu_best_level();
    lq_kernels_fill_scalar(&tables[LQ_SIMD_SCALAR]);
    tables[LQ_SIMD_AVX2] = tables[LQ_SIMD_SCALAR];
    if (best_level >= LQ_SIMD_AVX2) lq_kernels_fill_avx2(&tables[LQ_SIMD_AVX2]);
    tables[LQ_SIMD_AVX512] = tables[LQ_SIMD_AVX2];
    if (best_level >= LQ_SIMD_AVX512) lq_kernels_fill_avx512(&tables[LQ_SIMD_AVX512]);
    __atomic_store_n(&active_level, best_level, __ATOMIC_RELEASE);
}

static const lq_kernel_table *active(void) {
    pthread_once(&tables_once, build_tables);
    return &tables[__atomic_load_n(&active_level, __ATOMIC_ACQUIRE)];
}

lq_simd lq_kernels_set_simd(lq_simd level) {
    pthread_once(&tables_once, build_tables);
    if (level < LQ_SIMD_SCALAR) level = LQ_SIMD_SCALAR;
    if (level > best_level) level = best_level;
    __atomic_store_n(&active_level, level, __ATOMIC_RELEASE);
    return level;
}

lq_simd lq_kernels_simd(void) {
    pthread_once(&tables_once, build_tables);
    return __atomic_load_n(&active_level, __ATOMIC_ACQUIRE);
}

lq_type lq_kernel_vec_dot_type(lq_type type) { return lq_kernels_act_type(type); }

/* True when kernels exist for type and n is a whole number of its blocks. */
static bool row_ok(lq_type type, int64_t n) {
    const lq_type_traits *tr = lq_type_get(type);
    return tr && n >= 0 && n % tr->block_size == 0 && lq_kernels_act_type(type) != LQ_TYPE_COUNT;
}

void lq_kernel_dequant_row(lq_type type, const void *src, float *dst, int64_t n) {
    if (!row_ok(type, n)) {
        for (int64_t i = 0; i < n; i++) dst[i] = NAN;
        return;
    }
    active()->dequant[type](src, dst, n);
}

float lq_kernel_dot_f32(lq_type type, const void *row, const float *x, int64_t n) {
    if (!row_ok(type, n)) return NAN;
    return active()->dot_f32[type](row, x, n);
}

void lq_kernel_quantize_act(lq_type act_type, const float *x, void *dst, int64_t n) {
    const lq_type_traits *tr = lq_type_get(act_type);
    if (act_type < 0 || act_type >= LQ_TYPE_COUNT || !tr || n < 0 || n % tr->block_size != 0)
        return;
    const lq_kernel_table *t = active();
    if (t->quant_act[act_type]) t->quant_act[act_type](x, dst, n);
}

float lq_kernel_dot_q(lq_type type, const void *row, const void *act, int64_t n) {
    if (!row_ok(type, n)) return NAN;
    return active()->dot_q[type](row, act, n);
}

void lq_convert_fp16_to_fp32(const uint16_t *src, float *dst, size_t n) {
    active()->fp16_to_f32(src, dst, n);
}
void lq_convert_fp32_to_fp16(const float *src, uint16_t *dst, size_t n) {
    active()->f32_to_fp16(src, dst, n);
}
void lq_convert_bf16_to_fp32(const uint16_t *src, float *dst, size_t n) {
    active()->bf16_to_f32(src, dst, n);
}
void lq_convert_fp32_to_bf16(const float *src, uint16_t *dst, size_t n) {
    active()->f32_to_bf16(src, dst, n);
}

typedef struct matvec_job {
    const lq_kernel_table *t;
    lq_type type;
    const uint8_t *w;
    size_t stride;
    const void *act;
    int64_t n;
    float *out;
} matvec_job;

/* Rows [begin, end): pairs through the two-row kernel where there is one. */
static void matvec_range(void *ctx, int64_t begin, int64_t end, int thread_index) {
    (void)thread_index;
    const matvec_job *j = (const matvec_job *)ctx;
    lq_dot_q2_fn two = j->t->dot_q2[j->type];
    int64_t r = begin;
    if (two)
        for (; r + 2 <= end; r += 2)
            two(j->w + (size_t)r * j->stride, j->w + (size_t)(r + 1) * j->stride, j->act, j->n, j->out + r);
    for (; r < end; r++) j->out[r] = j->t->dot_q[j->type](j->w + (size_t)r * j->stride, j->act, j->n);
}

void lq_kernel_matvec_q(lq_type type, const void *w, size_t row_stride, int64_t n_rows,
                        const void *act, int64_t n, float *out, int n_threads) {
    if (n_rows <= 0) return;
    if (!row_ok(type, n)) {
        for (int64_t r = 0; r < n_rows; r++) out[r] = NAN;
        return;
    }
    matvec_job job = {active(), type, (const uint8_t *)w, row_stride, act, n, out};
    lq_parallel_for(n_rows, n_threads, matvec_range, &job);
}
