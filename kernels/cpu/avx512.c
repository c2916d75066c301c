/* avx512.c — the AVX-512 path (F, BW, VL, DQ, VNNI): the 256-bit kernels of simd256.h with
 * vpdpbusd for the u8×s8 products, and 512-bit kernels for the hottest formats. */
#define LQ_SIMD_VNNI 1
#include "simd256.h"

void lq_kernels_fill_avx512(lq_kernel_table *t) { fill_simd256(t); }
