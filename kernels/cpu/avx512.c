/* avx512.c — placeholder */
#include "kernels.h"
void lq_kernels_fill_avx512(lq_kernel_table *t) { (void)t; }
