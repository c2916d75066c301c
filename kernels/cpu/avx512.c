/* avx512.c: AVX-512 kernels (not written yet) */
