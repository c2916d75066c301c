/* dispatch.c — CPU feature detection and the choice of kernel paths.
 * CPUID + XGETBV directly: compilers disagree on __builtin_cpu_supports names (clang 14 lacks
 * f16c and avx512vnni), and the OS must have enabled the vector state too. */
#include "internal.h"

#include <cpuid.h>

typedef struct cpu_features {
    bool avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512vnni;
} cpu_features;

static uint64_t read_xcr0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static cpu_features detect_features(void) {
    cpu_features f = {0};
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    bool osxsave = (c >> 27) & 1u;
    if (!osxsave) return f;
    uint64_t xcr0 = read_xcr0();
    bool ymm_ok = (xcr0 & 0x6) == 0x6;       /* SSE + AVX state */
    bool zmm_ok = (xcr0 & 0xE6) == 0xE6;     /* + opmask, ZMM_Hi256, Hi16_ZMM */
    f.fma = ymm_ok && ((c >> 12) & 1u);
    f.f16c = ymm_ok && ((c >> 29) & 1u);
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
    f.avx2 = ymm_ok && ((b >> 5) & 1u);
    f.avx512f = zmm_ok && ((b >> 16) & 1u);
    f.avx512bw = zmm_ok && ((b >> 30) & 1u);
    f.avx512vl = zmm_ok && ((b >> 31) & 1u);
    f.avx512vnni = zmm_ok && ((c >> 11) & 1u);
    return f;
}

const char *lq_cpu_simd_level(void) {
    cpu_features f = detect_features();
    if (f.avx512f && f.avx512bw && f.avx512vl && f.avx2 && f.fma && f.f16c)
        return f.avx512vnni ? "avx512vnni" : "avx512";
    if (f.avx2 && f.fma && f.f16c) return "avx2";
    return "scalar";
}
