/* avx2.c — the AVX2 path (compiled with -mavx2 -mfma -mf16c): the 256-bit kernels of
 * simd256.h with maddubs/madd for the u8×s8 products. */
#include "simd256.h"

void lq_kernels_fill_avx2(lq_kernel_table *t) { fill_simd256(t); }
