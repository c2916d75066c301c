/* dispatch.c — CPU feature detection and the choice of kernel paths.
 *
 * Three tables are built once (scalar, AVX2, AVX-512/VNNI; each SIMD table starts as a copy
 * of the one below it, so a path only overrides what it implements). The public entry points
 * check types and lengths, then call the active table. */
#include "kernels.h"

#include <cpuid.h>
#include <math.h>
#include <pthread.h>

/* CPUID + XGETBV directly: compilers disagree on __builtin_cpu_supports names (clang 14 has no
 * "f16c" or "avx512vnni"), and the OS must have enabled the vector register state too. */
typedef struct cpu_features {
    bool fma, f16c, avx2, avx512f, avx512bw, avx512vl, avx512dq, avx512vnni;
} cpu_features;

static uint64_t read_xcr0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static cpu_features detect_features(void) {
    cpu_features f = {0};
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !((c >> 27) & 1u)) return f; /* no OSXSAVE: no AVX */
    uint64_t xcr0 = read_xcr0();
    bool ymm_ok = (xcr0 & 0x6) == 0x6;   /* SSE + AVX state */
    bool zmm_ok = (xcr0 & 0xE6) == 0xE6; /* + opmask, ZMM_Hi256, Hi16_ZMM */
    f.fma = ymm_ok && ((c >> 12) & 1u);
    f.f16c = ymm_ok && ((c >> 29) & 1u);
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
    f.avx2 = ymm_ok && ((b >> 5) & 1u);
    f.avx512f = zmm_ok && ((b >> 16) & 1u);
    f.avx512dq = zmm_ok && ((b >> 17) & 1u);
    f.avx512bw = zmm_ok && ((b >> 30) & 1u);
    f.avx512vl = zmm_ok && ((b >> 31) & 1u);
    f.avx512vnni = zmm_ok && ((c >> 11) & 1u);
    return f;
}

const char *lq_cpu_simd_level(void) {
    cpu_features f = detect_features();
    if (f.avx512f && f.avx512bw && f.avx512vl) return f.avx512vnni ? "avx512vnni" : "avx512";
    if (f.avx2 && f.fma && f.f16c) return "avx2";
    return "scalar";
}

/* The best kernel level this CPU runs. The AVX-512 kernels use VNNI (and DQ), so a CPU with
 * AVX-512 but without VNNI gets the AVX2 kernels. */
static lq_simd cpu_best_level(void) {
    cpu_features f = detect_features();
    bool avx2 = f.avx2 && f.fma && f.f16c;
    bool avx512 = avx2 && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512vnni;
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
static void rows_with(const lq_kernel_table *t, lq_type type, const uint8_t *w, size_t stride, int64_t begin,
                      int64_t end, const void *act, int64_t n, float *out) {
    lq_dot_q2_fn two = t->dot_q2[type];
    lq_dot_q_fn one = t->dot_q[type];
    int64_t r = begin;
    if (two)
        for (; r + 2 <= end; r += 2) two(w + (size_t)r * stride, w + (size_t)(r + 1) * stride, act, n, out + r);
    for (; r < end; r++) out[r] = one(w + (size_t)r * stride, act, n);
}

static void matvec_range(void *ctx, int64_t begin, int64_t end, int thread_index) {
    (void)thread_index;
    const matvec_job *j = (const matvec_job *)ctx;
    rows_with(j->t, j->type, j->w, j->stride, begin, end, j->act, j->n, j->out);
}

void lq_kernel_matvec_q_rows(lq_type type, const void *w, size_t row_stride, int64_t r0, int64_t r1,
                             const void *act, int64_t n, float *out) {
    if (r1 <= r0) return;
    if (!row_ok(type, n)) {
        for (int64_t r = r0; r < r1; r++) out[r] = NAN;
        return;
    }
    rows_with(active(), type, (const uint8_t *)w, row_stride, r0, r1, act, n, out);
}

void lq_kernel_gemm_q(lq_type type, const void *w, size_t row_stride, int64_t n_rows, const void *act,
                      size_t act_stride, int64_t n_tok, int64_t n, float *y, int64_t y_stride) {
    if (n_rows <= 0 || n_tok <= 0) return;
    bool ok = row_ok(type, n);
    const lq_kernel_table *t = active();
    if (ok && t->gemm_q[type]) {
        t->gemm_q[type](w, row_stride, n_rows, act, act_stride, n_tok, n, y, y_stride);
        return;
    }
    const uint8_t *rows = (const uint8_t *)w;
    for (int64_t r0 = 0; r0 < n_rows; r0 += 16) { /* rows stay in L1 while the tokens pass */
        int64_t r1 = r0 + 16 < n_rows ? r0 + 16 : n_rows;
        for (int64_t k = 0; k < n_tok; k++) {
            const void *a = (const uint8_t *)act + (size_t)k * act_stride;
            for (int64_t r = r0; r < r1; r++)
                y[k * y_stride + r] = ok ? t->dot_q[type](rows + (size_t)r * row_stride, a, n) : NAN;
        }
    }
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
