/* no_cuda.c — the CUDA entry points of a build without nvcc: no devices. */
#include "libquant.h"

#include <stddef.h>

int lq_cuda_device_count(void) { return 0; }
const char *lq_cuda_device_name(int index) {
    (void)index;
    return NULL;
}
