/* avx2.c — placeholder */
#include "kernels.h"
void lq_kernels_fill_avx2(lq_kernel_table *t) { (void)t; }
