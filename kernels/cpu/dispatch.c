/* dispatch.c — CPU feature detection and the choice of kernel paths. */
#include "internal.h"

#include <cpuid.h>

/* AVX-512 VNNI: CPUID leaf 7, ECX bit 11 (clang 14 has no __builtin_cpu_supports name). */
static bool cpu_has_avx512vnni(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    return (c >> 11) & 1u;
}

const char *lq_cpu_simd_level(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl")) {
        if (cpu_has_avx512vnni()) return "avx512vnni";
        return "avx512";
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("f16c"))
        return "avx2";
    return "scalar";
}
